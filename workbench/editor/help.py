"""One-line explanations for every field of the experiment editor (tooltips and labels).

The choices themselves (optimizers, schedules, activations, initializers, losses, datasets)
explain themselves through their registered class: its ``summary``, and for each
hyperparameter the label and help of its ``hyperparameter(name)``. This module holds only the
texts for the spec's plain fields and fixed choices, keyed by the spec's paths and values.
"""

from __future__ import annotations

from typing import Any

# The spec's own fields, by path.
FIELDS: dict[str, tuple[str, str]] = {
    "name": ("Name", "A name for this experiment; shown in the title bar and stored in sessions."),
    "seed": ("Seed", "Seeds every random choice (data, split, initialization, shuffling, dropout): the same "
                     "seed gives the same run."),
    "data.source": ("Dataset", "Where the examples come from: a built-in problem, one of the book's image sets, or "
                               "your own NPZ / CSV / IDX files or folder of images."),
    "data.path": ("File", "The data file (for an image folder: the folder); relative paths are relative to the "
                          "experiment file's folder."),
    "data.labels_path": ("Labels file", "The file holding one label per image (an IDX labels file); relative "
                                        "paths are relative to the experiment file's folder."),
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
    "training.blas_threads": ("BLAS threads", "How many threads each large matrix product is split over. auto: "
                                              "one for small networks, the free cores for large ones. The count "
                                              "changes the speed, never the numbers."),
    "training.instruments.probe_examples": ("Probe examples", "The instruments measure on the first this many "
                                                              "training examples (a fixed probe batch, float64)."),
    "training.instruments.sharpness.enabled": ("Sharpness λ_max", "Measure the largest eigenvalue of the loss's "
                                                                  "Hessian against the optimizer's stability limit "
                                                                  "(2/η, (2+2β)/η, 38/η for Adam): the Sharpness "
                                                                  "dock. Costs tens of steps a measurement."),
    "training.instruments.sharpness.every": ("Sharpness every", "Measure λ_max every k steps (rounded up to a "
                                                                "multiple of Diagnostics every)."),
    "training.instruments.sharpness.iterations": ("Lanczos iterations", "At most this many Hessian-vector "
                                                                         "products a measurement (it stops earlier "
                                                                         "once λ_max has converged)."),
    "training.instruments.noise.enabled": ("Gradient noise", "Measure the gradient noise scale B_simple and each "
                                                             "layer's signal-to-noise ratio from per-example "
                                                             "gradients: the Gradient noise dock, a batch-size "
                                                             "advisor."),
    "training.instruments.noise.every": ("Noise every", "Measure the noise scale every k steps."),
    "training.instruments.effective_learning_rate.enabled": ("Effective learning rate", "Record, per layer, the "
                                                                                        "step the optimizer really "
                                                                                        "takes (η/(√v̂+ε), η/(1−β), "
                                                                                        "η/‖w‖² before batch norm): "
                                                                                        "the Effective LR dock."),
    "training.instruments.effective_learning_rate.every": ("Eff. rate every", "Record the effective rates every k "
                                                                              "steps."),
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


def parameter_help(cls: Any, name: str) -> tuple[str, str]:
    """(label, tooltip) for hyperparameter ``name`` of a registered class, as the class documents
    it (``cls.hyperparameter(name)``); the bare name if it does not."""
    documented = cls.hyperparameter(name) if hasattr(cls, "hyperparameter") else None
    label, tip = (documented.label, documented.help) if documented is not None else (name.replace("_", " "), name)
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
