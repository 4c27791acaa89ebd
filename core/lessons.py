"""Chapter 11 as ten guided lessons: what to load, where to look, and a check of the run.

A lesson starts from a bundled experiment (a preset of ``core.presets``, or for transfer
learning an example of the model zoo), says in a few sentences what to watch and in which
part of the window, and after a run *checks* it: a plain function of the run's history that
returns a ``Verdict`` — did the effect the lesson is about appear, and the number measured.
The window's Lessons panel and the step lists of ``docs/guide/`` are both made from the
``LESSONS`` below (``python -m core.lessons docs/guide`` rewrites the guide's lesson blocks;
a test keeps them equal).

The checks read what the trainer records: per-step gradient norms ‖∂L/∂W_l‖ of every layer's
kernel (before any clipping), the dead fraction of each layer's units, and the per-epoch
losses, accuracies and learning rate. "Late in the run" means the median over the last
epoch's recorded steps, so one noisy batch does not decide a verdict.
"""

from __future__ import annotations

import copy
import math
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.presets import PRESETS
from core.spec import Experiment, parse_experiment
from core.training import Trainer

#: A gradient ratio this large between the lowest and the highest hidden layer is a vanishing
#: (or, inverted, an exploding) gradient; within it the layers learn at comparable speeds.
VANISHING_RATIO = 100.0
#: Every hidden layer's gradient within this factor of every other's: a healthy network.
HEALTHY_SPREAD = 10.0
#: Self-normalized: every SELU layer's output standard deviation within this factor of 1 at the
#: start of training (Klambauer et al.'s fixed point is exactly 1) ...
NORMALIZED_FACTOR = 1.25
#: ... and it has broken once a layer's standard deviation is this far from 1.
BROKEN_FACTOR = 1.5


@dataclass(frozen=True)
class Verdict:
    """``appeared``: the effect the lesson is about showed in the run; ``value``: the number
    measured (what ``text`` quotes); ``text``: one or two sentences for the student."""

    appeared: bool
    value: float
    text: str


