"""Sweep results: one row per run, one row per configuration (mean ± std over seeds), and the
sortable table ``gradient-workbench sweep-report DIR`` prints.

Everything here is plain data (dicts of numbers and text), built from the session files in
the sweep's folder, so the GUI can show the same table (``results_table``) and a sweep's
results can always be rebuilt from its sessions.

Per run: best validation accuracy and loss over the epochs, the first epoch at which the
sweep's target was reached, the mean training seconds per epoch, and whether
``core.engine.diagnostics.assess_health`` flagged vanishing or exploding gradients at the end of
any epoch (or at the end of the run). Per configuration: the mean and the sample standard
deviation (ddof = 1) over the runs that have a value, and the share of runs flagged.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import platform
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.engine.diagnostics import DiagnosticsRecorder, assess_health
from core.engine.validation import NotARegularFile, quote, read_regular
from core.sessions.format import MAX_JSON_BYTES, Session, SessionError, atomic_write, load_session

from .spec import Run, Sweep, SweepError, Target, parse_sweep

SWEEP_FILE = "sweep.json"
RESULTS_FILE = "results.json"
RUNS_CSV = "runs.csv"
CONFIGURATIONS_CSV = "configurations.csv"
FAILED_SUFFIX = ".failed.json"
RESULTS_FORMAT = "gradient-workbench.sweep-results"

# (key, title, default order: True = larger is better); the table's sortable columns.
SORT_KEYS: dict[str, tuple[str, bool]] = {
    "val_accuracy": ("best val accuracy", True),
    "val_loss": ("best val loss", False),
    "epochs_to_target": ("epochs to target", False),
    "seconds_per_epoch": ("s / epoch", False),
    "vanishing": ("vanishing", False),
    "exploding": ("exploding", False),
    "diverged": ("diverged", False),
    "configuration": ("#", False),
}


# ----------------------------------------------------------------------------- one run


def _health_flags(history: Mapping[str, np.ndarray], steps_per_epoch: int | None) -> tuple[bool, bool]:
    """(vanishing, exploding): flagged by ``assess_health`` at the end of any epoch or of the run."""
    if "layer_names" not in history or "step" not in history or len(history["step"]) == 0:
        return False, False
    rec = DiagnosticsRecorder.from_arrays(history)
    ends = [rec.size]
    if steps_per_epoch:
        n_epochs = len(history.get("epoch", ()))
        ends += [int(np.searchsorted(rec.steps, (e + 1) * steps_per_epoch, side="right")) for e in range(n_epochs)]
    kinds: set[str] = set()
    for end in sorted(set(ends)):
        if end > 0:
            kinds.update(issue.kind for issue in assess_health(rec, upto=end))
    return "vanishing" in kinds, "exploding" in kinds


def _finite(values: Iterable[float]) -> list[float]:
    return [float(v) for v in values if v is not None and math.isfinite(float(v))]


def summarize_session(session: Session, target: Target | None = None) -> dict[str, Any]:
    """The numbers of one finished run, from its session."""
    h = session.history
    sweep_state = session.state.get("sweep", {}) if isinstance(session.state.get("sweep"), dict) else {}
    reason = str(sweep_state.get("reason", "completed"))
    acc = _finite(h.get("val_accuracy", ()))
    loss = _finite(h.get("val_loss", ()))
    train_loss = h.get("loss", np.zeros(0))
    seconds = _finite(h.get("seconds", ()))
    epochs_to_target = None
    if target is not None and target.metric in h:
        hit = [i for i, x in enumerate(h[target.metric]) if target.reached(float(x))]
        epochs_to_target = hit[0] + 1 if hit else None
    plan = session.state.get("schedule_plan") or {}
    vanishing, exploding = _health_flags(h, plan.get("steps_per_epoch") if isinstance(plan, dict) else None)
    status = "diverged" if reason.startswith("diverged") else reason
    return {
        "status": status, "reason": reason, "epochs": int(len(h.get("epoch", ()))),
        "best_val_accuracy": max(acc) if acc else None, "best_val_loss": min(loss) if loss else None,
        "final_loss": float(train_loss[-1]) if len(train_loss) and math.isfinite(train_loss[-1]) else None,
        "epochs_to_target": epochs_to_target,
        "seconds_per_epoch": float(np.mean(seconds)) if seconds else None,
        "vanishing": vanishing, "exploding": exploding,
        "wall_seconds": sweep_state.get("wall_seconds"),
    }


def run_row(sweep: Sweep, run: Run, summary: Mapping[str, Any] | None) -> dict[str, Any]:
    """One row of ``runs.csv``: the run's identity, its axis values and its summary (or
    ``status: "pending"`` for a run without a result yet)."""
    config = run.configuration
    row: dict[str, Any] = {"run_id": run.run_id, "file": run.file_name, "configuration": config.index,
                           "label": config.label}
    row.update({f"axis:{name}": label for name, label in config.labels.items()})
    row["seed"] = run.seed
    row.update(summary or {"status": "pending"})
    return row


def failure_summary(record: Mapping[str, Any]) -> dict[str, Any]:
    return {"status": "failed", "reason": str(record.get("reason", "failed")),
            "wall_seconds": record.get("wall_seconds")}


# ----------------------------------------------------------------------------- per configuration


def _mean_std(values: Sequence[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    mean = float(np.mean(values))
    return mean, float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def aggregate(sweep: Sweep, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per configuration: counts, mean ± std over seeds, shares flagged."""
    by_config: dict[int, list[Mapping[str, Any]]] = {c.index: [] for c in sweep.configurations}
    for row in rows:
        by_config[int(row["configuration"])].append(row)
    out = []
    for config in sweep.configurations:
        group = by_config[config.index]
        done = [r for r in group if r["status"] not in ("pending", "failed")]
        n = len(done)
        entry: dict[str, Any] = {"configuration": config.index, "label": config.label}
        entry.update({f"axis:{name}": label for name, label in config.labels.items()})
        entry.update(runs=len(group), done=n, failed=sum(r["status"] == "failed" for r in group),
                     pending=sum(r["status"] == "pending" for r in group))
        for key, column in (("val_accuracy", "best_val_accuracy"), ("val_loss", "best_val_loss"),
                            ("seconds_per_epoch", "seconds_per_epoch")):
            entry[f"{key}_mean"], entry[f"{key}_std"] = _mean_std(_finite(r.get(column) for r in done))
        reached = [r["epochs_to_target"] for r in done if r.get("epochs_to_target") is not None]
        entry["epochs_to_target_mean"], entry["epochs_to_target_std"] = _mean_std(reached)
        entry["target_reached"] = len(reached)
        for flag in ("vanishing", "exploding"):
            entry[flag] = sum(bool(r.get(flag)) for r in done) / n if n else None
        entry["diverged"] = sum(r["status"] == "diverged" for r in done) / n if n else None
        out.append(entry)
    return out


