"""The gradient-norm plot of a clipped run: the curves are the norms after clipping (what the
optimizer was given) and the threshold is drawn."""

from __future__ import annotations

from typing import Any

import numpy as np

from core.monitor import SnapshotSource
from core.spec import parse_experiment
from core.training import Trainer
from tests.gui.monitor_support import tiny_spec
from workbench.monitor.buffers import RunBuffers, safe_log10
from workbench.monitor.plots.gradient_norm import GradientNormPanel


def panel_for(qtbot: Any, clip: dict[str, Any]) -> tuple[GradientNormPanel, Trainer]:
    spec = tiny_spec(epochs=1)
    spec["regularization"] = {"gradient_clip": clip}
    trainer = Trainer(parse_experiment(spec))
    trainer.fit()
    buffers = RunBuffers()
    buffers.apply(SnapshotSource(trainer).take())
    panel = GradientNormPanel(buffers)
    qtbot.addWidget(panel)
    panel.resize(600, 400)
    panel.draw()
    return panel, trainer


def test_a_clipped_run_plots_post_clip_norms_under_the_drawn_threshold(qtbot: Any) -> None:
    panel, trainer = panel_for(qtbot, {"mode": "norm", "threshold": 0.05})
    assert panel.clip_line.isVisible() and panel.clip_line.value() == np.log10(0.05)
    _, logs = panel.curve_data(0)
    np.testing.assert_array_equal(logs, safe_log10(trainer.recorder["clipped_grad_norm"][:, 0]))
    assert np.nanmax(logs) <= np.log10(0.05) + 1e-6
    assert np.nanmax(safe_log10(trainer.recorder["grad_norm"])) > np.log10(0.05)   # clipping did act


def test_without_clipping_there_is_no_threshold_and_the_curves_are_the_gradients(qtbot: Any) -> None:
    panel, trainer = panel_for(qtbot, {"mode": "none"})
    assert not panel.clip_line.isVisible()
    np.testing.assert_array_equal(panel.curve_data(1)[1], safe_log10(trainer.recorder["grad_norm"][:, 1]))
