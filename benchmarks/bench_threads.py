"""Benchmark of the BLAS-thread choice (``core.engine.threads``): is the automatic choice as
fast as the better of one thread and all threads, on an idle machine and with one competing
busy process?

For the default experiment (digits, the book's 2019-20 default network) and the four
784-300-100-10 configurations of ``bench_engine.py`` (batch 32 and 128, momentum and Adam, on
a 10,000 x 784 synthetic set), it trains a fixed number of steps through ``Trainer.fit`` with
``blas_threads`` set to 1, to all usable cores and to the automatic choice, interleaved and
repeated, first with nothing else running and then while a child process spins on one core
(as a browser or an IDE would). It reports steps per second (median of the repetitions) and
the automatic choice as a ratio of the faster fixed setting measured in the same run (target:
at least 0.95).

    python benchmarks/bench_threads.py [--quick] [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.bench_engine import CONFIGS, synthetic_dataset  # noqa: E402
from core.engine.threads import choose_blas_threads, usable_cores  # noqa: E402
from core.spec import load_experiment  # noqa: E402
from core.training import Trainer  # noqa: E402

TARGET = 0.95


def make_trainers() -> dict[str, tuple]:
    """name → (experiment, dataset or None) for every configuration."""
    default = load_experiment(ROOT / "resources" / "examples" / "default.json")
    out: dict[str, tuple] = {"default (digits)": (default, None)}
    data = synthetic_dataset()
    for config in CONFIGS:
        if config.wide:
            out[config.key] = (config.experiment(1), data)
    return out


def steps_per_second(experiment: Any, dataset: Any, threads: int, steps: int) -> float:
    trainer = Trainer(experiment, ROOT / "resources" / "examples", dataset=dataset)
    trainer.blas_threads = threads
    trainer.fit(epochs=None, should_stop=lambda: trainer.step >= 20)          # warm-up
    target = trainer.step + steps
    start = time.perf_counter()
    trainer.fit(epochs=None, should_stop=lambda: trainer.step >= target)
    return (trainer.step - (target - steps)) / (time.perf_counter() - start)


def measure(configs: dict[str, tuple], steps: int, reps: int, busy: bool) -> dict[str, Any]:
    cores = usable_cores()
    results: dict[str, Any] = {}
    for name, (experiment, dataset) in configs.items():
        trainer = Trainer(experiment, ROOT / "resources" / "examples", dataset=dataset)
        auto = choose_blas_threads([trainer.network.n_inputs, *(r.units for r in experiment.model.layers),
                                    trainer.network.n_outputs], trainer.batch_size)
        settings = {"1 thread": 1, f"{cores} threads": cores, f"auto ({auto})": auto}
        rates: dict[str, list[float]] = {k: [] for k in settings}
        for _ in range(reps):
            for label, threads in settings.items():      # interleaved, so drift hits all alike
                rates[label].append(steps_per_second(experiment, dataset, threads, steps))
        medians = {k: statistics.median(v) for k, v in rates.items()}
        best_fixed = max(medians["1 thread"], medians[f"{cores} threads"])
        ratio = medians[f"auto ({auto})"] / best_fixed
        results[name] = {"steps_per_second": medians, "all": rates, "auto_threads": auto,
                         "auto_vs_best_fixed": ratio, "pass": ratio >= TARGET}
        print(f"  {name:<22} " + "  ".join(f"{k}: {v:8.0f}/s" for k, v in medians.items())
              + f"  auto / best fixed {ratio:.2f} {'PASS' if ratio >= TARGET else 'FAIL'}", flush=True)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps and repetitions")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--smoke", action="store_true", help="a few steps once: does it run (no figures)")
    args = parser.parse_args()
    steps, reps = (150, 3) if args.quick else (600, 5)
    if args.smoke:
        steps, reps = 10, 1
    configs = make_trainers()
    report: dict[str, Any] = {"cores": usable_cores(), "steps": steps, "reps": reps}
    print(f"{usable_cores()} usable cores; {steps} steps x {reps} repetitions per setting")
    print("idle:")
    report["idle"] = measure(configs, steps, reps, busy=False)
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)
        print("one competing busy process:")
        report["busy"] = measure(configs, steps, reps, busy=True)
    finally:
        spinner.kill()
        spinner.wait()
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
