"""One-line explanations for every field of the experiment editor (tooltips and labels).

The choices themselves (optimizers, schedules, activations, initializers, losses, datasets)
explain themselves through their class's ``summary`` in the registries; this module holds the
texts for hyperparameter names and for the spec's plain fields, keyed by the spec's names.
"""

from __future__ import annotations

from typing import Any

# Hyperparameters of registered components, by name. ``(family, name)`` overrides a name whose
# meaning depends on the family (``factor`` of the circles dataset vs performance scheduling).
PARAMETERS: dict[str | tuple[str, str], tuple[str, str]] = {
    # optimizers
    "learning_rate": ("learning rate η", "η: the step size. Too high diverges (loss goes to NaN), too low crawls; "
                                         "the schedule starts from it."),
    "momentum": ("momentum β", "β: friction on the velocity; 0 is plain SGD, 0.9 (the usual value) keeps 90 % "
                               "of the previous step."),
    "rho": ("decay ρ", "ρ: how fast RMSProp forgets old squared gradients (0.9 keeps the last ~10 steps)."),
    "beta_1": ("β₁", "β₁: decay of the momentum (first-moment) estimate; 0.9 by default."),
    "beta_2": ("β₂", "β₂: decay of the squared-gradient (second-moment) estimate; 0.999 by default."),
    "epsilon": ("ε", "ε: smoothing term that avoids a division by zero; rarely worth changing."),
    "initial_accumulator_value": ("initial accumulator", "Starting value of AdaGrad's sum of squared gradients."),
    "weight_decay": ("weight decay", "AdamW's decoupled decay: each step shrinks the weights by "
                                     "η·weight_decay·θ, independently of the gradient."),
    # schedules
    "steps": ("steps s", "s: optimizer steps over which the rate falls (power: to η0/2 for c = 1; "
                         "exponential: to η0/10)."),
    "power": ("power c", "c: how sharply power scheduling falls; 1 is the usual value."),
    "boundaries": ("boundaries (epochs)", "Epochs at which the rate changes, strictly increasing, e.g. 5, 15."),
    "values": ("rates", "The rate in each range of epochs: one more value than boundaries, e.g. 0.01, 0.005, "
                        "0.001."),
    ("schedule", "factor"): ("factor", "Multiply the rate by this when the metric has not improved "
                                       "for `patience` epochs (0 < factor < 1)."),
    "patience": ("patience (epochs)", "Epochs without improvement to wait before acting."),
    "monitor": ("monitor", "The metric watched: losses must go down, accuracies up; val_ metrics use the "
                           "validation split."),
    "min_delta": ("min. improvement", "A change smaller than this does not count as an improvement."),
    "min_learning_rate": ("min. rate", "Never reduce the rate below this."),
    "max_learning_rate": ("peak rate", "1cycle's peak η_max, reached halfway through the cycle; empty means 10·η0 "
                                       "(the book picks it with a learning-rate range test)."),
    "final_learning_rate": ("final rate", "The rate at the very end; empty means η0/1000."),
    "annihilation_fraction": ("annihilation", "Fraction of the run spent dropping the rate by orders of "
                                              "magnitude after the cycle (0.1 = last 10 %)."),
    # datasets
    "n_samples": ("samples", "How many points to generate."),
    "n_classes": ("classes", "How many classes (spiral arms, blobs)."),
    "noise": ("noise", "Amount of random jitter; more noise blurs the classes into each other."),
    "turns": ("turns", "How many times each spiral arm winds around the centre; more turns is harder."),
    ("dataset", "factor"): ("inner radius", "Radius of the inner circle relative to the outer one (0 to 1)."),
    "cluster_std": ("cluster spread", "Standard deviation of each Gaussian blob; larger blobs overlap."),
    "n_features": ("features", "Dimension of each point (the input width)."),
    "classes": ("classes", "Keep only these classes (labels or names, separated by spaces or ;), relabelled in "
                           "that order; empty keeps all. Digits 0-4, then 5-9, is the book's transfer-learning "
                           "exercise."),
    # initializers and activations
    "mean": ("mean", "Mean of the random weights."),
    "stddev": ("std. dev.", "Standard deviation of the weights; 1.0 is the naive N(0, 1), blind to fan-in."),
    "minval": ("min", "Lower end of the uniform range."),
    "maxval": ("max", "Upper end of the uniform range."),
    "alpha": ("α", "α: the slope for z < 0 (leaky ReLU) or the level negative outputs approach, −α (ELU)."),
}

