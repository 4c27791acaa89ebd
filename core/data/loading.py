"""The spec's entry point: ``load_dataset`` builds what a ``data`` section asks for.

A ``data.source`` is either a registered source (``DATASETS``, with ``data.params``) or a file
importer (``IMPORTERS``, with ``data.path``, ``data.params`` for the few importers that take
any, and, when the importer needs them, ``data.target`` or ``data.labels_path``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .dataset import Dataset, DatasetError, Progress
from .importers import IMPORTERS, labels_file_sources, load_file, target_sources
from .sources import DATASETS

__all__ = ["dataset_names", "load_dataset", "quoted_names", "resolve_path"]


def dataset_names() -> list[str]:
    """Every allowed ``data.source``: the registered sources, then the file importers."""
    return DATASETS.names() + IMPORTERS.names()


def quoted_names(names: Sequence[str]) -> str:
    """``'npz' or 'csv'``: names as an error message lists the alternatives."""
    return " or ".join(repr(name) for name in names)


def resolve_path(path: str | Path, base_dir: Path | None) -> Path:
    """A spec's file path: ``~`` expanded, a relative one taken against the spec's folder."""
    file = Path(path).expanduser()
    if not file.is_absolute() and base_dir is not None:
        file = Path(base_dir) / file
    return file


def load_dataset(source: str, params: Mapping[str, Any], *, path: str | None = None,
                 target: str | None = None, labels_path: str | None = None, base_dir: Path | None = None,
                 rng: np.random.Generator, progress: Progress | None = None) -> Dataset:
    """Build the dataset a spec's ``data`` section asks for.

    ``source`` is a registered source (``params`` are its hyperparameters) or a file importer
    (``"npz"`` needs ``path``; ``"csv"`` needs ``path`` and ``target``; ``"idx"`` needs ``path``
    and ``labels_path``; ``"image_folder"`` needs ``path``, a folder, and takes ``params``).
    Relative paths resolve against ``base_dir``, the folder of the spec file. ``rng`` feeds the
    synthetic generators. ``progress`` is handed to the importer or to a downloading source
    (see :data:`Progress`).
    """
    if isinstance(source, str) and source in IMPORTERS:
        importer_class = IMPORTERS.get(source)
        importer = importer_class.from_config(params or {})   # a bad parameter: ValueError, as for a source
        what = "the data folder" if importer_class.reads_folder else "the data file"
        if path is None or (isinstance(path, str) and not path.strip()):
            raise DatasetError(f"path: required when source is {source!r} ({what})")
        if not isinstance(path, (str, Path)):
            raise DatasetError(f"path: must be a {'folder' if importer_class.reads_folder else 'file'} path, "
                               f"got {path!r}")
        if not importer_class.needs_target:
            if target is not None:
                raise DatasetError(f"target: only used when source is {quoted_names(target_sources())}; "
                                   f"a {source!r} file holds its own targets")
        elif not isinstance(target, str) or not target:
            raise DatasetError(f"target: required when source is {source!r} (the name of the label column), "
                               f"got {target!r}")
        labels_file = None
        if not importer_class.needs_labels_file:
            if labels_path is not None:
                raise DatasetError(f"labels_path: only used when source is {quoted_names(labels_file_sources())}, "
                                   f"not {source!r}")
        elif not isinstance(labels_path, (str, Path)) or not str(labels_path).strip():
            raise DatasetError(f"labels_path: required when source is {source!r} (the labels file), "
                               f"got {labels_path!r}")
        else:
            labels_file = resolve_path(labels_path, base_dir)
        return load_file(importer, resolve_path(path, base_dir), target, labels_file, progress)

    if not isinstance(source, str) or source not in DATASETS:
        raise DatasetError(f"source: unknown dataset {source!r}; allowed: {', '.join(dataset_names())}")
    for key, value in (("path", path), ("target", target), ("labels_path", labels_path)):
        if value is not None:
            raise DatasetError(f"{key}: only used when source is {quoted_names(IMPORTERS.names())}, "
                               f"not {source!r}")
    dataset_source = DATASETS.get(source).from_config(params or {})
    return dataset_source.load_with_progress(rng, progress)  # type: ignore[attr-defined]
