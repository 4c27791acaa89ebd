"""The monitor's widgets: central gradient-norm plot under the health banner, the docked
plots, the status-bar progress, and the timer that makes the plots pull (``REFRESH_HZ``)."""

from __future__ import annotations

import math
import time

from PySide6.QtCore import QObject, Qt, QTimer
from PySide6.QtWidgets import QDockWidget, QLabel, QMainWindow, QProgressBar, QVBoxLayout, QWidget

from .banner import HealthBanner
from .controller import TrainingController
from .plots import (
    ActivationPanel,
    BoundaryPanel,
    ConfusionPanel,
    GradientFlowPanel,
    GradientNormPanel,
    HeatmapPanel,
    MetricsPanel,
    PlotPanel,
)

REFRESH_HZ = 30                    # ticks; each redraws one panel (the central one at most every other)


def format_duration(seconds: float) -> str:
    if not math.isfinite(seconds) or seconds < 0:
        return "–"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class Monitor(QObject):
    """Owns the panels and the refresh timer; ``panels`` by key for tests and the benchmark."""

    def __init__(self, controller: TrainingController, window: QMainWindow) -> None:
        super().__init__(window)
        self.controller = controller
        buffers = controller.buffers
        self.central = QWidget()
        self.central.setObjectName("monitorCentral")
        layout = QVBoxLayout(self.central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        self.banner = HealthBanner(controller.state)
        layout.addWidget(self.banner)
        self.grad_norm = GradientNormPanel(buffers)
        self.grad_norm.setObjectName("gradNormPanel")
        layout.addWidget(self.grad_norm, 1)
        self.grad_norm.set_gate(controller.worker.gate)
        self.panels: dict[str, PlotPanel] = {"grad_norm": self.grad_norm}
        self.docks: list[QDockWidget] = []
        specs = [
            ("metrics", "Loss and accuracy", MetricsPanel, "metricsDock"),
            ("flow", "Gradient flow", GradientFlowPanel, "gradientFlowDock"),
            ("activations", "Activations", ActivationPanel, "activationsDock"),
            ("heatmap", "Gradient heatmap", HeatmapPanel, "heatmapDock"),
            ("boundary", "Decision boundary", BoundaryPanel, "boundaryDock"),
            ("confusion", "Confusion matrix", ConfusionPanel, "confusionDock"),
        ]
        for key, title, cls, name in specs:
            panel = cls(buffers)
            panel.setObjectName(f"{key}Panel")
            panel.setMinimumWidth(320)
            panel.set_gate(controller.worker.gate)
            dock = QDockWidget(title, window)
            dock.setObjectName(name)
            dock.setWidget(panel)
            dock.setAllowedAreas(Qt.DockWidgetArea.AllDockWidgetAreas)
            self.panels[key] = panel
            self.docks.append(dock)
        # Right column: metrics / flow / activations on top, heatmap / boundary / confusion below.
        top, bottom = self.docks[:3], self.docks[3:]
        for group in (top, bottom):
            window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, group[0])
        window.splitDockWidget(top[0], bottom[0], Qt.Orientation.Vertical)
        for group in (top, bottom):
            for dock in group[1:]:
                window.tabifyDockWidget(group[0], dock)
            group[0].raise_()
        window.resizeDocks([top[0]], [470], Qt.Orientation.Horizontal)

        # Status bar: epoch / step / rate / time left, and a progress bar.
        self.progress_label = QLabel("")
        self.progress_label.setObjectName("trainingProgressLabel")
        self.progress_bar = QProgressBar()
        self.progress_bar.setObjectName("trainingProgressBar")
        self.progress_bar.setMaximumWidth(180)
        self.progress_bar.setTextVisible(True)
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(0)
        window.statusBar().addPermanentWidget(self.progress_label)
        window.statusBar().addPermanentWidget(self.progress_bar)

        self.timer = QTimer(self)
        self.timer.setInterval(int(1000 / REFRESH_HZ))
        self.timer.timeout.connect(self.refresh)
        self.timer.start()
        controller.run_reset.connect(self._on_run_reset)
        controller.updated.connect(self._on_updated)
        controller.mode_changed.connect(lambda _: self._on_updated())
        window.destroyed.connect(self.timer.stop)

    def _on_run_reset(self) -> None:
        for panel in self.panels.values():
            panel.clear_run()
        if self.controller.buffers.meta.get("points") is not None:
            self.docks[4].raise_()          # a 2-D dataset: show its decision boundary
        elif self.controller.buffers.meta.get("classification"):
            self.docks[5].raise_()

    def _on_updated(self) -> None:
        b = self.controller.buffers
        self.banner.set_issues(b.health)
        p = b.progress
        if not p:
            self.progress_label.setText("")
            self.progress_bar.setRange(0, 1)
            self.progress_bar.setValue(0)
            return
        mode = self.controller.mode
        rate = p.get("rate", 0.0)
        text = (f"epoch {min(p['epoch'] + 1, p['epochs'])}/{p['epochs']} · batch {p['batch']}/{p['batches']} · "
                f"step {p['step']:,}")
        if mode == "running" and rate > 0:
            text += f" · {rate:,.0f} steps/s · {format_duration(p.get('eta', math.nan))} left"
        elif mode == "paused":
            text += " · paused"
        self.progress_label.setText(text)
        total = max(int(p.get("total", 1)), 1)
        self.progress_bar.setRange(0, total)
        self.progress_bar.setValue(min(int(p.get("done", 0)), total))

    def refresh(self, force: bool = False) -> int:
        """Redraw what is on screen and has something new: the central plot every tick, and at most
        one of the docked panels (the most overdue), so that no tick paints everything at once and
        the GUI thread never blocks for long. Returns how many panels were redrawn."""
        now = time.perf_counter()
        drawn = 0
        with self.controller.worker.gate:
            central = self.panels["grad_norm"]
            if central.on_screen and (force or central.wants_redraw(now)):
                central.redraw(now)
                drawn += 1
                if not force:
                    return drawn             # one panel a tick: the docked ones take the next ticks
            due = [p for k, p in self.panels.items() if k != "grad_norm" and p.on_screen
                   and (force or p.wants_redraw(now))]
            if not force:
                due = sorted(due, key=lambda p: p.last_draw)[:1]
            for panel in due:
                panel.redraw(now)
                drawn += 1
        return drawn


def create_monitor(controller: TrainingController, parent: QMainWindow) -> tuple[QWidget, list[QDockWidget]]:
    """The central widget and the dock widgets of the training monitor (each with an objectName)."""
    monitor = Monitor(controller, parent)
    monitor.setObjectName("monitor")
    monitor.central.monitor = monitor  # type: ignore[attr-defined]
    return monitor.central, monitor.docks
