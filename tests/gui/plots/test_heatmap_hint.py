"""The gradient heatmap's hint on an empty plot stays inside the plot at the narrowest a docked
panel gets (it was one long line, cut at both sides in a narrowed dock)."""

from __future__ import annotations

from typing import Any

from workbench.monitor.buffers import RunBuffers
from workbench.monitor.plots.heatmap import HeatmapPanel
from workbench.monitor.view import PANEL_MIN_WIDTH


def test_the_empty_heatmaps_hint_fits_a_panel_at_its_narrowest(qtbot: Any) -> None:
    panel = HeatmapPanel(RunBuffers())
    qtbot.addWidget(panel)
    panel.resize(PANEL_MIN_WIDTH, 300)
    panel.show()
    qtbot.waitExposed(panel)
    panel.draw()
    qtbot.wait(50)
    assert panel.note.isVisible()
    view = panel.plot.getViewBox().sceneBoundingRect()
    hint = panel.note.sceneBoundingRect()
    assert view.contains(hint), (view.getRect(), hint.getRect())
