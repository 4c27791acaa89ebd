"""Screenshot of the experiment editor: its five panels (Data, Model, Optimizer, Regularization,
Training) side by side, as docked in the real main window on the default experiment.

    xvfb-run -a -s "-screen 0 1600x1000x24" env QT_QPA_PLATFORM=xcb python docs/make_editor_screenshots.py
    python docs/make_editor_screenshots.py            # offscreen (QWidget.grab), no display needed

Writes ``docs/screenshots/editor.png``. The window has the size of the smallest screen the app
is made for (``--size``, default 1366x768), so the picture shows each panel at the width it
really gets there. Settings go to a temporary file (the user's are left alone).
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

OUT = ROOT / "docs" / "screenshots" / "editor.png"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1366x768", help="window size, WIDTHxHEIGHT")
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))

    from PySide6.QtCore import QSettings
    from PySide6.QtGui import QImage, QPainter

    from workbench.app import create_app

    app = create_app([])
    from workbench.editor.dataset_info import DataInfo
    from workbench.main_window import MainWindow

    def pump(seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            app.processEvents()
            time.sleep(0.01)

    settings = QSettings(str(Path(tempfile.mkdtemp()) / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(settings=settings)
    window.resize(width, height)
    window.show()
    pump(1.0)
    window.findChild(DataInfo).wait(30_000)  # the data preview (class balance) is loaded
    pump(0.5)
    images = []
    for dock in window.editor_docks:
        dock.raise_()
        pump(0.3)
        images.append(dock.grab().toImage())
    gap = 8
    out = QImage(sum(i.width() for i in images) + gap * (len(images) + 1),
                 max(i.height() for i in images) + 2 * gap, QImage.Format.Format_RGB32)
    out.fill(window.palette().color(window.backgroundRole()).darker(115))
    painter = QPainter(out)
    x = gap
    for image in images:
        painter.drawImage(x, gap, image)
        x += image.width() + gap
    painter.end()
    ok = out.save(args.out)
    print(("saved" if ok else "could not save"), args.out, f"{out.width()}x{out.height()}")
    window.state.undo_stack.setClean()
    window.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
