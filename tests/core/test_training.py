import dataclasses
import math
import threading

import numpy as np
import pytest

from core.data import Dataset
from core.presets import preset_experiment
from core.spec import SpecError, parse_experiment
from core.training import Trainer, split_counts, stratified_split


def deep(activation: str, init, epochs: int = 2, optimizer=None, **layer) -> dict:
    """Digits, 10 hidden layers of 100 units: the setting of the Glorot & Bengio experiments."""
    return {
        "seed": 1,
        "data": {"source": "digits", "validation_split": 0.2},
        "model": {"layers": [{"units": 100, "init": init, "activation": activation, **layer}] * 10},
        "optimizer": optimizer or {"name": "sgd", "learning_rate": 0.01},
        "training": {"epochs": epochs, "batch_size": 32},
    }


def ratio_first_to_last_hidden(trainer: Trainer, window: int = 20) -> float:
    g = trainer.recorder["grad_norm"][-window:]
    return float(np.median(g[:, 0]) / np.median(g[:, -2]))


GLOROT_CASES = {
    # name: (activation, init, optimizer)
    "logistic N(0,0.05)": ("logistic", {"name": "random_normal", "stddev": 0.05}, None),
    "logistic Glorot": ("logistic", "glorot_uniform", None),
    "tanh N(0,1)": ("tanh", {"name": "random_normal", "stddev": 1.0}, None),
    "He + ELU": ("elu", "he_normal", None),
    "Glorot + tanh": ("tanh", "glorot_uniform", None),
    "LeCun + SELU": ("selu", "lecun_normal", None),
}


@pytest.fixture(scope="module")
def glorot_runs():
    runs = {}
    for name, (act, init, opt) in GLOROT_CASES.items():
        trainer = Trainer(parse_experiment(deep(act, init, optimizer=opt)))
        losses = []
        trainer.fit(observer=lambda kind, info, losses=losses: losses.append(info["loss"]) if kind == "step" else None)
        first_loss = float(np.mean(losses[:20]))
        last_loss = float(np.mean(losses[-20:]))
        runs[name] = (trainer, first_loss, last_loss)
    return runs


@pytest.mark.parametrize("name", ["logistic N(0,0.05)", "logistic Glorot"])
def test_small_variance_logistic_gradients_vanish_and_the_loss_does_not_move(glorot_runs, name):
    trainer, first, last = glorot_runs[name]
    assert ratio_first_to_last_hidden(trainer) < 1e-3
    # The loss never gets below chance level (ln 10 ≈ 2.30: ten equally likely digits).
    assert last > math.log(10) - 0.05
    assert trainer.history["val_accuracy"][-1] < 0.25
    kinds = {issue.kind for issue in trainer.health()}
    assert "vanishing" in kinds


def test_tanh_with_standard_normal_init_explodes(glorot_runs):
    trainer, _, _ = glorot_runs["tanh N(0,1)"]
    assert ratio_first_to_last_hidden(trainer) > 100
    issues = trainer.health()
    assert any(i.kind == "exploding" and i.layer == 0 for i in issues)
    assert any("clip" in i.remedies for i in issues)


@pytest.mark.parametrize("name", ["He + ELU", "Glorot + tanh", "LeCun + SELU"])
def test_matched_init_and_activation_keep_gradients_balanced_and_learn(glorot_runs, name):
    trainer, first, last = glorot_runs[name]
    ratio = ratio_first_to_last_hidden(trainer)
    assert 0.1 < ratio < 10
    assert last < 0.5 * first
    assert trainer.history["val_accuracy"][-1] > 0.8
    assert not [i for i in trainer.health() if i.kind in ("vanishing", "exploding")]


def test_dying_relu_preset_is_flagged():
    trainer = Trainer(preset_experiment("dying_relu"))
    trainer.fit(epochs=3)
    dead = [i for i in trainer.health() if i.kind == "dead"]
    assert dead
    assert np.nanmax(trainer.recorder["dead_fraction"][-20:, :-1]) > 0.5


def tiny(**overrides) -> dict:
    spec = {
        "seed": 3,
        "data": {"source": "moons", "params": {"n_samples": 200}, "validation_split": 0.25},
        "model": {"layers": [{"units": 8, "activation": "elu", "init": "he_normal"}] * 2},
        "optimizer": {"name": "sgd", "learning_rate": 0.1},
        "training": {"epochs": 3, "batch_size": 16},
    }
    for key, value in overrides.items():
        spec[key] = {**spec.get(key, {}), **value} if isinstance(value, dict) else value
    return spec


