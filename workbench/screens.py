"""Where a top-level window opens: at the size it was designed for, or the available area of its
screen, whichever is smaller, and centred there. A window larger than its screen opens with its
right and bottom edges (a lab's table, a dialog's buttons) past the screen's, where a user
cannot reach them to resize it: a 1366 × 768 laptop screen, less a taskbar, is the one to fit."""

from __future__ import annotations

from PySide6.QtCore import QSize
from PySide6.QtGui import QGuiApplication, QScreen
from PySide6.QtWidgets import QWidget

# The window manager's frame and title bar, which a widget's geometry() leaves out.
FRAME_ALLOWANCE = QSize(16, 48)


def fit_to_screen(window: QWidget, preferred: QSize, screen: QScreen | None = None) -> None:
    """Size ``window`` to ``preferred`` or to the available area of ``screen`` (default: the
    window's own, else the primary one), whichever is smaller, frame and title bar included,
    and centre it in that area."""
    screen = screen or window.screen() or QGuiApplication.primaryScreen()
    area = screen.availableGeometry()
    width = min(preferred.width(), area.width() - FRAME_ALLOWANCE.width())
    height = min(preferred.height(), area.height() - FRAME_ALLOWANCE.height())
    window.resize(width, height)
    window.move(area.x() + max((area.width() - width - FRAME_ALLOWANCE.width()) // 2, 0),
                area.y() + max((area.height() - height - FRAME_ALLOWANCE.height()) // 2, 0))
