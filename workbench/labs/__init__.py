"""Labs that make chapter 11 visible in seconds: the initialization explorer, the optimizer race on
2-D surfaces and the learning-rate finder. Each is a window of its own, opened from the Labs
menu; their computations live in ``core`` (``core.labs.init_explorer``, ``core.labs.optimizer_race``,
``core.labs.lr_finder``) and run on worker threads.

``create_labs_menu(state, parent)`` is all the main window needs: the menu creates each lab
window on first use, keeps it (closing a lab only hides it) and shuts the labs and their threads
down when the main window closes or the application quits.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QCoreApplication, QEvent, QObject, QSize, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMainWindow, QMenu, QWidget

from ..screens import fit_to_screen
from ..state import ExperimentState
from .init_explorer import InitExplorerLab
from .lr_finder import LRFinderLab
from .optimizer_race import OptimizerRaceLab

__all__ = ["InitExplorerLab", "LRFinderLab", "LabsMenu", "OptimizerRaceLab", "create_labs_menu"]

#: key: (menu text, shortcut, tooltip, window size where the screen has room for it)
LABS = {
    "init_explorer": ("&Initialization explorer…", "Ctrl+Shift+I",
                      "Glorot's argument made visible: push a batch through up to 100 layers and watch each "
                      "layer's activations and gradients shrink, explode or stay put for an init / activation pair",
                      (1280, 860)),
    "optimizer_race": ("&Optimizer race…", "Ctrl+Shift+O",
                       "SGD, momentum, Nesterov, AdaGrad, RMSProp, Adam, Nadam… from the same start on 2-D surfaces, "
                       "animated, with Table 11-2 measured",
                       (1500, 860)),
    "lr_finder": ("&Learning-rate finder…", "Ctrl+Shift+L",
                  "Smith's range test on the current experiment: loss against an exponentially growing rate, and a "
                  "suggested learning rate or 1cycle peak",
                  (1100, 640)),
}


class LabsMenu(QMenu):
    """The "&Labs" menu; ``windows`` holds the lab windows opened so far, by key."""

    def __init__(self, state: ExperimentState, parent: QMainWindow) -> None:
        super().__init__("&Labs", parent)
        self.setObjectName("labsMenu")
        self.setToolTipsVisible(True)
        self.state = state
        self.windows: dict[str, QWidget] = {}
        self.lab_actions: dict[str, QAction] = {}
        factories: dict[str, Callable[[], QWidget]] = {
            "init_explorer": lambda: InitExplorerLab(self.state, parent),
            "optimizer_race": lambda: OptimizerRaceLab(parent),
            "lr_finder": lambda: LRFinderLab(self.state, parent),
        }
        self._factories = factories
        for key, (text, shortcut, tip, _size) in LABS.items():
            action = QAction(text, self)
            action.setObjectName(f"lab_{key}")
            action.setShortcut(QKeySequence(shortcut))
            action.setToolTip(f"{tip} ({shortcut})")
            action.setStatusTip(tip)
            action.triggered.connect(lambda _checked=False, k=key: self.open_lab(k))
            self.addAction(action)
            self.lab_actions[key] = action
        parent.installEventFilter(self)
        app = QCoreApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.shutdown)

    def open_lab(self, key: str) -> QWidget:
        """Show (creating it on first use) and raise the lab window ``key``."""
        window = self.windows.get(key)
        if window is None:
            window = self._factories[key]()
            window.setWindowFlag(Qt.WindowType.Window, True)
            owner = self.parentWidget()
            fit_to_screen(window, QSize(*LABS[key][3]), owner.screen() if owner is not None else None)
            self.windows[key] = window
        if window.isVisible():
            window.raise_()
            window.activateWindow()
        else:
            window.show()
        return window

    def shutdown(self) -> None:
        """Close every lab window, end its worker threads (waiting at most one batch) and delete it;
        a lab opened afterwards starts afresh."""
        windows, self.windows = self.windows, {}
        for window in windows.values():
            window.close()
            window.shutdown()  # type: ignore[attr-defined]
            window.deleteLater()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt override)
        # The main window is closing: take the lab windows and their threads with it, before Qt
        # could destroy a running QThread along with the window.
        if event.type() == QEvent.Type.Close and watched is self.parent():
            self.shutdown()
        return False


def create_labs_menu(state: ExperimentState, parent: QMainWindow) -> QMenu:
    """The "&Labs" menu for the main window's menu bar: one action per lab, each with a shortcut
    and a tooltip."""
    return LabsMenu(state, parent)
