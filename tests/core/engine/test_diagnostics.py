"""DiagnosticsRecorder: growable per-step tables whose unfilled cells read NaN."""

from __future__ import annotations

import numpy as np

from core.engine.diagnostics import LAYER_QUANTITIES, STEP_QUANTITIES, DiagnosticsRecorder


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
