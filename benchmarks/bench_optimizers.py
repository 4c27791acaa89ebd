"""Benchmark of one optimizer step (``Optimizer.apply``) with its y ← y + a·x as one BLAS axpy
pass (``add_scaled``, ``fused_updates`` on) against NumPy's two passes (``fused_updates``
off), for every registered optimizer, in the same run.

The parameters are laid out as the network lays them out (``pack_flat``): every kernel and bias
of ``bench_engine.py``'s 784-300-100-10 network (266,610 float32 values) as views of one flat
array, the gradients as views of another, so ``apply`` takes its flat path. Each repetition
times a block of steps of each setting in turn, so drift in the host's load hits both alike; a
setting's time is the median of its blocks, and "fused / NumPy" is the ratio of the medians
and, in brackets, the median of the per-repetition ratios. It also says whether the axpy passed
its check on this machine (``core.engine.optimizers.axpy_functions``): where it did not, both
settings make NumPy's two passes and the ratio is 1 within noise. One BLAS thread (the
trainer's own element-wise work never uses BLAS's threads).

    python benchmarks/bench_optimizers.py [--quick] [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.bench_engine import CONFIGS  # noqa: E402
from core.engine.network import BUFFER_NAMES, pack_flat, parameter_shapes  # noqa: E402
from core.engine.optimizers import OPTIMIZERS, axpy_functions  # noqa: E402

# The trainable tensors of bench_engine.py's 784-300-100-10 network (kernels and biases).
WIDE = next(c for c in CONFIGS if c.wide)
SHAPES = {key: shape for key, shape in parameter_shapes(WIDE.experiment(1).model, 784, 10).items()
          if key.rsplit(".", 1)[1] not in BUFFER_NAMES}


def flat_views(rng: np.random.Generator, scale: float) -> dict[str, np.ndarray]:
    """Random float32 tensors of ``SHAPES`` as views of one flat array, laid out as the network
    lays its parameters (``pack_flat``)."""
    arrays = {key: rng.standard_normal(shape).astype(np.float32) * np.float32(scale) for key, shape in SHAPES.items()}
    return pack_flat(arrays, np.dtype(np.float32))[1]


def measure(name: str, steps: int, reps: int, rng: np.random.Generator) -> dict[str, Any]:
    n = sum(int(np.prod(s)) for s in SHAPES.values())
    grads = flat_views(rng, 1e-3)
    settings: dict[str, tuple[Any, dict[str, np.ndarray]]] = {}
    for label, fused in (("fused", True), ("NumPy", False)):
        params = flat_views(rng, 1.0)
        optimizer = OPTIMIZERS.get(name)()
        optimizer.fused_updates = fused
        optimizer.build(params)
        optimizer.apply(params, grads, 1e-6)   # warm-up, and the flat path's check
        settings[label] = (optimizer, params)
    times: dict[str, list[float]] = {label: [] for label in settings}
    for _ in range(reps):
        for label, (optimizer, params) in settings.items():
            start = time.perf_counter()
            for _ in range(steps):
                optimizer.apply(params, grads, 1e-6)
            times[label].append((time.perf_counter() - start) / steps)
    fused, plain = (statistics.median(times[label]) for label in ("fused", "NumPy"))
    paired = statistics.median(f / p for f, p in zip(times["fused"], times["NumPy"], strict=True))
    return {"parameters": n, "seconds": times, "fused": fused, "numpy": plain,
            "ratio": fused / plain, "paired": paired}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions, a few seconds")
    parser.add_argument("--json", type=Path, help="also write every figure here")
    args = parser.parse_args(argv)
    steps, reps = (20, 7) if args.quick else (50, 25)
    axpy = axpy_functions()
    blas = [(i.get("internal_api"), i.get("version"), i.get("architecture")) for i in threadpool_info()]
    print("optimizer step, fused y + a·x (one BLAS axpy pass) against NumPy's two passes")
    print(f"BLAS {blas}; axpy passed its check for: {sorted(str(d) for d in axpy) or 'none'}")
    print(f"784-300-100-10 parameters as one flat float32 array; {reps} blocks of {steps} steps a setting, "
          "1 BLAS thread\n")
    print(f"{'optimizer':10s} {'NumPy µs':>9s} {'fused µs':>9s} {'fused / NumPy':>14s}")
    rng = np.random.default_rng(20261207)
    results = {}
    with threadpool_limits(1):
        for name in OPTIMIZERS.names():
            r = results[name] = measure(name, steps, reps, rng)
            print(f"{name:10s} {r['numpy'] * 1e6:9.1f} {r['fused'] * 1e6:9.1f} "
                  f"{r['ratio']:8.2f} ({r['paired']:.2f})")
    if args.json:
        args.json.write_text(json.dumps({"blas": blas, "axpy": sorted(str(d) for d in axpy),
                                         "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
