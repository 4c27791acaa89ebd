"""A saved run summarized: what ``gradient-workbench info`` prints, as one JSON-able object.

``session_summary`` reads only a loaded (checked) ``Session``: no model is built and no data
loaded. The text ``info`` prints and the object ``info --json`` prints are two renderings of
this one summary, so they cannot disagree. Non-finite numbers become ``None`` (JSON has no NaN).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from core.engine.diagnostics import DiagnosticsRecorder, HealthContext, assess_health, chance_loss

from .format import Session

# Each epoch metric with the direction that makes it "best".
BEST = (("val_accuracy", "max"), ("val_loss", "min"), ("accuracy", "max"), ("loss", "min"))


def _number(x: Any) -> float | None:
    value = float(x)
    return value if math.isfinite(value) else None


def _count(value: Any) -> int:
    """A count from state.json, which a hand-edited file may hold as anything."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def layer_names(session: Session) -> list[str]:
    """The diagnostics' layer labels (input to output), or ``layers.i`` / ``output`` without them."""
    n_layers = len(session.experiment.model.layers)
    names = [str(n) for n in session.history.get("layer_names", [])]
    default = [f"layers.{i}" for i in range(n_layers)] + ["output"]
    return names if len(names) == len(default) else default


def _architecture(session: Session, names: list[str]) -> list[dict[str, Any]]:
    exp = session.experiment
    rows = []
    keys = [f"layers.{i}" for i in range(len(exp.model.layers))] + ["output"]
    for j, key in enumerate(keys):
        count = sum(int(a.size) for k, a in session.weights.items()
                    if k.startswith(key + ".") and not k.endswith(("moving_mean", "moving_variance")))
        kernel = session.weights.get(f"{key}.kernel")
        row: dict[str, Any] = {"key": key, "name": names[j],
                               "kernel_shape": list(kernel.shape) if kernel is not None else None,
                               "parameters": count}
        if key != "output":
            spec = exp.model.layers[j]
            row.update(units=spec.units, activation=spec.activation, init=spec.init_name,
                       batch_norm=spec.batch_norm, dropout=spec.dropout)
        rows.append(row)
    return rows


def _best(history: dict[str, np.ndarray]) -> dict[str, dict[str, Any]]:
    epochs = history.get("epoch", np.zeros(0))
    out: dict[str, dict[str, Any]] = {}
    for metric, direction in BEST:
        values = history.get(metric)
        if values is None or not len(values) or len(values) != len(epochs) or not np.isfinite(values).any():
            continue
        i = int(np.nanargmax(values) if direction == "max" else np.nanargmin(values))
        out[metric] = {"value": _number(values[i]), "epoch": int(epochs[i]), "last": _number(values[-1])}
    return out


def health_findings(session: Session) -> list[dict[str, Any]]:
    """The detector's findings on the run's last recorded steps (``assess_health``)."""
    history = session.history
    if "step" not in history or not len(history["step"]) or "layer_names" not in history:
        return []
    recorder = DiagnosticsRecorder.from_arrays(history)
    return [issue.to_dict() for issue in assess_health(recorder, context=health_context(session))]


def health_context(session: Session) -> HealthContext:
    """What the detector reads besides the tables, from the saved experiment and state: the
    chance-level loss (classes taken as balanced: the class counts are not saved), the
    clipping, and the events (where a NaN first appeared)."""
    exp = session.experiment
    n_outputs = session.state.get("n_outputs")
    loss = exp.model.output.loss
    if loss == "auto":
        # auto is softmax + cross-entropy for class labels, MSE for float targets (one output
        # per target, so a single output is a regression)
        loss = "softmax_cross_entropy" if isinstance(n_outputs, int) and n_outputs > 1 else "mse"
    chance = chance_loss(loss, n_outputs) if isinstance(n_outputs, int) and n_outputs > 0 else None
    clip = exp.regularization.gradient_clip
    events = session.state.get("events", [])
    events = tuple(e for e in events if isinstance(e, dict)) if isinstance(events, list) else ()
    return HealthContext(chance, clip.mode, float(clip.threshold) if clip.mode != "none" else math.nan, events)


def session_summary(session: Session) -> dict[str, Any]:
    """Architecture, parameter counts, epochs and steps, best metrics, the last per-layer
    gradient norms, the detector's findings (``health``), the lineage of reused layers and the
    run's events, as plain JSON values."""
    exp = session.experiment
    names = layer_names(session)
    architecture = _architecture(session, names)
    history = session.history
    grad = history.get("grad_norm")
    last_grad = None
    if grad is not None and len(grad):
        last_grad = {"step": int(history["step"][-1]),
                     "layers": [{"name": name, "grad_norm": _number(v)} for name, v in zip(names, grad[-1],
                                                                                        strict=False)]}
    events = session.state.get("events", [])
    branch = session.state.get("branch")
    return {
        "session": str(session.path) if session.path else None,
        "experiment": {"name": exp.name, "seed": exp.seed},
        "data": {"source": exp.data.source, "path": exp.data.path},
        "optimizer": {"name": exp.optimizer.name, **dict(exp.optimizer.params)},
        "schedule": {"name": exp.schedule.name, **dict(exp.schedule.params)},
        "app_version": session.manifest.get("app_version"),
        "saved": session.manifest.get("created"),
        "architecture": architecture,
        "parameters": sum(row["parameters"] for row in architecture),
        "epochs": len(history.get("epoch", ())),
        "steps": _count(session.state.get("step")),
        "best": _best(history),
        "last_grad_norm": last_grad,
        "health": health_findings(session),
        "lineage": session.lineage,
        "events": [e for e in events if isinstance(e, dict)] if isinstance(events, list) else [],
        "branch": branch if isinstance(branch, dict) else None,
    }
