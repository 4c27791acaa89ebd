"""A throwaway optimizer, to check that one class plus its registration is the whole way to add
one (CONTRIBUTING.md, "Adding an activation, initializer, optimizer, ..."): the tests register
it, look for it in the GUI, the command line, the labs and the exporter, and remove it again.

Loaded as a pytest plugin (``-p tests.gui.new_optimizer_support``), the module registers it for
the whole run instead, so that tests parametrized over the registry at collection see it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from core.engine import validation as check
from core.engine.component import Hyperparameter
from core.engine.optimizers import OPTIMIZERS, Optimizer, Rating

NAME = "sign_descent"


class SignDescent(Optimizer):
    """Sign descent with a dead zone: every gradient component at least τ in size moves its
    parameter by η in the opposite direction, smaller ones not at all; with τ = 0 it is plain
    sign descent (signSGD).
    """

    summary = ("Sign descent: each parameter moves by ±η whatever the gradient's size (speed **, quality *); "
               "a throwaway for tests.")
    rating = Rating("**", "*")
    hyperparameters = {
        "threshold": Hyperparameter("dead zone τ", "τ: gradient components smaller than this give no step.",
                                    "τ ≥ 0", "τ"),
    }

    def __init__(self, learning_rate: float = 0.01, threshold: float = 0.0) -> None:
        super().__init__(learning_rate)
        self.threshold = check.non_negative("threshold", threshold)

    def _compute_step(self, param: np.ndarray, grad: np.ndarray, step: np.ndarray,
                      slots: tuple[np.ndarray, ...], tmp: np.ndarray | None, lr: float) -> np.ndarray:
        """θ ← θ − η sign(g) ⊗ [|g| ≥ τ]"""
        assert tmp is not None
        np.abs(grad, out=tmp)
        tmp -= self.threshold
        np.heaviside(tmp, 1.0, out=tmp)     # 1 where |g| ≥ τ, else 0
        np.sign(grad, out=step)
        step *= tmp
        step *= -lr
        return step


def register() -> type[SignDescent]:
    return OPTIMIZERS.register(NAME)(SignDescent)


def unregister() -> None:
    OPTIMIZERS.unregister(NAME)


def pytest_configure(config: Any) -> None:
    """As a plugin: registered before the test modules are collected."""
    register()
