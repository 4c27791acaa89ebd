"""DiagnosticsRecorder: growable per-step tables whose unfilled cells read NaN; the one check of a
stored history."""

from __future__ import annotations

import numpy as np
import pytest

from core.engine.diagnostics import (
    EPOCH_METRICS,
    LAYER_QUANTITIES,
    STEP_QUANTITIES,
    DiagnosticsRecorder,
    check_history,
)


def filled(n: int, layers: int = 2) -> DiagnosticsRecorder:
    """A recorder of ``n`` rows whose every cell says where it is (step·10 + layer)."""
    rec = DiagnosticsRecorder([f"l{j}" for j in range(layers)], capacity=16)
    for step in range(1, n + 1):
        write(rec, step)
    return rec


def write(rec: DiagnosticsRecorder, step: int, offset: float = 0.0) -> None:
    row = rec.append(step)
    for q in LAYER_QUANTITIES:
        rec.table(q)[row] = [step * 10 + j + offset for j in range(rec.n_layers)]
    for q in STEP_QUANTITIES:
        rec.table(q)[row] = step + offset


def test_rows_grow_and_unfilled_cells_read_nan_even_after_a_truncate() -> None:
    rec = DiagnosticsRecorder(["a", "b"], capacity=16)
    for step in range(1, 41):  # grows 16 -> 32 -> 64
        row = rec.append(step)
        rec.table("grad_norm")[row] = [step, -step]
        rec.table("loss")[row] = step / 2
    assert rec.size == 40 and rec.capacity == 64
    np.testing.assert_array_equal(rec.steps, np.arange(1, 41))
    np.testing.assert_array_equal(rec["grad_norm"][:, 0], np.arange(1, 41, dtype=np.float32))
    assert np.isnan(rec["weight_norm"]).all()

    rec.truncate(10)  # a roll-back: rows 10..39 are forgotten
    row = rec.append(11)
    assert row == 10 and rec.size == 11
    for q in LAYER_QUANTITIES:
        assert np.isnan(rec[q][10]).all(), q  # nothing of the forgotten step 11 is left
    for q in STEP_QUANTITIES:
        assert np.isnan(rec[q][10]), q
    np.testing.assert_array_equal(rec["grad_norm"][9], [10.0, -10.0])


def test_round_trip_through_arrays() -> None:
    rec = DiagnosticsRecorder(["a"], capacity=16)
    for step in (1, 2, 3):
        rec.table("weight_norm")[rec.append(step)] = [step]
    again = DiagnosticsRecorder.from_arrays(rec.to_arrays())
    np.testing.assert_array_equal(again.steps, [1, 2, 3])
    np.testing.assert_array_equal(again["weight_norm"][:, 0], [1, 2, 3])
    assert np.isnan(again["grad_norm"]).all()
    again.table("loss")[again.append(4)] = 0.5
    assert np.isnan(again["weight_norm"][3, 0]) and again["loss"][3] == 0.5


def history_of(rec: DiagnosticsRecorder, epochs: int) -> dict[str, np.ndarray]:
    out = {k: np.arange(1, epochs + 1, dtype=np.int64 if k == "epoch" else np.float64) for k in EPOCH_METRICS}
    out.update(rec.to_arrays())
    return out


@pytest.mark.parametrize(("change", "message"), [
    ({"loss": np.zeros(2)}, r"h\[loss\] must hold one number per epoch \(3\)"),
    ({"val_loss": np.array(["a", "b", "c"])}, r"h\[val_loss\] must hold one number per epoch"),
    ({"layer_names": np.array(["a", "b", "c"])}, r"h\[layer_names\] must name the 2 layers"),
    ({"step": np.zeros((5, 1), np.int64)}, r"h\[step\] must hold one integer per recorded step"),
    ({"step": np.zeros(5)}, r"h\[step\] must hold one integer per recorded step"),
    ({"grad_norm": np.zeros((5, 3), np.float32)}, r"h\[grad_norm\] must be floats of shape \(5, 2\)"),
    ({"step_loss": np.zeros(4, np.float32)}, r"h\[step_loss\] must be floats of shape \(5,\)"),
    ({"dead_fraction": np.zeros((5, 2), np.int64)}, r"h\[dead_fraction\] must be floats"),
])
def test_check_history_names_the_first_array_that_does_not_fit(change: dict, message: str) -> None:
    good = history_of(filled(5), epochs=3)
    check_history(good, 2, "h", complete=True)
    with pytest.raises(ValueError, match=message):
        check_history({**good, **change}, 2, "h")


def test_check_history_complete_needs_what_rebuilds_a_recorder() -> None:
    good = history_of(filled(5), epochs=3)
    for key in ("step", "layer_names"):
        # without steps, no per-step arrays either: they must have one row per step
        partial = {k: a for k, a in good.items() if k != key and (key != "step" or k in EPOCH_METRICS)}
        check_history(partial, 2, "h")           # a file may lack them...
        with pytest.raises(ValueError, match=rf"h\[{key}\] is missing"):
            check_history(partial, 2, "h", complete=True)   # ... a trainer's state may not
