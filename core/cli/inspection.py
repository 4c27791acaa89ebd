"""``gradient-workbench inspect RUN.gwb [--examples N|all] [--json]``: the instruments of
``core.engine.instruments`` on a saved session's current weights.

On the first N training examples in split order (all by default) and the experiment's loss with
its ℓ1/ℓ2 terms it measures the per-layer kernel-gradient norms, the sharpness λ_max of the
Hessian of that mean loss, the preconditioned sharpness λ_max(P⁻¹H) when the optimizer is
adaptive, the stability threshold of the rate the next step would take, and the gradient
noise scale and per-layer SNR of the per-example gradients. It prints a table, or with
``--json`` one object with the keys ``grad_norm``, ``sharpness``, ``preconditioned_sharpness``,
``noise_scale``, ``snr`` and ``stability_threshold`` (and what they were measured on). Numbers
that are not finite (an infinite noise scale at a zero gradient) are written as ``null``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

import numpy as np

from core.engine.instruments import (
    ProbeNetwork,
    gradient_noise,
    is_adaptive,
    preconditioned_sharpness,
    sharpness,
    stability_threshold,
)
from core.sessions.format import Session, load_session
from core.sessions.trainer_io import restore_trainer

from .args import UsageError, int_at_least, plural

# The command measures once, so it can afford a tighter Lanczos than the live instrument.
LANCZOS_ITERATIONS = 60
LANCZOS_TOLERANCE = 1e-5


# The noise scale and the SNR are the spread of the per-example gradients: one example has none
# (its covariance is 0 up to rounding, so B_simple and the SNR would print rounding noise).
MIN_EXAMPLES = 2
EXAMPLES_ALLOWED = (f"'all' or a whole number of at least {MIN_EXAMPLES} (the noise scale and SNR measure the "
                    "spread between examples' gradients)")


def examples_count(text: str) -> int | None:
    """``all`` (None) or an integer of at least ``MIN_EXAMPLES``."""
    return None if text == "all" else int_at_least(text, MIN_EXAMPLES, EXAMPLES_ALLOWED)


def add_inspect(sub: Any) -> None:
    """Add ``inspect`` to ``core.cli.main``'s parser (``sub`` is its subparsers object)."""
    p = sub.add_parser("inspect", help="measure a session's weights: gradient norms, sharpness against the "
                                       "stability threshold, gradient noise scale, per-layer SNR")
    p.add_argument("session", help="session file (*.gwb)")
    p.add_argument("--examples", type=examples_count, default=None, metavar="N|all",
                   help="measure on the first N training examples in split order (default: all)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def inspect_session(session: Session, examples: int | None = None) -> dict[str, Any]:
    """The measurements ``inspect`` prints, as a JSON-able dict."""
    trainer = restore_trainer(session)
    n_train = len(trainer.split.train)
    n = n_train if examples is None else examples
    if n > n_train:
        raise UsageError(f"--examples: {session.path} has {plural(n_train, 'training example')}, got {n}")
    if n < MIN_EXAMPLES:  # from the command line only `all` of a one-example split (a number was refused when parsed)
        got = f"got {n}" if examples is not None else f"but {session.path} has {plural(n_train, 'training example')}"
        raise UsageError(f"--examples: must be {EXAMPLES_ALLOWED}, {got}")
    X, y = trainer.probe_examples(n)
    reg = trainer.experiment.regularization
    probe = ProbeNetwork(trainer.network, X, y, reg.l1, reg.l2)
    optimizer = trainer.optimizer
    lr = trainer.schedule(trainer.step) * trainer.lr_scale
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        loss, norms = probe.layer_gradient_norms()
        finite = bool(np.all(np.isfinite(probe.theta))) and math.isfinite(loss)
        start = probe.start_vector(np.random.Generator(np.random.PCG64(0)))
        top = sharpness(probe, start, LANCZOS_ITERATIONS, LANCZOS_TOLERANCE) if finite else None
        pre = (preconditioned_sharpness(probe, optimizer, start, LANCZOS_ITERATIONS, LANCZOS_TOLERANCE)
               if finite and is_adaptive(optimizer) else None)
        noise = gradient_noise(probe)
    names = [str(x) for x in session.history.get("layer_names", trainer.network.layer_names)]
    return {
        "session": str(session.path), "step": trainer.step, "examples": n,
        "loss": _finite(loss), "optimizer": optimizer.name, "learning_rate": lr,
        "layer_names": names,
        "grad_norm": [_finite(x) for x in norms],
        "sharpness": None if top is None else _finite(top.value),
        "preconditioned_sharpness": None if pre is None else _finite(pre.value),
        "stability_threshold": _finite(stability_threshold(optimizer, lr)),
        "threshold_applies_to": "preconditioned_sharpness" if is_adaptive(optimizer) else "sharpness",
        "noise_scale": _finite(noise.noise_scale),
        "snr": [_finite(x) for x in noise.snr],
        "batch_size": trainer.batch_size,
    }


def _number(x: float | None, fmt: str = ".4g") -> str:
    return "n/a" if x is None else format(x, fmt)


def describe_inspection(r: dict[str, Any]) -> str:
    """The table ``inspect`` prints."""
    against = r["threshold_applies_to"]
    measured = r[against]
    lines = [f"session               {r['session']} (step {r['step']:,}, first {r['examples']:,} training examples)",
             f"loss                  {_number(r['loss'])} (data loss + l1/l2 terms)",
             f"optimizer             {r['optimizer']}, next learning rate {r['learning_rate']:.4g}",
             f"sharpness             {_number(r['sharpness'])}   (largest eigenvalue of the Hessian)"]
    if r["preconditioned_sharpness"] is not None or against == "preconditioned_sharpness":
        lines.append(f"preconditioned        {_number(r['preconditioned_sharpness'])}   "
                     "(of P⁻¹H, P from the optimizer's second moments)")
    verdict = ""
    if measured is not None and r["stability_threshold"]:
        ratio = measured / r["stability_threshold"]
        verdict = (f"   {against.replace('_', ' ')} is {ratio:.2f}× the threshold: "
                   + ("above it, the step is unstable along the sharpest direction" if ratio > 1 else
                      "at the edge of stability" if ratio > 0.9 else "below it"))
    lines.append(f"stability threshold   {_number(r['stability_threshold'])}{verdict}")
    noise = r["noise_scale"]
    advice = ""
    if noise is not None:
        b = r["batch_size"]
        advice = (f"   batch size {b}: " + ("noise dominates, a larger batch would help" if b < noise / 3 else
                                            "larger than needed, compute is wasted" if b > 3 * noise else
                                            "about right"))
    lines += [f"noise scale           {_number(noise)}   (B_simple = tr Σ / |G|²){advice}", "",
              f"  {'layer':<32} {'grad_norm':>11} {'SNR':>11}"]
    for name, g, s in zip(r["layer_names"], r["grad_norm"], r["snr"], strict=False):
        lines.append(f"  {name:<32} {_number(g, '.3e'):>11} {_number(s, '.3e'):>11}")
    return "\n".join(lines)


def cmd_inspect(args: argparse.Namespace) -> int:
    result = inspect_session(load_session(args.session), args.examples)
    sys.stdout.write((json.dumps(result, indent=2) if args.json else describe_inspection(result)) + "\n")
    return 0
