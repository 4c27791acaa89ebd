"""The step cursor and the findings timeline.

The cursor is one optimizer step shared by every plot whose x axis is the run's time: a vertical
line labelled with the step on the central gradient-norm plot and on the loss / accuracy / rate
plots (whose x is in epochs: step / steps per epoch). A click on any of them puts it there, the
line can be dragged, and "Branch here" forks the run at it.

The findings timeline lists what the detector found (``Trainer.health()``), in the order each
finding first appeared (kind, layer, step); a click on one puts the cursor on its step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QAction, QColor
from PySide6.QtWidgets import QListWidget, QListWidgetItem, QSizePolicy

CURSOR_COLOUR = "#7b3fb5"
STEP_ROLE = Qt.ItemDataRole.UserRole


class StepCursor(QObject):
    """The shared step (``None`` until the user sets it); ``moved(step)`` on every change."""

    moved = Signal(object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.step: int | None = None
        self.limit = 0          # the newest step the run holds (the cursor never goes past it)

    def set_step(self, step: float | None) -> None:
        value = None if step is None else int(round(min(max(float(step), 0.0), float(max(self.limit, 0)))))
        if value != self.step:
            self.step = value
            self.moved.emit(value)


class BranchLink(pg.InfLineLabel):
    """A clickable caption riding on the cursor line ("Branch here…"): the button next to the cursor."""

    def __init__(self, line: pg.InfiniteLine, action: QAction) -> None:
        super().__init__(line, text="Branch here…", movable=False, position=0.86, anchors=[(0, 0), (0, 0)],
                         color=CURSOR_COLOUR, fill=(255, 255, 255, 200), border=pg.mkPen(CURSOR_COLOUR))
        self.action = action
        self.setText(self.format)        # (the label fills itself in only while shown)
        self.setToolTip(action.toolTip())
        self.setCursor(Qt.CursorShape.PointingHandCursor)

    def hoverEvent(self, ev: Any) -> None:  # noqa: N802 (pyqtgraph override)
        if not ev.isExit():
            ev.acceptClicks(Qt.MouseButton.LeftButton)

    def mouseClickEvent(self, ev: Any) -> None:  # noqa: N802 (pyqtgraph override)
        if ev.button() == Qt.MouseButton.LeftButton and self.action.isEnabled():
            ev.accept()
            self.action.trigger()


class CursorLine:
    """The cursor drawn on one plot whose x is ``step * scale()``: a draggable vertical line,
    labelled "step N" if ``labelled``; a left or right click in the plot moves the cursor there
    (a right click also opens the plot's menu, whose "Branch here…" then forks at it). With
    ``branch`` the line carries a clickable "Branch here…" as well."""

    def __init__(self, plot: pg.PlotItem, cursor: StepCursor, scale: Callable[[], float],
                 labelled: bool = True, branch: QAction | None = None) -> None:
        self.plot, self.cursor, self.scale = plot, cursor, scale
        self.line = pg.InfiniteLine(0, angle=90, movable=True, pen=pg.mkPen(QColor(CURSOR_COLOUR), width=1),
                                    hoverPen=pg.mkPen(QColor(CURSOR_COLOUR), width=3),
                                    label="step {value}" if labelled else None,
                                    labelOpts={"position": 0.97, "color": CURSOR_COLOUR, "movable": False,
                                               "fill": (255, 255, 255, 170)})
        self.line.setZValue(50)
        self.line.setToolTip("Step cursor: drag it, or click the plot; right-click › Branch here… forks the run here")
        self.line.hide()
        plot.addItem(self.line, ignoreBounds=True)
        self.branch_link = BranchLink(self.line, branch) if branch is not None else None
        if branch is not None:
            branch.changed.connect(self._enable_link)
        self.line.sigDragged.connect(self._dragged)
        plot.scene().sigMouseClicked.connect(self._clicked)
        cursor.moved.connect(self.show_step)

    def show_step(self, step: int | None) -> None:
        if step is None:
            self.line.hide()
            return
        self.line.show()                 # (its labels place themselves only while shown)
        self.line.setPos(step * self.scale())
        if getattr(self.line, "label", None) is not None:
            self.line.label.setFormat(f"step {step:,}")
        self.line.show()

    def _enable_link(self) -> None:
        if self.branch_link is not None and self.branch_link.action is not None:
            self.branch_link.setVisible(self.branch_link.action.isEnabled())

    def _dragged(self, line: pg.InfiniteLine) -> None:
        self.cursor.set_step(line.value() / self.scale())
        if self.cursor.step is not None:
            self.show_step(self.cursor.step)       # snapped to a whole step

    def _clicked(self, event: Any) -> None:
        if event.button() not in (Qt.MouseButton.LeftButton, Qt.MouseButton.RightButton) or event.double():
            return
        if event.button() == Qt.MouseButton.LeftButton and event.isAccepted():
            return              # taken by an item (the Branch here… link, a legend)
        if not self.plot.vb.sceneBoundingRect().contains(event.scenePos()) or self.cursor.limit <= 0:
            return
        x = self.plot.vb.mapSceneToView(event.scenePos()).x()
        self.cursor.set_step(x / self.scale())


def add_branch_action(plot: pg.PlotItem, action: QAction) -> None:
    """Put "Branch here…" at the top of a plot's right-click menu."""
    menu = plot.vb.menu
    if menu is not None and action not in menu.actions():
        first = menu.actions()[0] if menu.actions() else None
        menu.insertAction(first, action)
        if first is not None:
            menu.insertSeparator(first)


class FindingsTimeline(QListWidget):
    """The detector's findings in the order they first appeared; clicking one sets the cursor.

    A finding is one (kind, layer); it is listed at the step it was first reported and stays
    listed while the run goes on (the banner shows only what holds now)."""

    MAX_ROWS_SHOWN = 3

    def __init__(self, cursor: StepCursor, titles: dict[str, str]) -> None:
        super().__init__()
        self.setObjectName("findingsTimeline")
        self.cursor = cursor
        self.titles = titles
        self.setToolTip("What the detector found, in the order it first appeared; click one to put the step "
                        "cursor on it")
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.seen: dict[tuple[str, int], dict[str, Any]] = {}
        self.itemClicked.connect(self._clicked)
        self.itemActivated.connect(self._clicked)
        self.hide()

    def clear_run(self) -> None:
        self.seen = {}
        self.clear()
        self.hide()

    def add_findings(self, issues: list[dict[str, Any]]) -> None:
        for issue in issues:
            key = (str(issue.get("kind")), int(issue.get("layer", -1)))
            if key in self.seen:
                continue
            self.seen[key] = dict(issue)
            step = int(issue.get("step", 0))
            title = self.titles.get(key[0], key[0])
            where = issue.get("layer_name") or ""
            item = QListWidgetItem(f"step {step:,} · {title}" + (f" · {where}" if where else ""))
            item.setData(STEP_ROLE, step)
            item.setToolTip(str(issue.get("message", "")))
            rows = [self.item(i) for i in range(self.count())]
            at = next((i for i, row in enumerate(rows) if int(row.data(STEP_ROLE)) > step), len(rows))
            self.insertItem(at, item)
        if self.count():
            row = max(self.sizeHintForRow(0), 14)
            self.setFixedHeight(row * min(self.count(), self.MAX_ROWS_SHOWN) + 2 * self.frameWidth() + 2)
            self.show()

    def steps(self) -> list[int]:
        return [int(self.item(i).data(STEP_ROLE)) for i in range(self.count())]

    def _clicked(self, item: QListWidgetItem) -> None:
        self.cursor.set_step(int(item.data(STEP_ROLE)))