def test_same_seed_same_run_and_float32_throughout():
    a, b = Trainer(parse_experiment(tiny())), Trainer(parse_experiment(tiny()))
    a.fit()
    b.fit()
    for (k, x), y in zip(a.network.state().items(), b.network.state().values(), strict=True):
        assert x.dtype == np.float32, k
        np.testing.assert_array_equal(x, y)
    timing = {"seconds"}
    assert {k: v for k, v in a.history.items() if k not in timing} == \
        {k: v for k, v in b.history.items() if k not in timing}
    c = Trainer(parse_experiment(tiny(seed=4)))
    c.fit()
    assert not np.array_equal(c.network.state()["layers.0.kernel"], a.network.state()["layers.0.kernel"])


def test_history_and_diagnostics_shapes():
    t = Trainer(parse_experiment(tiny()))
    t.fit()
    steps = t.steps_per_epoch * 3
    assert t.step == steps and t.epoch == 3
    assert t.history["epoch"] == [1.0, 2.0, 3.0]
    assert t.recorder.size == steps
    assert t.recorder["grad_norm"].shape == (steps, 3)
    assert list(t.recorder.steps) == list(range(1, steps + 1))
    for q in ("grad_norm", "weight_norm", "update_ratio", "activation_std"):
        assert np.isfinite(t.recorder[q]).all(), q
    hist = t.history_arrays()
    assert hist["layer_names"].dtype.kind == "U"


@pytest.mark.parametrize(("change", "message"), [
    ({"history/grad_norm": np.zeros((2, 3), np.float32)}, r"history\[grad_norm\] must be floats of shape"),
    ({"history/val_loss": np.zeros(5)}, r"history\[val_loss\] must hold one number per epoch \(3\)"),
    ({"history/layer_names": np.array(["a"])}, r"history\[layer_names\] must name the 3 layers"),
])
def test_a_state_with_a_history_that_does_not_fit_is_refused_and_changes_nothing(change, message):
    """The trainer checks a history as a session file's is checked (core.engine.diagnostics.check_history)."""
    t = Trainer(parse_experiment(tiny()))
    t.fit(epochs=3)
    arrays, state = t.state_dict()
    before = (t.recorder, dict(t.history))
    with pytest.raises(ValueError, match=message):
        t.load_state_dict({**arrays, **change}, state)
    del arrays["history/step"]
    with pytest.raises(ValueError, match=r"history\[step\] is missing"):
        t.load_state_dict(arrays, state)
    assert (t.recorder, t.history) == before


def test_diagnostics_every_k_steps():
    t = Trainer(parse_experiment(tiny(training={"diagnostics_every": 4})))
    t.fit()
    assert list(t.recorder.steps) == list(range(1, t.step + 1, 4))


def test_recorded_quantities_match_independent_formulas():
    """One SGD step: grad_norm is ‖∂L/∂W‖, the update is −η·g, so update_ratio = η‖g‖/‖W_new‖."""
    t = Trainer(parse_experiment(tiny()))
    before = {k: v.copy() for k, v in t.network.parameters().items()}
    t.train_batch()
    rec = t.recorder
    for j, key in enumerate(t.network.layer_keys):
        g = t.network.gradients()[f"{key}.kernel"]
        w_new = t.network.parameters()[f"{key}.kernel"]
        np.testing.assert_allclose(rec["grad_norm"][0, j], np.linalg.norm(g), rtol=1e-5)
        np.testing.assert_allclose(rec["weight_norm"][0, j], np.linalg.norm(w_new), rtol=1e-5)
        step = np.linalg.norm(w_new - before[f"{key}.kernel"])
        np.testing.assert_allclose(rec["update_ratio"][0, j], step / np.linalg.norm(w_new), rtol=1e-4)
        np.testing.assert_allclose(step, 0.1 * np.linalg.norm(g), rtol=1e-4)
    assert rec["learning_rate"][0] == pytest.approx(0.1)


