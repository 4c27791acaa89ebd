"""The monitor's widgets: central gradient-norm plot under the health banner, the docked
plots (each docked where its class declares, see ``PlotPanel.dock``), the status-bar progress,
and the timer that makes the plots pull (``REFRESH_HZ``)."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from itertools import pairwise

from PySide6.QtCore import QObject, Qt, QTimer
from PySide6.QtWidgets import QDockWidget, QLabel, QMainWindow, QProgressBar, QVBoxLayout, QWidget

from .banner import KIND_TITLES, HealthBanner
from .branching import BranchTools
from .controller import TrainingController
from .overlays import GhostOverlay
from .plots import DOCKED_PANELS
from .plots.base import DockPlace, PaintBudget, PlotPanel
from .plots.gradient_norm import GradientNormPanel
from .plots.metrics import MetricsPanel
from .timeline import CursorLine, FindingsTimeline, StepCursor, add_branch_action

REFRESH_HZ = 30                    # ticks; each redraws one panel (the central one at most every other)
PAINT_SHARE = 0.15                 # of a core, at most, for drawing and painting the plots (PaintBudget)
# Seconds after its last redraw from which a panel with something new to draw goes before the
# central plot. Without it the central plot, due on every tick that came 60 ms or more after its
# last, took every tick the budget allowed on a slower machine: the Loss and accuracy dock stayed
# empty through a whole 4-second run of selu.json (2-vCPU AMD Zen 3) and filled in after it ended.
STARVED_AFTER = 0.5
PANEL_MIN_WIDTH = 320              # a docked panel's narrowest
SIDE_COLUMN_WIDTH = 470            # a side area's width at start


def docked_panels() -> list[tuple[type[PlotPanel], DockPlace]]:
    """The docked panel classes with their places, in the order of their docks (area, group, tab):
    the order of the View menu's entries."""
    undeclared = [cls.__name__ for cls in DOCKED_PANELS if cls.dock is None]
    if undeclared:
        raise TypeError(f"{', '.join(undeclared)} listed in DOCKED_PANELS without a place: set the class's "
                        "`dock` to a DockPlace")
    return sorted(((cls, cls.dock) for cls in DOCKED_PANELS if cls.dock is not None), key=lambda pair: pair[1].order)