@dataclass(frozen=True)
class RunRecord:
    """What a check reads of a finished (or stopped) run.

    ``history`` holds the per-epoch metrics (``val_accuracy``, ``loss``, ``learning_rate`` …)
    and the per-step diagnostics tables (``grad_norm``: steps × layers, input to output, the
    output layer last; ``dead_fraction``), as ``Trainer.history_arrays`` returns them."""

    experiment: Experiment
    history: Mapping[str, np.ndarray]
    layer_names: Sequence[str]
    events: Sequence[Mapping[str, Any]] = ()
    steps_per_epoch: int = 1
    base_dir: str | Path | None = None

    @classmethod
    def from_trainer(cls, trainer: Trainer, base_dir: str | Path | None = None) -> RunRecord:
        return cls(trainer.experiment, trainer.history_arrays(), list(trainer.network.layer_names),
                   [dict(e) for e in trainer.events], trainer.steps_per_epoch, base_dir)

    @property
    def epochs(self) -> int:
        return len(self.history.get("val_accuracy", ()))

    def short_name(self, index: int) -> str:
        """``dense_3`` of ``dense_3 (elu, 100)``."""
        return self.layer_names[index].split(" ")[0]

    @property
    def n_classes(self) -> int:
        """Classes of the task, from the output layer's width (one sigmoid unit: two classes)."""
        width = re.search(r"(\d+)\)$", self.layer_names[-1])
        return max(2, int(width.group(1))) if width else 2

    def late(self, quantity: str) -> np.ndarray:
        """Per layer, the median of ``quantity`` over the last epoch's recorded steps."""
        table = np.asarray(self.history[quantity], dtype=np.float64)
        if len(table) == 0:
            raise ValueError("the run recorded no steps")
        window = max(1, self.steps_per_epoch // max(1, self.experiment.training.diagnostics_every))
        return np.median(table[-window:], axis=0)

    def divergence(self) -> str | None:
        """The message of the event that ended the run on a NaN or infinity, if one did."""
        for event in self.events:
            if event.get("kind") == "diverged":
                return str(event.get("message", "diverged"))
        return None

    def best_val_accuracy(self) -> float:
        acc = np.asarray(self.history.get("val_accuracy", ()), dtype=np.float64)
        return float(np.nanmax(acc)) if len(acc) and np.isfinite(acc).any() else math.nan


def times(ratio: float) -> str:
    """A ratio as a student reads it: ``7.8e7`` for large ones, ``3.4`` for small ones."""
    if not math.isfinite(ratio):
        return "infinitely many"
    if ratio >= 1000:
        mantissa, exponent = f"{ratio:.1e}".split("e")
        return f"{mantissa}e{int(exponent)}"
    return f"{ratio:.2g}" if ratio < 10 else f"{ratio:.0f}"


def _percent(x: float) -> str:
    return f"{100 * x:.0f} %"


def _no_run(run: RunRecord) -> Verdict | None:
    message = run.divergence()
    if message is not None:
        return Verdict(False, math.nan, f"The run diverged ({message.removeprefix('diverged: ')}): there is "
                                        "nothing to measure. Lower the learning rate and train again.")
    if run.epochs == 0 or len(run.history.get("grad_norm", ())) == 0:
        return Verdict(False, math.nan, "Train for at least one epoch first.")
    return None


def _hidden_gradients(run: RunRecord) -> np.ndarray:
    """Late gradient norm of each hidden layer's kernel (the output layer left out)."""
    return run.late("grad_norm")[:-1]


# ----------------------------------------------------------------------------- the checks


def check_vanishing(run: RunRecord) -> Verdict:
    """The ratio r = ‖∂L/∂W_top‖ / ‖∂L/∂W_0‖ of the highest to the lowest hidden layer's
    gradient late in the run: r ≥ 100 is a vanishing gradient, 1/r ≥ 100 an exploding one."""
    if (missing := _no_run(run)) is not None:
        return missing
    g = _hidden_gradients(run)
    low, top = run.short_name(0), run.short_name(len(g) - 1)
    ratio = float(g[-1] / g[0]) if g[0] > 0 else math.inf
    if ratio >= VANISHING_RATIO:
        return Verdict(True, ratio, f"{low}'s gradient is {times(ratio)}× smaller than {top}'s: "
                                    "the lower layers are not learning (vanishing gradients).")
    if ratio > 0 and 1 / ratio >= VANISHING_RATIO:
        return Verdict(True, ratio, f"{low}'s gradient is {times(1 / ratio)}× larger than {top}'s: "
                                    "the lower layers' updates are far too large (exploding gradients).")
    factor = max(ratio, 1 / ratio) if ratio > 0 else math.inf
    return Verdict(False, ratio, f"{low}'s and {top}'s gradients are within {times(factor)}× of each other: "
                                 "no vanishing or exploding gradients in this run.")


def check_initialization(run: RunRecord) -> Verdict:
    """The spread s = max_l ‖∂L/∂W_l‖ / min_l ‖∂L/∂W_l‖ over the hidden layers late in the
    run: with a matched initialization every layer gets a gradient of the same size (s ≤ 10)."""
    if (missing := _no_run(run)) is not None:
        return missing
    g = _hidden_gradients(run)
    spread = float(g.max() / g.min()) if g.min() > 0 else math.inf
    accuracy = run.best_val_accuracy()
    if spread <= HEALTHY_SPREAD:
        return Verdict(True, spread, f"Every hidden layer's gradient is within {times(spread)}× of every other's: "
                                     f"all layers learn (best validation accuracy {_percent(accuracy)}).")
    weakest = run.short_name(int(np.argmin(g)))
    return Verdict(False, spread, f"The hidden layers' gradients differ by {times(spread)}× ({weakest} gets the "
                                  f"smallest): the initialization does not keep the signal's variance "
                                  f"(best validation accuracy {_percent(accuracy)}).")


def check_dying_units(run: RunRecord) -> Verdict:
    """The largest fraction of a hidden layer's units that output 0 for the whole batch at the
    last recorded step (dead ReLUs): half or more is the dying-ReLU problem."""
    if (missing := _no_run(run)) is not None:
        return missing
    dead = np.asarray(run.history["dead_fraction"], dtype=np.float64)[-1][:-1]
    worst = int(np.argmax(dead))
    fraction = float(dead[worst])
    name = run.short_name(worst)
    if fraction >= 0.5:
        return Verdict(True, fraction, f"{_percent(fraction)} of {name}'s units are dead (they output 0 for every "
                                       "example, get no gradient and never recover): dying ReLUs.")
    return Verdict(False, fraction, f"At most {_percent(fraction)} of any layer's units are dead ({name}): "
                                    "the units stay alive.")


def check_self_normalization(run: RunRecord) -> Verdict:
    """Self-normalization (Klambauer et al., 2017): with LeCun normal initialization,
    standardized inputs and a plain stack of dense SELU layers (no ordinary dropout, no batch
    norm), each layer's outputs keep mean 0 and standard deviation σ_l = 1. The check reads σ_l
    of every hidden layer at the first recorded step — self-normalized if 1/1.25 ≤ σ_l ≤ 1.25
    for all l — then finds the first step at which some σ_l left [1/1.5, 1.5]: training moves
    the weights away from LeCun's variance 1/fan_in, and the guarantee holds only near it."""
    if (missing := _no_run(run)) is not None:
        return missing
    std = np.asarray(run.history["activation_std"], dtype=np.float64)[:, :-1]
    steps = np.asarray(run.history.get("step", np.arange(len(std))))
    first = std[0]
    worst = int(np.argmax(np.abs(np.log(first))))
    start = float(first[worst])
    if not (1 / NORMALIZED_FACTOR <= start <= NORMALIZED_FACTOR):
        return Verdict(False, start, f"At the first step {run.short_name(worst)}'s outputs have standard deviation "
                                     f"{start:.2f}, not ≈ 1: the network does not normalize itself. Check the "
                                     "conditions: SELU in every layer, LeCun normal init, standardized inputs, no "
                                     "batch norm, and alpha dropout instead of ordinary dropout.")
    far = np.abs(np.log(std)) > math.log(BROKEN_FACTOR)
    rows = np.flatnonzero(far.any(axis=1))
    if len(rows) == 0:
        return Verdict(True, start, f"Every layer's outputs kept a standard deviation within {BROKEN_FACTOR:g}× of 1 "
                                    f"for the whole run (at the start, the farthest was {start:.2f}): the network "
                                    "normalized itself throughout.")
    row = int(rows[0])
    layer = int(np.argmax(np.abs(np.log(std[row]))))
    step = int(steps[row]) if row < len(steps) else row
    epoch = step // max(1, run.steps_per_epoch) + 1
    return Verdict(True, start, f"At the start every layer's outputs had a standard deviation of ≈ 1 (the farthest "
                                f"{start:.2f}): self-normalized. It broke during training: at step {step:,} (epoch "
                                f"{epoch}) {run.short_name(layer)}'s reached {std[row, layer]:.2f}, as the weights "
                                "moved away from LeCun's variance 1/fan_in.")


def check_batch_norm(run: RunRecord) -> Verdict:
    """Best validation accuracy a against chance 1/k: a ≥ 50 % means the network learned
    (the same logistic network without batch norm stays at chance)."""
    if (missing := _no_run(run)) is not None:
        return missing
    accuracy = run.best_val_accuracy()
    k = run.n_classes
    g = _hidden_gradients(run)
    ratio = float(g[-1] / g[0]) if g[0] > 0 else math.inf
    where = f"{run.short_name(0)}'s gradient is within {times(max(ratio, 1 / ratio))}× of " \
            f"{run.short_name(len(g) - 1)}'s" if 0 < ratio < math.inf else "the gradients vanished"
    if accuracy >= 0.5:
        return Verdict(True, accuracy, f"The network learns: best validation accuracy {_percent(accuracy)} "
                                       f"(chance is {_percent(1 / k)}), and {where}.")
    return Verdict(False, accuracy, f"The network did not learn: best validation accuracy {_percent(accuracy)} "
                                    f"(chance is {_percent(1 / k)}); {where}.")


def check_clipping(run: RunRecord) -> Verdict:
    """With ``gradient_clip`` by norm at threshold τ: the fraction of recorded steps on which
    some layer's ‖∂L/∂W_l‖ > τ (clipping acted), and whether the run stayed finite."""
    clip = run.experiment.regularization.gradient_clip
    message = run.divergence()
    if message is not None:
        tail = "" if clip.mode == "none" else f" even with clipping ({clip.mode} ≤ {clip.threshold:g})"
        return Verdict(False, math.nan, f"The run diverged{tail}: {message.removeprefix('diverged: ')}.")
    if run.epochs == 0 or len(run.history.get("grad_norm", ())) == 0:
        return Verdict(False, math.nan, "Train for at least one epoch first.")
    accuracy = run.best_val_accuracy()
    if clip.mode == "none":
        return Verdict(False, math.nan, f"No clipping, and the run stayed finite (best validation accuracy "
                                        f"{_percent(accuracy)}).")
    g = np.asarray(run.history["grad_norm"], dtype=np.float64)
    if clip.mode == "global_norm":
        bias = np.asarray(run.history.get("bias_grad_norm", np.zeros_like(g)), dtype=np.float64)
        above = np.sqrt((g ** 2).sum(axis=1) + (bias ** 2).sum(axis=1)) > clip.threshold
    else:       # by norm (each array), or by value (any |g| > τ at least when its norm is)
        above = (g > clip.threshold).any(axis=1)
    fraction = float(above.mean())
    return Verdict(True, fraction, f"A gradient was larger than the clipping threshold {clip.threshold:g} on "
                                   f"{_percent(fraction)} of the recorded steps; clipped, the run stayed finite "
                                   f"(best validation accuracy {_percent(accuracy)}).")


def scratch_twin(experiment: Experiment) -> Experiment:
    """The same experiment without ``model.transfer``: the same network, data, labels, seed and
    optimizer, from random weights."""
    data = copy.deepcopy(experiment.to_dict())
    data["model"]["transfer"] = None
    data["name"] = f"{experiment.name} (from scratch)"
    return parse_experiment(data)


def check_transfer(run: RunRecord, scratch: Mapping[str, np.ndarray] | None = None) -> Verdict:
    """The gain g = acc_reuse − acc_scratch in validation accuracy after epoch 2 against the
    same network trained from scratch on the same few labels (``scratch_twin``, trained here
    unless its history is given), and the gain at the end of the run."""
    transfer = run.experiment.model.transfer
    if transfer is None:
        return Verdict(False, math.nan, "This run reuses no layers (model.transfer is empty): load the lesson's "
                                        "example, or make one with File › New experiment from this model.")
    if (missing := _no_run(run)) is not None:
        return missing
    if scratch is None:
        twin = Trainer(scratch_twin(run.experiment), run.base_dir)
        twin.fit(epochs=run.epochs)
        scratch = twin.history_arrays()
    ours = np.asarray(run.history["val_accuracy"], dtype=np.float64)
    theirs = np.asarray(scratch["val_accuracy"], dtype=np.float64)
    n = min(len(ours), len(theirs))
    early = min(2, n) - 1
    gain = float(ours[early] - theirs[early])
    end = float(ours[n - 1] - theirs[n - 1])
    text = (f"After {early + 1} epoch{'s' if early else ''} the reused layers give {_percent(ours[early])} validation "
            f"accuracy against {_percent(theirs[early])} from scratch ({100 * gain:+.0f} points); after {n}: "
            f"{_percent(ours[n - 1])} against {_percent(theirs[n - 1])} ({100 * end:+.0f} points).")
    return Verdict(gain > 0, gain, text)


def check_optimizer(run: RunRecord) -> Verdict:
    """Validation accuracy after 5 epochs (or the last, if fewer): below 80 % the optimizer
    is learning slowly (plain SGD here); a faster optimizer passes it in an epoch or two."""
    if (missing := _no_run(run)) is not None:
        return missing
    acc = np.asarray(run.history["val_accuracy"], dtype=np.float64)
    at = min(5, len(acc))
    value = float(acc[at - 1])
    reached = np.flatnonzero(acc >= 0.9)
    when = f"it first reached 90 % after epoch {reached[0] + 1}" if len(reached) else \
        f"it did not reach 90 % in {len(acc)} epochs"
    name = run.experiment.optimizer.name
    if value < 0.8:
        return Verdict(True, value, f"{name} reached {_percent(value)} validation accuracy after {at} epochs "
                                    f"({when}): it learns, slowly.")
    return Verdict(False, value, f"{name} reached {_percent(value)} validation accuracy after {at} epochs ({when}).")


def check_schedule(run: RunRecord) -> Verdict:
    """The epoch k of the best validation loss, against the run's E epochs: at a constant rate
    the loss stops improving early (k ≤ E / 2) and the rest of the run brings nothing."""
    if (missing := _no_run(run)) is not None:
        return missing
    val_loss = np.asarray(run.history["val_loss"], dtype=np.float64)
    lr = np.asarray(run.history["learning_rate"], dtype=np.float64)
    best = int(np.nanargmin(val_loss))
    epochs = len(val_loss)
    constant = bool(np.allclose(lr, lr[0], rtol=1e-6))
    rate = f"at a constant learning rate of {lr[0]:.3g}" if constant else \
        f"with the learning rate going from {lr[0]:.3g} to {lr[-1]:.3g}"
    text = (f"{rate[0].upper()}{rate[1:]}, the validation loss was best after epoch {best + 1} of {epochs} "
            f"({val_loss[best]:.3f}; last {val_loss[-1]:.3f}).")
    plateau = best + 1 <= epochs / 2
    return Verdict(plateau, float(best + 1), text + (" The second half of the run brought nothing." if plateau
                                                     else ""))


def check_overfitting(run: RunRecord) -> Verdict:
    """The generalization gap: final training accuracy minus final validation accuracy; a gap of
    5 points or more means the network memorizes its training set."""
    if (missing := _no_run(run)) is not None:
        return missing
    train = float(run.history["accuracy"][-1])
    val = float(run.history["val_accuracy"][-1])
    gap = train - val
    text = (f"Training accuracy {_percent(train)} against {_percent(val)} on validation: a "
            f"{100 * gap:.0f}-point gap")
    if gap >= 0.05:
        return Verdict(True, gap, text + "; the network memorizes its training examples.")
    return Verdict(False, gap, text + "; it generalizes about as well as it fits.")


# ----------------------------------------------------------------------------- the lessons


@dataclass(frozen=True)
class Lesson:
    """One section of chapter 11. ``preset`` names a ``core.presets`` entry, or ``example`` a
    file of ``resources/examples`` (the zoo's transfer examples, whose layers come from a
    session file); ``look`` says what to watch and where; ``steps`` are the guide's numbered
    steps; ``check`` judges a run."""

    key: str
    title: str
    section: str
    guide: str
    look: str
    steps: tuple[str, ...]
    check: Callable[[RunRecord], Verdict]
    preset: str | None = None
    example: str | None = None
    tries: tuple[str, ...] = field(default=())

    @property
    def file_name(self) -> str:
        """The bundled example the lesson starts from."""
        return self.example or f"{self.preset}.json"

    @property
    def loads(self) -> str:
        if self.preset is not None:
            return f"Presets › {PRESETS[self.preset][0].split(' (')[0]}"
        return "File › Open"


def _start(preset_or_file: str) -> str:
    return (f"Open `{preset_or_file}` (Help › Lessons, **Load**; or File › Open on "
            f"`resources/examples/{preset_or_file}`).")


LESSONS: dict[str, Lesson] = {lesson.key: lesson for lesson in [
    Lesson(
        "vanishing", "Vanishing and exploding gradients", "The Vanishing/Exploding Gradients Problems",
        "01-vanishing-gradients.md",
        "Watch the gradient-norm plot in the middle: one curve per layer, on a log scale. The curves sit "
        "one below the other, the lowest layer's at the bottom, and the Loss and accuracy dock shows the "
        "loss stuck near ln 10 ≈ 2.3.",
        (_start("vanishing.json"),
         "Press **Train** (F5) and watch the gradient-norm plot in the middle of the window.",
         "After the run, the lesson measures how much smaller the lowest layer's gradient is than the top "
         "hidden layer's."),
        check_vanishing, preset="vanishing"),
    Lesson(
        "initialization", "Glorot and He initialization", "Glorot and He Initialization",
        "01-vanishing-gradients.md",
        "The same ten layers and the same plain SGD, but He initialization and ELU. In the gradient-norm "
        "plot all curves now lie on top of each other; the Gradient flow dock shows one bar height for "
        "every layer.",
        (_start("he_elu.json"),
         "Press **Train** and compare the gradient-norm plot with the vanishing network's.",
         "After the run, the lesson measures the spread between the largest and the smallest hidden-layer "
         "gradient."),
        check_initialization, preset="he_elu"),
    Lesson(
        "activations", "Non-saturating activations", "Better Activation Functions",
        "01-vanishing-gradients.md",
        "ReLU with a large step: watch the dead fraction of each layer in the Activations dock grow until "
        "whole layers output zero, and the gradient-norm curves drop out of the plot. Then lower the "
        "learning rate in the Optimizer panel and train again.",
        (_start("dying_relu.json"),
         "Press **Train** and watch the **dead** bars of the Activations dock.",
         "After the run, the lesson reports the largest fraction of dead units in any layer.",
         "Set the learning rate to 0.003 (Optimizer panel) and train again: the check finds the units "
         "alive. (At 0.03, `leaky_relu` and `elu` do not die, but they do not learn either: the loss of "
         "`leaky_relu` climbs into the hundreds, `elu` ends at chance. The step itself is too large.)"),
        check_dying_units, preset="dying_relu"),
    Lesson(
        "self_normalization", "Self-normalizing SELU networks", "Better Activation Functions (SELU)",
        "01-vanishing-gradients.md",
        "Ten SELU layers with LeCun normal initialization, standardized inputs and alpha dropout. Watch the "
        "std of each layer in the Activations dock: it starts at 1 in every layer (self-normalization), "
        "then drifts as training changes the weights.",
        (_start("selu.json"),
         "Press **Train** and watch each layer's **std** in the Activations dock.",
         "After the run, the lesson checks that every layer started with standard deviation ≈ 1, and reports "
         "the step at which some layer's left 1.5× of 1 (if it did).",
         "Set every layer's dropout type to **standard** (Model panel › Selected layer), or untick "
         "**Standardize** (Data panel), and train again: the check finds the network not normalized from the "
         "start."),
        check_self_normalization, preset="selu"),
    Lesson(
        "batch_norm", "Batch normalization", "Batch Normalization", "02-batch-normalization.md",
        "The vanishing network with batch norm before each logistic activation. Watch the gradient-norm "
        "plot: the curves close up, and after a few epochs the Loss and accuracy dock shows the accuracy "
        "leave chance.",
        (_start("batch_norm.json"),
         "Press **Train** and watch the gradient-norm plot and the Loss and accuracy dock.",
         "After the run, the lesson reports the best validation accuracy (without batch norm this network "
         "stays at chance, 10 %)."),
        check_batch_norm, preset="batch_norm"),
    Lesson(
        "clipping", "Gradient clipping", "Gradient Clipping", "01-vanishing-gradients.md",
        "Momentum with a step too large for ten ELU layers, each gradient clipped to norm 1. The "
        "gradient-norm plot shows the norms before clipping, many above 1; the Loss and accuracy dock shows "
        "the run training. Turn clipping off in the Regularization panel and train again: it diverges.",
        (_start("clipping.json"),
         "Press **Train** and watch the gradient-norm plot (the norms before clipping) and the Loss and "
         "accuracy dock.",
         "After the run, the lesson reports on how many steps clipping acted, and whether the run stayed "
         "finite.",
         "Set **Gradient clipping** to `none` in the Regularization panel and train again: the run "
         "diverges within the first epoch."),
        check_clipping, preset="clipping"),
    Lesson(
        "transfer", "Transfer learning", "Reusing Pretrained Layers", "06-transfer-learning.md",
        "Digits 5-9 from 36 labels a class, reusing six layers of a network trained on digits 0-4, frozen "
        "for the first epoch. Watch the Loss and accuracy dock: the accuracy starts higher than from "
        "scratch. After the run the lesson trains the same network from scratch on the same labels and "
        "compares.",
        (_start("transfer_digits_5-9.json"),
         "Press **Train** and watch the Loss and accuracy dock.",
         "After the run, the lesson trains the same network from scratch on the same labels and reports "
         "the gain in validation accuracy after 2 epochs and at the end."),
        check_transfer, example="transfer_digits_5-9.json"),
    Lesson(
        "optimizers", "Faster optimizers", "Faster Optimizers", "03-optimizers.md",
        "A healthy five-layer network with plain SGD at a small step: the Loss and accuracy dock shows it "
        "learning, slowly. Then pick momentum, RMSProp, Adam or Nadam in the Optimizer panel and train "
        "again.",
        (_start("plain_sgd.json"),
         "Press **Train** and watch the loss fall in the Loss and accuracy dock.",
         "After the run, the lesson reports the validation accuracy after 5 epochs.",
         "Choose `nadam` in the Optimizer panel and train again."),
        check_optimizer, preset="plain_sgd"),
    Lesson(
        "schedules", "Learning-rate schedules", "Learning Rate Scheduling", "04-learning-rate-schedules.md",
        "Momentum at one constant rate. The Loss and accuracy dock shows the learning rate flat and the "
        "validation loss settling within a few epochs; then pick one_cycle or exponential in the Optimizer "
        "panel's schedule and train again.",
        (_start("constant_lr.json"),
         "Press **Train** and watch the validation loss and the learning rate in the Loss and accuracy "
         "dock.",
         "After the run, the lesson reports the epoch of the best validation loss.",
         "Choose the `one_cycle` schedule in the Optimizer panel and train again."),
        check_schedule, preset="constant_lr"),
    Lesson(
        "regularization", "Regularization", "Avoiding Overfitting Through Regularization",
        "05-regularization.md",
        "Three layers of 300 units and only 180 training images. In the Loss and accuracy dock the "
        "training accuracy reaches 100 % while the validation accuracy stops well below; then add ℓ2, "
        "dropout or early stopping in the Regularization and Model panels.",
        (_start("overfitting.json"),
         "Press **Train** and compare the training and validation curves in the Loss and accuracy dock.",
         "After the run, the lesson reports the gap between training and validation accuracy.",
         "Add dropout 0.2 to every layer (Model panel) or ℓ2 1e-3 (Regularization panel) and train again."),
        check_overfitting, preset="overfitting"),
]}


# ----------------------------------------------------------------------------- the guide's steps

BLOCK = re.compile(r"<!-- lesson: (\w+) -->\n.*?<!-- /lesson -->", re.DOTALL)


def guide_block(lesson: Lesson) -> str:
    """The lesson's steps as they appear in ``docs/guide/`` (between two markers)."""
    lines = [f"<!-- lesson: {lesson.key} -->",
             f"**In the window: Help › Lessons › {lesson.title}.** {lesson.look}", ""]
    lines += [f"{i}. {step}" for i, step in enumerate(lesson.steps, 1)]
    lines += ["", "<!-- /lesson -->"]
    return "\n".join(lines)


def update_guide(folder: str | Path) -> list[Path]:
    """Rewrite every lesson block of the guide's pages from ``LESSONS``; returns the pages changed."""
    changed = []
    for path in sorted(Path(folder).glob("*.md")):
        text = path.read_text(encoding="utf-8")
        new = BLOCK.sub(lambda m: guide_block(LESSONS[m.group(1)]), text)
        if new != text:
            path.write_text(new, encoding="utf-8")
            changed.append(path)
    return changed


if __name__ == "__main__":
    print("\n".join(str(p) for p in update_guide(sys.argv[1] if len(sys.argv) > 1 else "docs/guide")))
