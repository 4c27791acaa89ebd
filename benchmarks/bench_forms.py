"""Benchmark of what BLAS's threads gain a run through the forms ``SplitProducts`` checked: one
trainer of each of ``bench_engine.py``'s 784-300-100-10 configurations trains on two threads,
in alternating blocks of steps with the forms its products found (whole, a cut of the inner
sum, a ``Block`` of rows or columns; see ``core.engine.threads``) and with every form set to
"none" (each product whole on one thread, as on a machine where every check failed).

Both settings are the same trainer in the same process, block after block, so the host's drift
hits both alike: the figure is the median of the per-block ratios (forms ÷ none), next to each
setting's median step. The numbers of a run are the same in both settings (that is what the
checks are for); only the speed differs. It also lists the forms found, per kind of product.
Diagnostics off (``bench_engine.NO_DIAGNOSTICS``).

    python benchmarks/bench_forms.py [--quick] [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from threadpoolctl import threadpool_info

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.bench_engine import CONFIGS, NO_DIAGNOSTICS, make_trainer, run_steps, synthetic_dataset  # noqa: E402
from core.engine import threads  # noqa: E402

THREADS = 2


def measure(config: Any, dataset: Any, steps: int, reps: int) -> dict[str, Any]:
    trainer = make_trainer(config, dataset, NO_DIAGNOSTICS)
    trainer.blas_threads = THREADS
    record = threads._PROCESS_RECORD
    for checked in (record.forms, record.one_thread, record.splits):
        checked.clear()                                       # this configuration's kinds only
    run_steps(trainer, 30)                                    # the kinds are checked here
    found = dict(record.forms)
    settings = {"forms": found, "none": dict.fromkeys(found)}
    seconds: dict[str, list[float]] = {"forms": [], "none": []}
    for _ in range(reps):
        for label, forms in settings.items():
            record.forms.update(forms)
            # Start each block afresh: no kind or stall rest carried over from the other setting.
            record.kind_resting_until.clear()
            record.kind_watch.clear()
            record.resting_until = 0.0
            start = time.perf_counter()
            run_steps(trainer, steps)
            seconds[label].append((time.perf_counter() - start) / steps)
    record.forms.update(found)
    ratios = [a / b for a, b in zip(seconds["forms"], seconds["none"], strict=True)]
    return {"config": config.key, "steps_per_block": steps, "blocks": reps,
            "forms_us": statistics.median(seconds["forms"]) * 1e6,
            "none_us": statistics.median(seconds["none"]) * 1e6,
            "paired": statistics.median(ratios), "ratios": ratios,
            "found": [{"a": list(kind[1]), "b": list(kind[2]), "layouts": [kind[3], kind[4], kind[-1]],
                       "form": repr(form)} for kind, form in found.items()]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer blocks (under a minute)")
    parser.add_argument("--json", type=Path, help="also write the results as JSON to PATH")
    parser.add_argument("--blocks", type=int, help="blocks per setting (default 14, --quick 6)")
    parser.add_argument("--steps", type=int, help="steps per block (default 40, --quick 30)")
    args = parser.parse_args(argv)
    steps, reps = (30, 6) if args.quick else (40, 14)
    steps, reps = args.steps or steps, args.blocks or reps
    blas = [info for info in threadpool_info() if info.get("user_api") == "blas"]
    kernels = ", ".join(f"{info.get('internal_api')} {info.get('version')} {info.get('architecture')}" for info in blas)
    print(f"BLAS: {kernels}; {THREADS} threads; blocks of {steps} steps, {reps} per setting, alternating")
    dataset = synthetic_dataset()
    results = []
    for config in (c for c in CONFIGS if c.wide):
        r = measure(config, dataset, steps, reps)
        results.append(r)
        print(f"{r['config']:<22} forms {r['forms_us']:>7,.0f} µs/step   none {r['none_us']:>7,.0f} µs/step   "
              f"forms / none {r['paired']:.2f} (per block {min(r['ratios']):.2f}–{max(r['ratios']):.2f})")
        for f in r["found"]:
            print(f"    {tuple(f['a'])} @ {tuple(f['b'])} {'/'.join(f['layouts'])}: {f['form']}")
    if args.json:
        args.json.write_text(json.dumps({"blas": blas, "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
