"""Old import path, kept for users' scripts and notebooks: the data sources now live in
``core.data``. New code imports from there."""

from core.data.datasets import (  # noqa: F401
    DATASETS,
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
