"""Where the numbers come from.

- ``dataset``: the :class:`Dataset` type, its errors and the checks the file importers share;
- ``sources``: the registered built-in sources (``DATASETS``: synthetic sets, the bundled real
  ones, the corrupted auxiliary task);
- ``importers``: the file importers (``IMPORTERS``: NPZ, CSV), with their progress and cancel;
- ``loading``: ``load_dataset``, which the trainer and the labs call with a spec's ``data`` section;
- ``book``: the book's image sets by name (Fashion-MNIST, MNIST, CIFAR-10), downloaded once
  (``download``) and read from their published formats (``formats``).
"""

from . import book  # noqa: F401  (registers fashion_mnist, mnist, cifar10)
from .dataset import Dataset, DatasetError, LoadCancelled, Progress
from .importers import IMPORTERS, FileImporter, FilePreview, load_csv, load_npz, read_csv_header
from .loading import dataset_names, load_dataset
from .sources import DATASETS, DatasetSource

__all__ = [
    "DATASETS",
    "IMPORTERS",
    "Dataset",
    "DatasetError",
    "DatasetSource",
    "FileImporter",
    "FilePreview",
    "LoadCancelled",
    "Progress",
    "dataset_names",
    "load_csv",
    "load_dataset",
    "load_npz",
    "read_csv_header",
]