def test_recorded_norms_with_max_norm_and_a_frozen_layer():
    """The update ratio is the optimizer's step over the kernel after max-norm rescaled it; a
    layer the step left out has ratio 0; the bias-gradient norm is that of ∂L/∂b."""
    t = Trainer(parse_experiment(tiny(regularization={"max_norm": 0.5})))
    t.network.layers[1].frozen = True
    before = {k: v.copy() for k, v in t.network.parameters().items()}
    t.train_batch()
    rec = t.recorder
    grads = t.network.gradients()
    for j, key in enumerate(t.network.layer_keys):
        w_new = t.network.parameters()[f"{key}.kernel"]
        assert key == "layers.1" or np.all(np.linalg.norm(w_new, axis=0) <= 0.5 + 1e-6)  # frozen: untouched
        np.testing.assert_allclose(rec["weight_norm"][0, j], np.linalg.norm(w_new), rtol=1e-5)
        np.testing.assert_allclose(rec["bias_grad_norm"][0, j], np.linalg.norm(grads[f"{key}.bias"]), rtol=1e-5)
        if key == "layers.1":
            np.testing.assert_array_equal(w_new, before[f"{key}.kernel"])
            assert rec["update_ratio"][0, j] == 0.0
        else:  # SGD: the optimizer's step is −η·g, whatever max-norm did afterwards
            step = 0.1 * np.linalg.norm(grads[f"{key}.kernel"])
            np.testing.assert_allclose(rec["update_ratio"][0, j], step / np.linalg.norm(w_new), rtol=1e-4)


@pytest.mark.parametrize("mode", ["value", "norm", "global_norm"])
def test_recorded_gradient_norms_are_taken_before_clipping(mode):
    """Clipping changes the step, not what the diagnostics report: kernel and bias gradient
    norms are those of the unclipped ∂L/∂θ (an identical run without clipping computes them)."""
    clipped = Trainer(parse_experiment(tiny(regularization={"gradient_clip": {"mode": mode, "threshold": 1e-3}})))
    free = Trainer(parse_experiment(tiny()))
    before = {k: v.copy() for k, v in clipped.network.parameters().items()}
    clipped.train_batch()
    free.train_batch()
    grads = free.network.gradients()
    for j, key in enumerate(clipped.network.layer_keys):
        kernel, bias = np.linalg.norm(grads[f"{key}.kernel"]), np.linalg.norm(grads[f"{key}.bias"])
        assert kernel > 1e-2 and bias > 1e-2                   # far above the threshold: clipping acted
        np.testing.assert_allclose(clipped.recorder["grad_norm"][0, j], kernel, rtol=1e-5)
        np.testing.assert_allclose(clipped.recorder["bias_grad_norm"][0, j], bias, rtol=1e-5)
        step = np.linalg.norm(clipped.network.parameters()[f"{key}.kernel"] - before[f"{key}.kernel"])
        assert step < 0.1 * kernel / 2                        # the step itself was clipped


def test_stratified_split_keeps_class_proportions():
    y = np.array([0] * 80 + [1] * 20)
    split = stratified_split(y, 0.25, 0.1, np.random.default_rng(0), stratify=True)
    assert len(np.intersect1d(split.train, split.val)) == 0
    assert sorted(np.concatenate([split.train, split.val, split.test])) == list(range(100))
    assert (y[split.val] == 1).sum() == 5 and (y[split.val] == 0).sum() == 20
    assert (y[split.test] == 1).sum() == 2


