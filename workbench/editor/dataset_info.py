"""What the editor knows about the chosen data: sizes for the parameter count and the schedule
preview, and the preview of a file (shape, classes, class balance, a few images of each class
when the rows are images) loaded off the GUI thread.

Sizes of the built-in sources are known without loading anything (bundled sets from a small
table, generators from their parameters); a file's come from its preview. Loading runs on a
``workbench.concurrent`` worker through ``core.data.load_dataset``, the same reader training
uses (a book data set downloads there on first use, with the same progress and Cancel): a CSV
reports the fraction of the file parsed, an NPZ the fraction of its arrays' bytes read, after
each block of about a megabyte (an IDX file likewise, an image folder after each image), and
Cancel stops any of them at the next block (``LoadCancelled``). Results are cached per
(source, parameters, files, sizes, modification times).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal

from core.data import DATASETS, Dataset, LoadCancelled, load_dataset
from core.data.loading import resolve_path
from core.spec import DataSpec

from ..concurrent import JobRunner

# (samples, features, classes) of the bundled data sets, so that the parameter count is
# immediate; the preview (which loads them) confirms it.
BUNDLED = {"digits": (1797, 64, 10), "iris": (150, 4, 3), "wine": (178, 13, 3), "breast_cancer": (569, 30, 2)}

PROGRESS_STEP = 0.01            # progress is sent to the GUI thread when it moved by this much
SAMPLES_PER_CLASS = 8           # the preview's grid: this many images of each class...
MAX_SAMPLE_CLASSES = 20         # ...for at most this many classes


@dataclass(frozen=True)
class DataFacts:
    """Sizes of the data; ``None`` where unknown (a file not read yet)."""

    n_samples: int | None = None
    n_features: int | None = None
    task: str | None = None
    n_classes: int | None = None
    n_targets: int | None = None
    exact: bool = False
    summary: dict[str, Any] | None = field(default=None, compare=False)

    @classmethod
    def from_summary(cls, summary: dict[str, Any]) -> DataFacts:
        return cls(n_samples=summary["n_samples"], n_features=summary["n_features"], task=summary["task"],
                   n_classes=summary["n_classes"] or None, n_targets=summary.get("n_targets"), exact=True,
                   summary=summary)

    def output_width(self, loss: str) -> int | None:
        """Units of the output layer for ``model.output.loss`` (``auto`` follows the task)."""
        if loss == "sigmoid_binary_cross_entropy":
            return 1
        if loss == "mse" or self.task == "regression":
            return self.n_targets if self.task == "regression" else None
        return self.n_classes

    def train_samples(self, validation_split: float, test_split: float) -> int | None:
        """Examples left for training (the trainer rounds per class; this is within a few)."""
        if self.n_samples is None:
            return None
        n = self.n_samples
        return max(n - int(round(validation_split * n)) - int(round(test_split * n)), 0)


def estimate(data: DataSpec) -> DataFacts:
    """Sizes of a built-in source without generating or reading anything."""
    source = data.source
    if source in BUNDLED:
        n, d, k = BUNDLED[source]
        classes = data.params.get("classes")
        if classes:
            n, k = int(round(n * len(classes) / k)), len(classes)
        return DataFacts(n_samples=n, n_features=d, task="classification", n_classes=k)
    if source in DATASETS and getattr(DATASETS.get(source), "kind", "") == "synthetic":
        params = {**DATASETS.get(source).parameters(), **data.params}
        return DataFacts(n_samples=params.get("n_samples"), n_features=params.get("n_features", 2),
                         task="classification", n_classes=params.get("n_classes", 2))
    return DataFacts()


def resolve(path: str, base_dir: Path | None) -> Path:
    return resolve_path(path, base_dir)


def preview_key(data: DataSpec, base_dir: Path | None) -> str:
    """Identifies what a preview was loaded from; a changed file (or labels file) gets a new key."""
    key: dict[str, Any] = {"source": data.source, "params": dict(data.params), "target": data.target}
    for name, path in (("path", data.path), ("labels_path", data.labels_path)):
        if path is None:
            continue
        file = resolve(path, base_dir)
        key[name] = str(file)
        try:
            st = file.stat()
            key[f"{name}_stat"] = [st.st_size, st.st_mtime_ns]
        except OSError:
            key[f"{name}_stat"] = None
    return json.dumps(key, sort_keys=True, default=str)


def sample_images(dataset: Dataset, per_class: int = SAMPLES_PER_CLASS,
                  max_classes: int = MAX_SAMPLE_CLASSES) -> np.ndarray | None:
    """The first ``per_class`` images of each class (of the first ``max_classes``) as bytes,
    shape (classes, per_class, rows, cols), for the preview's grid; ``None`` when the rows of
    ``X`` are not images. Each image is stretched to its own range (a standardized or 0-16
    image shows as well as a 0-1 one); a class with fewer images leaves its last cells black."""
    if dataset.image_shape is None or dataset.task != "classification":
        return None
    rows, cols = dataset.image_shape
    k = min(dataset.n_classes, max_classes)
    grid = np.zeros((k, per_class, rows, cols), dtype=np.uint8)
    for c in range(k):
        chosen = np.flatnonzero(dataset.y == c)[:per_class]
        if not len(chosen):
            continue
        images = dataset.X[chosen].astype(np.float64)
        low = images.min(axis=1, keepdims=True)
        span = np.maximum(images.max(axis=1, keepdims=True) - low, 1e-12)
        grid[c, :len(chosen)] = np.round(255 * (images - low) / span).reshape(len(chosen), rows, cols)
    return grid


def load_for_preview(data: DataSpec, base_dir: Path | None, should_stop: Callable[[], bool],
                     progress: Any = None) -> Dataset:
    """Load the data a spec names (in a worker thread). ``progress(fraction)`` gets values in
    [0, 1] while a file is read (a CSV: parsed; an NPZ: its arrays' bytes); once ``should_stop()``
    is true the load raises ``LoadCancelled`` at its next block (about a megabyte)."""
    last = [-1.0]

    def report(fraction: float) -> bool:
        if progress is not None and (fraction - last[0] >= PROGRESS_STEP or fraction < 0):
            progress(fraction)
            last[0] = fraction
        return not should_stop()

    # The same checks and paths as training; a book data set downloads on first use, with the
    # same progress and Cancel as a file.
    dataset = load_dataset(data.source, data.params, path=data.path, target=data.target,
                           labels_path=data.labels_path, base_dir=base_dir, rng=np.random.default_rng(0),
                           progress=report)
    if should_stop():
        raise LoadCancelled("loading cancelled")
    return dataset


class DataInfo(QObject):
    """The current data's sizes and preview; ``changed`` fires when they change.

    ``request(data, base_dir)`` starts loading a preview unless it is cached; a newer request or
    ``cancel()`` stops an older one at its next block and drops its result. The loads run one at
    a time on the preview's runner; the window shuts it down when it closes.
    """

    changed = Signal()
    loading = Signal(bool)
    progress = Signal(float)        # fraction read, or -1 while parsing
    failed = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        # Any failure to read the data is shown in the preview by its message alone.
        self._runner = JobRunner(self, "data-preview", plain_errors=(Exception,))
        self._runner.progress.connect(self._on_progress)
        self._runner.finished.connect(self._on_finished)
        self._runner.failed.connect(self._on_failed)
        self._cache: dict[str, dict[str, Any]] = {}
        self._errors: dict[str, str] = {}
        self._pending_key: str | None = None
        self._key: str | None = None
        self._estimate = DataFacts()
        self.started_at = 0.0
        self.file_size = 0
        self.download_size = 0          # bytes a book data set downloads on first use (0: not one)
        self.source = ""

    # ------------------------------------------------------------------ reading

    @property
    def facts(self) -> DataFacts:
        summary = self._cache.get(self._key or "")
        return DataFacts.from_summary(summary) if summary is not None else self._estimate

    @property
    def error(self) -> str | None:
        return self._errors.get(self._key or "")

    @property
    def busy(self) -> bool:
        return self._pending_key is not None

    @property
    def running(self) -> bool:
        """A load is still running on a worker thread (a cancelled one too, until it stops)."""
        return self._runner.busy

    # ------------------------------------------------------------------ loading

    def update(self, data: DataSpec, base_dir: Path | None, load: bool = True) -> None:
        """The data section changed: new estimate, and a preview load if not cached."""
        key = preview_key(data, base_dir)
        self._estimate = estimate(data)
        changed = key != self._key
        self._key = key
        if self._pending_key is not None and self._pending_key != key:
            self._drop()  # loading data that is no longer chosen
        if changed:
            self.changed.emit()
        if load and key not in self._cache and key not in self._errors and key != self._pending_key:
            self._start(data, base_dir, key)

    def reload(self, data: DataSpec, base_dir: Path | None) -> None:
        key = preview_key(data, base_dir)
        self._cache.pop(key, None)
        self._errors.pop(key, None)
        self._key = key
        self._start(data, base_dir, key)
        self.changed.emit()

    def cancel(self) -> None:
        """Stop the running load (its result, if it still comes, is dropped); Reload retries."""
        if self._pending_key is not None:
            self._errors[self._pending_key] = "Loading cancelled."
            self._drop()
            self.changed.emit()

    def _drop(self) -> None:
        self._runner.request_stop()
        self._pending_key = None
        self.loading.emit(False)

    def wait(self, msecs: int = -1) -> bool:
        """Wait for running loads (tests, shutdown)."""
        return self._runner.wait(msecs)

    def _start(self, data: DataSpec, base_dir: Path | None, key: str) -> None:
        self._runner.request_stop()      # a load still running ends at its next block
        self._pending_key = key
        self.started_at = time.monotonic()
        self.file_size = 0
        self.source = data.source
        source_class = DATASETS.get(data.source) if data.source in DATASETS else None
        download_size = getattr(source_class, "download_size", None)      # a book data set's classmethod
        self.download_size = download_size() if callable(download_size) else 0
        if data.path is not None:
            try:
                self.file_size = resolve(data.path, base_dir).stat().st_size
            except OSError:
                pass

        def job(progress: Callable[[float], None], should_stop: Callable[[], bool]) -> dict[str, Any] | None:
            try:
                dataset = load_for_preview(data, base_dir, should_stop, progress)
            except LoadCancelled:
                return None
            # The grid's few images are copied out here, so the full data set is not kept.
            return {**dataset.summary(), "sample_images": sample_images(dataset)}

        self.loading.emit(True)
        self._runner.submit(job)     # waits for a stopping older load; its outcome is dropped

    # A result or error still comes from a load that was cancelled without a newer one: it is
    # dropped here (nothing is pending). One overtaken by a newer load never arrives (the runner).

    def _on_progress(self, fraction: float) -> None:
        if self._pending_key is not None:
            self.progress.emit(fraction)

    def _on_finished(self, summary: dict[str, Any] | None) -> None:
        if summary is None or self._pending_key is None:
            return
        self._cache[self._pending_key] = summary
        self._pending_key = None
        self.loading.emit(False)
        self.changed.emit()

    def _on_failed(self, message: str) -> None:
        if self._pending_key is None:
            return
        self._errors[self._pending_key] = message
        self._pending_key = None
        self.loading.emit(False)
        self.failed.emit(message)
        self.changed.emit()