def sort_configurations(configs: Sequence[Mapping[str, Any]], key: str = "val_accuracy",
                        reverse: bool = False) -> list[dict[str, Any]]:
    """Best first by ``key`` (a ``SORT_KEYS`` name or an axis name); rows without a value last;
    ``reverse`` flips the order of the rows that have one."""
    if key in SORT_KEYS:
        column = {"val_accuracy": "val_accuracy_mean", "val_loss": "val_loss_mean",
                  "epochs_to_target": "epochs_to_target_mean",
                  "seconds_per_epoch": "seconds_per_epoch_mean"}.get(key, key)
        descending = SORT_KEYS[key][1]
    elif configs and f"axis:{key}" in configs[0]:
        column, descending = f"axis:{key}", False
    else:
        names = [*SORT_KEYS, *(k[5:] for k in (configs[0] if configs else {}) if k.startswith("axis:"))]
        raise SweepError("sort", f"must be one of {', '.join(names)}, got {key!r}")
    have = [dict(c) for c in configs if c.get(column) is not None]
    missing = [dict(c) for c in configs if c.get(column) is None]

    def order(c: Mapping[str, Any]) -> tuple[Any, ...]:
        value = c[column]
        if not isinstance(value, (int, float)):  # an axis label: numbers as numbers, else as text
            try:
                value = float(value)
            except ValueError:
                return (1, str(value), c["configuration"])
        return (0, -value if descending else value, c["configuration"])

    have.sort(key=order)
    if reverse:
        have.reverse()
    return have + missing


# ----------------------------------------------------------------------------- files


def machine_info() -> dict[str, Any]:
    """Where the numbers were measured: cores, CPU model, Python and NumPy versions."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.lower().startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpus": os.cpu_count(), "cpu_model": model, "system": platform.system(),
            "python": platform.python_version(), "numpy": np.__version__}


def load_run_summaries(sweep: Sweep, out_dir: Path, runs: Sequence[Run] | None = None,
                       on_damaged: Callable[[Run, str], None] | None = None) -> dict[str, dict[str, Any]]:
    """Summaries of the runs that have a result in ``out_dir``: a valid session file whose
    experiment is the run's (a damaged or foreign file counts as no result), or a failure
    record. Keyed by run id."""
    out: dict[str, dict[str, Any]] = {}
    for run in runs if runs is not None else sweep.runs():
        path = out_dir / run.file_name
        if path.exists():
            try:
                session = load_session(path)
            except SessionError as exc:
                if on_damaged is not None:
                    on_damaged(run, str(exc))
                session = None
            if session is not None and _same_run(session, run):
                out[run.run_id] = summarize_session(session, sweep.target)
                continue
        failed = out_dir / (run.file_name[:-4] + FAILED_SUFFIX)
        if failed.exists():
            try:
                out[run.run_id] = failure_summary(json.loads(read_regular(failed, MAX_JSON_BYTES)))
            except (OSError, ValueError, RecursionError):
                pass
    return out


def _same_run(session: Session, run: Run) -> bool:
    saved = {k: v for k, v in session.experiment.to_dict().items() if k != "name"}
    return saved == {k: v for k, v in run.experiment.items() if k != "name"}


def _csv_text(rows: Sequence[Mapping[str, Any]]) -> str:
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    return buf.getvalue()


def write_results(out_dir: Path, sweep: Sweep, rows: Sequence[Mapping[str, Any]],
                  extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Write ``results.json``, ``runs.csv`` and ``configurations.csv`` atomically; returns the results."""
    configurations = aggregate(sweep, rows)
    results = {"format": RESULTS_FORMAT, "version": 1, "sweep": sweep.name,
               "target": sweep.target.to_dict() if sweep.target else None,
               "machine": machine_info(), **(extra or {}),
               "runs": [dict(r) for r in rows], "configurations": configurations}
    for name, text in ((RESULTS_FILE, json.dumps(results, indent=2, allow_nan=False) + "\n"),
                       (RUNS_CSV, _csv_text(rows)), (CONFIGURATIONS_CSV, _csv_text(configurations))):
        data = text.encode("utf-8")
        atomic_write(out_dir / name, lambda fh, data=data: fh.write(data))
    return results


