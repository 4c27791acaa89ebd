"""The text of the PyTorch script ``core.export.pytorch`` writes, with ``@@SLOT@@`` placeholders.

``pytorch_script`` fills every slot in one pass (:data:`SLOTS` lists them). The slots for user
strings (``@@NAME@@``, ``@@SOURCE@@``) receive Python literals written by ``repr`` and sit where
data belongs, never inside the script's docstring or comments; the tables the script dispatches
on (``@@ACTIVATIONS@@``, ``@@DROPOUTS@@``, ``@@INITIALIZERS@@``, ``@@LOSSES@@``, ``@@AUGCODE@@``) are written from
the exporter's tables, one entry per registry name.

The template is plain text for the script, so it is kept apart from the code that fills it: read
it as the script it becomes.
"""

import re

TEMPLATE = '''#!/usr/bin/env python3
"""A Gradient Workbench experiment as a self-contained PyTorch script (its name: EXPERIMENT below).

Exported by Gradient Workbench @@VERSION@@ on @@DATE@@ (the session file: EXPORTED_FROM below): a PyTorch
version of the experiment. It rebuilds the same data and split (the workbench's own NumPy generator
and seeds), the network, initialization, optimizer, learning-rate schedule and regularization, and
trains. Where PyTorch's built-ins follow other conventions than Keras (which the workbench follows),
a comment says so.

    python this_script.py [--epochs N] [--no-weights] [--data FILE] [--no-shuffle] [--save model.pt]

Needs: @@NEEDS@@. The weights PyTorch draws differ from the workbench's (another random generator);
the session's own weights are loaded when it was exported with --with-weights.
"""

from __future__ import annotations

import argparse
import bisect
import copy
import math
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
from torch import nn

EXPERIMENT = @@NAME@@  # the experiment's name
EXPORTED_FROM = @@SOURCE@@  # the session file it was exported from
SEED = @@SEED@@
EPOCHS = @@EPOCHS@@
BATCH_SIZE = @@BATCH@@
SHUFFLE = @@SHUFFLE@@
VALIDATION_SPLIT, TEST_SPLIT = @@VALSPLIT@@, @@TESTSPLIT@@
STANDARDIZE = @@STANDARDIZE@@  # with statistics of the training split only
DTYPE = @@DTYPE@@
WEIGHTS = @@WEIGHTS@@

# ------------------------------------------------------------------------------------------- data

@@DATA@@

@@SPLIT@@

def load_data(data_path=None):
    """Train / validation / test arrays exactly as the workbench makes them: the seed's first three
    child streams feed the data generator, the split and (in the workbench) the initialization; the
    fourth shuffles the batches."""
    global DATA_PATH
    if data_path is not None:
        DATA_PATH = Path(data_path)
    data_rng, split_rng, _init_rng, train_rng = (np.random.Generator(np.random.PCG64(s))
                                                 for s in np.random.SeedSequence(SEED).spawn(4))
    X, y, *published = load_dataset(data_rng)
    classification = y.ndim == 1
    if not published:
        train, val, test = stratified_split(y if classification else np.zeros(len(y)), VALIDATION_SPLIT,
                                            TEST_SPLIT, split_rng, stratify=classification)
    else:  # a published test set (the book's data sets) is the test split; validation is cut from the rest
        test = published[0]
        rest = np.setdiff1d(np.arange(len(y)), test, assume_unique=True)
        part_train, part_val, _ = stratified_split(y[rest], VALIDATION_SPLIT, 0.0, split_rng, stratify=True)
        train, val = rest[part_train], rest[part_val]
    X = X.astype(DTYPE)
    if not classification:
        y = y.astype(DTYPE)
    mean, std = np.zeros(X.shape[1], DTYPE), np.ones(X.shape[1], DTYPE)
    if STANDARDIZE:
        mean = X[train].mean(axis=0)
        std = X[train].std(axis=0)
        std = np.where(std > 0, std, 1).astype(DTYPE)

    def standardize(A):
        return ((A - mean) / std).astype(DTYPE, copy=False)

    raw_train = AUGMENTATION == "shift"  # pixel shifts act on raw images; standardized per batch
    return {"X_train": X[train] if raw_train else standardize(X[train]), "y_train": y[train],
            "X_val": standardize(X[val]), "y_val": y[val], "X_test": standardize(X[test]), "y_test": y[test],
            "standardize": standardize, "rng": train_rng, "classification": classification}


AUGMENTATION, AUGMENTATION_PARAMS = @@AUGMENT@@, @@AUGPARAMS@@


@@AUGCODE@@

# ---------------------------------------------------------------------------------------- network

N_INPUTS, N_OUTPUTS = @@INPUTS@@, @@OUTPUTS@@
INPUT_DROPOUT = @@INPUTDROPOUT@@
# One row of the workbench's layer table each: Dense → [batch norm] → activation → [batch norm] → [dropout]
LAYERS = @@LAYERS@@
OUTPUT_INIT = @@OUTINIT@@


def normal_with_variance(weight, variance):
    return nn.init.normal_(weight, 0.0, math.sqrt(variance))  # Keras would truncate at 2σ


def uniform_with_variance(weight, variance):
    limit = math.sqrt(3.0 * variance)  # U(−r, r) has variance r²/3
    return nn.init.uniform_(weight, -limit, limit)


# The workbench's initializers (Table 11-1), untruncated: init (its LAYERS entry) → torch's in-place initialization
@@INITIALIZERS@@


def init_kernel(weight, init):
    """torch's weight is (fan_out, fan_in), the transpose of the Keras kernel, so fan_in = weight.shape[1]."""
    fan_out, fan_in = weight.shape
    return INITIALIZERS[init["name"]](weight, init, fan_in, fan_out)


# The workbench's activations as torch modules; row: the layer's entry of LAYERS (for alpha)
@@ACTIVATIONS@@

# The layer's dropout (its dropout_type) at its rate
@@DROPOUTS@@


def batch_norm(units):
    # Keras's moving = 0.99·moving + 0.01·batch is torch's momentum 0.01 (torch weighs the new batch).
    # torch updates running_var with the unbiased batch variance (×m/(m−1)); Keras and the workbench use
    # the biased one (Eq. 11-3), so inference statistics differ by about 1/batch size.
    return nn.BatchNorm1d(units, eps=1e-5, momentum=0.01)


def build_model():
    torch.manual_seed(SEED)
    layers = OrderedDict()
    if INPUT_DROPOUT:
        layers["input_dropout"] = nn.Dropout(INPUT_DROPOUT)
    fan_in = N_INPUTS
    for i, row in enumerate(LAYERS):
        dense = layers[f"dense_{i}"] = nn.Linear(fan_in, row["units"], bias=row["use_bias"])
        init_kernel(dense.weight, row["init"])
        if dense.bias is not None:
            nn.init.zeros_(dense.bias)
        if row["batch_norm"] == "before_activation":
            layers[f"bn_{i}"] = batch_norm(row["units"])
        layers[f"act_{i}"] = ACTIVATIONS[row["activation"]](row)
        if row["batch_norm"] == "after_activation":
            layers[f"bn_{i}"] = batch_norm(row["units"])
        if row["dropout"]:
            layers[f"dropout_{i}"] = DROPOUTS[row.get("dropout_type", "standard")](row["dropout"])
        fan_in = row["units"]
    output = layers["output"] = nn.Linear(fan_in, N_OUTPUTS)  # logits: the activation is in the loss
    init_kernel(output.weight, OUTPUT_INIT)
    nn.init.zeros_(output.bias)
    model = nn.Sequential(layers)
    return model.double() if DTYPE == "float64" else model


def load_weights(model, path):
    """The session's weights: PyTorch names, kernels already transposed to (out, in)."""
    with np.load(path, allow_pickle=False) as npz:
        state = {k: torch.from_numpy(npz[k]) for k in npz.files}
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert not unexpected and all(k.endswith("num_batches_tracked") for k in missing), (missing, unexpected)
    return model


# ------------------------------------------------------------------------ optimizer and schedule

@@HELPER@@def make_optimizer(params):
@@MAKEOPT@@

PLATEAU_MONITOR = None  # the metric a reduce-on-plateau schedule watches (set below when it is one)
@@SCHEDULE@@
# --------------------------------------------------------------------------------- regularization

L1, L2 = @@L1@@, @@L2@@  # cost l1·Σ|W| + l2·ΣW² over kernels only (Keras's; torch's weight_decay would be 2·l2)
MAX_NORM = @@MAXNORM@@  # each unit's incoming weights rescaled to ‖w‖₂ ≤ r after every step
CLIP_MODE, CLIP_THRESHOLD = @@CLIPMODE@@, @@CLIPT@@  # value / norm (per tensor) / global_norm
EARLY_STOPPING, MONITOR, PATIENCE, MIN_DELTA, RESTORE_BEST = @@ES@@, @@ESMON@@, @@ESPAT@@, @@ESDELTA@@, @@ESRESTORE@@
ON_NAN = @@ONNAN@@  # "stop" (the workbench's "rollback" is not reproduced here: stop instead)
FROZEN, UNFREEZE_AT_EPOCH, UNFREEZE_LR_FACTOR = @@FROZEN@@, @@UNFREEZE@@, @@LRFACTOR@@  # model.transfer


def kernels(model):
    return [m.weight for m in model if isinstance(m, nn.Linear)]


def penalty(model):
    total = 0.0
    for w in kernels(model):
        if L1:
            total = total + L1 * w.abs().sum()
        if L2:
            total = total + L2 * (w * w).sum()
    return total


def clip_gradients(model):
    params = [p for p in model.parameters() if p.grad is not None]
    if CLIP_MODE == "value":
        nn.utils.clip_grad_value_(params, CLIP_THRESHOLD)
    elif CLIP_MODE == "norm":  # Keras's clipnorm: each tensor on its own
        for p in params:
            nn.utils.clip_grad_norm_([p], CLIP_THRESHOLD)
    elif CLIP_MODE == "global_norm":
        nn.utils.clip_grad_norm_(params, CLIP_THRESHOLD)


@torch.no_grad()
def apply_max_norm(model):
    if MAX_NORM is not None:
        for w in kernels(model):
            w.copy_(torch.renorm(w, p=2, dim=0, maxnorm=MAX_NORM))  # rows of (out, in) = a unit's weights


def set_frozen(model, frozen):
    for i in FROZEN:
        for name in (f"dense_{i}", f"bn_{i}"):
            if hasattr(model, name):
                getattr(model, name).requires_grad_(not frozen)
                if frozen and name.startswith("bn_"):
                    getattr(model, name).eval()  # frozen layers keep their batch-norm statistics


# ---------------------------------------------------------------------------------------- training

LOSS_NAME = @@LOSSNAME@@


# The workbench's losses as torch's, on the logits (the output activation is in the loss)
@@LOSSES@@


def make_loss(classification):
    name = LOSS_NAME if LOSS_NAME != "auto" else ("softmax_cross_entropy" if classification else "mse")
    return LOSSES[name]()


def targets(y, loss):
    t = torch.from_numpy(np.ascontiguousarray(y))
    if isinstance(loss, nn.CrossEntropyLoss):
        return t.long()
    return t.reshape(len(t), -1).to(torch.float64 if DTYPE == "float64" else torch.float32)


def correct(logits, y):
    if logits.shape[1] == 1:
        return int(((logits[:, 0] > 0).long() == torch.from_numpy(y).reshape(-1).long()).sum())
    return int((logits.argmax(dim=1) == torch.from_numpy(y)).sum())


@torch.no_grad()
def evaluate(model, X, y, loss_fn, classification):
    """(loss, accuracy) in inference mode; the loss includes the ℓ1/ℓ2 penalty, as Keras reports it."""
    if len(X) == 0:
        return math.nan, math.nan
    model.eval()
    logits = model(torch.from_numpy(X))
    loss = float(loss_fn(logits, targets(y, loss_fn)) + penalty(model))
    return loss, correct(logits, y) / len(y) if classification else math.nan


def train(model, data, epochs=EPOCHS, shuffle=SHUFFLE, verbose=True):
    """Mini-batch training as the workbench does it; returns the per-epoch history."""
    loss_fn = make_loss(data["classification"])
    optimizer = make_optimizer(model.parameters())
    scheduler = @@SCHEDULER@@
    X, y = data["X_train"], data["y_train"]
    history = {k: [] for k in ("loss", "accuracy", "val_loss", "val_accuracy", "learning_rate")}
    best, best_epoch, wait, best_state = None, 0, 0, None
    frozen = bool(FROZEN) and (UNFREEZE_AT_EPOCH is None or UNFREEZE_AT_EPOCH > 0)
    for epoch in range(epochs):
        model.train()
        set_frozen(model, frozen)
        order = data["rng"].permutation(len(X)) if shuffle else np.arange(len(X))
        loss_sum, hits, seen = 0.0, 0, 0
        for start in range(0, len(X), BATCH_SIZE):
            idx = order[start:start + BATCH_SIZE]
            xb = torch.from_numpy(augment(X[idx], data))
            logits = model(xb)
            loss = loss_fn(logits, targets(y[idx], loss_fn)) + penalty(model)
            if not math.isfinite(loss.item()):
                print(f"epoch {epoch + 1}: the loss became {loss.item()}; training stops (on_nan: {ON_NAN})")
                return history
            optimizer.zero_grad()
            loss.backward()
            clip_gradients(model)
            optimizer.step()
            apply_max_norm(model)
            if scheduler is not None and not isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                scheduler.step()
            loss_sum += loss.item() * len(idx)
            hits += correct(logits.detach(), y[idx]) if data["classification"] else 0
            seen += len(idx)
        val_loss, val_acc = evaluate(model, data["X_val"], data["y_val"], loss_fn, data["classification"])
        logs = {"loss": loss_sum / seen, "accuracy": hits / seen if data["classification"] else math.nan,
                "val_loss": val_loss, "val_accuracy": val_acc, "learning_rate": optimizer.param_groups[0]["lr"]}
        for k, v in logs.items():
            history[k].append(v)
        if verbose:
            print(f"epoch {epoch + 1}/{epochs}  " + "  ".join(f"{k} {v:.4f}" for k, v in logs.items()
                                                             if not math.isnan(v)), flush=True)
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            scheduler.step(logs[PLATEAU_MONITOR])
        if frozen and UNFREEZE_AT_EPOCH is not None and epoch + 1 >= UNFREEZE_AT_EPOCH:
            frozen = False
            for group in optimizer.param_groups:
                group["lr"] *= UNFREEZE_LR_FACTOR
        if EARLY_STOPPING:
            value = logs[MONITOR]
            better = math.isfinite(value) and (best is None or (value > best + MIN_DELTA if "accuracy" in MONITOR
                                                                  else value < best - MIN_DELTA))
            if better:
                best, best_epoch, wait, best_state = value, epoch + 1, 0, copy.deepcopy(model.state_dict())
            else:
                wait += 1
                if wait >= PATIENCE:
                    print(f"early stopping: {MONITOR} has not improved for {PATIENCE} epochs (best {best:.4g} "
                          f"at epoch {best_epoch})")
                    if RESTORE_BEST and best_state is not None:
                        model.load_state_dict(best_state)
                    break
    return history


def main():
    parser = argparse.ArgumentParser(description=EXPERIMENT)
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--no-weights", action="store_true", help="start from a fresh initialization")
    parser.add_argument("--no-shuffle", action="store_true", help="batches in data order")
    parser.add_argument("--data", help="the data file (for npz / csv sources)")
    parser.add_argument("--save", help="save the trained state_dict here (torch.save)")
    args = parser.parse_args()
    if DTYPE == "float64":
        torch.set_default_dtype(torch.float64)
    data = load_data(args.data)
    model = build_model()
    if WEIGHTS is not None and not args.no_weights:
        load_weights(model, WEIGHTS)
    print(model)
    train(model, data, args.epochs, shuffle=SHUFFLE and not args.no_shuffle)
    if len(data["X_test"]):
        loss, acc = evaluate(model, data["X_test"], data["y_test"], make_loss(data["classification"]),
                             data["classification"])
        print(f"test loss {loss:.4f}" + ("" if math.isnan(acc) else f"  test accuracy {acc:.4f}"))
    if args.save:
        torch.save(model.state_dict(), args.save)


if __name__ == "__main__":
    main()
'''

# Every placeholder of the template, without its @@ marks
SLOTS = frozenset(re.findall(r"@@([A-Z0-9]+)@@", TEMPLATE))
