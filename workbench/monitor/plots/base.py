"""What every live plot shares: ``PlotPanel`` (a tool row over a pyqtgraph layout, the pull-based
refresh protocol, PNG and CSV export) and ``DockPlace``, the declaration of where a panel docks.

Each panel PULLS from ``RunBuffers`` when the monitor's timer asks it to (``wants_redraw`` /
``redraw``): no ``setData`` per batch, pen width 1, downsampling and clip-to-view on the long
curves, ``connect="finite"`` so a NaN is a gap. Every panel can be frozen, zoomed (mouse) and
reset, and exported as PNG (what is shown) or CSV (the data behind it).

Log-scale curves are drawn from log10 values kept in the buffers, on an axis in log mode: the
logarithm of the whole history is never taken at frame rate.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pyqtgraph as pg
from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QColor, QFontMetrics, QPalette
from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QLabel, QSizePolicy, QToolButton, QVBoxLayout, QWidget

from ..buffers import RunBuffers, write_csv


@dataclass(frozen=True)
class DockPlace:
    """Where a panel docks in the main window, declared on its class (``PlotPanel.dock``).

    An area holds tab groups stacked in ``group`` order (top to bottom in the side areas, left to
    right above and below the central plot); a group's docks are tabbed in ``tab`` order, the
    first in front when the window opens."""

    key: str            # the panel's key in ``Monitor.panels``; its widget is named "<key>Panel"
    name: str           # the dock's objectName: saved window layouts refer to it, never rename it
    title: str          # the dock's title bar, tab and View-menu entry
    area: Qt.DockWidgetArea = Qt.DockWidgetArea.RightDockWidgetArea
    group: int = 0
    tab: int = 0
    # False: the dock starts closed (View menu; the instrument docks: the side column's tab rows
    # are full at 1366 × 768, and opening one is the user's choice)
    shown: bool = True

    @property
    def order(self) -> tuple[int, int, int]:
        """Sort key: area, then group, then tab (the order of the docks and of the View menu)."""
        return int(self.area.value), self.group, self.tab


def shorter_forms(text: str) -> list[str]:
    """A caption and its shorter readings, longest first: without its parentheses, the part after
    its colon (the numbers), the part before it (the name). A caption "name — how to read it"
    reads as its name: the part after the dash alone ("Train, dashed: validation") would not say
    what is plotted."""
    plain = re.sub(r" \([^)]*\)", "", text)
    forms = [text, plain]
    if " — " in plain:
        return list(dict.fromkeys([*forms, plain.split(" — ", 1)[0]]))
    if ": " in plain:
        head, tail = plain.split(": ", 1)
        forms += [tail[:1].upper() + tail[1:], head]
    return list(dict.fromkeys(forms))


def whole_words_within(text: str, width: int, metrics: QFontMetrics) -> str:
    """``text``, or as many of its first words as fit ``width`` followed by "…" (a dock narrowed by
    hand showed "Loss, accuracy and l", cut in a word); Qt's elision of the first word when not
    even that fits."""
    if metrics.horizontalAdvance(text) <= width:
        return text
    words = text.split(" ")
    for n in range(len(words) - 1, 0, -1):
        shown = " ".join(words[:n]).rstrip(",;:—-– ") + "…"
        if metrics.horizontalAdvance(shown) <= width:
            return shown
    return metrics.elidedText(words[0], Qt.TextElideMode.ElideRight, max(width, 0))


class FittingLabel(QLabel):
    """A one-line caption that shows the longest of its shorter forms that fits its width, else the
    shortest form's first whole words and "…" (a word is cut, with "…", only when not even the
    first fits); the full text is its tooltip and ``full_text()``."""

    def __init__(self, text: str = "") -> None:
        super().__init__()
        self._full = ""
        self.setText(text)

    def full_text(self) -> str:
        return self._full

    def setText(self, text: str) -> None:  # noqa: N802 (Qt override)
        self._full = text
        self.setToolTip(text)
        self._fit()

    def _fit(self) -> None:
        width = self.contentsRect().width()
        metrics = self.fontMetrics()
        forms = shorter_forms(self._full)
        shown = next((f for f in forms if metrics.horizontalAdvance(f) <= width), None)
        if shown is None:
            shown = whole_words_within(forms[-1], width, metrics)
        if shown != super().text():
            super().setText(shown)

    def resizeEvent(self, event: Any) -> None:  # noqa: N802 (Qt override)
        super().resizeEvent(event)
        self._fit()


class PaintBudget:
    """The share of a core the plots may spend drawing and painting, as a token bucket.

    Work time flows in at ``share`` seconds per second, up to ``burst`` seconds saved; each redraw
    and each paint spends the CPU time it took, and the monitor starts a redraw only while the bucket is
    not empty. Whatever the network's size or the number of docks on screen, the plots then use
    at most about ``share`` of the GUI's core: the frame rate drops instead, and the rest of the
    core stays free for the training process and for other programs (a full-HD plot of a wide
    network paints in 10–15 ms in software; 30 of them a second took half a core)."""

    def __init__(self, share: float = 0.15, burst: float = 0.1, clock: Any = time.perf_counter) -> None:
        if not 0 < share <= 1:
            raise ValueError(f"share: must be in (0, 1], got {share!r}")
        self.share = float(share)
        self.burst = float(burst)
        self.clock = clock
        self.tokens = self.burst
        self.last = clock()
        self.spent = 0.0             # seconds of drawing and painting so far (for the benchmark)

    def _refill(self) -> None:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.share)
        self.last = now

    def allows(self) -> bool:
        """Whether a redraw may start now."""
        self._refill()
        return self.tokens > 0

    def spend(self, seconds: float) -> None:
        self._refill()
        self.tokens -= seconds
        self.spent += seconds


class GatedGraphicsLayout(pg.GraphicsLayoutWidget):
    """A GraphicsLayoutWidget that holds the worker's GUI gate while it paints (see GuiGate) and
    charges its paint time to the monitor's ``PaintBudget``."""

    gate: Any = None
    budget: PaintBudget | None = None

    def paintEvent(self, event: Any) -> None:  # noqa: N802 (Qt override)
        start = time.thread_time()      # CPU time: a paint preempted by a busy machine is not charged for the wait
        if self.gate is None:
            super().paintEvent(event)
        else:
            with self.gate:
                super().paintEvent(event)
        if self.budget is not None:
            self.budget.spend(time.thread_time() - start)


