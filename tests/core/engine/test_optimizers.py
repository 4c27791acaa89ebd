"""Optimizers: each rule against its equations written out again here in plain NumPy."""

from __future__ import annotations

import io
import json
import math
import sys
import tracemalloc

import numpy as np
import pytest

from core.engine import optimizers
from core.engine.network import pack_flat
from core.engine.optimizers import OPTIMIZERS, Optimizer, flat_layout, get_optimizer

NAMES = OPTIMIZERS.names()

# Non-default hyperparameters, so a rule that silently used a default would be caught; a
# large ε makes its placement (inside or outside the square root) visible. An optimizer without a
# line here runs with its defaults.
HYPER = {
    "sgd": {"learning_rate": 0.1},
    "momentum": {"momentum": 0.8},
    "nesterov": {"momentum": 0.7},
    "adagrad": {"initial_accumulator_value": 0.2, "epsilon": 1e-3},
    "rmsprop": {"rho": 0.8, "epsilon": 1e-3},
    "adam": {"beta_1": 0.8, "beta_2": 0.95, "epsilon": 1e-3},
    "nadam": {"beta_1": 0.8, "beta_2": 0.95, "epsilon": 1e-3},
    "adamw": {"weight_decay": 0.1, "beta_1": 0.8, "beta_2": 0.95, "epsilon": 1e-3},
    "adamax": {"beta_1": 0.8, "beta_2": 0.95, "epsilon": 1e-3},
}
LRS = [0.1, 0.05, 0.2]  # a different rate per call, as a schedule would give


def make_params(dtype=np.float64, seed=0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"layers.0.kernel": rng.normal(size=(3, 2)).astype(dtype),
            "layers.0.bias": rng.normal(size=2).astype(dtype),
            "output.kernel": rng.normal(size=(2, 1)).astype(dtype)}


def make_grads(params, n_steps, seed=1) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [{k: rng.normal(size=p.shape).astype(p.dtype) for k, p in params.items()} for _ in range(n_steps)]


def make(name: str, **extra) -> Optimizer:
    return get_optimizer({"name": name, **HYPER.get(name, {}), **extra})


def reference(name: str, params, grad_seq, lrs) -> list[dict[str, np.ndarray]]:
    """The update equations, written independently of core.engine.optimizers (not in place)."""
    hp = {**OPTIMIZERS.get(name).parameters(), **HYPER.get(name, {})}
    theta = {k: p.copy() for k, p in params.items()}
    init = hp.get("initial_accumulator_value", 0.0)
    m = {k: np.zeros_like(p) for k, p in params.items()}
    v = {k: np.zeros_like(p) for k, p in params.items()}
    s = {k: np.full_like(p, init) for k, p in params.items()}
    u_product = 1.0
    out = []
    for t, (grads, lr) in enumerate(zip(grad_seq, lrs, strict=True), start=1):
        if name == "nadam":
            b1 = hp["beta_1"]
            u_t = b1 * (1 - 0.5 * 0.96**t)
            u_next = b1 * (1 - 0.5 * 0.96 ** (t + 1))
            u_product = u_product * u_t
        for k, g in grads.items():
            if name == "sgd":
                theta[k] = theta[k] - lr * g
            elif name == "momentum":
                m[k] = hp["momentum"] * m[k] - lr * g
                theta[k] = theta[k] + m[k]
            elif name == "nesterov":
                m[k] = hp["momentum"] * m[k] - lr * g
                theta[k] = theta[k] + hp["momentum"] * m[k] - lr * g
            elif name == "adagrad":
                s[k] = s[k] + g * g
                theta[k] = theta[k] - lr * g / np.sqrt(s[k] + hp["epsilon"])
            elif name == "rmsprop":
                s[k] = hp["rho"] * s[k] + (1 - hp["rho"]) * g * g
                theta[k] = theta[k] - lr * g / np.sqrt(s[k] + hp["epsilon"])
            elif name in ("adam", "adamw"):
                if name == "adamw":
                    theta[k] = theta[k] - lr * hp["weight_decay"] * theta[k]
                b1, b2 = hp["beta_1"], hp["beta_2"]
                m[k] = b1 * m[k] + (1 - b1) * g
                v[k] = b2 * v[k] + (1 - b2) * g * g
                alpha = lr * math.sqrt(1 - b2**t) / (1 - b1**t)
                theta[k] = theta[k] - alpha * m[k] / (np.sqrt(v[k]) + hp["epsilon"])
            elif name == "nadam":
                b1, b2 = hp["beta_1"], hp["beta_2"]
                m[k] = b1 * m[k] + (1 - b1) * g
                v[k] = b2 * v[k] + (1 - b2) * g * g
                m_hat = u_next * m[k] / (1 - u_product * u_next) + (1 - u_t) * g / (1 - u_product)
                v_hat = v[k] / (1 - b2**t)
                theta[k] = theta[k] - lr * m_hat / (np.sqrt(v_hat) + hp["epsilon"])
            elif name == "adamax":
                b1, b2 = hp["beta_1"], hp["beta_2"]
                m[k] = b1 * m[k] + (1 - b1) * g
                v[k] = np.maximum(b2 * v[k], np.abs(g))          # u, the decaying ℓ∞ norm
                theta[k] = theta[k] - (lr / (1 - b1**t)) * m[k] / (v[k] + hp["epsilon"])
            else:  # pragma: no cover - a new optimizer needs its equations here
                raise AssertionError(f"no reference equations for {name}")
        out.append({k: p.copy() for k, p in theta.items()})
    return out