def test_standardization_uses_training_rows_only():
    t = Trainer(parse_experiment(tiny()))
    raw = t.dataset.X[t.split.train]
    np.testing.assert_allclose(t.feature_mean, raw.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(t.X_train.mean(axis=0), 0, atol=1e-5)
    assert abs(t.X_val.mean()) > 1e-6  # validation rows were not used for the statistics


def test_pause_and_stop_from_another_thread():
    t = Trainer(parse_experiment(tiny(training={"epochs": 10_000})))
    seen = threading.Event()
    result = {}

    def observer(kind, info):
        if kind == "step" and info["step"] == 5:
            seen.set()

    worker = threading.Thread(target=lambda: result.setdefault("reason", t.fit(observer=observer)))
    t.pause()
    worker.start()
    assert not seen.wait(0.3), "a paused trainer must not take steps"
    assert t.step == 0
    t.resume()
    assert seen.wait(10)
    t.request_stop()
    worker.join(10)
    assert not worker.is_alive()
    assert result["reason"] == "stopped"
    assert 5 <= t.step < 10_000 * t.steps_per_epoch
    # Stopping between batches leaves a consistent state that can continue.
    step = t.step
    t.train_batch()
    assert t.step == step + 1


def test_divergence_stops_cleanly_keeping_finite_weights():
    spec = tiny(optimizer={"name": "sgd", "learning_rate": 1e6},
                model={"layers": [{"units": 8, "activation": "relu", "init": "he_normal"}] * 3},
                training={"epochs": 20})
    t = Trainer(parse_experiment(spec))
    reason = t.fit()
    assert reason.startswith("diverged: ")
    assert "at step" in reason
    assert all(np.isfinite(a).all() for a in t.network.state().values())
    assert t.events[-1]["kind"] == "diverged"


@pytest.mark.parametrize("optimizer", ["sgd", "momentum"])
@pytest.mark.parametrize("activation", ["relu", "leaky_relu"])
def test_an_overflowing_gradient_is_caught_on_unrecorded_steps_as_on_recorded_ones(optimizer, activation):
    # Unrecorded steps settle the divergence check with a bound (‖X‖²·‖∂L/∂Z‖² per kernel),
    # recorded ones with the gradients' norms: the runs must stop at the same step, for the same
    # reason, with the same weights.
    runs = []
    for every in (1, 1000):
        spec = tiny(optimizer={"name": optimizer, "learning_rate": 1e3},
                    model={"layers": [{"units": 8, "activation": activation, "init": "he_normal"}] * 3},
                    training={"epochs": 20, "diagnostics_every": every})
        t = Trainer(parse_experiment(spec))
        runs.append((t.fit(), t.step, t.network.state()))
    (reason, step, weights), (other_reason, other_step, other_weights) = runs
    assert "the gradient of dense_0" in reason and "infinite or NaN" in reason
    assert (other_reason, other_step) == (reason, step)
    assert all(np.array_equal(weights[k], other_weights[k]) for k in weights)
    assert all(np.isfinite(a).all() for a in other_weights.values())


def test_the_training_labels_are_checked_once_when_the_trainer_is_made():
    spec = parse_experiment(tiny())
    good = Trainer(spec).dataset
    bad = dataclasses.replace(good, y=np.where(np.arange(len(good.y)) == 7, 5, good.y))
    with pytest.raises(ValueError, match=r"class labels must be in 0\.\.1"):
        Trainer(spec, dataset=bad)


def test_divergence_rollback_halves_the_learning_rate():
    spec = tiny(optimizer={"name": "sgd", "learning_rate": 1e6},
                model={"layers": [{"units": 8, "activation": "relu", "init": "he_normal"}] * 3},
                training={"epochs": 3, "on_nan": "rollback", "max_rollbacks": 2})
    t = Trainer(parse_experiment(spec))
    reason = t.fit()
    rollbacks = [e for e in t.events if e["kind"] == "rollback"]
    assert len(rollbacks) == 2 and t.lr_scale == 0.25
    assert reason.startswith("diverged")  # still diverging after the allowed roll-backs
    assert all(np.isfinite(a).all() for a in t.network.state().values())


def test_early_stopping_restores_the_best_weights():
    spec = tiny(optimizer={"name": "sgd", "learning_rate": 0.5},
                regularization={"early_stopping": {"enabled": True, "patience": 2, "monitor": "val_loss"}},
                training={"epochs": 200})
    t = Trainer(parse_experiment(spec))
    reason = t.fit()
    assert reason == "early_stopping"
    es = t.early_stopping
    assert t.epoch == es.stopped_epoch == es.best_epoch + 2
    assert min(t.history["val_loss"]) == pytest.approx(es.best)
    # The restored weights give the best epoch's validation loss.
    assert t.evaluate("val")[0] == pytest.approx(es.best, rel=1e-5)
    assert [e["kind"] for e in t.events][-2:] == ["early_stopping", "restore_best"]


def test_weight_penalty_in_reported_loss():
    plain = Trainer(parse_experiment(tiny()))
    penal = Trainer(parse_experiment(tiny(regularization={"l2": 0.01})))
    kernels = [a for k, a in penal.network.parameters().items() if k.endswith("kernel")]
    expected = 0.01 * sum(float((k.astype(np.float64) ** 2).sum()) for k in kernels)
    assert penal.evaluate("val")[0] - plain.evaluate("val")[0] == pytest.approx(expected, rel=1e-4)


def test_the_optimizer_steps_the_network_flat_unless_a_layer_is_frozen():
    t = Trainer(parse_experiment(tiny()))
    t.train_batch()
    assert t.optimizer.stepped_flat
    t.network.layers[0].frozen = True
    t.train_batch()
    assert not t.optimizer.stepped_flat
    t.network.layers[0].frozen = False
    t.train_batch()
    assert t.optimizer.stepped_flat


def test_frozen_layers_get_no_update_but_are_measured():
    t = Trainer(parse_experiment(tiny()))
    t.network.layers[0].frozen = True
    before = t.network.parameters()["layers.0.kernel"].copy()
    t.fit(epochs=1)
    np.testing.assert_array_equal(t.network.parameters()["layers.0.kernel"], before)
    assert (t.recorder["grad_norm"][:, 0] > 0).all()
    assert (t.recorder["update_ratio"][:, 0] == 0).all()


def test_shift_augmentation_needs_images_and_runs_on_digits():
    with pytest.raises(SpecError, match=r"^data\.augmentation\.type: 'shift' moves image pixels"):
        Trainer(parse_experiment(tiny(data={"augmentation": {"type": "shift", "max_shift": 1}})))
    spec = deep("elu", "he_normal", epochs=2, optimizer={"name": "adam", "learning_rate": 0.003})
    spec["model"]["layers"] = spec["model"]["layers"][:2]
    spec["data"]["augmentation"] = {"type": "shift", "max_shift": 1}
    t = Trainer(parse_experiment(spec))
    t.fit()
    assert t.history["val_accuracy"][-1] > 0.5


def test_loss_must_fit_the_task():
    with pytest.raises(SpecError, match=r"^model\.output\.loss: 'mse' needs float targets"):
        Trainer(parse_experiment(tiny(model={"output": {"loss": "mse"}})))
    three = tiny(data={"source": "blobs", "params": {"n_samples": 90}},
                 model={"output": {"loss": "sigmoid_binary_cross_entropy"}})
    with pytest.raises(SpecError, match="needs exactly 2 classes"):
        Trainer(parse_experiment(three))
    binary = Trainer(parse_experiment(tiny(model={"output": {"loss": "sigmoid_binary_cross_entropy"}})))
    assert binary.network.n_outputs == 1
    binary.fit()
    assert binary.history["val_accuracy"][-1] > 0.7


def test_regression_with_mse():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 3)).astype(np.float32)
    y = (X @ np.array([[1.0], [-2.0], [0.5]], dtype=np.float32)).astype(np.float32)
    data = Dataset(X=X, y=y, task="regression", n_classes=0, feature_names=["a", "b", "c"], class_names=[],
                   image_shape=None, name="linear")
    t = Trainer(parse_experiment(tiny(optimizer={"name": "adam", "learning_rate": 0.01},
                                      training={"epochs": 30})), dataset=data)
    t.fit()
    assert t.history["val_loss"][-1] < 0.1 * t.history["val_loss"][0]
    assert math.isnan(t.history["accuracy"][-1])