class PlotPanel(QWidget):
    """Base: a small tool row (freeze, reset zoom, PNG, CSV) over a pyqtgraph layout.

    A panel that the monitor docks declares where in ``dock``; one shown elsewhere (the central
    gradient-norm plot, the Runs dock's plots) leaves it ``None``."""

    title = ""                         # the caption over the plot (and the export dialogs' name)
    min_interval = 0.0                 # seconds between redraws (heavy panels draw less often)
    dock: ClassVar[DockPlace | None] = None

    def __init__(self, buffers: RunBuffers, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.buffers = buffers
        self.drawn_version = -1
        self.drawn_run = buffers.run            # the run the panel's caches belong to
        self.last_draw = 0.0
        self.redraws = 0
        self.graphics = GatedGraphicsLayout()
        self.graphics.setMinimumSize(220, 160)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.setSpacing(2)
        tools = QHBoxLayout()
        tools.setContentsMargins(0, 0, 0, 0)
        self.caption = FittingLabel(self.title)
        self.caption.setObjectName("plotCaption")
        self.caption.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.caption.setMinimumWidth(40)
        tools.addWidget(self.caption, 1)
        self._tools = tools
        self.freeze_button = self._tool("Freeze", "Stop redrawing this plot (training goes on); click again "
                                        "to catch up", checkable=True)
        self._tool("Fit", "Reset the zoom: show all the data again (after zooming with the wheel or panning)",
                   self.reset_zoom)
        self._tool("PNG", "Export this plot as a PNG image…", self._ask_png)
        self._tool("CSV", "Export the data behind this plot as CSV…", self._ask_csv)
        tools_widget = QWidget()
        tools_widget.setLayout(tools)
        layout.addWidget(tools_widget)
        layout.addWidget(self.graphics, 1)
        self.plots: list[pg.PlotItem] = []
        self.follow = True           # ranges follow the data until the user zooms or pans; Fit again

    def _tool(self, text: str, tip: str, slot: Any = None, checkable: bool = False) -> QToolButton:
        button = QToolButton()
        button.setText(text)
        button.setToolTip(tip)
        button.setAutoRaise(True)
        button.setCheckable(checkable)
        if slot is not None:
            button.clicked.connect(lambda _=False: slot())
        self._tools.addWidget(button)
        return button

    # ------------------------------------------------------------------ plots and palette

    def add_plot(self, row: int = 0, col: int = 0, title: str | None = None, size: str = "9pt") -> pg.PlotItem:
        plot = self.graphics.addPlot(row=row, col=col)
        if title:
            plot.setTitle(title, size=size)
        for name in ("left", "bottom"):
            plot.getAxis(name).enableAutoSIPrefix(False)
        # No grid: semi-transparent grid lines cost ~20 ms a frame in software rendering (measured).
        plot.setMenuEnabled(True)
        plot.vb.sigRangeChangedManually.connect(self._zoomed)
        self.plots.append(plot)
        self.apply_palette()
        return plot

    def apply_palette(self) -> None:
        """Plot background and text follow the window's palette (light or dark)."""
        pal = self.palette()
        self.graphics.setBackground(pal.color(QPalette.ColorRole.Base))
        text = pal.color(QPalette.ColorRole.Text)
        for plot in self.plots:
            for name in ("left", "bottom", "right", "top"):
                axis = plot.getAxis(name)
                axis.setPen(pg.mkPen(text))
                axis.setTextPen(pg.mkPen(text))
            plot.titleLabel.setAttr("color", text.name())
            legends = [plot.legend] + [getattr(self, "legend", None)]
            for legend in legends:
                if legend is None:
                    continue
                legend.setLabelTextColor(text)
                for _, label in legend.items:
                    label.setAttr("color", text.name())
                    label.setText(label.text)

    def showEvent(self, event: Any) -> None:  # noqa: N802 (Qt override)
        self.apply_palette()
        super().showEvent(event)

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 (Qt override)
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange):
            self.apply_palette()
            self.drawn_version = -1
        super().changeEvent(event)

    @property
    def text_colour(self) -> QColor:
        return self.palette().color(QPalette.ColorRole.Text)

    @property
    def dark(self) -> bool:
        return self.palette().color(QPalette.ColorRole.Base).lightness() < 128

    # ------------------------------------------------------------------ refresh protocol

    @property
    def frozen(self) -> bool:
        return self.freeze_button.isChecked()

    def set_gate(self, gate: Any) -> None:
        self.graphics.gate = gate

    def set_budget(self, budget: PaintBudget | None) -> None:
        """Charge this panel's painting to ``budget`` (the monitor's, shared by every panel)."""
        self.graphics.budget = budget

    @property
    def on_screen(self) -> bool:
        """Shown and not hidden behind another tab."""
        return self.isVisible() and not self.visibleRegion().isEmpty()

    def wants_redraw(self, now: float) -> bool:
        return (not self.frozen and self.buffers.version != self.drawn_version
                and now - self.last_draw >= self.min_interval)

    def redraw(self, now: float = 0.0) -> None:
        if self.drawn_run != self.buffers.run:
            # A new run arrived while this panel was hidden or frozen: forget the old run's caches
            # before drawing (whether or not the run-reset signal reached it first).
            self.clear_run()
        self.draw()
        self.drawn_version = self.buffers.version
        self.last_draw = now
        self.redraws += 1

    def draw(self) -> None:
        raise NotImplementedError

    def clear_run(self) -> None:
        """A new run: forget per-run items (curves per layer, cached reductions...)."""
        self.drawn_version = -1
        self.drawn_run = self.buffers.run

    def attach(self, controller: Any) -> None:
        """The monitor hands every docked panel the training controller once: a panel that needs
        more than the buffers (the experiment state, to edit it) takes it here."""

    def comes_forward(self) -> bool:
        """Whether a new run should bring this panel's dock in front of its tab group (the first
        panel of a group that says so wins): what this run's data shows best."""
        return False

    def _zoomed(self, *_: Any) -> None:
        self.follow = False

    def follow_layers(self, plots: Sequence[pg.PlotItem], n_layers: int, fixed_y: bool = False) -> None:
        """A per-layer bar plot shows every layer (x from -0.5 to n - 0.5) and, unless ``fixed_y``,
        its bars' whole height, until the user zooms."""
        if not self.follow:
            return
        for plot in plots:
            plot.setXRange(-0.5, max(n_layers, 1) - 0.5, padding=0.02)
            if not fixed_y:
                plot.enableAutoRange(pg.ViewBox.YAxis)

    def reset_zoom(self) -> None:
        """Fit: show all the data again, and follow it from now on."""
        self.follow = True
        for plot in self.plots:
            plot.enableAutoRange()
        self.drawn_version = -1          # the next tick redraws with the panel's own ranges

    # ------------------------------------------------------------------ export

    def csv_data(self) -> tuple[list[str], list[Any]]:
        raise NotImplementedError

    def export_png(self, path: str | Path) -> bool:
        return self.graphics.grab().save(str(path))

    def export_csv(self, path: str | Path) -> None:
        header, columns = self.csv_data()
        write_csv(path, header, columns)

    def _ask_png(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, f"Export {self.title} as PNG", f"{self.file_stem()}.png",
                                              "PNG images (*.png)")
        if path:
            self.export_png(path)

    def _ask_csv(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, f"Export {self.title} data as CSV", f"{self.file_stem()}.csv",
                                              "CSV files (*.csv)")
        if path:
            self.export_csv(path)

    def file_stem(self) -> str:
        return self.title.lower().replace(" ", "_").replace("/", "_").replace("&", "and")
