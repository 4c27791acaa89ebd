"""Screenshots of the three labs (issue 5), made from the current code:

    python docs/make_lab_screenshots.py          # docs/screenshots/lab_*.png

Each lab is opened from the real main window's Labs menu on the default experiment, driven the
way a reader would (pick a pair, let the race play, run the range test) and grabbed once its
worker thread has finished. Offscreen unless ``QT_QPA_PLATFORM`` says otherwise; settings go to
a temporary file.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "screenshots"
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("LANG", "C.UTF-8")


def main() -> int:
    from PySide6.QtCore import QSettings

    from workbench.app import create_app
    from workbench.main_window import MainWindow

    app = create_app()

    def settle(seconds: float = 0.4) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            app.processEvents()
            time.sleep(0.01)

    def wait(condition: Callable[[], bool], timeout: float, what: str) -> None:
        end = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > end:
                raise SystemExit(f"make_lab_screenshots: timed out waiting for {what}")
            app.processEvents()
            time.sleep(0.01)

    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="gw-lab-shots-") as tmp:
        window = MainWindow(settings=QSettings(str(Path(tmp) / "s.ini"), QSettings.Format.IniFormat))
        window.show()
        menu = _labs_menu(window)

        def save(widget, name: str) -> None:
            settle()
            path = OUT / f"{name}.png"
            widget.grab().save(str(path))
            print(path.relative_to(ROOT))

        # Initialization explorer: the book's failure case next to its cure.
        lab = menu.open_lab("init_explorer")
        for pair, name in ((4, "lab_init_explorer_logistic"), (0, "lab_init_explorer")):
            lab.pair_combo.setCurrentIndex(pair)
            lab.pair_combo.activated.emit(pair)
            lab.draws_spin.setValue(4 if pair == 0 else 1)
            lab.width_spin.setValue(200 if pair == 0 else 100)
            lab.recompute_now()
            wait(lambda: lab.result is not None and lab.result.settings == lab.settings() and not lab.runner.busy,
                 120, "the explorer")
            save(lab, name)

        # Optimizer race: tuned rates on the bowl, then the saddle half-way through the animation.
        race = menu.open_lab("optimizer_race")
        wait(lambda: "bowl" in race.tuned_rates and not race.race_runner.busy and bool(race.trajectories), 120,
             "the race on the bowl")
        save(race, "lab_optimizer_race")
        race.surface_combo.setCurrentIndex(race.surface_combo.findData("saddle"))
        wait(lambda: "saddle" in race.tuned_rates and not race.race_runner.busy and not race.tune_runner.busy, 120,
             "the race on the saddle")
        race.show_step(race.total_steps // 8)
        save(race, "lab_optimizer_race_saddle")
        dialog = race.measure_table()
        wait(lambda: not dialog.runner.busy, 600, "Table 11-2")
        dialog.resize(1300, 420)
        save(dialog, "lab_table_11_2")
        dialog.close()

        # Learning-rate finder on the default experiment.
        finder = menu.open_lab("lr_finder")
        finder.start()
        wait(lambda: finder.result is not None, 300, "the range test")
        save(finder, "lab_lr_finder")

        window.state.undo_stack.setClean()
        window.close()
    return 0


def _labs_menu(window):
    from workbench.labs import LabsMenu

    return next(m for m in window.findChildren(LabsMenu))


if __name__ == "__main__":
    raise SystemExit(main())
