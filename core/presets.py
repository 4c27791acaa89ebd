"""The book's lessons as ready experiments: the default configuration and the failure cases.

Each preset is a function returning a canonical experiment dict; the GUI's Presets menu,
``resources/examples/*.json`` (kept equal to these by a test) and the tests share them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from core.spec import Experiment, parse_experiment

Preset = Callable[[], dict[str, Any]]
PRESETS: dict[str, tuple[str, Preset]] = {}


def _preset(key: str, title: str) -> Callable[[Preset], Preset]:
    def decorator(fn: Preset) -> Preset:
        if key in PRESETS:
            raise ValueError(f"preset {key!r} is registered twice")
        PRESETS[key] = (title, fn)
        return fn
    return decorator


def _layers(n: int, units: int, **row: Any) -> list[dict[str, Any]]:
    return [{"units": units, **row} for _ in range(n)]


def _base(name: str, layers: list[dict[str, Any]], optimizer: dict[str, Any], **sections: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": name, "seed": 42,
        "data": {"source": "digits", "validation_split": 0.2, "test_split": 0.2, "standardize": True},
        "model": {"input_dropout": 0.0, "layers": layers, "output": {"init": "glorot_uniform"}},
        "optimizer": optimizer,
        "schedule": {"name": "constant"},
        "training": {"epochs": 20, "batch_size": 32},
    }
    spec.update(sections)
    return parse_experiment(spec).to_dict()


@_preset("default", "The book's default configuration (He + ELU + BN, Nadam, 1cycle, early stopping)")
def default() -> dict[str, Any]:
    """Chapter 11's 2019-20 default: He initialization, ELU, batch norm (the net is deep),
    early stopping + ℓ2, Nadam, 1cycle."""
    return _base(
        "default: He + ELU + BN, Nadam, 1cycle on digits",
        _layers(4, 100, init="he_normal", activation="elu", batch_norm="before_activation", use_bias=False),
        {"name": "nadam", "learning_rate": 0.001},
        schedule={"name": "one_cycle", "max_learning_rate": 0.003},
        regularization={"l2": 1e-4, "early_stopping": {"enabled": True, "patience": 15, "monitor": "val_loss",
                                                        "restore_best_weights": True}},
        training={"epochs": 30, "batch_size": 32},
    )


@_preset("vanishing", "Vanishing gradients (10 logistic layers, N(0, 0.05) init, plain SGD)")
def vanishing() -> dict[str, Any]:
    """Glorot & Bengio (2010): logistic units with small random weights; the gradient shrinks by
    σ'(z) ≤ 1/4 and the small weights at every layer on the way down."""
    return _base(
        "vanishing gradients: deep logistic, N(0, 0.05)",
        _layers(10, 100, init={"name": "random_normal", "stddev": 0.05}, activation="logistic"),
        {"name": "sgd", "learning_rate": 0.01},
    )


@_preset("exploding", "Exploding gradients (10 tanh layers, N(0, 1) init)")
def exploding() -> dict[str, Any]:
    """The naive N(0, 1) initialization of early networks: each layer multiplies the
    backpropagated signal by about √fan_in·σ′, so the lower layers' gradients blow up."""
    return _base(
        "exploding gradients: deep tanh, N(0, 1)",
        _layers(10, 100, init={"name": "random_normal", "stddev": 1.0}, activation="tanh"),
        {"name": "sgd", "learning_rate": 0.01},
    )


@_preset("dying_relu", "Dying ReLUs (ReLU with a large learning rate)")
def dying_relu() -> dict[str, Any]:
    """A large step pushes many ReLU units' inputs below zero for every example; such a unit
    outputs 0, gets no gradient and never recovers.

    Adam at 30 times its usual rate: each step moves every weight by about η whatever its
    gradient's size, so the large steps that kill units cannot blow the network up to NaN.
    Momentum at η = 0.1 (this example until 2026-12) killed the units in 8 of 12 runs (six seeds,
    OpenBLAS's SkylakeX and Haswell kernels) and diverged in the other 4, which runs depended on
    the machine's rounding; Adam at 0.03 killed 86–100 % of some layer's units in all 12."""
    return _base(
        "dying ReLU: deep ReLU, large learning rate",
        _layers(6, 100, init="he_normal", activation="relu"),
        {"name": "adam", "learning_rate": 0.03},
    )


