"""Benchmark of checkpoints (``training.checkpoints``, ``core.checkpoints``).

In one run, with one BLAS thread:

1. **Training time.** The default experiment (digits, 4 × 100 ELU + batch norm, Nadam, 1cycle) and
   a 784-300-100-10 ReLU network on 10,000 synthetic MNIST-sized examples (Adam), each trained
   with checkpoints at the default setting and with none (``keep: 0``): the two trainers take
   their steps alternately, each step timed on its own, so both see the same load from other
   processes; the ratio with/without of their total times, median over repetitions (target:
   at most 1.05), and the share of the "with" time spent taking the copies (clocked around
   ``Trainer._take_checkpoint``: the same cost, measured directly). Early stopping's patience
   is raised so neither run stops early (the best weights are still kept, and copied into
   each checkpoint).
2. **Memory and file size.** The default experiment trained for 100,000 steps (``--quick``:
   20,000; ``training.epochs`` raised so its 1cycle is planned over them) with the default
   checkpoints: how many copies it holds, their bytes in memory, and the session file's size
   with and without them (the same trainer saved both ways). For the 784-300-100-10 network,
   one copy's bytes times the count the rule gives at 100,000 steps.
3. **Branching late.** On that long run's session, ``branch_trainer`` at a late step (one
   before its last checkpoint, so the replay is nearly a whole interval: the worst case) from
   the nearest checkpoint and by full replay from step 0 (``from_checkpoint=False``).

    python benchmarks/bench_checkpoints.py [--quick] [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parents[1]
for folder in (ROOT, Path(__file__).resolve().parent):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

from bench_instruments import interleaved_seconds, synthetic_mnist, wide  # noqa: E402

from core.data import Dataset  # noqa: E402
from core.presets import default_experiment  # noqa: E402
from core.sessions.branch import branch_trainer, replay_start  # noqa: E402
from core.sessions.format import load_session, session_members, write_session  # noqa: E402
from core.spec import MAX_EPOCHS, CheckpointsSpec, Experiment  # noqa: E402
from core.training import Trainer  # noqa: E402

TARGET_RATIO = 1.05
LONG_RUN = 100_000


def with_checkpoints(experiment: Experiment, checkpoints: CheckpointsSpec) -> Experiment:
    """``experiment`` with these checkpoints and an early stopping that never stops."""
    reg = experiment.regularization
    es = replace(reg.early_stopping, patience=MAX_EPOCHS)
    return experiment.replace(training=replace(experiment.training, checkpoints=checkpoints),
                              regularization=replace(reg, early_stopping=es))


def training_ratio(experiment: Experiment, dataset: Dataset | None, steps: int, reps: int) -> dict[str, Any]:
    times: dict[str, list[float]] = {"without": [], "with": []}
    inside: list[float] = []
    copies = 0
    for _ in range(reps):
        trainers = {"without": Trainer(with_checkpoints(experiment, CheckpointsSpec(keep=0)), dataset=dataset),
                    "with": Trainer(with_checkpoints(experiment, CheckpointsSpec()), dataset=dataset)}
        taking = [0.0]
        take = trainers["with"]._take_checkpoint

        def timed(take: Any = take, taking: list[float] = taking) -> None:
            t0 = time.perf_counter()
            take()
            taking[0] += time.perf_counter() - t0

        trainers["with"]._take_checkpoint = timed  # type: ignore[method-assign]
        elapsed = interleaved_seconds(trainers, steps)
        for label in times:
            times[label].append(elapsed[label])
        inside.append(taking[0] / elapsed["with"])
        copies = len(trainers["with"].checkpoints)
        per_copy = trainers["with"].checkpoints.entries[-1].nbytes
    ratios = [b / a for a, b in zip(times["without"], times["with"], strict=True)]
    return {"steps": steps, "without_seconds": statistics.median(times["without"]),
            "with_seconds": statistics.median(times["with"]), "ratio": statistics.median(ratios), "ratios": ratios,
            "share_taking_copies": statistics.median(inside),
            "copies_held": copies, "bytes_per_copy": per_copy}


def copies_at(steps: int, spec: CheckpointsSpec) -> tuple[int, int]:
    """(copies held, interval) after ``steps`` steps, by the thinning rule."""
    interval = spec.every
    while steps // interval > spec.keep:
        interval *= 2
    return steps // interval, interval


def long_run(steps: int, folder: Path) -> dict[str, Any]:
    experiment = with_checkpoints(default_experiment(), CheckpointsSpec())
    # planned for the whole run (a branch replays along the run's plan, never past it)
    epochs = -(-steps // Trainer(experiment).steps_per_epoch)
    experiment = experiment.replace(training=replace(experiment.training, epochs=epochs))
    trainer = Trainer(experiment)
    t0 = time.perf_counter()
    for _ in range(steps):
        trainer.train_batch()
    train_seconds = time.perf_counter() - t0
    out: dict[str, Any] = {"steps": trainer.step, "train_seconds": train_seconds,
                           "copies": len(trainer.checkpoints), "interval": trainer.checkpoints.interval,
                           "memory_bytes": trainer.checkpoints.nbytes}
    arrays, state = trainer.state_dict()
    out["state_json_bytes"] = len(json.dumps(state["checkpoints"]))
    sizes = {}
    for label, keep in (("with", True), ("without", False)):
        a, s = trainer.state_dict(checkpoints=keep)
        path = folder / f"{label}.gwb"
        write_session(path, session_members(trainer.experiment, a, s))
        sizes[label] = path.stat().st_size
    out["file_bytes_with"], out["file_bytes_without"] = sizes["with"], sizes["without"]
    session = load_session(folder / "with.gwb")
    last = trainer.checkpoints.steps[-1]
    k = last - 1
    out["branch_at"], out["replay_from"] = k, replay_start(session, k)
    t0 = time.perf_counter()
    quick = branch_trainer(session, k)
    out["branch_checkpoint_seconds"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    slow = branch_trainer(session, k, from_checkpoint=False)
    out["branch_full_replay_seconds"] = time.perf_counter() - t0
    same = all((a == b).all() for a, b in zip(quick.network.state().values(), slow.network.state().values(),
                                              strict=True))
    out["branches_equal"] = bool(same)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps and repetitions, a 20,000-step long run")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args()
    reps = 3 if args.quick else 7
    steps = 2000          # ten checkpoints at the default every 200
    default = CheckpointsSpec()
    report: dict[str, Any] = {"defaults": default.to_dict(), "configurations": {}}
    data = synthetic_mnist()
    configurations = [("default experiment (digits, Nadam)", default_experiment(), None),
                      ("784-300-100-10 Adam", wide({"name": "adam", "learning_rate": 0.001}), data)]
    with threadpool_limits(1), tempfile.TemporaryDirectory() as tmp:
        for name, experiment, dataset in configurations:
            sys.stderr.write(f"{name} ...\n")
            report["configurations"][name] = training_ratio(experiment, dataset, steps, reps)
        sys.stderr.write("long run ...\n")
        report["long_run"] = long_run(20_000 if args.quick else LONG_RUN, Path(tmp))
    mib = 2**20
    print(f"checkpoints at the default {json.dumps(default.to_dict())}; one BLAS thread\n")
    for name, r in report["configurations"].items():
        verdict = "PASS" if r["ratio"] <= TARGET_RATIO else "FAIL"
        count, interval = copies_at(LONG_RUN, default)
        print(f"{name}")
        print(f"  {r['steps']} steps alternating (median of {len(r['ratios'])}): without {r['without_seconds']:.3f} s, "
              f"with {r['with_seconds']:.3f} s, ratio {r['ratio']:.3f}, target <= {TARGET_RATIO:.2f}: {verdict}")
        print(f"    per repetition {', '.join(f'{x:.3f}' for x in r['ratios'])}")
        print(f"    time inside the checkpoint copies: {r['share_taking_copies']:.2%} of the 'with' run")
        print(f"  one copy {r['bytes_per_copy'] / mib:.2f} MiB; at {LONG_RUN:,} steps the rule keeps {count} "
              f"(every {interval:,} steps): {count * r['bytes_per_copy'] / mib:.1f} MiB")
    r = report["long_run"]
    print(f"\ndefault experiment trained {r['steps']:,} steps ({r['train_seconds']:.0f} s): {r['copies']} copies "
          f"every {r['interval']:,} steps, {r['memory_bytes'] / mib:.2f} MiB in memory "
          f"(+{r['state_json_bytes'] / 1024:.0f} KiB of JSON)")
    print(f"  session file {r['file_bytes_with'] / mib:.2f} MiB with them, {r['file_bytes_without'] / mib:.2f} MiB "
          f"without (+{(r['file_bytes_with'] - r['file_bytes_without']) / mib:.2f} MiB)")
    print(f"  branch at step {r['branch_at']:,}: from the checkpoint at {r['replay_from']:,} "
          f"{r['branch_checkpoint_seconds']:.2f} s, by full replay {r['branch_full_replay_seconds']:.2f} s "
          f"(×{r['branch_full_replay_seconds'] / r['branch_checkpoint_seconds']:.0f}); same weights: "
          f"{r['branches_equal']}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
