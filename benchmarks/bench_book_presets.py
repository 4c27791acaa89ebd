"""Seconds per epoch of the presets on the book's data sets, on stand-in pixels of the real shape.

The Fashion-MNIST and CIFAR-10 presets (``core.presets``) train on subsets of data sets that
are downloaded on first use. Where they cannot be downloaded, their cost per epoch can still
be measured: each preset is trained for ``--epochs`` epochs on random pixels in [0, 1] with
exactly the preset's shapes (``n_train`` training images of 784 or 3,072 values, its
validation split, ``n_test`` test images, ten classes). The accuracy of such a run means
nothing and is not printed; the time is the real cost of the network on that many images.

The baseline, timed in the same run, is the ``default`` preset on the bundled digits: each
row also gives its time as a multiple of the baseline's.

    python benchmarks/bench_book_presets.py [--epochs 1] [--only cifar10_selu ...]

Compare figures within one run: timings on the shared 2-core host swing between runs.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from core.data.dataset import Dataset
from core.presets import PRESETS
from core.spec import parse_experiment
from core.training import Trainer

BOOK = {"fashion_mnist": 784, "cifar10": 3072}


def stand_in(n_train: int, n_test: int, n_features: int, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    n = n_train + n_test
    X = rng.integers(0, 256, (n, n_features), dtype=np.uint8).astype(np.float32) / np.float32(255)
    y = np.arange(n, dtype=np.int64) % 10
    return Dataset(X=X, y=y, task="classification", n_classes=10,
                   feature_names=[f"pixel_{i}" for i in range(n_features)],
                   class_names=[str(i) for i in range(10)], image_shape=None, name="stand-in",
                   test_rows=np.arange(n_train, n, dtype=np.int64))


def seconds_per_epoch(key: str, epochs: int) -> tuple[float, int]:
    experiment = parse_experiment(PRESETS[key][1]())
    dataset = None
    if experiment.data.source in BOOK:
        params = experiment.data.params
        dataset = stand_in(params["n_train"], params["n_test"], BOOK[experiment.data.source])
    trainer = Trainer(experiment, dataset=dataset)
    t0 = time.perf_counter()
    trainer.fit(epochs=epochs)
    return (time.perf_counter() - t0) / epochs, len(trainer.split.train)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--only", nargs="*", default=None)
    args = parser.parse_args()
    keys = args.only or [k for k in PRESETS if parse_experiment(PRESETS[k][1]()).data.source in BOOK]
    base, base_n = seconds_per_epoch("default", args.epochs)
    print("| preset | training images | s / epoch | × the digits default |\n|---|---|---|---|")
    print(f"| default (digits, baseline) | {base_n:,} | {base:.2f} | 1 |")
    for key in keys:
        seconds, n = seconds_per_epoch(key, args.epochs)
        print(f"| {key} | {n:,} | {seconds:.1f} | {seconds / base:.0f} |", flush=True)


if __name__ == "__main__":
    main()
