"""The application icon, loaded from the SVG shipped inside the package.

``workbench/resources/gradient-workbench.svg`` is a copy of ``resources/icons/`` made by
``packaging/make_icons.py``; it is package data, so it is there in a source checkout, an
installed wheel and a PyInstaller build alike (``importlib.resources`` finds it in each).
"""

from __future__ import annotations

from importlib import resources

ICON_NAME = "gradient-workbench"


def icon_path() -> str:
    """File system path of the packaged SVG icon."""
    return str(resources.files("workbench") / "resources" / f"{ICON_NAME}.svg")


def app_icon():
    """The window icon: the desktop theme's installed icon if there is one (so the window and
    the menu entry match), else the packaged SVG, rendered by Qt at every size asked for."""
    from PySide6.QtGui import QIcon

    return QIcon.fromTheme(ICON_NAME, QIcon(icon_path()))
