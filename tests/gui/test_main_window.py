"""The shell: files open with their folder, so relative paths in a spec resolve where it lives."""

import json

import numpy as np
from PySide6.QtWidgets import QMessageBox

from tests.gui.monitor_support import make_window_fixture, tiny_spec, wait_idle  # noqa: F401


def test_experiment_json_with_a_relative_data_path_trains_from_its_folder(make_window, qtbot, tmp_path,
                                                                          monkeypatch):
    folder = tmp_path / "project"
    folder.mkdir()
    rng = np.random.default_rng(0)
    X = rng.standard_normal((120, 3)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64)
    np.savez(folder / "data.npz", X=X, y=y)
    spec = tiny_spec(epochs=2)
    spec["data"] = {"source": "npz", "path": "data.npz", "validation_split": 0.2}
    (folder / "spec.json").write_text(json.dumps(spec))
    monkeypatch.chdir(tmp_path)  # not the spec's folder: a path resolved against the cwd would fail
    window = make_window()
    assert window.open_file(folder / "spec.json")
    assert window.state.base_dir == folder
    window.controller.actions["train"].trigger()
    qtbot.waitUntil(lambda: window.controller.mode != "idle", timeout=5_000)
    wait_idle(qtbot, window, timeout=20_000)
    assert not [b for b in window.findChildren(QMessageBox) if b.isVisible()]
    trainer = window.controller.trainer
    assert trainer is not None and trainer.epoch == 2
    assert trainer.dataset.n_samples == 120


def test_the_whole_window_fits_a_1366x768_screen(make_window):
    """Every dock is open by default; their minimum sizes together must still fit a small laptop
    screen (less a taskbar), or the window grows past the screen and its bottom is cut off."""
    window = make_window()
    hint = window.minimumSizeHint()
    assert hint.width() <= 1366 and hint.height() <= 720, hint
