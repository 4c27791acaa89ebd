"""Each docked panel says where it docks (``PlotPanel.dock``) and the monitor docks it there: the
declarations, the real window's docks built from them, the layout the window had before the panels
declared their places, and a new panel added by one class and one entry in ``DOCKED_PANELS``."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDockWidget, QMenu, QTabBar

import workbench.monitor.plots as plots_package
from workbench.monitor import view
from workbench.monitor.plots import DOCKED_PANELS
from workbench.monitor.plots.base import DockPlace, PlotPanel
from workbench.monitor.plots.gradient_norm import GradientNormPanel

from ..monitor_support import make_window_fixture, monitor_of, tab_row_with, tiny_spec, wait_idle  # noqa: F401 (fixture)

RIGHT = Qt.DockWidgetArea.RightDockWidgetArea

#: The window as it was when view.py placed the docks by index: the right column holds two tab
#: groups, top to bottom, each listed in tab order with the tab in front first. (The Runs dock is
#: not a plot panel: the Runs tools tab it behind the metrics.)
LAYOUT_BEFORE_THE_SPLIT = [
    (RIGHT, ["metricsDock", "gradientFlowDock", "activationsDock", "runsDock"]),
    (RIGHT, ["heatmapDock", "boundaryDock", "confusionDock"]),
]
TITLES_BEFORE_THE_SPLIT = {"metricsDock": "Loss and accuracy", "gradientFlowDock": "Gradient flow",
                           "activationsDock": "Activations", "heatmapDock": "Gradient heatmap",
                           "boundaryDock": "Decision boundary", "confusionDock": "Confusion matrix",
                           "runsDock": "Runs"}
#: The instrument docks (issue 15) start closed (the tab rows are full at 1366 × 768): where each opens.
INSTRUMENT_DOCKS = {"sharpnessDock": ("Sharpness", "activationsDock"), "noiseDock": ("Gradient noise", "confusionDock"),
                    "effectiveLearningRateDock": ("Effective LR", "confusionDock"),
                    "distributionsDock": ("Distributions", "confusionDock")}


def panel_classes() -> list[type[PlotPanel]]:
    """Every plot panel class defined in the plots package, module by module."""
    found = []
    for info in pkgutil.iter_modules(plots_package.__path__):
        module = importlib.import_module(f"{plots_package.__name__}.{info.name}")
        found += [cls for _, cls in inspect.getmembers(module, inspect.isclass)
                  if issubclass(cls, PlotPanel) and cls is not PlotPanel and cls.__module__ == module.__name__]
    return found


def visible_tab_orders(window: Any) -> list[list[str]]:
    return [[bar.tabText(i) for i in range(bar.count())] for bar in window.findChildren(QTabBar) if bar.isVisible()]


def in_front(dock: QDockWidget) -> bool:
    return dock.isVisible() and not dock.visibleRegion().isEmpty()


def check_groups(window: Any, groups: list[tuple[Qt.DockWidgetArea, list[str]]]) -> None:
    """Each group: its docks in the area, tabbed with each other and nothing else, in this tab
    order with the first in front; the groups of an area stacked top to bottom in list order."""
    tabs = visible_tab_orders(window)
    fronts: list[QDockWidget] = []
    for area, names in groups:
        docks = [window.findChild(QDockWidget, name) for name in names]
        assert all(d is not None for d in docks), names
        for dock in docks:
            assert window.dockWidgetArea(dock) == area, dock.objectName()
            others = {d.objectName() for d in window.tabifiedDockWidgets(dock)}
            assert others == set(names) - {dock.objectName()}, dock.objectName()
        assert [d.windowTitle() for d in docks] in tabs
        assert in_front(docks[0]) and not any(in_front(d) for d in docks[1:])
        fronts.append(docks[0])
    for above, below in zip(fronts, fronts[1:], strict=False):
        if window.dockWidgetArea(above) == window.dockWidgetArea(below):
            assert above.geometry().bottom() < below.geometry().top()
            assert above.geometry().left() == below.geometry().left()


# ----------------------------------------------------------------------------- the declarations


def test_every_docked_panel_declares_a_place_and_a_title() -> None:
    assert DOCKED_PANELS
    places = [cls.dock for cls in DOCKED_PANELS]
    for cls, place in zip(DOCKED_PANELS, places, strict=True):
        assert isinstance(place, DockPlace), f"{cls.__name__} declares no dock"
        assert isinstance(place.area, Qt.DockWidgetArea) and place.area != Qt.DockWidgetArea.NoDockWidgetArea
        assert place.title.strip() and place.name.endswith("Dock") and place.key
        assert place.group >= 0 and place.tab >= 0
    for field in ("key", "name", "title", "order"):
        values = [getattr(p, field) for p in places]
        assert len(set(values)) == len(values), f"two panels declare the same {field}"


def test_a_panel_that_declares_a_place_is_docked_and_the_central_one_declares_none() -> None:
    classes = panel_classes()
    assert set(DOCKED_PANELS) <= set(classes) and GradientNormPanel in classes
    assert {cls for cls in classes if cls.dock is not None} == set(DOCKED_PANELS)
    assert GradientNormPanel.dock is None          # the central plot, under the health banner


def test_a_panel_listed_without_a_place_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(view, "DOCKED_PANELS", (*DOCKED_PANELS, GradientNormPanel))
    with pytest.raises(TypeError, match="GradientNormPanel"):
        view.docked_panels()


# ----------------------------------------------------------------------------- the real window


def test_the_window_docks_every_panel_where_it_declares(make_window: Any) -> None:
    window = make_window()
    monitor = monitor_of(window)
    assert [d.objectName() for d in window.monitor_docks] == \
        [place.name for _, place in view.docked_panels()]
    groups: dict[tuple[Qt.DockWidgetArea, int], list[tuple[int, str]]] = {}
    for cls in DOCKED_PANELS:
        place = cls.dock
        dock = window.findChild(QDockWidget, place.name)
        assert dock is not None and dock in window.monitor_docks
        assert dock.windowTitle() == place.title
        assert window.dockWidgetArea(dock) == place.area
        assert type(dock.widget()) is cls and dock.widget() is monitor.panels[place.key]
        assert dock.widget().objectName() == f"{place.key}Panel"
        if place.shown:
            groups.setdefault((place.area, place.group), []).append((place.tab, place.name))
    declared = []
    for area, group in sorted(groups, key=lambda g: (g[0].value, g[1])):
        names = [name for _, name in sorted(groups[(area, group)])]
        runs = window.findChild(QDockWidget, "runsDock")            # tabbed in by the Runs tools
        if names[0] in {d.objectName() for d in window.tabifiedDockWidgets(runs)}:
            names.append("runsDock")
        declared.append((area, names))
    check_groups(window, declared)


def test_the_layout_is_the_one_from_before_the_panels_declared_it(make_window: Any) -> None:
    window = make_window()
    check_groups(window, LAYOUT_BEFORE_THE_SPLIT)
    assert {d.objectName(): d.windowTitle() for d in [*window.monitor_docks, window.runs.dock]
            if d.objectName() not in INSTRUMENT_DOCKS} == TITLES_BEFORE_THE_SPLIT
    view_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&View")
    assert isinstance(view_menu, QMenu)
    instruments = {title for title, _ in INSTRUMENT_DOCKS.values()}
    entries = [a.text() for a in view_menu.actions() if a.text() not in instruments]
    start = entries.index("Loss and accuracy")
    assert entries[start:start + 7] == ["Loss and accuracy", "Gradient flow", "Activations", "Gradient heatmap",
                                        "Decision boundary", "Confusion matrix", "Runs"]
    assert [k for k in monitor_of(window).panels if k not in ("sharpness", "noise", "effective_lr")] == \
        ["grad_norm", "metrics", "flow", "activations", "heatmap", "boundary", "confusion", "distributions"]


def test_the_instrument_docks_start_closed_and_open_from_the_view_menu_in_their_group(make_window: Any,
                                                                                       qtbot: Any) -> None:
    window = make_window()
    view_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&View")
    entries = {a.text(): a for a in view_menu.actions()}
    for name, (title, neighbour) in INSTRUMENT_DOCKS.items():
        dock = window.findChild(QDockWidget, name)
        assert dock is not None and dock in window.monitor_docks and dock.isHidden()
        entries[title].trigger()                       # View › Sharpness …
        qtbot.waitUntil(dock.isVisible, timeout=2_000)
        assert window.findChild(QDockWidget, neighbour) in window.tabifiedDockWidgets(dock)
    window.reset_layout()                              # View › Reset layout: closed again
    assert all(window.findChild(QDockWidget, name).isHidden() for name in INSTRUMENT_DOCKS)
    assert not window.findChild(QDockWidget, "metricsDock").isHidden()


def test_a_dock_opened_from_the_view_menu_widens_its_column_for_its_tab(make_window: Any, qtbot: Any) -> None:
    """View › Sharpness adds a fifth tab to the right column's top row; a column as narrow as it
    goes showed it and its neighbours squeezed: opening the dock widens the column to fit them."""
    window = make_window()
    metrics = window.findChild(QDockWidget, "metricsDock")
    window.resizeDocks([metrics], [1], Qt.Orientation.Horizontal)        # as narrow as it goes
    qtbot.wait(50)
    view_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&View")
    next(a for a in view_menu.actions() if a.text() == "Sharpness").trigger()
    dock = window.findChild(QDockWidget, "sharpnessDock")
    qtbot.waitUntil(dock.isVisible, timeout=2_000)
    qtbot.wait(50)
    tabs, squeezed = tab_row_with(window, "Sharpness")
    assert tabs == 5
    assert squeezed == []            # every tab at the width its label asks for: none elided


@pytest.mark.parametrize(("source", "front", "behind"), [
    ("moons", "boundaryDock", "confusionDock"),         # 2-D: its decision boundary
    ("iris", "confusionDock", "boundaryDock"),          # classification in 4-D: the confusion matrix
])
def test_a_new_run_brings_forward_the_panel_that_shows_its_data(make_window: Any, qtbot: Any, source: str,
                                                                  front: str, behind: str) -> None:
    from core.spec import parse_experiment

    spec = tiny_spec(epochs=1)
    spec["data"] = {"source": source, "validation_split": 0.2, "test_split": 0.0}
    window = make_window(parse_experiment(spec))
    assert in_front(window.findChild(QDockWidget, "heatmapDock"))
    window.controller.actions["step"].trigger()
    wait_idle(qtbot, window)
    qtbot.waitUntil(lambda: in_front(window.findChild(QDockWidget, front)), timeout=5_000)
    assert not in_front(window.findChild(QDockWidget, behind))
    assert not in_front(window.findChild(QDockWidget, "heatmapDock"))
    assert in_front(window.findChild(QDockWidget, "metricsDock"))       # no panel of that group asks


# ----------------------------------------------------------------------------- adding a panel


class StepCountPanel(PlotPanel):
    """A throwaway panel: how many steps the buffers hold, as one bar."""

    title = "Steps recorded"
    dock = DockPlace(key="step_count", name="stepCountDock", title="Steps", group=1, tab=3)

    def __init__(self, buffers: Any, parent: Any = None) -> None:
        super().__init__(buffers, parent)
        self.plot = self.add_plot()
        self.drawn_sizes: list[int] = []

    def draw(self) -> None:
        self.drawn_sizes.append(self.buffers.size)
        self.plot.plot([0], [self.buffers.size], clear=True)

    def csv_data(self) -> tuple[list[str], list[Any]]:
        return ["steps"], [[self.buffers.size]]


def test_a_new_panel_is_one_class_and_one_entry(make_window: Any, qtbot: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(view, "DOCKED_PANELS", (*DOCKED_PANELS, StepCountPanel))
    window = make_window()
    dock = window.findChild(QDockWidget, "stepCountDock")
    assert dock is not None and dock.windowTitle() == "Steps" and dock in window.monitor_docks
    check_groups(window, [(RIGHT, ["metricsDock", "gradientFlowDock", "activationsDock", "runsDock"]),
                          (RIGHT, ["heatmapDock", "boundaryDock", "confusionDock", "stepCountDock"])])
    view_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&View")
    assert "Steps" in [a.text() for a in view_menu.actions()]
    panel = monitor_of(window).panels["step_count"]
    assert isinstance(panel, StepCountPanel)
    window.controller.actions["step"].trigger()
    wait_idle(qtbot, window)
    dock.raise_()
    qtbot.waitUntil(lambda: panel.drawn_sizes[-1:] == [1], timeout=5_000)     # the monitor's timer draws it


def shown_tab_rows(window: Any) -> tuple[list[set[str]], list[set[str]]]:
    """(the titles of each shown tab bar of the window, the titles of each group of tabbed docks
    on screen): one bar a group, no more, when Qt left no stray bar shown."""
    bars = [bar for bar in window.findChildren(QTabBar) if bar.isVisible() and bar.parentWidget() is window]
    rows = [{bar.tabText(i) for i in range(bar.count())} for bar in bars]
    groups: list[set[str]] = []
    for dock in window.findChildren(QDockWidget):
        if dock.isVisible() and not dock.isFloating():
            group = {d.windowTitle() for d in (dock, *window.tabifiedDockWidgets(dock)) if d.isVisible()}
            if len(group) > 1 and group not in groups:
                groups.append(group)
    return rows, groups


def assert_one_row_of_tabs_per_group(window: Any) -> None:
    """The window shows exactly one tab bar for each of its three groups of tabbed docks."""
    rows, groups = shown_tab_rows(window)
    assert len(groups) == 3, groups
    assert sorted(map(sorted, rows)) == sorted(map(sorted, groups)), (rows, groups)


def test_each_group_of_tabbed_docks_shows_one_row_of_tabs(make_window: Any, qtbot: Any) -> None:
    """Qt left a second tab bar on screen for some groups, with the tabs they had when it made
    it: "…fusion" drawn over the Confusion matrix dock's caption, a grey box on the splitter.
    Checked at start, after View › Reset layout and in a window that restored a saved layout."""
    window = make_window(settings="shared")
    assert_one_row_of_tabs_per_group(window)
    view_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&View")
    reset = next(a for a in view_menu.actions() if a.text() == "Reset &layout")
    confusion, metrics = (window.findChild(QDockWidget, name) for name in ("confusionDock", "metricsDock"))
    window.tabifyDockWidget(metrics, confusion)     # a dock moved into the other group (as by a drag)
    qtbot.wait(50)
    for _ in range(2):                              # then View › Reset layout, twice
        reset.trigger()
        qtbot.wait(50)
        assert_one_row_of_tabs_per_group(window)
    window.close()                                  # saves its layout; the next window restores it
    again = make_window(settings="shared")
    qtbot.wait(50)
    assert_one_row_of_tabs_per_group(again)
    # the row Qt kept is the one it uses: its tabs bring their docks forward
    bar = next(b for b in again.findChildren(QTabBar) if b.isVisible() and "Confusion matrix" in
               [b.tabText(i) for i in range(b.count())])
    bar.setCurrentIndex([bar.tabText(i) for i in range(bar.count())].index("Confusion matrix"))
    qtbot.waitUntil(lambda: again.findChild(QDockWidget, "confusionDock").visibleRegion().isEmpty() is False,
                    timeout=2_000)
