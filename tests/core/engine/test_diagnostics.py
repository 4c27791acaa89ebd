"""DiagnosticsRecorder: growable per-step tables whose unfilled cells read NaN; the rows it hands
out since a given row (copies, coalescing in order); the one check of a stored history."""

from __future__ import annotations

import numpy as np
import pytest

from core.engine.diagnostics import (
    EPOCH_METRICS,
    LAYER_QUANTITIES,
    STEP_QUANTITIES,
    DiagnosticsRecorder,
    Rows,
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


def test_a_whole_row_lands_under_each_quantity_name_also_after_growing() -> None:
    rec = DiagnosticsRecorder(["a", "b", "c"], capacity=16)
    rows = []
    for step in range(1, 21):  # past the first capacity: the block is re-allocated once
        layers = np.array([[step * 100 + i * 10 + j for j in range(3)] for i in range(len(LAYER_QUANTITIES))],
                          dtype=np.float64)
        layers[2] = np.nan                        # a quantity not measured at this step
        assert rec.append_row(step, layers, loss=step / 4, learning_rate=0.5 / step) == step - 1
        rows.append(layers)
    assert rec.capacity == 32
    np.testing.assert_array_equal(rec.steps, np.arange(1, 21))
    for i, q in enumerate(LAYER_QUANTITIES):
        np.testing.assert_array_equal(rec[q], np.array([r[i] for r in rows], dtype=np.float32), err_msg=q)
    np.testing.assert_array_equal(rec["loss"], np.arange(1, 21, dtype=np.float32) / 4)
    np.testing.assert_array_equal(rec["learning_rate"], (0.5 / np.arange(1, 21)).astype(np.float32))
    rec.truncate(5)
    assert rec.append(6) == 5 and all(np.isnan(rec[q][5]).all() for q in LAYER_QUANTITIES)


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


def test_since_copies_the_new_rows_only() -> None:
    rec = filled(30)
    rows = rec.since(25)
    assert rows.start == 25 and len(rows) == 5 and rows.end == 30
    assert set(rows.columns) == {"step", *LAYER_QUANTITIES, *STEP_QUANTITIES}
    np.testing.assert_array_equal(rows["step"], np.arange(26, 31))
    for q in (*LAYER_QUANTITIES, *STEP_QUANTITIES):
        np.testing.assert_array_equal(rows[q], rec[q][25:], err_msg=q)
    assert rows["grad_norm"].dtype == np.float32 and rows["grad_norm"].shape == (5, 2)
    # past the end: nothing, from the end
    assert rec.since(99).start == 30 and len(rec.since(99)) == 0


def test_since_holds_copies_that_the_recorder_cannot_change() -> None:
    rec = filled(20)
    rows = rec.since(10)
    kept = {q: rows[q].copy() for q in rows.columns}
    for q in (*LAYER_QUANTITIES, *STEP_QUANTITIES):
        assert not np.shares_memory(rows[q], rec.table(q)), q
        rec.table(q)[:] = -1.0                   # the trainer writes on...
    rec.truncate(5)                              # ... rewinds ...
    for step in range(6, 40):                    # ... and grows past the old capacity
        write(rec, step, offset=0.5)
    for q, a in kept.items():
        np.testing.assert_array_equal(rows[q], a, err_msg=q)
    with pytest.raises(ValueError):
        rows["grad_norm"][0, 0] = 0.0            # and no reader can scribble on what others read


def test_truncation_is_logged_for_readers_that_copy_rows_as_they_come() -> None:
    rec = filled(12)
    assert rec.truncated_to == []
    rec.truncate(8)
    rec.truncate(20)                             # past the end: nothing forgotten, size unchanged
    assert rec.truncated_to == [8, 8] and rec.size == 8


def test_consecutive_rows_coalesce_into_what_applying_them_in_order_gives() -> None:
    rec = filled(10)
    first = rec.since(0)
    write(rec, 11)
    write(rec, 12)
    second = rec.since(10)
    rec.truncate(7)                              # a roll-back rewrites rows 7.. (steps 8.. again)
    for step in range(8, 15):
        write(rec, step, offset=0.25)
    third = rec.since(7)

    held: dict[str, np.ndarray] = {}
    for rows in (first, second, third):          # a reader applying them one by one
        held = {q: np.concatenate([held[q][:rows.start], a]) if held else a for q, a in rows.columns.items()}
    merged = first.then(second).then(third)
    assert merged.start == 0 and merged.end == rec.size == 14
    for q in merged.columns:
        np.testing.assert_array_equal(merged[q], held[q], err_msg=q)
        np.testing.assert_array_equal(merged[q], rec.steps if q == "step" else rec[q], err_msg=q)
    # a later start at or before the earlier one replaces it whole
    assert first.then(rec.since(0)).start == 0 and len(first.then(rec.since(0))) == 14
    with pytest.raises(ValueError, match="gap"):
        first.then(Rows(12, {q: a[:0] for q, a in first.columns.items()}))
    with pytest.raises(ValueError, match="same number of rows"):
        Rows(0, {"a": np.zeros(2), "b": np.zeros(3)})


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
