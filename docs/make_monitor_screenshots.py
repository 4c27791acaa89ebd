"""Screenshots of the training monitor: the real main window training the default experiment, and
the vanishing-gradients preset with the health banner shown.

    xvfb-run -a -s "-screen 0 1600x1000x24" env QT_QPA_PLATFORM=xcb python docs/make_monitor_screenshots.py
    python docs/make_monitor_screenshots.py            # offscreen (QWidget.grab), no display needed

Writes ``docs/screenshots/training.png`` and ``docs/screenshots/vanishing.png`` (window size
``--size``, default 1366x768, the smallest screen the app is made for). It triggers Train like a
user, lets the run go for ``--seconds`` (or to its end) and grabs the window while training goes
on. Settings go to a temporary file (the user's are left alone).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("LANG", "C.UTF-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1366x768")
    parser.add_argument("--seconds", type=float, default=6.0, help="training time before the screenshot")
    parser.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication, QMessageBox

    # Closing a window whose run trained asks whether to save it (and, paused, whether to stop),
    # modally: the screenshots' runs are not kept, so every such question is answered for them.
    QMessageBox.question = staticmethod(lambda *a, **k: QMessageBox.StandardButton.Discard)
    import workbench.sessions

    workbench.sessions.ask_stop_and_quit = lambda parent: True

    from workbench.app import create_app

    app = create_app([sys.argv[0]])
    from core.presets import preset_experiment
    from workbench.main_window import MainWindow
    from workbench.state import ExperimentState

    settings_dir = tempfile.mkdtemp(prefix="gw-shots-")

    def shoot(preset: str, name: str, seconds: float, want_banner: bool) -> Path:
        settings = QSettings(str(Path(settings_dir) / f"{name}.ini"), QSettings.Format.IniFormat)
        window = MainWindow(ExperimentState(preset_experiment(preset)), settings)
        window.resize(width, height)
        window.show()
        controller = window.controller
        controller.actions["train"].trigger()
        start = time.perf_counter()
        monitor = window.findChild(__import__("workbench.monitor", fromlist=["Monitor"]).Monitor)
        while time.perf_counter() - start < seconds + 60:
            app.processEvents()
            time.sleep(0.01)
            ran = time.perf_counter() - start
            if ran >= seconds and (not want_banner or monitor.banner.isVisible()):
                break
            if not controller.busy and controller.buffers.size > 0:
                break
        if controller.mode == "running":
            controller.pause()
        for _ in range(30):                 # let the last snapshot land and every plot draw
            app.processEvents()
            time.sleep(0.02)
        monitor.refresh(force=True)
        app.processEvents()
        path = out / f"{name}.png"
        if QApplication.platformName() == "offscreen":
            window.grab().save(str(path))
        else:
            screen = window.screen()
            screen.grabWindow(0, window.x(), window.y(), window.frameGeometry().width(),
                              window.frameGeometry().height()).save(str(path))
        print(f"{path} ({QApplication.platformName()}, steps {controller.buffers.size}, "
              f"banner {'shown' if monitor.banner.isVisible() else 'hidden'})")
        window.state.undo_stack.setClean()
        window.close()
        window.deleteLater()
        app.processEvents()
        return path

    shoot("default", "training", args.seconds, want_banner=False)
    shoot("vanishing", "vanishing", args.seconds, want_banner=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
