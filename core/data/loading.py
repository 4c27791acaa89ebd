"""The spec's entry point: ``load_dataset`` builds what a ``data`` section asks for.

A ``data.source`` is either a registered source (``DATASETS``, with ``data.params``) or a file
importer (``IMPORTERS``, with ``data.path`` and, when the importer needs one, ``data.target``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.engine import validation as check

from .dataset import Dataset, DatasetError, Progress
from .importers import IMPORTERS, target_sources
from .sources import DATASETS

__all__ = ["dataset_names", "load_dataset", "quoted_names"]


def dataset_names() -> list[str]:
    """Every allowed ``data.source``: the registered sources, then the file importers."""
    return DATASETS.names() + IMPORTERS.names()


def quoted_names(names: Sequence[str]) -> str:
    """``'npz' or 'csv'``: names as an error message lists the alternatives."""
    return " or ".join(repr(name) for name in names)


def load_dataset(source: str, params: Mapping[str, Any], *, path: str | None = None,
                 target: str | None = None, base_dir: Path | None = None,
                 rng: np.random.Generator, progress: Progress | None = None) -> Dataset:
    """Build the dataset a spec's ``data`` section asks for.

    ``source`` is a registered source (``params`` are its hyperparameters) or a file importer
    (``"npz"`` needs ``path``; ``"csv"`` needs ``path`` and ``target``). A relative ``path``
    resolves against ``base_dir``, the folder of the spec file. ``rng`` feeds the synthetic
    generators. ``progress`` is handed to the importer (see :data:`Progress`); sources ignore it.
    """
    if isinstance(source, str) and source in IMPORTERS:
        importer = IMPORTERS.get(source)
        check.check_params("dataset", source, params or {}, {})
        if path is None or (isinstance(path, str) and not path.strip()):
            raise DatasetError(f"path: required when source is {source!r} (the data file)")
        if not isinstance(path, (str, Path)):
            raise DatasetError(f"path: must be a file path, got {path!r}")
        file = Path(path).expanduser()
        if not file.is_absolute() and base_dir is not None:
            file = Path(base_dir) / file
        if not importer.needs_target:
            if target is not None:
                raise DatasetError(f"target: only used when source is {quoted_names(target_sources())}; "
                                   f"a {source!r} file holds its own targets")
        elif not isinstance(target, str) or not target:
            raise DatasetError(f"target: required when source is {source!r} (the name of the label column), "
                               f"got {target!r}")
        return importer().load(file, target, progress)

    if not isinstance(source, str) or source not in DATASETS:
        raise DatasetError(f"source: unknown dataset {source!r}; allowed: {', '.join(dataset_names())}")
    for key, value in (("path", path), ("target", target)):
        if value is not None:
            raise DatasetError(f"{key}: only used when source is {quoted_names(IMPORTERS.names())}, "
                               f"not {source!r}")
    dataset_source = DATASETS.get(source).from_config(params or {})
    return dataset_source.load_with_progress(rng, progress)  # type: ignore[attr-defined]