def read_sweep(out_dir: str | Path) -> Sweep:
    """The sweep a results folder was made by (its ``sweep.json``)."""
    folder = Path(out_dir)
    path = folder / SWEEP_FILE
    if not folder.is_dir():
        raise SweepError("", f"{folder}: no such folder")
    if not path.exists():
        raise SweepError("", f"{folder}: holds no {SWEEP_FILE}; is it the --out folder of a sweep?")
    try:
        obj = json.loads(read_regular(path, MAX_JSON_BYTES))
    except NotARegularFile as exc:  # a pipe or a device is refused, not read
        raise SweepError("", f"{path}: is {exc.kind}, not a file; only regular files are read") from None
    except (OSError, ValueError, RecursionError) as exc:
        raise SweepError("", f"{path}: cannot be read ({quote(getattr(exc, 'strerror', None) or str(exc))})") \
            from None
    return parse_sweep(obj, folder)


def results_table(out_dir: str | Path, sort: str = "val_accuracy", reverse: bool = False) -> dict[str, Any]:
    """The sweep's results as plain data, for the GUI and ``sweep-report``:
    ``{"sweep", "target", "axes", "runs": [...], "configurations": [...] (sorted)}``."""
    folder = Path(out_dir)
    sweep = read_sweep(folder)
    runs = sweep.runs()
    summaries = load_run_summaries(sweep, folder, runs)
    rows = [run_row(sweep, run, summaries.get(run.run_id)) for run in runs]
    results: dict[str, Any] = {}
    try:
        results = json.loads(read_regular(folder / RESULTS_FILE, MAX_JSON_BYTES))
    except (OSError, ValueError, RecursionError):
        pass
    return {"sweep": sweep.name, "target": sweep.target.to_dict() if sweep.target else None,
            "axes": [a.name for a in sweep.axes], "machine": results.get("machine"),
            "timing": results.get("timing"), "runs": rows,
            "configurations": sort_configurations(aggregate(sweep, rows), sort, reverse)}


# ----------------------------------------------------------------------------- text


def _pm(mean: float | None, std: float | None, digits: int) -> str:
    if mean is None:
        return "—"
    return f"{mean:.{digits}f} ± {std:.{digits}f}" if std else f"{mean:.{digits}f}"


def _share(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def table_rows(table: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of text cells: the table as ``sweep-report`` prints it."""
    axes = list(table["axes"])
    target = table.get("target")
    header = ["#", *axes, "runs", "best val accuracy", "best val loss"]
    if target:
        header.append(f"epochs to {target['metric']} {'≥' if target['metric'].endswith('accuracy') else '≤'} "
                      f"{target['value']:g}")
    header += ["s / epoch", "vanishing", "exploding", "diverged"]
    rows = []
    for c in table["configurations"]:
        runs = f"{c['done']}/{c['runs']}" + (f" ({c['failed']} failed)" if c["failed"] else "")
        cells = [str(c["configuration"]), *(str(c[f"axis:{a}"]) for a in axes), runs,
                 _pm(c["val_accuracy_mean"], c["val_accuracy_std"], 3), _pm(c["val_loss_mean"], c["val_loss_std"], 3)]
        if target:
            reached = c["target_reached"]
            cells.append("never" if c["done"] and not reached else
                         _pm(c["epochs_to_target_mean"], c["epochs_to_target_std"], 1)
                         + (f" ({reached}/{c['done']})" if reached and reached < c["done"] else ""))
        cells += [_pm(c["seconds_per_epoch_mean"], None, 3), _share(c["vanishing"]), _share(c["exploding"]),
                  _share(c["diverged"])]
        rows.append(cells)
    return header, rows


def format_table(table: Mapping[str, Any], style: str = "text") -> str:
    """``text`` (aligned columns), ``markdown``, ``csv`` or ``json``."""
    if style == "json":
        return json.dumps(table, indent=2, allow_nan=False) + "\n"
    if style == "csv":
        return _csv_text(table["configurations"])
    header, rows = table_rows(table)
    if style == "markdown":
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines) + "\n"
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines += ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(line.rstrip() for line in lines) + "\n"
