"""``gradient-workbench --smoke-test [FILE]``: start the real window, open FILE, let the
event loop run for a moment, close the window and exit.

It is how a build is checked to start at all (``packaging/smoke_test.sh`` runs the frozen
app this way): status 0 and one line ``smoke test passed: ...`` on stdout if the window came
up with its icon, the file opened without an error dialog, the session's trainer was rebuilt
(datasets and all) and the window closed cleanly; otherwise status 1 and one line per
problem on stderr. It runs offscreen unless ``QT_QPA_PLATFORM`` says otherwise, and keeps
its settings in a temporary file, so it never touches the user's recent-files list.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

EVENT_SECONDS = 1.0        # how long the event loop runs after the file is open
TIMEOUT_SECONDS = 60.0     # give up (status 1) if opening has not finished by then


def _wait(app, condition, seconds: float) -> bool:
    """Process events until ``condition()`` holds (True) or ``seconds`` pass (False)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        app.processEvents()
        time.sleep(0.01)
    return True


def run_smoke_test(path: str | None = None, event_seconds: float = EVENT_SECONDS,
                   timeout: float = TIMEOUT_SECONDS) -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    started = time.monotonic()
    problems: list[str] = []
    previous_hook = sys.excepthook

    def record_exception(kind, value, tb):  # an exception in a Qt slot: PySide prints it and goes on
        problems.append(f"exception: {kind.__name__}: {value}")
        previous_hook(kind, value, tb)

    sys.excepthook = record_exception
    try:
        from PySide6.QtCore import QSettings
        from PySide6.QtWidgets import QMessageBox

        from core import __version__

        from .app import create_app
        from .concurrent import shutdown_all
        from .icon import icon_path
        from .main_window import MainWindow

        app = create_app()
        with tempfile.TemporaryDirectory(prefix="gw-smoke-") as tmp:
            settings = QSettings(str(Path(tmp) / "settings.ini"), QSettings.Format.IniFormat)
            window = MainWindow(settings=settings)
            window.controller.error.connect(lambda message: problems.append(f"error: {message}"))
            window.show()
            if app.windowIcon().isNull() or not Path(icon_path()).is_file():
                problems.append(f"no application icon (looked for {icon_path()})")
            if path is not None:
                if not window.open_file(Path(path)):
                    problems.append(f"could not open {path}")
                elif not _wait(app, lambda: not window.controller.busy and not window.opening_file, timeout):
                    problems.append(f"opening {path} did not finish within {timeout:g} s")
                elif path.endswith(".gwb") and window.controller.trainer is None:
                    problems.append(f"{path}: the session's trainer was not restored")
            _wait(app, lambda: False, event_seconds)
            for box in window.findChildren(QMessageBox):
                if box.isVisible():
                    problems.append(f"dialog shown: {box.text()!r}")
                    box.close()
            title = window.windowTitle().replace("[*]", "")
            if window.state.dirty:
                problems.append("the experiment is marked modified right after opening")
                window.state.undo_stack.setClean()
            window.close()
            if window.isVisible():
                problems.append("the window refused to close")
                window.controller.shutdown()
                shutdown_all(window)
            app.processEvents()
            del settings
    finally:
        sys.excepthook = previous_hook
    if problems:
        for problem in problems:
            print(f"smoke test: {problem}", file=sys.stderr)
        return 1
    print(f"smoke test passed: Gradient Workbench {__version__}, {title!r}, "
          f"{time.monotonic() - started:.1f} s, platform {app.platformName()}")
    return 0