def test_confusion_matrix_counts_validation_examples():
    t = Trainer(parse_experiment(tiny()))
    t.fit()
    cm = t.confusion_matrix("val")
    assert cm.sum() == len(t.split.val)
    assert np.trace(cm) / cm.sum() == pytest.approx(t.history["val_accuracy"][-1])


def test_single_batches_close_the_epoch_like_fit_does():
    """The GUI's Step button: train_batch past an epoch's last batch closes that epoch first."""
    stepped = Trainer(parse_experiment(tiny()))
    for _ in range(stepped.steps_per_epoch + 1):
        stepped.train_batch()
    fitted = Trainer(parse_experiment(tiny()))
    fitted.fit(epochs=1)
    fitted.train_batch()
    assert stepped.epoch == fitted.epoch == 1 and stepped.step == fitted.step
    assert stepped.history["val_loss"] == fitted.history["val_loss"]
    np.testing.assert_array_equal(stepped.network.state()["output.kernel"], fitted.network.state()["output.kernel"])


def test_set_hyperparameters_changes_the_rate_at_the_next_batch():
    t = Trainer(parse_experiment(tiny()))
    t.train_batch()
    kernel = t.network.parameters()["output.kernel"]
    t.set_hyperparameters(parse_experiment(tiny(optimizer={"name": "sgd", "learning_rate": 0.025})))
    before = kernel.copy()
    t.train_batch()
    grad = t.network.gradients()["output.kernel"]
    # SGD: θ ← θ − η∇J with the new η.
    np.testing.assert_allclose(kernel, before - 0.025 * grad, rtol=1e-5, atol=1e-7)
    assert t.recorder["learning_rate"][-1] == pytest.approx(0.025)
    assert t.step == 2


def test_split_counts_match_the_split_a_trainer_cuts() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 5, size=311)
    for validation, test in ((0.2, 0.0), (0.7, 0.2), (0.33, 0.17)):
        split = stratified_split(y, validation, test, np.random.default_rng(1), stratify=True)
        counts = split_counts(list(np.bincount(y)), validation, test)
        for part in ("train", "val", "test"):
            assert counts[part] == list(np.bincount(y[getattr(split, part)], minlength=5)), (validation, test, part)
        one = stratified_split(np.zeros(311), validation, test, np.random.default_rng(1), stratify=False)
        assert split_counts([311], validation, test)["train"] == [len(one.train)]