@_preset("selu", "SELU self-normalizing network (LeCun normal, alpha dropout, no BN)")
def selu() -> dict[str, Any]:
    """Klambauer et al. (2017): with standardized inputs, LeCun normal initialization and a plain
    stack of dense SELU layers, each layer's output keeps mean 0 and standard deviation 1. Its
    regularization is alpha dropout (10 %), which keeps that mean and variance; ordinary dropout
    would break them."""
    return _base(
        "SELU self-normalizing: 10 x 100 SELU, LeCun normal, alpha dropout",
        _layers(10, 100, init="lecun_normal", activation="selu", dropout=0.1, dropout_type="alpha"),
        {"name": "nadam", "learning_rate": 0.001},
    )



# The lessons of the user guide (docs/guide/): each walkthrough starts from one of these.

@_preset("he_elu", "The fix for vanishing gradients: He init + ELU (the same 10 layers and plain SGD)")
def he_elu() -> dict[str, Any]:
    """The vanishing network with the book's first two fixes: He initialization keeps the
    variance of the signal the same in both directions (Eq. 11-1), and ELU does not saturate
    for positive inputs, so every layer learns."""
    return _base(
        "the fix: deep ELU, He init",
        _layers(10, 100, init="he_normal", activation="elu"),
        {"name": "sgd", "learning_rate": 0.01},
    )


@_preset("batch_norm", "Batch normalization rescues the vanishing network (BN before each logistic)")
def batch_norm() -> dict[str, Any]:
    """Ioffe & Szegedy (2015): normalizing each layer's inputs over the mini-batch (Eq. 11-3)
    keeps even logistic units with a bad initialization out of saturation; no bias is needed
    before batch norm (β replaces it)."""
    return _base(
        "batch norm: deep logistic, N(0, 0.05), BN before each activation",
        _layers(10, 100, init={"name": "random_normal", "stddev": 0.05}, activation="logistic",
                batch_norm="before_activation", use_bias=False),
        {"name": "sgd", "learning_rate": 0.01},
    )


@_preset("plain_sgd", "Optimizers: plain SGD, slow on a 5-layer ELU net (try momentum, RMSProp, Adam, Nadam)")
def plain_sgd() -> dict[str, Any]:
    """A healthy network with a small plain-SGD step: it learns, slowly. The walkthrough swaps
    in the faster optimizers of the chapter and compares the loss curves."""
    return _base(
        "optimizers: plain SGD on 5 x 100 ELU",
        _layers(5, 100, init="he_normal", activation="elu"),
        {"name": "sgd", "learning_rate": 0.001},
    )


@_preset("constant_lr", "Schedules: momentum at a constant rate (try power, exponential, 1cycle)")
def constant_lr() -> dict[str, Any]:
    """Momentum optimization at one fixed learning rate, the baseline for the chapter's
    learning-rate schedules."""
    return _base(
        "schedules: momentum at a constant learning rate",
        _layers(5, 100, init="he_normal", activation="elu"),
        {"name": "momentum", "learning_rate": 0.01, "momentum": 0.9},
    )


@_preset("overfitting", "Overfitting: 3 x 300 units on 10 % of digits (180 images), no regularization")
def overfitting() -> dict[str, Any]:
    """A network with 200 000 parameters and 180 training images: the training loss goes to
    zero and the training accuracy to 100 % while the validation accuracy stops near 90 %.
    The starting point for ℓ2, dropout, max-norm and early stopping."""
    return _base(
        "overfitting: 3 x 300 ELU on 180 digits",
        _layers(3, 300, init="he_normal", activation="elu"),
        {"name": "nadam", "learning_rate": 0.001},
        data={"source": "digits", "validation_split": 0.7, "test_split": 0.2, "standardize": True},
        training={"epochs": 60, "batch_size": 32},
    )


