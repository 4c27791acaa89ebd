"""The tab bars of a main window's tabbed docks, kept to the ones Qt uses.

``QMainWindow`` draws a row of tabs under each group of tabbed docks with a ``QTabBar`` it makes
itself. In some layouts it makes a new bar for a group and leaves the old one shown where it
was (Qt 6.11): the first time docks are tabbed in a dock area that already holds another
group, and for every group after ``restoreState``. The left-behind bar keeps the tabs it had
(the group's first two, say) and stays on screen wherever a dock or the central widget does
not cover it: a "…fusion" tab drawn over the Confusion matrix dock's caption, a grey box on the
splitter. ``hide_stray_tab_bars`` hides such bars.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMainWindow, QTabBar


def _docks_of(bar: QTabBar) -> set[object]:
    """The docks a main window's tab bar tabs (Qt keeps each dock's address as its tab's data)."""
    return {bar.tabData(i) for i in range(bar.count())}


def stray_tab_bars(window: QMainWindow) -> list[QTabBar]:
    """The window's shown tab bars each of whose docks a newer bar tabs: a dock is in one group,
    and Qt made the newer bar for the group it is in now (a window's children are listed in the
    order they were made, so a newer bar comes later and is drawn over an older one)."""
    bars = [bar for bar in window.findChildren(QTabBar, "", Qt.FindChildOption.FindDirectChildrenOnly)
            if bar.count() and not bar.isHidden()]
    strays = []
    newer: set[object] = set()
    for bar in reversed(bars):
        docks = _docks_of(bar)
        if docks <= newer:
            strays.append(bar)
        newer |= docks
    return strays


def hide_stray_tab_bars(window: QMainWindow) -> int:
    """Hide the window's stray tab bars (``stray_tab_bars``); returns how many."""
    strays = stray_tab_bars(window)
    for bar in strays:
        bar.hide()
    return len(strays)