def arrange_docks(window: QMainWindow, placed: Sequence[tuple[DockPlace, QDockWidget]]) -> None:
    """Put each dock where its panel declares. In each area the tab groups are stacked in group
    order (top to bottom at the sides, left to right above and below the centre) and each group's
    docks tabbed in tab order, the first in front; a side area starts ``SIDE_COLUMN_WIDTH`` wide."""
    groups_of: dict[Qt.DockWidgetArea, dict[int, list[tuple[int, QDockWidget]]]] = {}
    for place, dock in placed:
        groups_of.setdefault(place.area, {}).setdefault(place.group, []).append((place.tab, dock))
    for area, by_group in groups_of.items():
        groups = [[dock for _, dock in sorted(by_group[g], key=lambda t: t[0])] for g in sorted(by_group)]
        side = area in (Qt.DockWidgetArea.LeftDockWidgetArea, Qt.DockWidgetArea.RightDockWidgetArea)
        for group in groups:
            window.addDockWidget(area, group[0])
        for first, second in pairwise(groups):
            window.splitDockWidget(first[0], second[0], Qt.Orientation.Vertical if side else Qt.Orientation.Horizontal)
        for group in groups:
            for dock in group[1:]:
                window.tabifyDockWidget(group[0], dock)
            group[0].raise_()
        if side:
            window.resizeDocks([groups[0][0]], [SIDE_COLUMN_WIDTH], Qt.Orientation.Horizontal)
    for place, dock in placed:
        if not place.shown:
            # closed until asked for (View menu): tabbed where it opens, and marked so that
            # View › Reset layout closes it again
            dock.setProperty("closedAtStart", True)
            dock.hide()


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
        # The remedy trials' process ends with the training process, whoever shuts the controller down.
        controller.shutting_down.connect(self.banner.runner.shutdown)
        layout.addWidget(self.banner)
        self.cursor = StepCursor(self)
        self.findings = FindingsTimeline(self.cursor, KIND_TITLES)
        layout.addWidget(self.findings)
        # The plots keep the last run after the experiment changed under it (a preset, a structural
        # edit): this line says so until the next run starts.
        self.stale_note = QLabel()
        self.stale_note.setObjectName("staleRunNote")
        self.stale_note.setWordWrap(True)
        self.stale_note.setStyleSheet("QLabel { background: #fff4ce; color: #5c4400; padding: 4px; }")
        self.stale_note.hide()
        layout.addWidget(self.stale_note)
        self.grad_norm = GradientNormPanel(buffers)
        self.grad_norm.setObjectName("gradNormPanel")
        layout.addWidget(self.grad_norm, 1)
        self.grad_norm.set_gate(controller.worker.gate)
        self.budget = PaintBudget(PAINT_SHARE)
        self.grad_norm.set_budget(self.budget)
        self.panels: dict[str, PlotPanel] = {"grad_norm": self.grad_norm}
        self.docks: list[QDockWidget] = []
        self.dock_of: dict[str, QDockWidget] = {}
        placed: list[tuple[DockPlace, QDockWidget]] = []
        for cls, place in docked_panels():
            panel = cls(buffers)
            panel.setObjectName(f"{place.key}Panel")
            panel.setMinimumWidth(PANEL_MIN_WIDTH)
            panel.set_gate(controller.worker.gate)
            panel.set_budget(self.budget)
            panel.attach(controller)
            dock = QDockWidget(place.title, window)
            dock.setObjectName(place.name)
            dock.setWidget(panel)
            dock.setAllowedAreas(Qt.DockWidgetArea.AllDockWidgetAreas)
            self.panels[place.key] = panel
            self.docks.append(dock)
            self.dock_of[place.key] = dock
            placed.append((place, dock))
        arrange_docks(window, placed)
        self._add_cursor_and_ghosts(window)

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
        controller.run_reset.connect(self.banner.new_run)     # the old run's findings and fixes go with it
        controller.state.changed.connect(lambda _: self._show_staleness())
        controller.mode_changed.connect(lambda _: self._show_staleness())
        controller.run_reset.connect(self._show_staleness)
        controller.updated.connect(self._on_updated)
        controller.mode_changed.connect(lambda _: self._on_updated())
        window.destroyed.connect(self.timer.stop)

    def _add_cursor_and_ghosts(self, window: QMainWindow) -> None:
        """The step cursor on the plots whose x is the run's time, "Branch here…" in their menus and
        beside the central plot's tools, and the ghost runs drawn under the live curves."""
        self.branching = BranchTools(self.controller, self.cursor, window)
        buffers = self.controller.buffers
        self.cursor_lines = [CursorLine(self.grad_norm.plot, self.cursor, lambda: 1.0, branch=self.branching.action)]
        add_branch_action(self.grad_norm.plot, self.branching.action)
        metrics = self.panels.get("metrics")
        if isinstance(metrics, MetricsPanel):
            for plot in (metrics.loss_plot, metrics.acc_plot, metrics.lr_plot):
                # unlabelled: the central plot says the step, the loss plot's labels are its events'
                self.cursor_lines.append(CursorLine(plot, self.cursor, lambda: 1.0 / buffers.steps_per_epoch,
                                                    labelled=False))
                add_branch_action(plot, self.branching.action)
        self.ghost_overlay = GhostOverlay(self.controller.ghosts, self.grad_norm,
                                          metrics if isinstance(metrics, MetricsPanel) else None)
        self.findings.itemClicked.connect(lambda _: self._show_cursor_panels())

    def _show_cursor_panels(self) -> None:
        """A finding was clicked: the plots with the cursor redraw now (a frozen one stays)."""
        for line in self.cursor_lines:
            line.show_step(self.cursor.step)

    def _on_run_reset(self) -> None:
        self.findings.clear_run()
        for panel in self.panels.values():
            panel.clear_run()
        fronted: set[tuple[Qt.DockWidgetArea, int]] = set()
        for _, place in docked_panels():
            if (place.area, place.group) not in fronted and self.panels[place.key].comes_forward():
                self.dock_of[place.key].raise_()
                fronted.add((place.area, place.group))

    def _show_staleness(self) -> None:
        c = self.controller
        stale = c.buffers.size > 0 and not c.busy and c.run_superseded
        if stale:
            self.stale_note.setText("These plots show the run of the experiment as it was before the last change "
                                    "(a preset or a structural edit). Train (F5) starts a run of the current "
                                    "experiment; Edit › Undo brings back the one plotted.")
        self.stale_note.setVisible(stale)
        for panel in self.panels.values():
            panel.graphics.setEnabled(not stale)      # greyed axes: not this experiment's run

    def _on_updated(self) -> None:
        b = self.controller.buffers
        self.banner.set_issues(b.health)
        self.findings.add_findings(b.health)
        self.cursor.limit = int(b.steps[-1]) if b.size else 0
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
        """Redraw what is on screen and has something new: one panel a tick, so that no tick
        paints everything at once and the GUI thread never blocks for long, and only while the
        paint budget (``PAINT_SHARE`` of a core) is not spent, except when ``force``d (then every
        such panel). The central plot goes first, unless a panel has waited ``STARVED_AFTER``
        since its last redraw: then the one that has waited longest, the central plot included,
        so that every panel on screen follows the run when the budget allows few redraws.
        Returns how many panels were redrawn."""
        now = time.perf_counter()
        if not force and not self.budget.allows():
            return 0
        cpu = time.thread_time()
        with self.controller.worker.gate:
            central = self.panels["grad_norm"]
            due = [p for p in self.panels.values() if p.on_screen and (force or p.wants_redraw(now))]
            if not force and due:
                starved = [p for p in due if now - p.last_draw >= STARVED_AFTER]
                if starved:
                    due = [min(starved, key=lambda p: (p.last_draw, p is not central))]
                else:
                    due = [central if central in due else min(due, key=lambda p: p.last_draw)]
            for panel in due:
                panel.redraw(now)
        self.budget.spend(time.thread_time() - cpu)
        return len(due)


def create_monitor(controller: TrainingController, parent: QMainWindow) -> tuple[QWidget, list[QDockWidget]]:
    """The central widget and the dock widgets of the training monitor (each with an objectName)."""
    monitor = Monitor(controller, parent)
    monitor.setObjectName("monitor")
    monitor.central.monitor = monitor  # type: ignore[attr-defined]
    return monitor.central, monitor.docks