@_preset("clipping", "Gradient clipping keeps a too-large step finite (10 ELU layers, momentum 0.05, clip 1.0)")
def clipping() -> dict[str, Any]:
    """Pascanu et al. (2013): clipping each gradient to norm ≤ 1 bounds every update. With
    momentum at 0.05 this He + ELU network diverges within the first epoch unclipped; clipped
    it trains to over 90 % validation accuracy."""
    return _base(
        "gradient clipping: 10 x 100 ELU, momentum 0.05, clip norm 1.0",
        _layers(10, 100, init="he_normal", activation="elu"),
        {"name": "momentum", "learning_rate": 0.05, "momentum": 0.9},
        regularization={"gradient_clip": {"mode": "norm", "threshold": 1.0}},
        training={"epochs": 10, "batch_size": 32},
    )


# The chapter's own experiments on its own data sets (downloaded once on first use). Subsets
# (``n_train``) keep them to seconds per epoch on a laptop; drop ``n_train`` for the full sets.

def _book(name: str, source: str, layers: list[dict[str, Any]], optimizer: dict[str, Any], *,
          n_train: int, standardize: bool, epochs: int, batch_size: int = 32,
          **sections: Any) -> dict[str, Any]:
    data = {"source": source, "params": {"n_train": n_train, "n_test": 2000}, "validation_split": 0.1,
            "test_split": 0.0, "standardize": standardize}
    return _base(name, layers, optimizer, data=data, training={"epochs": epochs, "batch_size": batch_size},
                 **sections)


def _early_stopping(patience: int) -> dict[str, Any]:
    return {"early_stopping": {"enabled": True, "patience": patience, "monitor": "val_loss",
                               "restore_best_weights": True}}


@_preset("fashion_mnist_deep_relu", "Fashion-MNIST: 100 ReLU layers of 100 units (the deep net that fails)")
def fashion_mnist_deep_relu() -> dict[str, Any]:
    """The chapter's very deep network on Fashion-MNIST with ReLU and He initialization: a
    hundred layers multiply the backpropagated signal a hundred times, so the gradients of
    the lower layers vanish or explode and the network barely learns. Compare with the SELU
    version, which has the same depth."""
    return _book(
        "Fashion-MNIST: 100 x 100 ReLU, He normal",
        "fashion_mnist", _layers(100, 100, init="he_normal", activation="relu"),
        {"name": "momentum", "learning_rate": 0.001, "momentum": 0.9},
        n_train=10000, standardize=True, epochs=5)


@_preset("fashion_mnist_deep_selu", "Fashion-MNIST: 100 SELU layers of 100 units, LeCun normal (self-normalizing)")
def fashion_mnist_deep_selu() -> dict[str, Any]:
    """The same hundred layers with SELU, LeCun normal initialization and standardized inputs
    (Klambauer et al., 2017): each layer's output keeps mean 0 and standard deviation 1, so
    the gradients neither vanish nor explode and even this depth learns."""
    return _book(
        "Fashion-MNIST: 100 x 100 SELU, LeCun normal",
        "fashion_mnist", _layers(100, 100, init="lecun_normal", activation="selu"),
        {"name": "momentum", "learning_rate": 0.001, "momentum": 0.9},
        n_train=10000, standardize=True, epochs=5)


@_preset("fashion_mnist_batch_norm", "Fashion-MNIST: 300-100 ReLU with batch norm (the chapter's BN model)")
def fashion_mnist_batch_norm() -> dict[str, Any]:
    """The chapter's batch-normalization model: two hidden layers of 300 and 100 ReLU units,
    He initialization, a batch-norm layer after each; batch norm makes the network much less
    sensitive to initialization and lets it take larger steps (Ioffe & Szegedy, 2015). The
    book's first batch-norm layer, on the inputs, is the standardization of the inputs here."""
    return _book(
        "Fashion-MNIST: 300-100 ReLU + batch norm",
        "fashion_mnist",
        [{"units": 300, "init": "he_normal", "activation": "relu", "batch_norm": "after_activation"},
         {"units": 100, "init": "he_normal", "activation": "relu", "batch_norm": "after_activation"}],
        {"name": "sgd", "learning_rate": 0.01},
        n_train=10000, standardize=True, epochs=10)


# Exercise 8 of the chapter: a deep network on CIFAR-10, improved one step at a time.

def _cifar_deep(**row: Any) -> list[dict[str, Any]]:
    return _layers(20, 100, **row)


