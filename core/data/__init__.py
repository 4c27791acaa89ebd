"""Where the numbers come from: the ``Dataset`` type and its errors, the registered built-in
sources (synthetic sets and the bundled real ones), the file importers and ``load_dataset``,
which the trainer and the labs call with a spec's ``data`` section."""

from . import book  # noqa: F401  (registers fashion_mnist, mnist, cifar10)
from .datasets import DATASETS, Dataset, DatasetError, LoadCancelled, dataset_names, load_dataset

__all__ = ["DATASETS", "Dataset", "DatasetError", "LoadCancelled", "dataset_names", "load_dataset"]