# ---------------------------------------------------------------------- registry and config
def test_registry_holds_the_books_optimizers():
    assert NAMES == ["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamax", "nadam", "adamw"]


@pytest.mark.parametrize("name", NAMES)
def test_class_attributes(name):
    cls = OPTIMIZERS.get(name)
    assert cls.name == name and cls.family == "optimizer"
    assert isinstance(cls.summary, str) and cls.summary and "\n" not in cls.summary
    assert isinstance(cls.slot_names, tuple)
    assert "learning_rate" in cls.parameters()


def test_ratings_are_the_books_table_11_2():
    stars = {name: tuple(OPTIMIZERS.get(name).rating) for name in NAMES if OPTIMIZERS.get(name).rating}
    assert stars == {"sgd": ("*", "***"), "momentum": ("**", "***"), "nesterov": ("**", "***"),
                     "adagrad": ("***", "*"), "rmsprop": ("***", "** or ***"), "adam": ("***", "** or ***"),
                     "nadam": ("***", "** or ***"), "adamw": ("***", "** or ***"),
                     "adamax": ("***", "** or ***")}


@pytest.mark.parametrize("name", NAMES)
def test_summary_quotes_the_rating_it_has(name):
    """The one-line summary the GUI shows quotes the class's ``rating``, not stars of its own."""
    cls = OPTIMIZERS.get(name)
    if cls.rating is not None:
        assert f"(speed {cls.rating.speed}, quality {cls.rating.quality})" in cls.summary
    else:
        assert "speed *" not in cls.summary and "quality *" not in cls.summary


@pytest.mark.parametrize("name", NAMES)
def test_config_round_trip_and_repr(name):
    opt = make(name)
    config = json.loads(json.dumps(opt.get_config()))
    assert config["name"] == name
    again = get_optimizer(config)
    assert again == opt and again.get_config() == opt.get_config()
    assert type(again) is type(opt)
    assert repr(opt).startswith(f"{type(opt).__name__}(learning_rate=")
    # the repr reads like the constructor call (in the module that defines the class)
    assert eval(repr(opt), vars(sys.modules[type(opt).__module__])) == opt


