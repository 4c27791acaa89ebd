"""The experiment spec: the single source of truth that the GUI edits, the CLI runs and
sessions store (DESIGN.md, "The experiment spec").

``parse_experiment`` turns untrusted JSON into frozen, typed objects; every refusal is a
``SpecError`` whose message starts with the field path, e.g.
``model.layers[3].units: must be a positive integer, got -5``. Names are only looked up in
the registries, never imported, and absurd sizes are refused here, before any array exists.
``Experiment.to_dict()`` writes the canonical JSON form: parsing it again gives an equal
experiment, and a canonical file round-trips to identical JSON.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from core.data import DATASETS, IMPORTERS, dataset_names
from core.data.importers import labels_file_sources, target_sources
from core.data.loading import quoted_names
from core.engine import validation as v
from core.engine.activations import ACTIVATIONS
from core.engine.initializers import INITIALIZERS
from core.engine.layers import DROPOUT_TYPES
from core.engine.losses import LOSSES
from core.engine.optimizers import OPTIMIZERS
from core.engine.schedules import SCHEDULES

FORMAT = "gradient-workbench.experiment"
VERSION = 1

# Limits that stop a typo from allocating the machine's memory: a billion units is refused
# while it is still a number in a JSON file.
MAX_UNITS = 65_536
MAX_LAYERS = 1_000
# Every weight and bias of the network, the input layer (features × first units) included: 20
# million float32 parameters are 80 MB, and training holds several copies (gradients, optimizer
# slots, best weights, a save's snapshot). The hidden-to-hidden part is checked here; the input
# and output layers once the data's width is known (``check_parameter_count``).
MAX_PARAMETERS = 20_000_000
MAX_HIDDEN_PARAMETERS = MAX_PARAMETERS
MAX_EPOCHS = 1_000_000
MAX_BATCH_SIZE = 1_048_576
MAX_CHECKPOINT_EVERY = 1_000_000
MAX_CHECKPOINTS = 100      # training.checkpoints.keep: each is a copy of the weights and optimizer slots
MAX_SPEC_BYTES = 16 * 1024**2  # an experiment file is a few kilobytes; this refuses /dev/zero-like input

BATCH_NORM_POSITIONS = ("before_activation", "after_activation", False)
AUGMENTATIONS = {"none": {}, "shift": {"max_shift": 1}, "noise": {"stddev": 0.1}}
CLIP_MODES = ("none", "value", "norm", "global_norm")
MONITORS = ("val_loss", "val_accuracy", "loss", "accuracy")
NAN_POLICIES = ("stop", "rollback")
DTYPES = ("float32", "float64")
#: ``training.blas_threads``: "auto" (``core.engine.threads`` chooses) or a count up to this.
MAX_BLAS_THREADS = 256
OUTPUT_LOSSES = ("auto", *LOSSES.names())


class SpecError(ValueError):
    """A refused experiment; ``str()`` is ``"<field path>: <what is wrong and what is allowed>"``."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.message = message
        super().__init__(f"{path}: {message}" if path else message)

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        # Crosses from a job's child process to the window as itself (``core.process.ProcessJob``).
        return type(self), (self.path, self.message)


# ----------------------------------------------------------------------------- parsing helpers


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    name = v.field_name(key)
    if name != key:  # not a plain name: shown quoted, as an index
        return f"{path}[{name}]"
    return f"{path}.{key}" if path else key


