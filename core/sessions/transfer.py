"""Transfer learning: reuse the lower layers of a saved session (chapter 11, "Reusing
Pretrained Layers").

The experiment says where its weights come from (``model.transfer``, see ``core.spec``):
copy hidden layers ``i`` of a saved session into hidden layers ``i`` of the new model —
kernel, bias, batch-norm γ/β and moving statistics — and keep some of them frozen for the
first epochs while the new upper layers learn. Everything that can go wrong with the
source file (unreadable, damaged, a different input width, a changed unit count, a layer it
does not have) is a ``SpecError`` naming the ``model.transfer.*`` field, raised before the
model is touched. What was copied is described by *lineage* entries, stored in the new
session's ``state.json`` so a session always says where each reused layer came from.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from core.engine.network import Network
from core.engine.validation import excerpt, printable, quote
from core.spec import SpecError, TransferSpec

from .format import Session, SessionError, load_session

LAYER_ARRAYS = ("kernel", "bias", "gamma", "beta", "moving_mean", "moving_variance")


def source_path(transfer: TransferSpec, base_dir: str | Path | None) -> Path:
    """The source session file: ``from`` resolved against the spec file's folder."""
    path = Path(transfer.source).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = Path(base_dir) / path
    return path


def load_source(transfer: TransferSpec, base_dir: str | Path | None) -> Session:
    path = source_path(transfer, base_dir)
    try:
        return load_session(path)
    except SessionError as exc:
        raise SpecError("model.transfer.from", f"cannot reuse layers of {quote(transfer.source)}: {exc}") from None


def resolve_layers(transfer: TransferSpec, n_source: int, n_target: int,
                   name: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(copied, frozen) hidden-layer indices, with the defaults filled in and checked against
    the source's depth."""
    if transfer.layers is None:
        if n_source > n_target:
            raise SpecError("model.transfer.layers", f"{name} has {n_source} hidden layers but this model only "
                                                     f"{n_target}; list the layers to copy")
        layers = tuple(range(n_source))
    else:
        layers = transfer.layers
        for j, index in enumerate(layers):
            if index >= n_source:
                raise SpecError(f"model.transfer.layers[{j}]",
                                f"{name} has only {n_source} hidden layers (0..{n_source - 1}), no layer {index}")
    freeze = layers if transfer.freeze is None else transfer.freeze
    for j, index in enumerate(freeze):
        if index not in layers:
            raise SpecError(f"model.transfer.freeze[{j}]",
                            f"layer {index} is not copied from {name} (copied: {list(layers)}); "
                            "only copied layers can be frozen")
    return layers, freeze


def _conflict(index: int, source: Session, network: Network, data_name: str, name: str) -> str | None:
    """Why source layer ``index`` cannot go into this network's layer ``index`` (None if it can)."""
    src_row, row = source.experiment.model.layers[index], network.spec.layers[index]
    kernel = source.weights.get(f"layers.{index}.kernel")
    if kernel is None or kernel.ndim != 2:
        return f"{name} holds no kernel for layer {index}"
    target = network.layers[index].dense.kernel
    if kernel.shape[1] != target.shape[1]:
        return (f"layer {index} has {kernel.shape[1]} units in {name} but model.layers[{index}].units is "
                f"{target.shape[1]}")
    if kernel.shape[0] != target.shape[0]:
        if index == 0:
            return (f"layer 0 of {name} takes {kernel.shape[0]} inputs, but this experiment's data ({data_name}) "
                    f"has {target.shape[0]} features; the same kind of input is needed to reuse it")
        return (f"layer {index} of {name} takes {kernel.shape[0]} inputs, but here it gets {target.shape[0]} "
                f"from model.layers[{index - 1}]")
    if src_row.use_bias != row.use_bias:
        return (f"layer {index} {'has' if src_row.use_bias else 'has no'} bias in {name} but "
                f"model.layers[{index}].use_bias is {str(row.use_bias).lower()}")
    if src_row.batch_norm != row.batch_norm:
        return (f"layer {index} has batch_norm {src_row.batch_norm!r} in {name} but model.layers[{index}]."
                f"batch_norm is {row.batch_norm!r}; its statistics only fit the same position")
    return None


def apply_transfer(network: Network, transfer: TransferSpec, base_dir: str | Path | None,
                   data_name: str) -> list[dict[str, Any]]:
    """Copy the source's layers into ``network`` and return the lineage entries.

    Everything is checked before the first array is copied."""
    source = load_source(transfer, base_dir)
    name = transfer.source
    layers, freeze = resolve_layers(transfer, len(source.experiment.model.layers), len(network.layers), name)
    for j, index in enumerate(layers):
        reason = _conflict(index, source, network, data_name, name)
        if reason is not None:
            field = "model.transfer.layers" + ("" if transfer.layers is None else f"[{j}]")
            raise SpecError(field, reason)
    own = {**network.parameters(), **network.buffers()}
    for index in layers:
        for part in LAYER_ARRAYS:
            key = f"layers.{index}.{part}"
            if key in own:
                own[key][...] = source.weights[key]
    sha = source.manifest.get("sha256", {}).get("weights.npz")
    ancestors = {e.get("layer"): e for e in source.state.get("lineage", []) if isinstance(e, dict)}
    epochs = source.history.get("epoch")
    lineage = []
    for index in layers:
        entry: dict[str, Any] = {
            "layer": index, "source_layer": index, "from": transfer.source,
            "path": os.path.normpath(source_path(transfer, base_dir)), "weights_sha256": sha,
            "source_experiment": source.experiment.name,
            "source_epochs": 0 if epochs is None else int(len(epochs)),
            "frozen": index in freeze,
        }
        if index in ancestors:
            entry["lineage"] = ancestors[index]
        lineage.append(entry)
    return lineage


def describe_lineage(lineage: list[dict[str, Any]], layer_names: list[str],
                     unfreeze_at_epoch: int | None = None) -> list[str]:
    """Text lines for ``gradient-workbench info``: one per reused layer, older origins indented."""
    if not lineage:
        return ["  none: every layer was trained from its initialization"]
    lines = []
    for entry in lineage:
        layer = entry.get("layer", -1)
        index = layer if isinstance(layer, int) and not isinstance(layer, bool) else -1
        label = layer_names[index] if 0 <= index < len(layer_names) else f"layers.{index}"
        frozen = ""
        if entry.get("frozen"):
            frozen = (", frozen until epoch " + str(unfreeze_at_epoch)) if unfreeze_at_epoch else ", frozen"
        lines.append(f"  {label:<32} <- {_origin(entry)}{frozen}")
        parent = entry.get("lineage")
        depth = 1
        while isinstance(parent, dict) and depth < 20:
            lines.append(f"  {'':<32} {'   ' * depth}<- {_origin(parent)}")
            parent = parent.get("lineage")
            depth += 1
    return lines


def _origin(entry: dict[str, Any]) -> str:
    sha = printable(str(entry.get("weights_sha256") or "?")[:12])
    # Every value comes from a file: quoted and cut, so none can run to megabytes or forge a line.
    return (f"layer {excerpt(entry.get('source_layer', '?'))} of {excerpt(entry.get('from', '?'), 200)} "
            f"({quote(entry.get('source_experiment', '?'))}, {excerpt(entry.get('source_epochs', '?'))} epochs, "
            f"weights sha256 {sha}…)")
