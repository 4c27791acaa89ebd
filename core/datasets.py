"""Old import path, kept for users' scripts and notebooks: the data sources now live in
``core.data`` (``dataset``, ``sources``, ``importers``, ``loading``). New code imports from there."""

from core.data import (  # noqa: F401
    DATASETS,
    IMPORTERS,
    Dataset,
    DatasetError,
    DatasetSource,
    LoadCancelled,
    dataset_names,
    load_csv,
    load_dataset,
    load_npz,
    read_csv_header,
)