@_preset("cifar10_elu_nadam", "CIFAR-10, ex. 8 (a-b): 20 ELU layers of 100, He init, Nadam, early stopping")
def cifar10_elu_nadam() -> dict[str, Any]:
    """Exercise 8 (a, b): twenty hidden layers of 100 ELU units with He initialization,
    Nadam and early stopping. Deep enough to be hard, so each next step has something to fix;
    the learning rate is low (5e-5) because a higher one is unstable at this depth."""
    return _book(
        "CIFAR-10 ex. 8b: 20 x 100 ELU, He, Nadam, early stopping",
        "cifar10", _cifar_deep(init="he_normal", activation="elu"),
        {"name": "nadam", "learning_rate": 5e-5},
        n_train=5000, standardize=False, epochs=60, regularization=_early_stopping(10))


@_preset("cifar10_batch_norm", "CIFAR-10, ex. 8 (c): the same network with batch norm")
def cifar10_batch_norm() -> dict[str, Any]:
    """Exercise 8 (c): batch norm before every ELU (no bias: β replaces it) lets the same deep
    network take ten times larger steps (5e-4) and converge in fewer epochs, each epoch
    costing more."""
    return _book(
        "CIFAR-10 ex. 8c: 20 x 100 ELU + batch norm, Nadam",
        "cifar10", _cifar_deep(init="he_normal", activation="elu", batch_norm="before_activation",
                               use_bias=False),
        {"name": "nadam", "learning_rate": 5e-4},
        n_train=5000, standardize=False, epochs=60, regularization=_early_stopping(10))


@_preset("cifar10_selu", "CIFAR-10, ex. 8 (d): SELU, LeCun normal, standardized inputs, no batch norm")
def cifar10_selu() -> dict[str, Any]:
    """Exercise 8 (d): batch norm replaced by self-normalization: SELU, LeCun normal
    initialization and standardized inputs keep every layer's output near mean 0 and
    standard deviation 1, at a plain dense layer's cost per epoch. (Step (e) of the
    exercise adds alpha dropout to these layers: ``"dropout_type": "alpha"`` with a rate.)"""
    return _book(
        "CIFAR-10 ex. 8d: 20 x 100 SELU, LeCun normal, standardized",
        "cifar10", _cifar_deep(init="lecun_normal", activation="selu"),
        {"name": "nadam", "learning_rate": 7e-4},
        n_train=5000, standardize=True, epochs=60, regularization=_early_stopping(10))


@_preset("cifar10_one_cycle", "CIFAR-10, ex. 8 (f): the SELU network with 1cycle scheduling")
def cifar10_one_cycle() -> dict[str, Any]:
    """Exercise 8 (f): the SELU network trained with the 1cycle schedule (Smith, 2018): the
    rate climbs from 0.005 to 0.05 over the first half of a short run, falls back, then drops
    by orders of magnitude at the end, reaching a comparable accuracy in far fewer epochs
    (plain SGD, batches of 128, as in the exercise's solution)."""
    return _book(
        "CIFAR-10 ex. 8f: 20 x 100 SELU, 1cycle",
        "cifar10", _cifar_deep(init="lecun_normal", activation="selu"),
        {"name": "sgd", "learning_rate": 0.005},
        n_train=5000, standardize=True, epochs=15, batch_size=128,
        schedule={"name": "one_cycle", "max_learning_rate": 0.05})


def preset_experiment(key: str) -> Experiment:
    if key not in PRESETS:
        raise KeyError(f"unknown preset {key!r}; allowed: {', '.join(PRESETS)}")
    return parse_experiment(PRESETS[key][1]())


def default_experiment() -> Experiment:
    """The built-in default experiment the app opens on."""
    return preset_experiment("default")


def write_examples(folder: str) -> list[str]:
    """Write every preset as ``<key>.json`` (how ``resources/examples`` is made)."""
    import json
    from pathlib import Path

    out = []
    for key, (_, fn) in PRESETS.items():
        path = Path(folder) / f"{key}.json"
        path.write_text(json.dumps(fn(), indent=2) + "\n", encoding="utf-8")
        out.append(str(path))
    return out


if __name__ == "__main__":
    import sys

    print("\n".join(write_examples(sys.argv[1] if len(sys.argv) > 1 else "resources/examples")))