# The spec's own fields, by path.
FIELDS: dict[str, tuple[str, str]] = {
    "name": ("Name", "A name for this experiment; shown in the title bar and stored in sessions."),
    "seed": ("Seed", "Seeds every random choice (data, split, initialization, shuffling, dropout): the same "
                     "seed gives the same run."),
    "data.source": ("Dataset", "Where the examples come from: a built-in problem or your own NPZ / CSV file."),
    "data.path": ("File", "The data file; relative paths are relative to the experiment file's folder."),
    "data.target": ("Target column", "The CSV column holding the labels (whole numbers or names: "
                                     "classification) or the values to predict (decimals: regression)."),
    "data.validation_split": ("Validation split", "Fraction held out to measure generalization each epoch "
                                                  "(early stopping and performance scheduling watch it)."),
    "data.test_split": ("Test split", "Fraction kept aside for the final evaluation only; never seen in "
                                      "training."),
    "data.standardize": ("Standardize inputs", "Scale each feature to mean 0 and std 1 using the training "
                                               "split's statistics; SELU's self-normalization needs it."),
    "data.augmentation.type": ("Augmentation", "Create new training examples from existing ones, a "
                                               "regularizer: pixel shifts for images, or input noise."),
    "data.augmentation.max_shift": ("Max. shift (pixels)", "Shift each training image by up to this many "
                                                          "pixels in each direction."),
    "data.augmentation.stddev": ("Noise std. dev.", "Add Gaussian noise of this standard deviation to each "
                                                    "training input (after standardization)."),
    "model.input_dropout": ("Input dropout", "Drop this fraction of the input features at each training step."),
    "model.output.init": ("Output init", "Initializer of the output layer's weights; Glorot suits softmax and "
                                         "sigmoid outputs."),
    "model.output.loss": ("Output / loss", "auto picks from the data: softmax + cross-entropy for class labels, "
                                           "linear + MSE for float targets."),
    "optimizer.name": ("Optimizer", "How the gradients become weight updates."),
    "schedule.name": ("Schedule", "How the learning rate changes during training; η0 is the optimizer's "
                                  "learning rate."),
    "regularization.l1": ("ℓ1", "Adds l1·Σ|W| to the loss: pushes many weights to exactly 0 (a sparse model)."),
    "regularization.l2": ("ℓ2", "Adds l2·ΣW² to the loss: keeps weights small; with early stopping, part of the "
                                "book's default."),
    "regularization.max_norm": ("Max-norm", "After each step, rescale each unit's incoming weights so their "
                                            "ℓ2 norm is at most r; helps against unstable gradients."),
    "regularization.gradient_clip.mode": ("Gradient clipping", "Cap the gradients before each step, the usual "
                                                               "fix for exploding gradients (and RNNs)."),
    "regularization.gradient_clip.threshold": ("Threshold", "The cap: each component (value), each "
                                                            "parameter's norm (norm) or the norm of all "
                                                            "gradients together (global_norm)."),
    "regularization.early_stopping.enabled": ("Early stopping", "Stop when the monitored metric has not "
                                                                "improved for `patience` epochs."),
    "regularization.early_stopping.patience": ("Patience (epochs)", "Epochs without improvement before "
                                                                    "stopping."),
    "regularization.early_stopping.monitor": ("Monitor", "The metric watched; val_loss is the usual choice."),
    "regularization.early_stopping.min_delta": ("Min. improvement", "A smaller change does not count as an "
                                                                    "improvement."),
    "regularization.early_stopping.restore_best_weights": ("Restore best weights", "At the end, go back to the "
                                                                                    "weights of the best epoch."),
    "training.epochs": ("Epochs", "Passes over the training split."),
    "training.batch_size": ("Batch size", "Examples per gradient step; small batches are noisier but often "
                                          "generalize better (32 is a good default)."),
    "training.shuffle": ("Shuffle", "Shuffle the training examples before each epoch (gradient descent assumes "
                                    "independent batches)."),
    "training.diagnostics_every": ("Diagnostics every", "Record per-layer gradient norms and activation "
                                                        "statistics every k steps (1 = every step)."),
    "training.on_nan": ("On NaN", "When the loss becomes NaN or infinite: stop, or roll back to the last good "
                                  "epoch with half the learning rate."),
    "training.max_rollbacks": ("Max. rollbacks", "Give up after this many roll-backs."),
    "training.dtype": ("Precision", "float32 is twice as fast; float64 for checking numerics."),
}

# Fixed choices of the spec (labels and one-line tooltips).
BATCH_NORM = [
    ("before_activation", "before activation", "Batch norm between the Dense layer and the activation, as the "
                                               "BN paper does (the Dense bias is then redundant)."),
    ("after_activation", "after activation", "Batch norm after the activation (some find it works as well)."),
    (False, "none", "No batch normalization in this layer."),
]
AUGMENTATION = [
    ("none", "none", "Train on the examples as they are."),
    ("shift", "pixel shift", "Shift each training image by a few pixels (image data only, e.g. digits)."),
    ("noise", "input noise", "Add Gaussian noise to each training input."),
]
CLIP_MODES = [
    ("none", "off", "No clipping."),
    ("value", "by value", "Clip every gradient component to [−threshold, threshold]; may change the "
                          "gradient's direction."),
    ("norm", "by norm", "Rescale each parameter's gradient whose ℓ2 norm exceeds the threshold."),
    ("global_norm", "by global norm", "Rescale all gradients together when their joint ℓ2 norm exceeds the "
                                      "threshold; keeps the direction."),
]
ON_NAN = [
    ("stop", "stop", "Stop training and report the step where the loss became NaN."),
    ("rollback", "roll back", "Restore the last good epoch, halve the learning rate and go on."),
]
MONITOR_TIPS = {
    "val_loss": "Validation loss (lower is better); the usual choice.",
    "val_accuracy": "Validation accuracy (higher is better).",
    "loss": "Training loss (lower is better); does not detect overfitting.",
    "accuracy": "Training accuracy (higher is better); does not detect overfitting.",
}
DTYPES = [("float32", "float32", "Single precision: fast, what the book uses."),
          ("float64", "float64", "Double precision: slower, for checking numerics.")]


def parameter_help(family: str, name: str) -> tuple[str, str]:
    """(label, tooltip) for a component hyperparameter."""
    label, tip = PARAMETERS.get((family, name)) or PARAMETERS.get(name) or (name.replace("_", " "), name)
    if label[:1].isascii():  # "learning rate η" → "Learning rate η", but β₁ stays β₁ (not Β₁)
        label = label[:1].upper() + label[1:]
    return label, tip


def field_help(path: str) -> tuple[str, str]:
    """(label, tooltip) for a spec field path."""
    return FIELDS.get(path, (path.rsplit(".", 1)[-1].replace("_", " ").capitalize(), path))


def summary_of(registry: Any, name: str) -> str:
    """The registered class's one-line ``summary`` (empty if it has none)."""
    try:
        return str(getattr(registry.get(name), "summary", "") or "")
    except KeyError:
        return ""