def _check(path: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run a ``core.engine.validation`` check and re-raise its message under the full field path."""
    try:
        return fn(path, *args, **kwargs)
    except ValueError as exc:
        message = str(exc)
        prefix = f"{path}: "
        raise SpecError(path, message[len(prefix):] if message.startswith(prefix) else message) from None


def _object(path: str, value: Any, allowed: Mapping[str, Any] | tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise SpecError(path or "experiment", f"must be a JSON object, got {type(value).__name__}")
    for key in value:
        if key not in allowed:
            names = ", ".join(allowed)
            raise SpecError(_join(path, str(key)), f"unknown field; allowed fields here: {names}")
    return dict(value)


def _component(path: str, value: Any, registry: Any, *args: Any) -> tuple[str, dict[str, Any]]:
    """A ``{"name": ..., <hyperparameters>}`` object (or a bare name) checked by building it."""
    if isinstance(value, str):
        value = {"name": value}
    if not isinstance(value, Mapping):
        raise SpecError(path, f"must be a name or an object with \"name\", got {v.quote(value)}")
    name = value.get("name")
    if name not in registry:
        raise SpecError(_join(path, "name"), f"must be one of {', '.join(registry.names())}, got {v.quote(name)}")
    params = {k: val for k, val in value.items() if k != "name"}
    try:
        registry.get(name).from_config(params, *args)
    except (ValueError, TypeError) as exc:
        message = str(exc)
        key, _, rest = message.partition(": ")
        if rest and (key in params or key in registry.get(name).parameters()):
            raise SpecError(_join(path, key), rest) from None
        raise SpecError(path, message) from None
    return name, params


# ----------------------------------------------------------------------------- the typed spec


@dataclass(frozen=True)
class AugmentationSpec:
    type: str = "none"
    params: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, **self.params}


@dataclass(frozen=True)
class DataSpec:
    source: str = "digits"
    params: Mapping[str, Any] = field(default_factory=dict)
    path: str | None = None
    target: str | None = None
    labels_path: str | None = None     # the labels file of an importer that reads two (idx)
    validation_split: float = 0.2
    test_split: float = 0.0
    standardize: bool = True
    augmentation: AugmentationSpec = field(default_factory=AugmentationSpec)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"source": self.source}
        if self.source in IMPORTERS:
            out["path"] = self.path
            if IMPORTERS.get(self.source).needs_target:
                out["target"] = self.target
            if IMPORTERS.get(self.source).needs_labels_file:
                out["labels_path"] = self.labels_path
        out["params"] = dict(self.params)
        out.update(validation_split=self.validation_split, test_split=self.test_split,
                   standardize=self.standardize, augmentation=self.augmentation.to_dict())
        return out


@dataclass(frozen=True)
class LayerSpec:
    units: int = 100
    init: str | Mapping[str, Any] = "he_normal"
    activation: str = "elu"
    activation_params: Mapping[str, Any] = field(default_factory=dict)
    batch_norm: str | bool = False
    dropout: float = 0.0
    use_bias: bool = True
    dropout_type: str = "standard"       # "alpha": alpha dropout, which keeps SELU's mean and variance

    @property
    def init_name(self) -> str:
        return self.init if isinstance(self.init, str) else self.init["name"]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"units": self.units,
                               "init": self.init if isinstance(self.init, str) else dict(self.init),
                               "activation": self.activation}
        defaults = ACTIVATIONS.get(self.activation).parameters()
        out.update({k: self.activation_params.get(k, d) for k, d in defaults.items()})
        out.update(batch_norm=self.batch_norm, dropout=self.dropout, use_bias=self.use_bias)
        if self.dropout_type != "standard":  # left out when ordinary, so existing experiments keep their JSON
            out["dropout_type"] = self.dropout_type
        return out


@dataclass(frozen=True)
class OutputSpec:
    init: str | Mapping[str, Any] = "glorot_uniform"
    loss: str = "auto"

    def to_dict(self) -> dict[str, Any]:
        return {"init": self.init if isinstance(self.init, str) else dict(self.init), "loss": self.loss}


@dataclass(frozen=True)
class TransferSpec:
    """Reuse hidden layers of a saved session (the book's "reusing pretrained layers").

    ``source`` is the session file (the JSON key is ``from``; a relative path resolves against
    the spec file's folder). ``layers`` are the hidden-layer indices copied, each to the same
    index here (``None``: every hidden layer of the source); ``freeze`` those kept fixed
    (``None``: every copied layer, the book's first step; ``()``: none) until
    ``unfreeze_at_epoch`` epochs are complete (``None``: for the whole run), when the learning
    rate is multiplied by ``learning_rate_factor`` (the book: lower it when unfreezing)."""

    source: str
    layers: tuple[int, ...] | None = None
    freeze: tuple[int, ...] | None = None
    unfreeze_at_epoch: int | None = None
    learning_rate_factor: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        return {"from": self.source, "layers": None if self.layers is None else list(self.layers),
                "freeze": None if self.freeze is None else list(self.freeze),
                "unfreeze_at_epoch": self.unfreeze_at_epoch, "learning_rate_factor": self.learning_rate_factor}


@dataclass(frozen=True)
class ModelSpec:
    layers: tuple[LayerSpec, ...] = ()
    input_dropout: float = 0.0
    output: OutputSpec = field(default_factory=OutputSpec)
    transfer: TransferSpec | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {"input_dropout": self.input_dropout, "layers": [layer.to_dict() for layer in self.layers],
               "output": self.output.to_dict()}
        if self.transfer is not None:  # left out when unused, so experiments without it keep their JSON
            out["transfer"] = self.transfer.to_dict()
        return out


@dataclass(frozen=True)
class ComponentSpec:
    """An optimizer or schedule: its registry name and the hyperparameters the user gave."""

    name: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, **self.params}


@dataclass(frozen=True)
class ClipSpec:
    mode: str = "none"
    threshold: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        return {"mode": "none"} if self.mode == "none" else {"mode": self.mode, "threshold": self.threshold}


@dataclass(frozen=True)
class EarlyStoppingSpec:
    enabled: bool = False
    patience: int = 10
    monitor: str = "val_loss"
    min_delta: float = 0.0
    restore_best_weights: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {"enabled": self.enabled, "patience": self.patience, "monitor": self.monitor,
                "min_delta": self.min_delta, "restore_best_weights": self.restore_best_weights}


@dataclass(frozen=True)
class RegularizationSpec:
    l1: float = 0.0
    l2: float = 0.0
    max_norm: float | None = None
    gradient_clip: ClipSpec = field(default_factory=ClipSpec)
    early_stopping: EarlyStoppingSpec = field(default_factory=EarlyStoppingSpec)

    def to_dict(self) -> dict[str, Any]:
        return {"l1": self.l1, "l2": self.l2, "max_norm": self.max_norm,
                "gradient_clip": self.gradient_clip.to_dict(),
                "early_stopping": self.early_stopping.to_dict()}


@dataclass(frozen=True)
class InstrumentSpec:
    """One instrument of ``training.instruments``: on or off, and every how many steps it measures."""

    enabled: bool = False
    every: int = 100

    def to_dict(self) -> dict[str, Any]:
        return {"enabled": self.enabled, "every": self.every}


@dataclass(frozen=True)
class SharpnessSpec(InstrumentSpec):
    """The sharpness instrument also has its Lanczos budget (Hessian-vector products per measure)."""

    iterations: int = 20

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "iterations": self.iterations}


@dataclass(frozen=True)
class InstrumentsSpec:
    """What ``core.engine.instruments`` measures while training, on the first ``probe_examples``
    training examples. The defaults keep the instruments under a tenth of the training time
    (benchmarks/bench_instruments.py): the sharpness costs tens to hundreds of training steps per
    measurement (a dozen Hessian-vector products, each two float64 passes over the probe batch), so
    it is off until asked for; the noise scale costs about one such pass, the effective rates a
    partial sort of each kernel's second moments."""

    probe_examples: int = 256
    sharpness: SharpnessSpec = field(default_factory=lambda: SharpnessSpec(enabled=False, every=500))
    noise: InstrumentSpec = field(default_factory=lambda: InstrumentSpec(enabled=True, every=500))
    effective_learning_rate: InstrumentSpec = field(default_factory=lambda: InstrumentSpec(enabled=True, every=50))
    # histograms of the step's own tensors (core.engine.distributions), not of the probe batch
    distributions: InstrumentSpec = field(default_factory=lambda: InstrumentSpec(enabled=True, every=50))

    def to_dict(self) -> dict[str, Any]:
        return {"probe_examples": self.probe_examples, "sharpness": self.sharpness.to_dict(),
                "noise": self.noise.to_dict(), "effective_learning_rate": self.effective_learning_rate.to_dict(),
                "distributions": self.distributions.to_dict()}


@dataclass(frozen=True)
class CheckpointsSpec:
    """``training.checkpoints``: how often the trainer keeps a copy of its whole state (weights,
    optimizer slots, schedule, RNG and data order), so a branch at step K replays only from the
    nearest copy at or before K instead of from the start (``core.checkpoints``).

    One is taken every ``every`` optimizer steps; when more than ``keep`` are held, the
    interval doubles and the copies off the new grid are dropped, so a run of any length holds
    at most ``keep`` copies, evenly spaced. ``keep: 0`` keeps none (a branch replays from the start)."""

    every: int = 200
    keep: int = 10

    def to_dict(self) -> dict[str, Any]:
        return {"every": self.every, "keep": self.keep}


@dataclass(frozen=True)
class TrainingSpec:
    epochs: int = 30
    batch_size: int = 32
    shuffle: bool = True
    diagnostics_every: int = 1
    on_nan: str = "stop"
    max_rollbacks: int = 3
    dtype: str = "float32"
    instruments: InstrumentsSpec = field(default_factory=InstrumentsSpec)
    checkpoints: CheckpointsSpec = field(default_factory=CheckpointsSpec)
    # "auto": the trainer chooses from the products' sizes and the free cores; a count fixes it.
    blas_threads: int | str = "auto"

    def to_dict(self) -> dict[str, Any]:
        out = {"epochs": self.epochs, "batch_size": self.batch_size, "shuffle": self.shuffle,
               "diagnostics_every": self.diagnostics_every, "on_nan": self.on_nan,
               "max_rollbacks": self.max_rollbacks, "dtype": self.dtype}
        if self.instruments != InstrumentsSpec():  # left out at the defaults, so older experiments keep their JSON
            out["instruments"] = self.instruments.to_dict()
        if self.checkpoints != CheckpointsSpec():  # likewise
            out["checkpoints"] = self.checkpoints.to_dict()
        if self.blas_threads != "auto":            # likewise
            out["blas_threads"] = self.blas_threads
        return out


@dataclass(frozen=True)
class Experiment:
    name: str = "experiment"
    seed: int = 42
    data: DataSpec = field(default_factory=DataSpec)
    model: ModelSpec = field(default_factory=ModelSpec)
    optimizer: ComponentSpec = field(default_factory=lambda: ComponentSpec("nadam", {"learning_rate": 0.001}))
    schedule: ComponentSpec = field(default_factory=lambda: ComponentSpec("constant"))
    regularization: RegularizationSpec = field(default_factory=RegularizationSpec)
    training: TrainingSpec = field(default_factory=TrainingSpec)

    def to_dict(self) -> dict[str, Any]:
        """The canonical JSON form (every section and field written out)."""
        return {"format": FORMAT, "version": VERSION, "name": self.name, "seed": self.seed,
                "data": self.data.to_dict(), "model": self.model.to_dict(),
                "optimizer": self.optimizer.to_dict(), "schedule": self.schedule.to_dict(),
                "regularization": self.regularization.to_dict(), "training": self.training.to_dict()}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    def replace(self, **changes: Any) -> Experiment:
        return replace(self, **changes)

    @property
    def learning_rate(self) -> float:
        """η0: the optimizer's ``learning_rate`` (its own default when not given)."""
        return float(self.optimizer.params.get(
            "learning_rate", OPTIMIZERS.get(self.optimizer.name).parameters()["learning_rate"]))


# ----------------------------------------------------------------------------- section parsers


def _parse_init(path: str, value: Any) -> str | dict[str, Any]:
    name, params = _component(path, value, INITIALIZERS)
    return name if isinstance(value, str) else {"name": name, **params}


def _parse_data(path: str, value: Any) -> DataSpec:
    d = _object(path, value, ("source", "params", "path", "target", "labels_path", "validation_split",
                              "test_split", "standardize", "augmentation"))
    default = DataSpec()
    source = d.get("source", default.source)
    sources = dataset_names()
    if source not in sources:
        raise SpecError(_join(path, "source"), f"must be one of {', '.join(sources)}, got {v.quote(source)}")
    params = d.get("params", {})
    if not isinstance(params, Mapping):
        raise SpecError(_join(path, "params"), f"must be a JSON object, got {v.quote(params)}")
    importer = IMPORTERS.get(source) if source in IMPORTERS else None
    if source in DATASETS:
        _component(_join(path, "params"), {"name": source, **params}, DATASETS)
    elif params and not importer.parameters():
        raise SpecError(_join(path, "params"), f"must be empty for source {v.quote(source)} (use path/target)")
    elif params:
        _component(_join(path, "params"), {"name": source, **params}, IMPORTERS)
    file_path = d.get("path")
    target = d.get("target")
    labels_path = d.get("labels_path")
    if importer is not None:
        if not isinstance(file_path, str) or not file_path:
            what = "folder" if importer.reads_folder else "file"
            raise SpecError(_join(path, "path"),
                            f"must be a {what} path for source {v.quote(source)}, got {v.quote(file_path)}")
    elif file_path is not None:
        raise SpecError(_join(path, "path"), f"is only used with source {quoted_names(IMPORTERS.names())}, "
                                             f"not {v.quote(source)}")
    if importer is not None and importer.needs_target:
        if not isinstance(target, str) or not target:
            raise SpecError(_join(path, "target"), f"must name the target column, got {v.quote(target)}")
    elif target is not None:
        raise SpecError(_join(path, "target"), f"is only used with source {quoted_names(target_sources())}, "
                                               f"not {v.quote(source)}")
    if importer is not None and importer.needs_labels_file:
        if not isinstance(labels_path, str) or not labels_path:
            raise SpecError(_join(path, "labels_path"), f"must be the path of the labels file for source "
                                                        f"{v.quote(source)}, got {v.quote(labels_path)}")
    elif labels_path is not None:
        raise SpecError(_join(path, "labels_path"), f"is only used with source "
                                                    f"{quoted_names(labels_file_sources())}, not {v.quote(source)}")
    val = _check(_join(path, "validation_split"), v.fraction, d.get("validation_split", default.validation_split))
    test = _check(_join(path, "test_split"), v.fraction, d.get("test_split", default.test_split))
    if val + test >= 0.9:
        raise SpecError(_join(path, "test_split"),
                        f"validation_split + test_split must leave at least 10 % for training, got {val + test:g}")
    standardize = _check(_join(path, "standardize"), v.boolean, d.get("standardize", default.standardize))
    aug_path = _join(path, "augmentation")
    aug = d.get("augmentation", {"type": "none"})
    if not isinstance(aug, Mapping):
        raise SpecError(aug_path, f"must be a JSON object, got {v.quote(aug)}")
    aug_type = aug.get("type", "none")
    if aug_type not in AUGMENTATIONS:
        raise SpecError(_join(aug_path, "type"), f"must be one of {', '.join(AUGMENTATIONS)}, got {v.quote(aug_type)}")
    aug = _object(aug_path, aug, ("type", *AUGMENTATIONS[aug_type]))
    aug_params = {**AUGMENTATIONS[aug_type], **{k: val for k, val in aug.items() if k != "type"}}
    if aug_type == "shift":
        _check(_join(aug_path, "max_shift"), v.positive_int, aug_params["max_shift"], high=8)
    elif aug_type == "noise":
        _check(_join(aug_path, "stddev"), v.positive, aug_params["stddev"], high=100.0)
    return DataSpec(source=source, params=dict(params), path=file_path, target=target, labels_path=labels_path,
                    validation_split=val,
                    test_split=test, standardize=standardize,
                    augmentation=AugmentationSpec(aug_type, aug_params))


def _parse_layer(path: str, value: Any) -> LayerSpec:
    if not isinstance(value, Mapping):
        raise SpecError(path, f"must be a JSON object, got {v.quote(value)}")
    default = LayerSpec()
    activation = value.get("activation", default.activation)
    if activation not in ACTIVATIONS:
        raise SpecError(_join(path, "activation"),
                        f"must be one of {', '.join(ACTIVATIONS.names())}, got {v.quote(activation)}")
    act_params = ACTIVATIONS.get(activation).parameters()
    d = _object(path, value, ("units", "init", "activation", *act_params, "batch_norm", "dropout", "dropout_type",
                              "use_bias"))
    units = _check(_join(path, "units"), v.positive_int, d.get("units", default.units), high=MAX_UNITS)
    init = _parse_init(_join(path, "init"), d.get("init", default.init))
    given = {k: d[k] for k in act_params if k in d}
    _component(path, {"name": activation, **given}, ACTIVATIONS)
    batch_norm = d.get("batch_norm", default.batch_norm)
    if batch_norm not in BATCH_NORM_POSITIONS or batch_norm is True:
        raise SpecError(_join(path, "batch_norm"),
                        f"must be \"before_activation\", \"after_activation\" or false, got {v.quote(batch_norm)}")
    dropout = _check(_join(path, "dropout"), v.fraction, d.get("dropout", default.dropout))
    use_bias = _check(_join(path, "use_bias"), v.boolean, d.get("use_bias", default.use_bias))
    dropout_type = d.get("dropout_type", default.dropout_type)
    if dropout_type not in DROPOUT_TYPES:
        raise SpecError(_join(path, "dropout_type"),
                        f"must be \"standard\" (inverted dropout) or \"alpha\" (alpha dropout, for SELU), "
                        f"got {v.quote(dropout_type)}")
    return LayerSpec(units=units, init=init, activation=activation,
                     activation_params={k: given.get(k, dv) for k, dv in act_params.items()},
                     batch_norm=batch_norm, dropout=dropout, use_bias=use_bias, dropout_type=dropout_type)


def _layer_indices(path: str, value: Any, n_layers: int, what: str) -> tuple[int, ...]:
    if not isinstance(value, list):
        raise SpecError(path, f"must be null or a list of hidden-layer indices, got {v.quote(value)}")
    seen: list[int] = []
    for i, index in enumerate(value):
        index = _check(_join(path, i), v.integer, index, low=0)
        if index >= n_layers:
            raise SpecError(_join(path, i), f"this model has {n_layers} hidden layers (0..{n_layers - 1}), "
                                            f"so it cannot {what} layer {index}")
        if index in seen:
            raise SpecError(_join(path, i), f"layer {index} is listed twice")
        seen.append(index)
    return tuple(sorted(seen))


def _parse_transfer(path: str, value: Any, n_layers: int) -> TransferSpec | None:
    """Only what the spec itself can show; whether the source file fits is checked when the
    trainer is built (``core.sessions.transfer``), with the same field paths."""
    if value is None:
        return None
    d = _object(path, value, ("from", "layers", "freeze", "unfreeze_at_epoch", "learning_rate_factor"))
    source = d.get("from")
    if not isinstance(source, str) or not source.strip() or len(source) > 4096:
        raise SpecError(_join(path, "from"), f"must be the path of a saved session (*.gwb), got {v.quote(source)}")
    layers = d.get("layers")
    if layers is not None:
        layers = _layer_indices(_join(path, "layers"), layers, n_layers, "copy")
        if not layers:
            raise SpecError(_join(path, "layers"), "must list at least one layer (or be null for all)")
    freeze = d.get("freeze")
    if freeze is not None:
        freeze = _layer_indices(_join(path, "freeze"), freeze, n_layers, "freeze")
        for i, index in enumerate(freeze):
            if layers is not None and index not in layers:
                raise SpecError(_join(_join(path, "freeze"), i),
                                f"layer {index} is not copied ({_join(path, 'layers')} is {list(layers)}); "
                                "only copied layers can be frozen")
    unfreeze = d.get("unfreeze_at_epoch")
    if unfreeze is not None:
        unfreeze = _check(_join(path, "unfreeze_at_epoch"), v.positive_int, unfreeze, high=MAX_EPOCHS)
        if freeze == ():
            raise SpecError(_join(path, "unfreeze_at_epoch"), f"nothing is frozen ({_join(path, 'freeze')} is "
                                                              "empty), so there is nothing to unfreeze")
    factor = _check(_join(path, "learning_rate_factor"), v.positive, d.get("learning_rate_factor", 1.0), high=1.0)
    if factor != 1.0 and unfreeze is None:
        raise SpecError(_join(path, "learning_rate_factor"),
                        "lowers the learning rate when the frozen layers are unfrozen; set unfreeze_at_epoch too")
    return TransferSpec(source=source, layers=layers, freeze=freeze, unfreeze_at_epoch=unfreeze,
                        learning_rate_factor=factor)


def _parse_model(path: str, value: Any) -> ModelSpec:
    d = _object(path, value, ("input_dropout", "layers", "output", "transfer"))
    layers = d.get("layers", [])
    if not isinstance(layers, list):
        raise SpecError(_join(path, "layers"), f"must be a list of layer objects, got {v.quote(layers)}")
    if len(layers) > MAX_LAYERS:
        raise SpecError(_join(path, "layers"), f"must hold at most {MAX_LAYERS} layers, got {len(layers)}")
    parsed = tuple(_parse_layer(_join(_join(path, "layers"), i), layer) for i, layer in enumerate(layers))
    hidden_params = sum(a.units * b.units for a, b in zip(parsed, parsed[1:], strict=False))
    if hidden_params > MAX_HIDDEN_PARAMETERS:
        raise SpecError(_join(path, "layers"),
                        f"would need {hidden_params:,} weights between hidden layers; "
                        f"at most {MAX_HIDDEN_PARAMETERS:,} are allowed")
    input_dropout = _check(_join(path, "input_dropout"), v.fraction, d.get("input_dropout", 0.0))
    out_path = _join(path, "output")
    o = _object(out_path, d.get("output", {}), ("init", "loss"))
    out_init = _parse_init(_join(out_path, "init"), o.get("init", OutputSpec().init))
    loss = o.get("loss", "auto")
    if loss not in OUTPUT_LOSSES:
        raise SpecError(_join(out_path, "loss"), f"must be one of {', '.join(OUTPUT_LOSSES)}, got {v.quote(loss)}")
    transfer = _parse_transfer(_join(path, "transfer"), d.get("transfer"), len(parsed))
    return ModelSpec(layers=parsed, input_dropout=input_dropout, output=OutputSpec(out_init, loss),
                     transfer=transfer)


def _parse_regularization(path: str, value: Any) -> RegularizationSpec:
    d = _object(path, value, ("l1", "l2", "max_norm", "gradient_clip", "early_stopping"))
    l1 = _check(_join(path, "l1"), v.non_negative, d.get("l1", 0.0), high=100.0)
    l2 = _check(_join(path, "l2"), v.non_negative, d.get("l2", 0.0), high=100.0)
    max_norm = d.get("max_norm")
    if max_norm is not None:
        max_norm = _check(_join(path, "max_norm"), v.positive, max_norm)
    clip_path = _join(path, "gradient_clip")
    c = _object(clip_path, d.get("gradient_clip", {"mode": "none"}), ("mode", "threshold"))
    mode = _check(_join(clip_path, "mode"), v.choice, c.get("mode", "none"), CLIP_MODES)
    threshold = _check(_join(clip_path, "threshold"), v.positive, c.get("threshold", 1.0))
    es_path = _join(path, "early_stopping")
    e = _object(es_path, d.get("early_stopping", {}),
                ("enabled", "patience", "monitor", "min_delta", "restore_best_weights"))
    default = EarlyStoppingSpec()
    es = EarlyStoppingSpec(
        enabled=_check(_join(es_path, "enabled"), v.boolean, e.get("enabled", default.enabled)),
        patience=_check(_join(es_path, "patience"), v.positive_int, e.get("patience", default.patience),
                        high=MAX_EPOCHS),
        monitor=_check(_join(es_path, "monitor"), v.choice, e.get("monitor", default.monitor), MONITORS),
        min_delta=_check(_join(es_path, "min_delta"), v.non_negative, e.get("min_delta", default.min_delta)),
        restore_best_weights=_check(_join(es_path, "restore_best_weights"), v.boolean,
                                    e.get("restore_best_weights", default.restore_best_weights)),
    )
    return RegularizationSpec(l1=l1, l2=l2, max_norm=max_norm, gradient_clip=ClipSpec(mode, threshold),
                              early_stopping=es)


def _parse_instrument(path: str, value: Any, default: InstrumentSpec) -> dict[str, Any]:
    extra = ("iterations",) if isinstance(default, SharpnessSpec) else ()
    d = _object(path, value, ("enabled", "every", *extra))
    out = {"enabled": _check(_join(path, "enabled"), v.boolean, d.get("enabled", default.enabled)),
           "every": _check(_join(path, "every"), v.positive_int, d.get("every", default.every), high=1_000_000)}
    if extra:
        out["iterations"] = _check(_join(path, "iterations"), v.positive_int,
                                   d.get("iterations", default.iterations), high=200)  # type: ignore[attr-defined]
    return out


def _parse_instruments(path: str, value: Any) -> InstrumentsSpec:
    d = _object(path, value, tuple(InstrumentsSpec().to_dict()))
    default = InstrumentsSpec()
    return InstrumentsSpec(
        probe_examples=_check(_join(path, "probe_examples"), v.positive_int,
                              d.get("probe_examples", default.probe_examples), high=MAX_BATCH_SIZE),
        sharpness=SharpnessSpec(**_parse_instrument(_join(path, "sharpness"), d.get("sharpness", {}),
                                                    default.sharpness)),
        noise=InstrumentSpec(**_parse_instrument(_join(path, "noise"), d.get("noise", {}), default.noise)),
        effective_learning_rate=InstrumentSpec(**_parse_instrument(
            _join(path, "effective_learning_rate"), d.get("effective_learning_rate", {}),
            default.effective_learning_rate)),
        distributions=InstrumentSpec(**_parse_instrument(_join(path, "distributions"), d.get("distributions", {}),
                                                         default.distributions)),
    )


def _parse_checkpoints(path: str, value: Any) -> CheckpointsSpec:
    d = _object(path, value, tuple(CheckpointsSpec().to_dict()))
    default = CheckpointsSpec()
    return CheckpointsSpec(
        every=_check(_join(path, "every"), v.positive_int, d.get("every", default.every), high=MAX_CHECKPOINT_EVERY),
        keep=_check(_join(path, "keep"), v.integer, d.get("keep", default.keep), low=0, high=MAX_CHECKPOINTS),
    )


def _parse_training(path: str, value: Any) -> TrainingSpec:
    d = _object(path, value, (*TrainingSpec().to_dict(), "instruments", "checkpoints", "blas_threads"))
    t = TrainingSpec()
    return TrainingSpec(
        epochs=_check(_join(path, "epochs"), v.positive_int, d.get("epochs", t.epochs), high=MAX_EPOCHS),
        batch_size=_check(_join(path, "batch_size"), v.positive_int, d.get("batch_size", t.batch_size),
                          high=MAX_BATCH_SIZE),
        shuffle=_check(_join(path, "shuffle"), v.boolean, d.get("shuffle", t.shuffle)),
        diagnostics_every=_check(_join(path, "diagnostics_every"), v.positive_int,
                                 d.get("diagnostics_every", t.diagnostics_every), high=1_000_000),
        on_nan=_check(_join(path, "on_nan"), v.choice, d.get("on_nan", t.on_nan), NAN_POLICIES),
        max_rollbacks=_check(_join(path, "max_rollbacks"), v.integer, d.get("max_rollbacks", t.max_rollbacks),
                             low=0, high=100),
        dtype=_check(_join(path, "dtype"), v.choice, d.get("dtype", t.dtype), DTYPES),
        instruments=_parse_instruments(_join(path, "instruments"), d.get("instruments", {})),
        checkpoints=_parse_checkpoints(_join(path, "checkpoints"), d.get("checkpoints", {})),
        blas_threads=_parse_blas_threads(_join(path, "blas_threads"), d.get("blas_threads", t.blas_threads)),
    )


def _parse_blas_threads(path: str, value: Any) -> int | str:
    if value == "auto" or (isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_BLAS_THREADS):
        return value
    raise SpecError(path, f'must be "auto" or an integer from 1 to {MAX_BLAS_THREADS}, got {v.quote(value)}')


def parse_experiment(obj: Any) -> Experiment:
    """Validate untrusted JSON data and return the typed experiment (raises ``SpecError``)."""
    d = _object("", obj, ("format", "version", "name", "seed", "data", "model", "optimizer", "schedule",
                          "regularization", "training"))
    if d.get("format", FORMAT) != FORMAT:
        raise SpecError("format", f"must be {FORMAT!r}, got {v.quote(d.get('format'))}")
    version = d.get("version", VERSION)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise SpecError("version", f"must be a positive integer, got {v.quote(version)}")
    if version > VERSION:
        raise SpecError("version", f"this file was written by a newer Gradient Workbench (experiment "
                                   f"version {version}); this one reads versions up to {VERSION}")
    name = d.get("name", "experiment")
    if not isinstance(name, str) or len(name) > 200:
        raise SpecError("name", f"must be a text of at most 200 characters, got {v.quote(name)}")
    seed = _check("seed", v.integer, d.get("seed", 42), low=0, high=2**63 - 1)
    data = _parse_data("data", d.get("data", {}))
    model = _parse_model("model", d.get("model", {}))
    if not model.layers:
        raise SpecError("model.layers", "must hold at least one hidden layer")
    opt_name, opt_params = _component("optimizer", d.get("optimizer", {"name": "nadam"}), OPTIMIZERS)
    optimizer = ComponentSpec(opt_name, opt_params)
    lr = Experiment(optimizer=optimizer).learning_rate
    sched_name, sched_params = _component("schedule", d.get("schedule", {"name": "constant"}), SCHEDULES, lr)
    return Experiment(name=name, seed=seed, data=data, model=model, optimizer=optimizer,
                      schedule=ComponentSpec(sched_name, sched_params),
                      regularization=_parse_regularization("regularization", d.get("regularization", {})),
                      training=_parse_training("training", d.get("training", {})))


def load_experiment(path: str | Path) -> Experiment:
    """Read and validate an experiment JSON file; unreadable files raise ``SpecError`` too."""
    p = Path(path)
    try:
        text = v.read_regular(p, MAX_SPEC_BYTES).decode("utf-8")
    except FileNotFoundError:
        raise SpecError("", f"{p}: no such experiment file") from None
    except v.NotARegularFile as exc:
        raise SpecError("", f"{p}: is {exc.kind}, not an experiment file; only regular files are read") from None
    except OSError as exc:
        raise SpecError("", f"{p}: cannot be read ({v.quote(exc.strerror or str(exc))})") from None
    except UnicodeDecodeError as exc:
        raise SpecError("", f"{p}: cannot be read ({exc})") from None
    try:
        obj = json.loads(text, object_pairs_hook=note_repeated_keys)
    except json.JSONDecodeError as exc:
        raise SpecError("", f"{p}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    except RecursionError:
        raise SpecError("", f"{p}: nested too deeply to be an experiment") from None
    except ValueError as exc:  # an integer with more digits than Python converts
        raise SpecError("", f"{p}: not valid JSON ({v.quote(str(exc))})") from None
    repeated = first_repeated_key(obj)
    if repeated is not None:
        raise SpecError(repeated[0], repeated_key_message(p, repeated))
    return parse_experiment(obj)


class _RepeatedKeys(dict):
    """A JSON object whose text gave a key more than once (``repeated``: the key, its first and
    its last value). JSON keeps the last silently, so an edit that added a field already set
    further up would be ignored without a word."""

    repeated: tuple[str, Any, Any]


def note_repeated_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``json.loads``'s ``object_pairs_hook`` that marks an object whose text gave a key twice
    (``first_repeated_key`` then finds where)."""
    out: dict[str, Any] = {}
    repeated = None
    for key, value in pairs:
        if key in out and repeated is None:
            repeated = (key, out[key], value)
        out[key] = value
    if repeated is None:
        return out
    marked = _RepeatedKeys(out)
    marked.repeated = repeated
    return marked


def first_repeated_key(obj: Any) -> tuple[str, Any, Any] | None:
    """(field path, first value, last value) of the first key given twice, outer objects first
    (found after parsing, since the parser's hook does not know where an object sits). A loop,
    not recursion: the file may nest as deep as the parser allowed."""
    stack: list[tuple[str, Any]] = [("", obj)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, _RepeatedKeys):
            key, first, last = node.repeated
            return _join(path, key), first, last
        children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        stack.extend(reversed([(_join(path, key), child) for key, child in children]))
    return None


def repeated_key_message(file: Path, repeated: tuple[str, Any, Any]) -> str:
    """What to say of the key ``first_repeated_key`` found given twice in ``file``."""
    _, first, last = repeated
    return (f"given twice in {file} ({v.quote(first)}, then {v.quote(last)}); each field may appear once in an "
            "object: delete the one you do not mean")


# ----------------------------------------------------------------------------- field paths

_TOKEN = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)|\[(\*|\d+)\]|(\.)")


def parse_path(text: str) -> tuple[str | int, ...]:
    """``"model.layers[*].activation"`` → ``("model", "layers", "*", "activation")``.

    Field names are identifiers, indices non-negative integers, ``*`` every element."""
    if not isinstance(text, str) or not text:
        raise ValueError(f"must be a field path such as \"optimizer.learning_rate\", got {text!r}")
    tokens: list[str | int] = []
    pos, expect_name = 0, True
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise ValueError(f"cannot read {text!r} at character {pos + 1} ({text[pos]!r}); a path is "
                             "names joined by dots, with [i] or [*] after a list")
        name, index, dot = m.groups()
        if name is not None:
            if not expect_name:
                raise ValueError(f"cannot read {text!r}: a dot must separate {tokens[-1]!r} and {name!r}")
            tokens.append(name)
            expect_name = False
        elif index is not None:
            if expect_name:
                raise ValueError(f"cannot read {text!r}: [{index}] must follow a field name")
            tokens.append("*" if index == "*" else int(index))
        else:
            if expect_name:
                raise ValueError(f"cannot read {text!r}: a field name is missing before character {pos + 1}")
            expect_name = True
        pos = m.end()
    if expect_name:
        raise ValueError(f"cannot read {text!r}: it ends with a dot")
    return tuple(tokens)


def format_path(tokens: tuple[str | int, ...]) -> str:
    out = ""
    for t in tokens:
        out += f"[{t}]" if isinstance(t, int) or t == "*" else (f".{t}" if out else t)
    return out


def set_path(obj: Any, tokens: tuple[str | int, ...], value: Any) -> list[tuple[str | int, ...]]:
    """Set ``value`` (a deep copy each time) at every place ``tokens`` address in ``obj``, in
    place; returns the concrete paths set. The last field may be new (a parameter the
    canonical form leaves out); everything before it must exist."""
    done: list[tuple[str | int, ...]] = []

    def walk(node: Any, i: int, where: tuple[str | int, ...]) -> None:
        token = tokens[i]
        last = i == len(tokens) - 1
        keys: list[str | int]
        if isinstance(token, str) and token != "*":
            if not isinstance(node, dict):
                raise ValueError(f"{format_path(where) or 'the experiment'} is not an object, so it has "
                                 f"no field {token!r}")
            if token not in node and not last:
                known = ", ".join(node) or "none"
                raise ValueError(f"{format_path((*where, token))} does not exist in the base experiment "
                                 f"(fields here: {known})")
            keys = [token]
        else:
            if not isinstance(node, list):
                raise ValueError(f"{format_path(where)} is not a list, so [{token}] does not apply")
            if token != "*" and token >= len(node):
                raise ValueError(f"{format_path((*where, token))} does not exist: the base has {len(node)} "
                                 f"element(s) there")
            keys = list(range(len(node))) if token == "*" else [token]
        for key in keys:
            if last:
                node[key] = copy.deepcopy(value)
                done.append((*where, key))
            else:
                walk(node[key], i + 1, (*where, key))

    walk(obj, 0, ())
    return done


def get_path(obj: Any, tokens: tuple[str | int, ...]) -> Any:
    """The value at a concrete path (no ``*``)."""
    for t in tokens:
        obj = obj[t]
    return obj

def path_exists(obj: Any, tokens: tuple[str | int, ...]) -> bool:
    for t in tokens:
        if isinstance(t, int):
            if not isinstance(obj, list) or t >= len(obj):
                return False
        elif not isinstance(obj, dict) or t not in obj:
            return False
        obj = obj[t]
    return True


class FieldPathError(ValueError):
    """A change that cannot be applied; ``index`` says which of the changes."""

    def __init__(self, index: int, message: str) -> None:
        self.index = index
        super().__init__(message)


# Parameters owned by a component's name: when a change renames the component, these are reset
# (Adam's beta_1 means nothing to SGD), unless a change sets them explicitly too.
_ACTIVATION_PARAMS = sorted({p for name in ACTIVATIONS.names() for p in ACTIVATIONS.get(name).parameters()})
_KEPT_ON_RENAME = {"optimizer": ("name", "learning_rate"), "schedule": ("name",)}


def apply_changes(base: Mapping[str, Any], changes: list[tuple[tuple[str | int, ...], Any]]) -> dict[str, Any]:
    """A copy of the experiment dict ``base`` with each ``(path tokens, value)`` set in turn (the
    sweep's axes, the ``branch`` command's ``--set``). Renaming an activation, optimizer or
    schedule drops the old one's parameters that no change sets. The result is not validated:
    ``parse_experiment`` does that."""
    exp = copy.deepcopy(dict(base))
    explicit: set[tuple[str | int, ...]] = set()
    renamed: list[tuple[str | int, ...]] = []   # components whose name a change renamed
    for i, (tokens, value) in enumerate(changes):
        try:
            paths = set_path(exp, tokens, value)
        except ValueError as exc:
            raise FieldPathError(i, str(exc)) from None
        explicit.update(paths)
        for p in paths:
            parent, key = p[:-1], p[-1]
            old = get_path(base, p) if path_exists(base, p) else None
            if old == value:
                continue
            if key == "activation" or (parent in (("optimizer",), ("schedule",)) and key == "name"):
                renamed.append(p)
    for p in renamed:
        parent, key = p[:-1], p[-1]
        node = get_path(exp, parent)
        if key == "activation":
            stale = [k for k in _ACTIVATION_PARAMS if k in node]
        else:
            stale = [k for k in list(node) if k not in _KEPT_ON_RENAME[str(parent[0])]]
        for k in stale:
            if (*parent, k) not in explicit:
                del node[k]
    return exp
