"""Sweep specs: many experiments from one base experiment and a few axes (docs/sweeps.md).

A sweep is JSON, validated like the experiment spec (every refusal is a ``SweepError`` whose
message starts with the field path)::

    {"format": "gradient-workbench.sweep", "version": 1, "name": "activations",
     "base": {...experiment...} | {"path": "deep.json"},
     "axes": [{"path": "model.layers[*].activation", "values": ["elu", "relu"]},
              {"path": "optimizer.learning_rate", "log_range": [1e-4, 1e-1], "num": 4}],
     "mode": "grid" | "random", "samples": 10, "seed": 0,
     "seeds": [0, 1, 2] | "repeats": 3,
     "target": {"metric": "val_accuracy", "value": 0.9}}

``expand`` turns it into *configurations* (one point of the grid, or one random draw) and
*runs* (a configuration with one seed). Each run's experiment is a canonical experiment dict,
validated with ``parse_experiment`` before anything runs, and its id is a hash of that dict
(without the name), so the same run always gets the same session file, whatever the sweep
is called or in which order its axes are listed.

Paths address the base's canonical JSON: ``a.b`` for a field, ``a[3]`` for a list element,
``a[*]`` for every element. Changing a component's name (a layer's ``activation``,
``optimizer.name``, ``schedule.name``) resets the old component's parameters to the new
one's defaults (``optimizer.learning_rate`` is kept), unless another axis sets them.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.engine.validation import NotARegularFile, quote, read_regular
from core.spec import (  # noqa: F401  (parse_path, set_path: also this module's names, as before)
    MAX_SPEC_BYTES,
    MONITORS,
    FieldPathError,
    SpecError,
    apply_changes,
    first_repeated_key,
    format_path,
    note_repeated_keys,
    parse_experiment,
    parse_path,
    repeated_key_message,
    set_path,
)

FORMAT = "gradient-workbench.sweep"
VERSION = 1
MODES = ("grid", "random")
MAX_RUNS = 10_000           # a typo in "num" must not plan a million trainings
MAX_AXIS_VALUES = 1_000
TARGET_METRICS = MONITORS   # val_loss, val_accuracy, loss, accuracy
AXIS_KINDS = ("values", "range", "log_range")



class SweepError(SpecError):
    """A refused sweep; ``str()`` is ``"<field path>: <what is wrong and what is allowed>"``."""


# ----------------------------------------------------------------------------- the typed sweep


@dataclass(frozen=True)
class Axis:
    """One swept field: ``path`` and either explicit ``values`` (with optional ``labels``) or a
    numeric ``range`` / ``log_range`` with ``num`` grid points (random mode may leave ``num``
    out and draw from the interval, log-uniformly for ``log_range``)."""

    path: str
    tokens: tuple[str | int, ...]
    kind: str
    values: tuple[Any, ...] = ()
    labels: tuple[str, ...] = ()
    bounds: tuple[float, float] | None = None
    name: str = ""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path, "name": self.name}
        if self.kind == "values":
            out["values"] = list(self.values)
            out["labels"] = list(self.labels)
        else:
            out[self.kind] = list(self.bounds or ())
            if self.values:
                out["num"] = len(self.values)
        return out

    def label(self, value: Any) -> str:
        if self.kind == "values":
            for v, lab in zip(self.values, self.labels, strict=True):
                if v == value:
                    return lab
        return value_label(value)


@dataclass(frozen=True)
class Target:
    metric: str = "val_accuracy"
    value: float = 0.9

    def reached(self, x: float) -> bool:
        """Accuracies are reached from below, losses from above."""
        return math.isfinite(x) and (x >= self.value if self.metric.endswith("accuracy") else x <= self.value)

    def to_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "value": self.value}


@dataclass(frozen=True)
class Configuration:
    """One point of the sweep: what the axes set (by axis ``name``) and the experiment it gives
    (canonical dict, seed still the base's)."""

    index: int
    assignments: dict[str, Any]
    labels: dict[str, str]
    experiment: dict[str, Any]

    @property
    def label(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.labels.items()) or "base"


@dataclass(frozen=True)
class Run:
    """One training: a configuration with one seed. ``run_id`` names its session file."""

    configuration: Configuration
    seed: int
    experiment: dict[str, Any]
    run_id: str

    @property
    def file_name(self) -> str:
        return f"run-{self.run_id}.gwb"


@dataclass(frozen=True)
class Sweep:
    name: str
    base: dict[str, Any]                  # canonical experiment dict
    axes: tuple[Axis, ...]
    mode: str = "grid"
    samples: int | None = None
    seed: int = 0
    seeds: tuple[int, ...] = ()
    target: Target | None = None
    base_dir: str | None = None           # where relative data / transfer paths resolve
    configurations: tuple[Configuration, ...] = field(default=(), compare=False)

    def to_dict(self) -> dict[str, Any]:
        """Canonical JSON form: the base inlined, seeds spelled out, ``base_dir`` absolute."""
        out: dict[str, Any] = {"format": FORMAT, "version": VERSION, "name": self.name, "base": self.base,
                               "axes": [a.to_dict() for a in self.axes], "mode": self.mode}
        if self.mode == "random":
            out.update(samples=self.samples, seed=self.seed)
        out["seeds"] = list(self.seeds)
        out["target"] = self.target.to_dict() if self.target else None
        out["base_dir"] = self.base_dir
        return out

    def runs(self) -> list[Run]:
        """Every run, configuration by configuration, seed by seed."""
        out = []
        for config in self.configurations:
            for seed in self.seeds:
                exp = copy.deepcopy(config.experiment)
                exp["seed"] = seed
                out.append(Run(config, seed, exp, run_id(exp)))
        return out


def run_id(experiment: Mapping[str, Any]) -> str:
    """A stable 16-hex-digit id of a canonical experiment dict, its ``name`` left out."""
    body = {k: v for k, v in experiment.items() if k != "name"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def value_label(value: Any) -> str:
    """A short label for an axis value: ``0.001``, ``elu``, ``adam(learning_rate=0.001)``."""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, Mapping):
        name = value.get("name")
        rest = ", ".join(f"{k}={value_label(v)}" for k, v in value.items() if k != "name")
        return f"{name}({rest})" if name is not None else "{" + rest + "}"
    if isinstance(value, list):
        return "[" + ", ".join(value_label(v) for v in value) + "]"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


# ----------------------------------------------------------------------------- parsing

def _join(path: str, key: str | int) -> str:
    return f"{path}[{key}]" if isinstance(key, int) else (f"{path}.{key}" if path else key)


def _object(path: str, value: Any, allowed: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise SweepError(path or "sweep", f"must be a JSON object, got {type(value).__name__}")
    for key in value:
        if key not in allowed:
            raise SweepError(_join(path, str(key)), f"unknown field; allowed fields here: {', '.join(allowed)}")
    return dict(value)


def _number(path: str, value: Any, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or (positive and value <= 0):
        raise SweepError(path, f"must be a {'positive' if positive else 'finite'} number, got {value!r}")
    return float(value)


def _count(path: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise SweepError(path, f"must be an integer from {low} to {high:,}, got {value!r}")
    return value


def _tidy(x: float) -> float:
    """12 significant digits: ``geomspace(1e-4, 1e-1, 4)`` gives 0.001, not 0.0009999999999999998."""
    return float(f"{x:.12g}")


def _parse_axis(path: str, value: Any, mode: str) -> Axis:
    d = _object(path, value, ("path", "name", "values", "labels", "range", "log_range", "num"))
    try:
        tokens = parse_path(d.get("path"))
    except ValueError as exc:
        raise SweepError(_join(path, "path"), str(exc)) from None
    if tokens[0] in ("format", "version", "seed"):
        raise SweepError(_join(path, "path"), f"{tokens[0]!r} cannot be swept" +
                         ("; use \"seeds\" or \"repeats\" for seeds" if tokens[0] == "seed" else ""))
    kinds = [k for k in AXIS_KINDS if k in d]
    if len(kinds) != 1:
        raise SweepError(path, f"must have exactly one of {', '.join(AXIS_KINDS)}, got "
                               f"{', '.join(kinds) if kinds else 'none'}")
    kind = kinds[0]
    name = d.get("name", next((str(t) for t in reversed(tokens) if isinstance(t, str) and t != "*"), "value"))
    if not isinstance(name, str) or not name or len(name) > 60:
        raise SweepError(_join(path, "name"), f"must be a short text (column title), got {name!r}")
    if kind == "values":
        values = d["values"]
        if not isinstance(values, list) or not 1 <= len(values) <= MAX_AXIS_VALUES:
            raise SweepError(_join(path, "values"), f"must be a list of 1 to {MAX_AXIS_VALUES} values, "
                                                    f"got {values!r}")
        for i, v in enumerate(values):
            if values.index(v) != i:
                raise SweepError(_join(_join(path, "values"), i), f"repeats value {v!r}")
        if "num" in d:
            raise SweepError(_join(path, "num"), "goes with range or log_range, not with values")
        labels = d.get("labels", [value_label(v) for v in values])
        if not isinstance(labels, list) or len(labels) != len(values) or \
                not all(isinstance(x, str) and x for x in labels) or len(set(labels)) != len(labels):
            raise SweepError(_join(path, "labels"), f"must be {len(values)} different texts, one per value, "
                                                    f"got {labels!r}")
        return Axis(d["path"], tokens, kind, tuple(values), tuple(labels), None, name)
    if "labels" in d:
        raise SweepError(_join(path, "labels"), f"goes with values, not with {kind}")
    bounds = d[kind]
    where = _join(path, kind)
    if not isinstance(bounds, list) or len(bounds) != 2:
        raise SweepError(where, f"must be [low, high], got {bounds!r}")
    low = _number(_join(where, 0), bounds[0], positive=kind == "log_range")
    high = _number(_join(where, 1), bounds[1], positive=kind == "log_range")
    if not high > low:
        raise SweepError(_join(where, 1), f"must be greater than low ({low:g}), got {high!r}")
    if "num" in d:
        num = _count(_join(path, "num"), d["num"], 1, MAX_AXIS_VALUES)
        grid = np.geomspace(low, high, num) if kind == "log_range" else np.linspace(low, high, num)
        values = tuple(_tidy(float(x)) for x in grid)
    elif mode == "grid":
        raise SweepError(_join(path, "num"), f"is needed in grid mode: how many points of the {kind}")
    else:
        values = ()
    return Axis(d["path"], tokens, kind, values, (), (low, high), name)


def _parse_seeds(d: Mapping[str, Any], base_seed: int) -> tuple[int, ...]:
    if "seeds" in d and "repeats" in d:
        raise SweepError("repeats", "give either seeds (a list) or repeats (a count), not both")
    if "repeats" in d:
        n = _count("repeats", d["repeats"], 1, 1000)
        return tuple(base_seed + i for i in range(n))
    seeds = d.get("seeds", [base_seed])
    if not isinstance(seeds, list) or not 1 <= len(seeds) <= 1000:
        raise SweepError("seeds", f"must be a list of 1 to 1000 seeds, got {seeds!r}")
    for i, s in enumerate(seeds):
        if isinstance(s, bool) or not isinstance(s, int) or not 0 <= s < 2**63:
            raise SweepError(f"seeds[{i}]", f"must be a non-negative integer, got {s!r}")
        if seeds.index(s) != i:
            raise SweepError(f"seeds[{i}]", f"repeats seed {s}")
    return tuple(seeds)


def _load_json(path: Path, what: str) -> Any:
    try:
        text = read_regular(path, MAX_SPEC_BYTES).decode("utf-8")
    except FileNotFoundError:
        raise SweepError(what, f"{path}: no such file") from None
    except NotARegularFile as exc:  # a pipe or a device is refused, not read
        raise SweepError(what, f"{path}: is {exc.kind}, not a file; only regular files are read") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SweepError(what, f"{path}: cannot be read ({quote(getattr(exc, 'strerror', None) or str(exc))})") \
            from None
    try:
        obj = json.loads(text, object_pairs_hook=note_repeated_keys)
    except json.JSONDecodeError as exc:
        raise SweepError(what, f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") \
            from None
    except RecursionError:
        raise SweepError(what, f"{path}: nested too deeply to be read") from None
    except ValueError as exc:  # an integer with more digits than Python converts
        raise SweepError(what, f"{path}: not valid JSON ({quote(str(exc))})") from None
    repeated = first_repeated_key(obj)       # JSON keeps the last of a key given twice, silently
    if repeated is not None:    # in the sweep file: its field; in the base experiment's file: that file's field
        message = repeated_key_message(path, repeated)
        raise SweepError(what, f"{repeated[0]}: {message}") if what else SweepError(repeated[0], message)
    return obj


def _parse_base(value: Any, folder: Path | None) -> tuple[dict[str, Any], Path | None]:
    """The base experiment (inline, or ``{"path": ...}`` relative to the sweep's folder)."""
    base_dir = folder
    if isinstance(value, Mapping) and set(value) == {"path"}:
        ref = value["path"]
        if not isinstance(ref, str) or not ref:
            raise SweepError("base.path", f"must be the path of an experiment JSON file, got {ref!r}")
        file = Path(ref).expanduser()
        if not file.is_absolute() and folder is not None:
            file = folder / file
        value = _load_json(file, "base.path")
        base_dir = file.parent
    try:
        experiment = parse_experiment(value)
    except SpecError as exc:
        raise SweepError(_join("base", exc.path) if exc.path else "base", exc.message) from None
    return experiment.to_dict(), base_dir


def parse_sweep(obj: Any, folder: str | Path | None = None) -> Sweep:
    """Validate untrusted sweep JSON and expand it (raises ``SweepError``). ``folder`` is the
    sweep file's folder: a ``base`` path and relative data paths resolve against it."""
    d = _object("", obj, ("format", "version", "name", "base", "axes", "mode", "samples", "seed", "seeds",
                          "repeats", "target", "base_dir"))
    if d.get("format", FORMAT) != FORMAT:
        raise SweepError("format", f"must be {FORMAT!r}, got {d.get('format')!r}")
    version = d.get("version", VERSION)
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= VERSION:
        raise SweepError("version", f"must be an integer from 1 to {VERSION} (this Gradient Workbench reads "
                                    f"sweep versions up to {VERSION}), got {version!r}")
    name = d.get("name", "sweep")
    if not isinstance(name, str) or not name or len(name) > 200:
        raise SweepError("name", f"must be a text of 1 to 200 characters, got {name!r}")
    if "base" not in d:
        raise SweepError("base", "is required: an experiment object, or {\"path\": \"experiment.json\"}")
    folder_path = Path(folder) if folder is not None else None
    stored_dir = d.get("base_dir")  # written by to_dict(): the folder the base came from
    if stored_dir is not None:
        if not isinstance(stored_dir, str):
            raise SweepError("base_dir", f"must be a folder path or null, got {stored_dir!r}")
        folder_path = Path(stored_dir)
    base, base_dir = _parse_base(d["base"], folder_path)
    mode = d.get("mode", "grid")
    if mode not in MODES:
        raise SweepError("mode", f"must be one of {', '.join(MODES)}, got {mode!r}")
    samples = None
    if mode == "random":
        samples = _count("samples", d.get("samples"), 1, MAX_RUNS)
    elif "samples" in d:
        raise SweepError("samples", "goes with mode \"random\" (a grid has as many points as its axes give)")
    seed = _count("seed", d.get("seed", 0), 0, 2**63 - 1)
    axes_value = d.get("axes", [])
    if not isinstance(axes_value, list):
        raise SweepError("axes", f"must be a list of axis objects, got {axes_value!r}")
    axes = tuple(_parse_axis(f"axes[{i}]", a, mode) for i, a in enumerate(axes_value))
    names = [a.name for a in axes]
    for i, n in enumerate(names):
        if names.index(n) != i:
            raise SweepError(f"axes[{i}].name", f"{n!r} is already the name of axes[{names.index(n)}]; give "
                                                "each axis its own \"name\"")
    seeds = _parse_seeds(d, base["seed"])
    target = None
    if d.get("target") is not None:
        t = _object("target", d["target"], ("metric", "value"))
        metric = t.get("metric", "val_accuracy")
        if metric not in TARGET_METRICS:
            raise SweepError("target.metric", f"must be one of {', '.join(TARGET_METRICS)}, got {metric!r}")
        target = Target(metric, _number("target.value", t.get("value")))
    sweep = Sweep(name=name, base=base, axes=axes, mode=mode, samples=samples, seed=seed, seeds=seeds,
                  target=target, base_dir=str(base_dir.resolve()) if base_dir is not None else None)
    configurations = _expand(sweep)
    if len(configurations) * len(seeds) > MAX_RUNS:
        raise SweepError("axes", f"would plan {len(configurations) * len(seeds):,} runs "
                                 f"({len(configurations):,} configurations × {len(seeds)} seeds); "
                                 f"at most {MAX_RUNS:,} are allowed")
    return Sweep(**{**sweep.__dict__, "configurations": tuple(configurations)})


def load_sweep(path: str | Path) -> Sweep:
    """Read and validate a sweep file (relative paths resolve against its folder)."""
    p = Path(path)
    if p.is_dir():
        raise SweepError("", f"{p}: is a folder, not a sweep file")
    obj = _load_json(p, "")
    return parse_sweep(obj, p.parent)


# ----------------------------------------------------------------------------- expansion


def _points(sweep: Sweep) -> list[tuple[Any, ...]]:
    if sweep.mode == "grid":
        size = math.prod(len(a.values) for a in sweep.axes)
        if size * len(sweep.seeds) > MAX_RUNS:
            raise SweepError("axes", f"would plan {size * len(sweep.seeds):,} runs ({size:,} grid points × "
                                     f"{len(sweep.seeds)} seeds); at most {MAX_RUNS:,} are allowed")
        return list(itertools.product(*(a.values for a in sweep.axes)))
    rng = np.random.default_rng(sweep.seed)
    points = []
    for _ in range(sweep.samples or 0):
        point = []
        for axis in sweep.axes:
            if axis.values:
                point.append(axis.values[int(rng.integers(len(axis.values)))])
            else:
                low, high = axis.bounds  # type: ignore[misc]
                if axis.kind == "log_range":
                    point.append(_tidy(math.exp(rng.uniform(math.log(low), math.log(high)))))
                else:
                    point.append(_tidy(float(rng.uniform(low, high))))
        points.append(tuple(point))
    return points


def _apply(base: dict[str, Any], axes: tuple[Axis, ...], point: tuple[Any, ...], where: str) -> dict[str, Any]:
    try:
        return apply_changes(base, [(axis.tokens, value) for axis, value in zip(axes, point, strict=True)])
    except FieldPathError as exc:
        raise SweepError(f"axes[{exc.index}].path", f"{exc}{where}") from None


def _expand(sweep: Sweep) -> list[Configuration]:
    """Every configuration, each validated with ``parse_experiment`` (a bad combination is
    refused here, naming the configuration and the experiment's field path)."""
    configurations: list[Configuration] = []
    seen: set[str] = set()
    for point in _points(sweep):
        labels = {a.name: a.label(v) for a, v in zip(sweep.axes, point, strict=True)}
        label = ", ".join(f"{k}={v}" for k, v in labels.items())
        where = f" (configuration {len(configurations)}: {label})"
        raw = _apply(sweep.base, sweep.axes, point, where)
        raw["name"] = f"{sweep.name} [{label}]" if label else sweep.name
        if len(raw["name"]) > 200:
            raw["name"] = raw["name"][:199] + "…"
        try:
            experiment = parse_experiment(raw).to_dict()
        except SpecError as exc:
            raise SweepError(exc.path, f"{exc.message}; in configuration {len(configurations)} ({label})") \
                from None
        key = run_id(experiment)
        if key in seen:  # a random draw that repeats an earlier one, or values that mean the same
            continue
        seen.add(key)
        configurations.append(Configuration(len(configurations), dict(zip([a.name for a in sweep.axes], point,
                                                                          strict=True)), labels, experiment))
    return configurations