def test_keras_defaults():
    assert OPTIMIZERS.get("sgd").parameters() == {"learning_rate": 0.01}
    assert OPTIMIZERS.get("momentum").parameters() == {"learning_rate": 0.01, "momentum": 0.9}
    assert OPTIMIZERS.get("nesterov").parameters() == {"learning_rate": 0.01, "momentum": 0.9}
    assert OPTIMIZERS.get("adagrad").parameters() == {
        "learning_rate": 0.001, "initial_accumulator_value": 0.1, "epsilon": 1e-7}
    assert OPTIMIZERS.get("rmsprop").parameters() == {"learning_rate": 0.001, "rho": 0.9, "epsilon": 1e-7}
    adam = {"learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7}
    assert OPTIMIZERS.get("adam").parameters() == adam
    assert OPTIMIZERS.get("nadam").parameters() == adam
    assert OPTIMIZERS.get("adamw").parameters() == {**adam, "weight_decay": 0.004}
    assert repr(get_optimizer({"name": "adam"})) == \
        "Adam(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-07)"


@pytest.mark.parametrize(("name", "field", "value", "message"), [
    ("sgd", "learning_rate", -1, "learning_rate: must be a positive number, got -1"),
    ("adam", "learning_rate", 0, "learning_rate: must be a positive number, got 0"),
    ("nadam", "learning_rate", True, "learning_rate: must be a positive number, got True"),
    ("momentum", "momentum", 1.0, "momentum: must be a number in [0, 1), got 1.0"),
    ("nesterov", "momentum", -0.1, "momentum: must be a number in [0, 1), got -0.1"),
    ("rmsprop", "rho", 1, "rho: must be a number in [0, 1), got 1"),
    ("adam", "beta_1", 1.5, "beta_1: must be a number in [0, 1), got 1.5"),
    ("adamw", "beta_2", "0.9", "beta_2: must be a number in [0, 1), got '0.9'"),
    ("adam", "epsilon", 0, "epsilon: must be a positive number, got 0"),
    ("adagrad", "initial_accumulator_value", -0.1,
     "initial_accumulator_value: must be a non-negative number, got -0.1"),
    ("adamw", "weight_decay", -1, "weight_decay: must be a non-negative number, got -1"),
    ("sgd", "momentum", 0.9, "momentum: unknown parameter for optimizer 'sgd'; allowed: learning_rate"),
])
def test_bad_hyperparameters_name_the_field(name, field, value, message):
    with pytest.raises(ValueError) as info:
        get_optimizer({"name": name, field: value})
    assert str(info.value) == message


def test_unknown_name_lists_the_allowed_ones():
    with pytest.raises(ValueError, match=r"^name: must be one of 'sgd', 'momentum'.*got 'adadelta'"):
        get_optimizer({"name": "adadelta"})
    with pytest.raises(ValueError, match=r"^name: must be one of"):
        get_optimizer({"learning_rate": 0.1})


def test_boundary_values_are_accepted():
    assert get_optimizer({"name": "momentum", "momentum": 0}).momentum == 0.0
    assert get_optimizer({"name": "adamw", "weight_decay": 0}).weight_decay == 0.0
    assert get_optimizer({"name": "adagrad", "initial_accumulator_value": 0}).initial_accumulator_value == 0.0


# ---------------------------------------------------------------------- the update rules
@pytest.mark.parametrize("name", NAMES)
def test_first_three_steps_match_the_equations(name):
    params = make_params()
    start = {k: p.copy() for k, p in params.items()}
    grad_seq = make_grads(params, 3)
    expected = reference(name, start, grad_seq, LRS)
    opt = make(name)
    opt.build(params)
    assert opt.iterations == 0
    for t, (grads, lr) in enumerate(zip(grad_seq, LRS, strict=True), start=1):
        opt.apply(params, grads, lr)
        assert opt.iterations == t
        for k in params:
            np.testing.assert_allclose(params[k], expected[t - 1][k], rtol=1e-12, atol=1e-15, err_msg=k)
            assert params[k].dtype == np.float64


@pytest.mark.parametrize("name", NAMES)
def test_updates_hold_the_step_taken(name):
    params = make_params()
    updates = {k: np.full_like(p, np.nan) for k, p in params.items()}
    opt = make(name)
    opt.build(params)
    for grads, lr in zip(make_grads(params, 3), LRS, strict=True):
        before = {k: p.copy() for k, p in params.items()}
        opt.apply(params, grads, lr, updates)
        for k in params:
            np.testing.assert_array_equal(before[k] + updates[k], params[k])  # exactly what was added
            np.testing.assert_allclose(updates[k], params[k] - before[k], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", NAMES)
def test_measured_squared_norms_are_those_of_the_step_and_the_new_parameters(name, monkeypatch):
    monkeypatch.setattr(optimizers, "BLOCK_ELEMENTS", 2)  # summed over several blocks
    params = make_params()
    updates = {k: np.zeros_like(p) for k, p in params.items()}
    opt = make(name)
    opt.build(params)
    for grads, lr in zip(make_grads(params, 3), LRS, strict=True):
        opt.apply(params, grads, lr, updates, measure={"layers.0.kernel", "output.kernel", "not.a.path"})
        assert set(opt.squared_norms) == {"layers.0.kernel", "output.kernel"}
        for k, (step_sq, param_sq) in opt.squared_norms.items():
            assert step_sq == pytest.approx(float(np.sum(updates[k] ** 2)), rel=1e-12)
            assert param_sq == pytest.approx(float(np.sum(params[k] ** 2)), rel=1e-12)
    opt.apply(params, grads, 0.1)
    assert opt.squared_norms == {}


@pytest.mark.parametrize("name", NAMES)
def test_blocks_give_the_same_step_bit_for_bit(name, monkeypatch):
    """apply() runs the rule on blocks of rows (cache-sized); the result must not depend on it."""
    rng = np.random.default_rng(3)
    shapes = {"layers.0.kernel": (7, 5), "layers.0.bias": (5,), "output.kernel": (5, 3)}
    start = {k: rng.normal(size=s).astype(np.float32) for k, s in shapes.items()}
    grad_seq = [{k: rng.normal(size=s).astype(np.float32) for k, s in shapes.items()} for _ in range(3)]
    results = []
    for block in (10**9, 4):  # whole arrays; blocks of 4 values (one row of a kernel, 4 of a bias)
        monkeypatch.setattr(optimizers, "BLOCK_ELEMENTS", block)
        params = {k: p.copy() for k, p in start.items()}
        opt = make(name)
        opt.build(params)
        for grads, lr in zip(grad_seq, LRS, strict=True):
            opt.apply(params, grads, lr)
        results.append(params)
    for k in start:
        np.testing.assert_array_equal(results[0][k], results[1][k], err_msg=k)


@pytest.mark.parametrize("name", NAMES)
def test_float32_stays_float32(name):
    params = make_params(np.float32)
    updates = {k: np.zeros_like(p) for k, p in params.items()}
    start = {k: p.astype(np.float64) for k, p in params.items()}
    grad_seq = make_grads(params, 3)
    opt = make(name)
    opt.build(params)
    for grads, lr in zip(grad_seq, LRS, strict=True):
        opt.apply(params, grads, np.float64(lr), updates)  # even a NumPy scalar rate must not upcast
    for k, p in params.items():
        assert p.dtype == np.float32 and updates[k].dtype == np.float32
    for key, slot in opt.state_dict()["slots"].items():
        assert slot.dtype == (np.float64 if "/" not in key else np.float32), key
    expected = reference(name, start, [{k: g.astype(np.float64) for k, g in gs.items()} for gs in grad_seq],
                         LRS)[-1]
    for k in params:
        np.testing.assert_allclose(params[k], expected[k], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_apply_allocates_no_arrays_after_build(name):
    rng = np.random.default_rng(0)
    params = {"big": rng.normal(size=100_000).astype(np.float32)}
    grads = {"big": rng.normal(size=100_000).astype(np.float32)}
    updates = {"big": np.zeros_like(params["big"])}
    opt = make(name)
    opt.build(params)
    opt.apply(params, grads, 0.01, updates)
    opt.apply(params, grads, 0.01)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        opt.apply(params, grads, 0.01, updates)
        opt.apply(params, grads, 0.01)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 40_000, f"apply allocated {peak} bytes (one temporary would be 400,000)"


@pytest.mark.parametrize("name", NAMES)
def test_only_parameters_with_gradients_are_touched(name):
    params = make_params()
    opt = make(name)
    opt.build(params)
    frozen = {k: params[k].copy() for k in ("layers.0.kernel", "layers.0.bias")}
    slots_before = opt.state_dict()["slots"]
    grads = {"output.kernel": np.ones_like(params["output.kernel"])}
    out_before = params["output.kernel"].copy()
    opt.apply(params, grads, 0.1, {"output.kernel": np.zeros_like(out_before)})
    for k, p in frozen.items():
        np.testing.assert_array_equal(params[k], p)
    assert not np.array_equal(params["output.kernel"], out_before)
    for key, slot in opt.state_dict()["slots"].items():
        if key.startswith("layers.0."):
            np.testing.assert_array_equal(slot, slots_before[key], err_msg=key)


@pytest.mark.parametrize("name", NAMES)
def test_bad_apply_calls_raise_before_changing_anything(name):
    params = make_params()
    opt = make(name)
    opt.build(params)
    before = {k: p.copy() for k, p in params.items()}
    grads = {"layers.0.kernel": np.ones((3, 2)), "layers.0.bias": np.ones(3)}  # second has the wrong shape
    with pytest.raises(ValueError, match="layers.0.bias"):
        opt.apply(params, grads, 0.1)
    with pytest.raises(KeyError, match="layers.9.kernel"):
        opt.apply({**params, "layers.9.kernel": np.ones(2)}, {"layers.9.kernel": np.ones(2)}, 0.1)
    assert opt.iterations == 0
    for k in params:
        np.testing.assert_array_equal(params[k], before[k])


# ---------------------------------------------------------------------- state
def _npz_round_trip(slots):
    buf = io.BytesIO()
    np.savez(buf, **slots)
    buf.seek(0)
    with np.load(buf, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", NAMES)
def test_state_round_trip_continues_bit_for_bit(name, dtype):
    grad_seq = make_grads(make_params(dtype), 6)
    lrs = LRS + [0.07, 0.03, 0.11]
    a_params = make_params(dtype)
    a = make(name)
    a.build(a_params)
    for grads, lr in zip(grad_seq[:3], lrs[:3], strict=True):
        a.apply(a_params, grads, lr)
    state = a.state_dict()
    # through JSON and .npz, as a session file stores it
    state = {"iterations": json.loads(json.dumps(state["iterations"])),
             "slots": _npz_round_trip(state["slots"])}

    b_params = {k: p.copy() for k, p in a_params.items()}
    b = get_optimizer(a.get_config())
    b.build(b_params)
    b.load_state_dict(state)
    assert b.iterations == a.iterations == 3
    for grads, lr in zip(grad_seq[3:], lrs[3:], strict=True):
        a.apply(a_params, grads, lr)
        b.apply(b_params, grads, lr)
    for k in a_params:
        np.testing.assert_array_equal(a_params[k], b_params[k])
        assert b_params[k].dtype == dtype
    sa, sb = a.state_dict(), b.state_dict()
    assert sa["iterations"] == sb["iterations"] == 6
    assert sa["slots"].keys() == sb["slots"].keys()
    for key in sa["slots"]:
        np.testing.assert_array_equal(sa["slots"][key], sb["slots"][key])


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_shape_and_copies(name):
    params = make_params()
    opt = make(name)
    opt.build(params)
    opt.apply(params, make_grads(params, 1)[0], 0.1)
    state = opt.state_dict()
    assert set(state) == {"iterations", "slots"} and state["iterations"] == 1
    expected = {f"{k}/{s}" for k in params for s in opt.slot_names} | set(type(opt).scalar_state_names)
    assert set(state["slots"]) == expected
    for array in state["slots"].values():
        array[...] = 123.0  # mutating the returned copies must not reach the optimizer
    assert all(not np.any(a == 123.0) for a in opt.state_dict()["slots"].values())
    opt.load_state_dict(state)
    for array in state["slots"].values():
        array[...] = 7.0  # nor may the loaded arrays be kept by reference
    assert all(np.all(a == 123.0) for a in opt.state_dict()["slots"].values())


def test_nadam_keeps_the_momentum_product():
    params = make_params()
    opt = make("nadam")
    opt.build(params)
    b1 = HYPER["nadam"]["beta_1"]
    for grads in make_grads(params, 3):
        opt.apply(params, grads, 0.01)
    u = opt.state_dict()["slots"]["u_product"]
    assert u.shape == () and u.dtype == np.float64
    assert float(u) == pytest.approx(math.prod(b1 * (1 - 0.5 * 0.96**t) for t in (1, 2, 3)), rel=1e-15)


def _built(name):
    params = make_params()
    opt = make(name)
    opt.build(params)
    opt.apply(params, make_grads(params, 1)[0], 0.1)
    return opt, opt.state_dict()


@pytest.mark.parametrize("name", [n for n in NAMES if OPTIMIZERS.get(n).slot_names])
def test_load_state_dict_rejects_a_missing_slot(name):
    opt, state = _built(name)
    del state["slots"][f"layers.0.bias/{opt.slot_names[-1]}"]
    with pytest.raises(ValueError, match=f"missing slot 'layers.0.bias/{opt.slot_names[-1]}'"):
        opt.load_state_dict(state)


@pytest.mark.parametrize("name", [n for n in NAMES if OPTIMIZERS.get(n).slot_names])
def test_load_state_dict_rejects_wrong_shape_or_dtype(name):
    opt, state = _built(name)
    key = f"layers.0.kernel/{opt.slot_names[0]}"
    good = state["slots"][key]
    before = opt.state_dict()
    state["slots"][key] = np.zeros((2, 3))
    with pytest.raises(ValueError, match=rf"slot '{key}' has shape \(2, 3\), expected \(3, 2\)"):
        opt.load_state_dict(state)
    state["slots"][key] = good.astype(np.float32)
    with pytest.raises(ValueError, match=f"slot '{key}' has dtype float32, expected float64"):
        opt.load_state_dict(state)
    assert opt.iterations == before["iterations"]


@pytest.mark.parametrize("name", NAMES)
def test_load_state_dict_rejects_extra_keys(name):
    opt, state = _built(name)
    state["slots"]["layers.7.kernel/m"] = np.zeros(3)
    with pytest.raises(ValueError, match="unexpected slot 'layers.7.kernel/m'"):
        opt.load_state_dict(state)
    _, state = _built(name)
    with pytest.raises(ValueError, match="unexpected keys \\['epoch'\\]"):
        opt.load_state_dict({**state, "epoch": 3})
    with pytest.raises(ValueError, match="iterations must be a non-negative integer"):
        opt.load_state_dict({**state, "iterations": -1})


def test_load_state_dict_into_an_unbuilt_optimizer_says_so():
    _, state = _built("adam")
    with pytest.raises(ValueError, match="call build"):
        make("adam").load_state_dict(state)


def test_nadam_state_needs_its_momentum_product():
    opt, state = _built("nadam")
    del state["slots"]["u_product"]
    with pytest.raises(ValueError, match="missing slot 'u_product'"):
        opt.load_state_dict(state)


# ---------------------------------------------------------------------- behaviour the book describes
def _steps_to_converge(name, lr, max_steps=5000):
    """f(x, y) = x² + 10 y², an elongated bowl; steps until |θ| < 1e-3."""
    params = {"theta": np.array([1.0, 1.0])}
    opt = get_optimizer({"name": name, "learning_rate": lr})
    opt.build(params)
    scale = np.array([2.0, 20.0])
    for step in range(1, max_steps + 1):
        opt.apply(params, {"theta": scale * params["theta"]}, lr)
        if np.linalg.norm(params["theta"]) < 1e-3:
            return step
    return max_steps + 1


def test_momentum_rolls_down_an_elongated_bowl_faster_than_sgd():
    sgd, momentum, nesterov = (_steps_to_converge(n, 0.01) for n in ("sgd", "momentum", "nesterov"))
    assert momentum < sgd <= 5000
    assert nesterov < sgd
    assert momentum * 3 < sgd  # not a marginal win: ≈ 70 vs 340 steps here


def test_adagrad_step_sizes_shrink():
    params = {"w": np.zeros(4)}
    updates = {"w": np.zeros(4)}
    opt = get_optimizer({"name": "adagrad", "learning_rate": 0.1})
    opt.build(params)
    sizes = []
    for _ in range(20):
        opt.apply(params, {"w": np.ones(4)}, 0.1, updates)  # the same gradient every time
        sizes.append(float(np.linalg.norm(updates["w"])))
    assert all(b < a for a, b in zip(sizes, sizes[1:], strict=False))
    assert sizes[-1] < sizes[0] / 4  # ≈ 1/√t


def test_adamw_decays_weights_without_a_gradient_signal():
    params = {"w": np.full(3, 2.0)}
    opt = get_optimizer({"name": "adamw", "weight_decay": 0.5})
    opt.build(params)
    opt.apply(params, {"w": np.zeros(3)}, 0.1)  # zero gradient: only the decay acts
    np.testing.assert_allclose(params["w"], 2.0 * (1 - 0.1 * 0.5))


# ----------------------------------------------------------------------------- the flat path


FLAT_SHAPES = {"layers.0.kernel": (7, 5), "layers.0.bias": (5,), "layers.1.kernel": (5, 4),
               "layers.1.gamma": (4,), "output.kernel": (4, 3), "output.bias": (3,)}
KERNELS = {"layers.0.kernel", "layers.1.kernel", "output.kernel"}


def flat_run(name, flat: bool, dtype, keys=None, steps=4):
    """Train FLAT_SHAPES for a few steps, with the parameters and gradients as separate arrays
    or packed like a Network packs them; the gradients of ``keys`` (default: all) are stepped."""
    rng = np.random.default_rng(5)
    start = {k: rng.normal(size=s).astype(dtype) for k, s in FLAT_SHAPES.items()}
    grad_seq = [{k: rng.normal(size=s).astype(dtype) for k, s in FLAT_SHAPES.items()} for _ in range(steps)]
    params = pack_flat(start, np.dtype(dtype))[1] if flat else {k: p.copy() for k, p in start.items()}
    grads = pack_flat(grad_seq[0], np.dtype(dtype))[1] if flat else {k: g.copy() for k, g in grad_seq[0].items()}
    keys = list(FLAT_SHAPES) if keys is None else keys
    updates = {k: np.zeros(FLAT_SHAPES[k], dtype) for k in keys}
    opt = make(name)
    opt.build(params)
    record = []
    for gs, lr in zip(grad_seq, [*LRS, 0.07][:steps], strict=True):
        for k in grads:
            grads[k][...] = gs[k]
        opt.apply(params, {k: grads[k] for k in keys}, lr, updates, measure=KERNELS)
        record.append(({k: p.copy() for k, p in params.items()}, {k: u.copy() for k, u in updates.items()},
                       dict(opt.squared_norms), opt.stepped_flat))
    return record, opt


@pytest.mark.parametrize("name", NAMES)
def test_packed_parameters_are_stepped_flat_with_the_same_result_bit_for_bit(name, monkeypatch):
    """A Network's parameters and gradients are views of one flat array each; apply() then
    steps the flat arrays in blocks (here of 8 values: a kernel cut in pieces, and groups of
    whole small tensors). Parameters, updates and slots must equal the tensor-by-tensor path
    exactly, and the norms summed block by block must equal those of the arrays."""
    monkeypatch.setattr(optimizers, "BLOCK_ELEMENTS", 8)
    for dtype in (np.float32, np.float64):
        separate, opt_separate = flat_run(name, False, dtype)
        packed, opt_packed = flat_run(name, True, dtype)
        for (p1, u1, n1, flat1), (p2, u2, n2, flat2) in zip(separate, packed, strict=True):
            assert (flat1, flat2) == (False, True)
            for k in p1:
                np.testing.assert_array_equal(p1[k], p2[k], err_msg=k)
                np.testing.assert_array_equal(u1[k], u2[k], err_msg=k)
            assert set(n1) == set(n2) == KERNELS
            for k in KERNELS:
                assert n1[k] == pytest.approx(n2[k], rel=1e-5)
                step_sq, param_sq = n2[k]
                assert step_sq == pytest.approx(float(np.sum(u2[k].astype(np.float64) ** 2)), rel=1e-5)
                assert param_sq == pytest.approx(float(np.sum(p2[k].astype(np.float64) ** 2)), rel=1e-5)
        slots1, slots2 = opt_separate.state_dict()["slots"], opt_packed.state_dict()["slots"]
        assert slots1.keys() == slots2.keys()
        for key in slots1:
            np.testing.assert_array_equal(slots1[key], slots2[key], err_msg=key)


@pytest.mark.parametrize("name", ["momentum", "adam"])
def test_a_frozen_subset_of_packed_parameters_is_stepped_tensor_by_tensor(name):
    """With a layer left out (frozen), the flat arrays cannot be stepped whole: apply() falls
    back to the tensors it was given and leaves the others alone."""
    keys = ["layers.1.kernel", "layers.1.gamma", "output.kernel", "output.bias"]
    separate, _ = flat_run(name, False, np.float32, keys)
    packed, _ = flat_run(name, True, np.float32, keys)
    start = flat_run(name, True, np.float32, keys, steps=1)[0][0][0]
    for (p1, u1, _, flat1), (p2, u2, _, flat2) in zip(separate, packed, strict=True):
        assert not flat1 and not flat2
        for k in p1:
            np.testing.assert_array_equal(p1[k], p2[k], err_msg=k)
        for k in keys:
            np.testing.assert_array_equal(u1[k], u2[k], err_msg=k)
    for k in ("layers.0.kernel", "layers.0.bias"):
        np.testing.assert_array_equal(packed[-1][0][k], start[k])  # never moved


def test_flat_layout_recognises_only_views_of_one_flat_array():
    flat, views = pack_flat({k: np.ones(s, np.float32) for k, s in FLAT_SHAPES.items()}, np.dtype(np.float32))
    base, offsets = flat_layout(views)
    assert base is flat
    assert all(offset % 16 == 0 for offset in offsets.values())  # 64-byte aligned float32 segments
    for k, view in views.items():
        view[...] = 2.0
        assert flat[offsets[k]:offsets[k] + view.size].sum() == 2.0 * view.size
        view[...] = 1.0
    assert flat_layout({k: v.copy() for k, v in views.items()}) is None  # separate arrays
    other = pack_flat({"x": np.ones(3, np.float32)}, np.dtype(np.float32))[1]
    assert flat_layout({**views, **other}) is None  # two bases
    assert flat_layout({"t": flat.reshape(-1, 2).T}) is None  # not C-contiguous


@pytest.mark.parametrize("name", ["momentum", "nesterov"])
def test_the_momentum_help_describes_beta_as_the_book_does(name):
    """The book: β = 0 means high friction, close to 1 means no friction."""
    text = OPTIMIZERS.get(name).hyperparameter("momentum").help
    assert "β = 0 is high friction" in text and "close to 1 is almost none" in text


@pytest.mark.parametrize("name", NAMES)
def test_repeated_flat_steps_without_updates_match_the_tensor_path_and_still_check_new_arrays(name, monkeypatch):
    """The trainer's call: the same packed arrays every step, no ``updates``. From the second
    step on apply() reuses the blocks it checked before; parameters, slots and norms must stay
    those of the tensor-by-tensor path, bit for bit; a gradient array it has not seen is checked
    again, so one of the wrong shape is refused before anything moves."""
    monkeypatch.setattr(optimizers, "BLOCK_ELEMENTS", 8)
    rng = np.random.default_rng(9)
    start = {k: rng.normal(size=s).astype(np.float32) for k, s in FLAT_SHAPES.items()}
    grad_seq = [{k: rng.normal(size=s).astype(np.float32) for k, s in FLAT_SHAPES.items()} for _ in range(4)]
    runs = []
    for flat in (False, True):
        params = pack_flat(start, np.dtype(np.float32))[1] if flat else {k: p.copy() for k, p in start.items()}
        first = grad_seq[0]
        grads = pack_flat(first, np.dtype(np.float32))[1] if flat else {k: g.copy() for k, g in first.items()}
        opt = make(name)
        opt.build(params)
        for gs, lr in zip(grad_seq, [*LRS, 0.07][:4], strict=True):
            for k in grads:
                grads[k][...] = gs[k]
            opt.apply(params, grads, lr, measure=KERNELS)
            assert opt.stepped_flat is flat
        runs.append((params, opt))
    (p1, opt1), (p2, opt2) = runs
    for k in p1:
        np.testing.assert_array_equal(p1[k], p2[k], err_msg=k)
    for k in KERNELS:
        assert opt1.squared_norms[k] == pytest.approx(opt2.squared_norms[k], rel=1e-5)
    slots1, slots2 = opt1.state_dict()["slots"], opt2.state_dict()["slots"]
    for key in slots1:
        np.testing.assert_array_equal(slots1[key], slots2[key], err_msg=key)
    before = {k: p.copy() for k, p in p2.items()}
    iterations = opt2.iterations
    bad = {k: np.zeros_like(g) for k, g in pack_flat(grad_seq[0], np.dtype(np.float32))[1].items()}
    bad["output.kernel"] = np.zeros((1, 1), np.float32)
    with pytest.raises(ValueError, match="output.kernel"):
        opt2.apply(p2, bad, 0.01)
    assert opt2.iterations == iterations
    for k in before:
        np.testing.assert_array_equal(p2[k], before[k], err_msg=k)


# ---------------------------------------------------------------------- y + a·x in one pass
def _fused(y: np.ndarray, a: float, x: np.ndarray) -> np.ndarray:
    """y + a·x rounded once to y's dtype (float32 products of float32 values are exact in float64)."""
    return (y.astype(np.float64) + np.float64(np.float32(a)) * x.astype(np.float64)).astype(y.dtype)


def test_add_scaled_adds_in_place_with_one_rounding_where_axpy_is_taken() -> None:
    optimizers.axpy_functions()
    rng = np.random.default_rng(3)
    x = rng.standard_normal((300, 7), dtype=np.float32)
    y = rng.standard_normal((300, 7), dtype=np.float32)
    taken = np.dtype(np.float32) in optimizers.axpy_functions()
    expected = _fused(y, -0.037, x) if taken else y + np.float32(-0.037) * x
    out = y
    optimizers.add_scaled(y, -0.037, x, np.empty_like(y))
    assert out is y and y.dtype == np.float32
    np.testing.assert_array_equal(y, expected)


def test_add_scaled_without_axpy_makes_numpys_two_passes(monkeypatch) -> None:
    monkeypatch.setattr(optimizers, "_AXPY", {})
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal(1000), rng.standard_normal(1000)
    expected = y + (x * 0.25)
    scratch = np.empty_like(y)
    optimizers.add_scaled(y, 0.25, x, scratch)
    np.testing.assert_array_equal(y, expected)


def test_a_non_contiguous_array_takes_the_two_passes() -> None:
    optimizers.axpy_functions()
    rng = np.random.default_rng(5)
    x = rng.standard_normal((40, 30), dtype=np.float32)
    y = rng.standard_normal((30, 40), dtype=np.float32).T          # a transposed view
    expected = y + x * np.float32(0.5)
    optimizers.add_scaled(y, 0.5, x, np.empty_like(x))
    np.testing.assert_array_equal(y, expected)


def test_decay_towards_is_the_exponentially_decaying_mean() -> None:
    optimizers.axpy_functions()
    rng = np.random.default_rng(6)
    average, x = rng.standard_normal(5000), rng.standard_normal(5000)
    expected = 0.9 * average + 0.1 * x
    optimizers.decay_towards(average, 0.9, x, np.empty_like(x))
    np.testing.assert_allclose(average, expected, rtol=1e-14, atol=1e-15)


def _vector_loop_and_tail(group: int):
    """A kernel like OpenBLAS's AVX2 saxpy: one fused multiply-add per value in whole groups of
    ``group`` values, a product and a sum (two roundings) for the rest."""
    def axpy(x, y, a):
        k = y.size - y.size % group
        y[:k] = _fused(y[:k], a, x[:k])
        y[k:] += np.float32(a) * x[k:]
        return y
    return axpy


def test_a_kernel_whose_tail_rounds_otherwise_is_taken_in_whole_blocks() -> None:
    """Fed whole multiples of AXPY_BLOCK values (the rest zero-padded to a block), a kernel whose
    scalar tail rounds differently puts every value through its vector loop: each value is
    y + a·x rounded once, wherever it lies (on the Haswell kernel this was two roundings in
    the last n mod 32 values, and axpy was turned off)."""
    axpy = _vector_loop_and_tail(32)
    assert optimizers.computes_each_element_alone(axpy, np.dtype(np.float32))
    rng = np.random.default_rng(9)
    for n in (1, 31, 255, 256, 257, 1_000):
        x, y = rng.standard_normal((2, n), dtype=np.float32)
        expected = _fused(y, -0.041, x)
        assert optimizers.axpy_in_whole_blocks(axpy, x, y, -0.041)
        np.testing.assert_array_equal(y, expected, err_msg=f"n={n}")
    # the same kernel called directly: its tail's two roundings show (31 values an array)
    x, y = rng.standard_normal((2, 20, 1_023), dtype=np.float32)
    direct = [np.array_equal(axpy(xi, yi.copy(), -0.041), _fused(yi, -0.041, xi)) for xi, yi in zip(x, y, strict=True)]
    assert not all(direct)


def test_an_axpy_that_rounds_by_position_or_copies_is_not_taken() -> None:
    def alone(x, y, a):                  # every element the same way
        y[:] = _fused(y, a, x)
        return y

    def by_alignment(x, y, a):           # fused only where the array starts on a 64-byte boundary
        if y.__array_interface__["data"][0] % 64:
            y += np.float32(a) * x
        else:
            y[:] = _fused(y, a, x)
        return y

    def a_copy(x, y, a):                 # right values, not in place
        return _fused(y, a, x)

    float32 = np.dtype(np.float32)
    assert optimizers.computes_each_element_alone(alone, float32)
    # a vector loop wider than a block never runs on a block: every value takes the tail
    assert not optimizers.computes_each_element_alone(_vector_loop_and_tail(2 * optimizers.AXPY_BLOCK), float32)
    assert not optimizers.computes_each_element_alone(by_alignment, float32)
    assert not optimizers.computes_each_element_alone(a_copy, float32)


def test_an_optimizer_with_fused_updates_off_computes_numpys_two_roundings() -> None:
    """What the optimizer race relies on for a table that is the same on every machine."""
    rng = np.random.default_rng(8)
    theta, grad = rng.standard_normal(2), rng.standard_normal(2)
    opt = OPTIMIZERS.get("momentum")(learning_rate=0.3, momentum=0.7)
    opt.fused_updates = False
    params = {"theta": theta.copy()}
    opt.build(params)
    for _ in range(3):
        opt.apply(params, {"theta": grad}, 0.3)
    m, expected = np.zeros(2), theta.copy()
    for _ in range(3):
        m = m * 0.7
        m = m + grad * -0.3
        expected = expected + m
    np.testing.assert_array_equal(params["theta"], expected)


def test_aligned_zeros_start_where_asked() -> None:
    for dtype in (np.float32, np.float64):
        for shift in (0, 1, 3):
            a = optimizers.aligned_zeros(1_000, np.dtype(dtype), shift)
            assert a.shape == (1_000,) and a.dtype == dtype and not a.any()
            assert a.ctypes.data % 64 == shift * a.itemsize


def test_the_padded_block_is_made_once_per_thread_and_dtype() -> None:
    """The last values of an array go through this buffer at every step: made once, not per call
    (the hot path allocates nothing), and one per thread so two threads never share it."""
    import threading

    float32 = np.dtype(np.float32)
    mine = optimizers.padded_block(float32)
    assert mine.shape == (2, optimizers.AXPY_BLOCK) and mine.ctypes.data % 64 == 0
    assert optimizers.padded_block(float32) is mine
    assert optimizers.padded_block(np.dtype(np.float64)) is not mine
    other: list[np.ndarray] = []
    thread = threading.Thread(target=lambda: other.append(optimizers.padded_block(float32)))
    thread.start()
    thread.join()
    assert other[0] is not mine
