"""Benchmark of the training instruments (``core.engine.instruments``).

For each configuration, in one run and with one BLAS thread:

1. the cost of one call of each instrument on a trained network (the effective learning rates,
   the sharpness λ_max by Lanczos with the preconditioned one for adaptive optimizers, the gradient
   noise scale with the per-layer SNR, one row of the distributions over time:
   ``DistributionRecorder.record`` on a step's tensors), median of a few calls;
2. the training time of the same steps with every instrument off and with every instrument on at
   its default cadence (``training.instruments`` left at its defaults): the two trainers take
   their steps alternately, each step timed on its own, so both see the same load from other
   processes (whole runs one after the other swung by ±30 % on a shared host); the ratio on/off
   of their total times (median over repetitions; target: at most 1.10), and the share of the
   "on" time each instrument took (from ``InstrumentRecorder.seconds`` and
   ``DistributionRecorder.seconds``).

Configurations: the default experiment (digits, 4 × 100 ELU + batch norm, Nadam, 1cycle) and a
784-300-100-10 ReLU network on 10,000 synthetic MNIST-sized examples (Adam, and momentum).

    python benchmarks/bench_instruments.py [--quick] [--json results.json]

Two-thread timings on a shared machine swing by tens of percent; compare the ratios of one run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from core.data import Dataset  # noqa: E402
from core.engine.distributions import DistributionRecorder  # noqa: E402
from core.engine.instruments import (  # noqa: E402
    ProbeNetwork,
    effective_learning_rates,
    gradient_noise,
    is_adaptive,
    preconditioned_sharpness,
    sharpness,
)
from core.presets import default_experiment  # noqa: E402
from core.spec import Experiment, InstrumentSpec, InstrumentsSpec, SharpnessSpec, parse_experiment  # noqa: E402
from core.training import Trainer  # noqa: E402

TARGET_RATIO = 1.10
OFF = InstrumentsSpec(sharpness=SharpnessSpec(enabled=False), noise=InstrumentSpec(enabled=False),
                      effective_learning_rate=InstrumentSpec(enabled=False),
                      distributions=InstrumentSpec(enabled=False))


def synthetic_mnist(n: int = 10_000, seed: int = 7) -> Dataset:
    """MNIST-sized inputs in [0, 1] with labels from a random linear teacher (learnable, not trivial)."""
    rng = np.random.default_rng(seed)
    X = rng.random((n, 784), dtype=np.float32)
    teacher = rng.normal(size=(784, 10)).astype(np.float32)
    y = np.argmax((X - 0.5) @ teacher + rng.normal(scale=2.0, size=(n, 10)), axis=1).astype(np.int64)
    return Dataset(X, y, "classification", 10, [f"px{i}" for i in range(784)], [str(i) for i in range(10)],
                   (28, 28), "synthetic MNIST")


def wide(optimizer: dict[str, Any]) -> Experiment:
    return parse_experiment({
        "name": "784-300-100-10", "seed": 1, "data": {"source": "blobs", "validation_split": 0.1},
        "model": {"layers": [{"units": 300, "activation": "relu", "init": "he_normal"},
                             {"units": 100, "activation": "relu", "init": "he_normal"}]},
        "optimizer": optimizer, "training": {"epochs": 5, "batch_size": 32}})


def configurations(quick: bool) -> list[tuple[str, Experiment, Dataset | None, int]]:
    """(name, experiment, dataset or None for the spec's own, steps timed per repetition)."""
    data = synthetic_mnist()
    steps = 500 if quick else 1000  # a multiple of the default cadences, so each costs its share
    return [("default experiment (digits, Nadam)", default_experiment(), None, steps),
            ("784-300-100-10 Adam", wide({"name": "adam", "learning_rate": 0.001}), data, steps),
            ("784-300-100-10 momentum", wide({"name": "momentum", "learning_rate": 0.01}), data, steps)]


def with_instruments(experiment: Experiment, instruments: InstrumentsSpec) -> Experiment:
    return experiment.replace(training=replace(experiment.training, instruments=instruments))


def median_seconds(fn: Callable[[], Any], reps: int) -> float:
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def per_call_costs(experiment: Experiment, dataset: Dataset | None, reps: int) -> dict[str, Any]:
    """One call of each instrument on weights trained for 100 steps, at the default settings."""
    trainer = Trainer(with_instruments(experiment, OFF), dataset=dataset)
    for _ in range(100):
        trainer.train_batch()
    spec = InstrumentsSpec()
    reg = experiment.regularization
    X, y = trainer.probe_examples(spec.probe_examples)
    lr = trainer.schedule(trainer.step)
    out: dict[str, Any] = {"probe_examples": len(X),
                           "parameters": int(sum(trainer.network.parameter_counts()))}
    out["step_seconds"] = median_seconds(trainer.train_batch, 3 * reps)
    out["probe_setup_seconds"] = median_seconds(
        lambda: ProbeNetwork(trainer.network, X, y, reg.l1, reg.l2), reps)
    probe = ProbeNetwork(trainer.network, X, y, reg.l1, reg.l2)
    out["sync_seconds"] = median_seconds(lambda: probe.sync(trainer.network), reps)
    out["effective_learning_rate_seconds"] = median_seconds(
        lambda: effective_learning_rates(trainer.network, trainer.optimizer, lr), 3 * reps)
    start = probe.start_vector(np.random.Generator(np.random.PCG64(0)))
    pairs: list[Any] = []
    out["sharpness_seconds"] = median_seconds(
        lambda: pairs.append(sharpness(probe, start, spec.sharpness.iterations)), reps)
    out["sharpness_hvps"] = pairs[-1].iterations
    out["hvp_seconds"] = median_seconds(lambda: probe.hessian_vector_product(start), reps)
    if is_adaptive(trainer.optimizer):
        out["preconditioned_sharpness_seconds"] = median_seconds(
            lambda: pairs.append(preconditioned_sharpness(probe, trainer.optimizer, start,
                                                          spec.sharpness.iterations)), reps)
        out["preconditioned_hvps"] = pairs[-1].iterations
    out["noise_seconds"] = median_seconds(lambda: gradient_noise(probe), reps)
    # a row of histograms of the last step's tensors (its caches are still in the layers)
    logits = trainer.network.forward(trainer.X_train[:trainer.batch_size], training=True,
                                     rng=np.random.default_rng(0))
    recorder = DistributionRecorder(len(trainer.network.layer_names))
    out["distributions_seconds"] = median_seconds(
        lambda: (recorder.record(1, trainer.network, logits), setattr(recorder, "size", 0)), 3 * reps)
    return out


def interleaved_seconds(trainers: dict[str, Trainer], steps: int) -> dict[str, float]:
    """Seconds each of two trainers spends in ``steps`` of its ``train_batch`` calls, taken in
    turn (the first one first on odd steps, the second on even ones), so both see the same
    stretch of host load."""
    first, second = trainers
    elapsed = dict.fromkeys(trainers, 0.0)
    for step in range(steps):
        for label in (first, second) if step % 2 else (second, first):
            t0 = time.perf_counter()
            trainers[label].train_batch()
            elapsed[label] += time.perf_counter() - t0
    return elapsed


def training_ratio(experiment: Experiment, dataset: Dataset | None, steps: int, reps: int) -> dict[str, Any]:
    """Seconds for ``steps`` steps with every instrument off and on at the defaults, interleaved."""
    times: dict[str, list[float]] = {"off": [], "on": []}
    shares: dict[str, list[float]] = {}
    for _ in range(reps):
        trainers = {"off": Trainer(with_instruments(experiment, OFF), dataset=dataset),
                    "on": Trainer(with_instruments(experiment, InstrumentsSpec()), dataset=dataset)}
        elapsed = interleaved_seconds(trainers, steps)
        for label in times:
            times[label].append(elapsed[label])
        for name, seconds in trainers["on"].instruments.seconds.items():
            shares.setdefault(name, []).append(seconds / elapsed["on"])
        shares.setdefault("distributions", []).append(trainers["on"].distributions.seconds / elapsed["on"])
    ratios = [b / a for a, b in zip(times["off"], times["on"], strict=True)]
    off, on = statistics.median(times["off"]), statistics.median(times["on"])
    return {"steps": steps, "off_seconds": off, "on_seconds": on, "ratio": statistics.median(ratios),
            "ratios": ratios,
            "share_of_on_time": {k: statistics.median(v) for k, v in shares.items()}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps and repetitions")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args()
    reps = 3 if args.quick else 7
    defaults = InstrumentsSpec()
    report: dict[str, Any] = {"defaults": {"probe_examples": defaults.probe_examples,
                                           "sharpness": defaults.sharpness.to_dict(),
                                           "noise": defaults.noise.to_dict(),
                                           "effective_learning_rate": defaults.effective_learning_rate.to_dict(),
                                           "distributions": defaults.distributions.to_dict()},
                              "blas": [{k: i.get(k) for k in ("internal_api", "version", "architecture")}
                                       for i in threadpool_info()],
                              "configurations": {}}
    with threadpool_limits(1):
        for name, experiment, dataset, steps in configurations(args.quick):
            sys.stderr.write(f"{name} ...\n")
            result = {"per_call": per_call_costs(experiment, dataset, reps),
                      "training": training_ratio(experiment, dataset, steps, reps)}
            report["configurations"][name] = result
    print(f"instruments at their defaults: {json.dumps(report['defaults'])}; one BLAS thread\n")
    failed = 0
    for name, r in report["configurations"].items():
        c, t = r["per_call"], r["training"]
        print(f"{name}  ({c['parameters']:,} parameters, probe batch {c['probe_examples']})")
        print(f"  training step                      {c['step_seconds'] * 1e3:8.3f} ms")
        print(f"  effective learning rates / call    {c['effective_learning_rate_seconds'] * 1e3:8.3f} ms")
        print(f"  sharpness / call                   {c['sharpness_seconds'] * 1e3:8.3f} ms "
              f"({c['sharpness_hvps']} Hessian-vector products of {c['hvp_seconds'] * 1e3:.2f} ms)")
        if "preconditioned_sharpness_seconds" in c:
            print(f"  preconditioned sharpness / call    {c['preconditioned_sharpness_seconds'] * 1e3:8.3f} ms "
                  f"({c['preconditioned_hvps']} products)")
        print(f"  noise scale + SNR / call           {c['noise_seconds'] * 1e3:8.3f} ms")
        print(f"  distributions (one row) / call     {c['distributions_seconds'] * 1e3:8.3f} ms")
        print(f"  probe copy of the weights / call   {c['sync_seconds'] * 1e3:8.3f} ms "
              f"(built once: {c['probe_setup_seconds'] * 1e3:.1f} ms)")
        verdict = "PASS" if t["ratio"] <= TARGET_RATIO else "FAIL"
        failed += verdict == "FAIL"
        print(f"  {t['steps']} steps, steps alternating (median of {len(t['ratios'])}): off {t['off_seconds']:.3f} s, "
              f"all on {t['on_seconds']:.3f} s, ratio {t['ratio']:.3f}, target <= {TARGET_RATIO:.2f}: {verdict}")
        print(f"    per repetition {', '.join(f'{x:.3f}' for x in t['ratios'])}")
        total = sum(t["share_of_on_time"].values())
        print(f"    time inside the instruments: {total:.1%} of the 'on' run ("
              + ", ".join(f"{k} {v:.1%}" for k, v in t["share_of_on_time"].items()) + ")")
        print()
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
