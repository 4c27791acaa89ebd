"""Run by ``test_window_fit`` in a fresh process per screen (the offscreen platform's screen is
fixed when the application starts): open the main window on ``resources/examples/default.json``,
train a few epochs (``--train``), and print as JSON where it lies on the screen and every text of
the window's chrome (dock titles, tab labels, plot captions, legends, the model table's columns)
whose rect is narrower than its text; with ``--windows``, then open each lab and the sweep
dialog from their menus and print where each lies."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QDockWidget, QLabel, QScrollArea, QTabBar, QTableView

ROOT = Path(__file__).resolve().parents[2]


def clipped_texts(window: Any) -> list[str]:
    """'where: text (needs N px, has M)' for each visible text that does not fit its rect."""
    from workbench.monitor.plots.base import PlotPanel

    out: list[str] = []

    def check(where: str, text: str, need: int, have: int) -> None:
        if text and need > have:
            out.append(f"{where}: {text!r} needs {need} px, has {have}")

    for bar in window.findChildren(QTabBar):
        if not bar.isVisible():
            continue
        fm = bar.fontMetrics()
        for i in range(bar.count()):
            icon = bar.iconSize().width() + 4 if not bar.tabIcon(i).isNull() else 0
            # QTabBar's label rect: the tab less its style margins (about 2 x 6 px) and any icon
            check("tab", bar.tabText(i), fm.horizontalAdvance(bar.tabText(i).replace("&", "")),
                  bar.tabRect(i).width() - 12 - icon)
    for dock in window.findChildren(QDockWidget):
        if dock.isVisible() and not dock.visibleRegion().isEmpty():
            fm = dock.fontMetrics()
            check("dock title", dock.windowTitle(), fm.horizontalAdvance(dock.windowTitle()), dock.width() - 48)
    for panel in window.findChildren(PlotPanel):
        if not panel.isVisible() or panel.visibleRegion().isEmpty():
            continue
        caption: QLabel = panel.caption
        check(f"{panel.objectName()} caption", caption.text(), caption.fontMetrics().horizontalAdvance(caption.text()),
              caption.contentsRect().width())
        view = panel.graphics.mapToScene(panel.graphics.viewport().rect()).boundingRect()
        legends = [getattr(panel, "legend", None)] + [p.legend for p in panel.plots]
        for legend in legends:
            if legend is None or not legend.isVisible() or not legend.items:
                continue
            box = legend.sceneBoundingRect()
            for _, label in legend.items:
                r = label.sceneBoundingRect()
                if not view.contains(r) or not box.contains(r):
                    out.append(f"{panel.objectName()} legend: {label.text!r} at {r.getRect()} outside "
                               f"{view.getRect()}")
            for plot in panel.plots:           # a legend beside or above the data, never over it
                inside = plot.vb.sceneBoundingRect()
                if legend in [plot.legend] and inside.intersects(box):
                    out.append(f"{panel.objectName()} legend over the data of a plot")
    for table in window.findChildren(QTableView, "layerTable"):
        if table.isVisible():
            bar = table.horizontalScrollBar()
            if bar.maximum() > 0:
                out.append(f"layer table scrolls sideways by {bar.maximum()} px")
    runs = window.findChild(QDockWidget, "runsDock")
    if runs is not None and runs.isVisible():
        for area in runs.findChildren(QScrollArea):
            if area.isVisible() and area.horizontalScrollBar().maximum() > 0:
                out.append(f"Runs dock scrolls sideways by {area.horizontalScrollBar().maximum()} px")
    return out


def main() -> None:
    from core.sessions.recovery import DATA_ENV

    # this process ends without closing the window: its recovery copy goes to a folder of its own
    os.environ.setdefault(DATA_ENV, tempfile.mkdtemp(prefix="gwb-probe-data-"))
    from workbench.app import create_app

    app = create_app()
    from core.spec import load_experiment
    from workbench.main_window import MainWindow
    from workbench.state import ExperimentState

    folder = Path(tempfile.mkdtemp())
    settings = QSettings(str(folder / "settings.ini"), QSettings.Format.IniFormat)
    path = ROOT / "resources" / "examples" / "default.json"
    window = MainWindow(ExperimentState(load_experiment(path)), settings)
    window.state.base_dir = path.parent
    window.show()
    for _ in range(20):
        app.processEvents()
    screen = window.screen()
    result: dict[str, Any] = {
        "screen": list(screen.availableGeometry().getRect()),
        "window": list(window.frameGeometry().getRect()),
        "minimum": [window.minimumSizeHint().width(), window.minimumSizeHint().height()],
    }
    clipped: list[str] = []
    if "--train" in sys.argv:              # a short run, so that the plots hold data and captions
        import time

        window.state.set_field("training.epochs", 2)
        window.controller.actions["train"].trigger()
        deadline = time.monotonic() + 60
        while window.controller.mode != "idle" and time.monotonic() < deadline:
            app.processEvents()
            time.sleep(0.01)
        result["trained"] = window.controller.buffers.size
    runs = window.findChild(QDockWidget, "runsDock")
    runs.show()                             # the Runs dock, as View › Runs opens it
    for dock in [*window.editor_docks, *window.monitor_docks, runs]:     # each dock in front in turn
        dock.raise_()
        for _ in range(10):
            app.processEvents()
        window.centralWidget().monitor.refresh(force=True)
        app.processEvents()
        clipped += clipped_texts(window)
    result["clipped"] = sorted(set(clipped))
    if "--windows" in sys.argv:            # each lab and the sweep dialog, opened from their menus
        from PySide6.QtGui import QAction
        from PySide6.QtWidgets import QApplication

        opened: dict[str, list[int]] = {}
        for name in ("lab_init_explorer", "lab_optimizer_race", "lab_lr_finder", "sweepAction"):
            before = set(QApplication.topLevelWidgets())
            window.findChild(QAction, name).trigger()
            for _ in range(10):
                app.processEvents()
            shown = [w for w in QApplication.topLevelWidgets() if w.isVisible() and w not in before]
            opened[name] = [list(w.frameGeometry().getRect()) for w in shown]
        result["opened"] = opened
    print("PROBE " + json.dumps(result))
    sys.stdout.flush()
    window.controller.shutdown()
    os._exit(0)                  # no closing questions: this process only measured the window


if __name__ == "__main__":
    main()
