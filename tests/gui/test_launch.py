"""Starting the app: a bare file argument (the desktop entry's ``Exec=gradient-workbench %f``),
``--smoke-test`` (how builds are checked) and the window icon."""

from __future__ import annotations

from pathlib import Path

import pytest

import workbench.app
import workbench.smoke
from workbench.cli import main

from .monitor_support import make_window_fixture  # noqa: F401 (fixture)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "resources" / "examples" / "vanishing.json"


@pytest.fixture
def started(monkeypatch):
    """What the window and the smoke test would have been started with (neither runs)."""
    calls = []
    monkeypatch.setattr(workbench.app, "run_app", lambda path=None: calls.append(("window", path)) or 0)
    monkeypatch.setattr(workbench.smoke, "run_smoke_test", lambda path=None: calls.append(("smoke", path)) or 0)
    return calls


@pytest.mark.parametrize("argv, expected", [
    ([], ("window", None)),
    (["open", "run.gwb"], ("window", "run.gwb")),
    (["{tmp}/run.gwb"], ("window", "{tmp}/run.gwb")),        # Exec=gradient-workbench %f
    (["spec.JSON"], ("window", "spec.JSON")),
    (["--smoke-test"], ("smoke", None)),
    (["--smoke-test", "run.gwb"], ("smoke", "run.gwb")),
    (["run.gwb", "--smoke-test"], ("smoke", "run.gwb")),
    (["open", "run.gwb", "--smoke-test"], ("smoke", "run.gwb")),
    (["-x.gwb"], ("window", "-x.gwb")),                        # a file name, never an option
])
def test_window_arguments(started, argv, expected, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("run.gwb", "spec.JSON", "-x.gwb"):  # the window is started only on a file that exists
        (tmp_path / name).write_bytes(b"")
    argv = [a.format(tmp=tmp_path) for a in argv]
    assert main(argv) == 0
    assert started == [(expected[0], expected[1] and expected[1].format(tmp=tmp_path))]


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_open_help_prints_the_help(started, capsys, flag):
    """`open --help` was taken for a file to open (it started the window on "--help")."""
    with pytest.raises(SystemExit) as exit_info:
        main(["open", flag])
    assert exit_info.value.code == 0
    assert started == []
    assert capsys.readouterr().out.startswith("usage: gradient-workbench open [-h] file")


@pytest.mark.parametrize(("argv", "message"), [
    (["open", "--bogus", "run.gwb"], "error: gradient-workbench: unrecognized arguments: --bogus\n"),
    (["open", "--bogus"], "error: gradient-workbench open: the following arguments are required: file\n"),
    (["open", "nosuch.gwb"], "error: nosuch.gwb: no such session or experiment file\n"),
    (["nosuch.gwb"], "error: nosuch.gwb: no such session or experiment file\n"),
    (["open", "."], "error: .: is a folder, not a session (.gwb) or experiment (.json) file\n"),
])
def test_bad_open_arguments_exit_2_with_one_line_before_the_display(started, capsys, tmp_path, monkeypatch, argv,
                                                                    message):
    """Without a display too: the file is checked first, so a wrong name is not hidden behind
    "no display"."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "run.gwb").write_bytes(b"")
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    assert main(argv) == 2
    assert started == []
    assert capsys.readouterr().err == message


@pytest.mark.parametrize("argv", [["notes.txt"], ["run.gwb", "other.gwb"], ["frobnicate"]])
def test_other_arguments_are_a_usage_error(started, argv, capsys):
    assert main(argv) == 2
    assert started == []
    assert capsys.readouterr().err.startswith("error:")


def test_application_has_the_icon(qapp):
    from PySide6.QtGui import QIcon

    from workbench.app import create_app
    from workbench.icon import icon_path

    app = create_app()
    assert Path(icon_path()).is_file()
    assert not QIcon(icon_path()).pixmap(32, 32).isNull()
    assert not app.windowIcon().isNull()


def test_smoke_test_opens_an_example_and_passes(qapp, capsys):
    assert workbench.smoke.run_smoke_test(str(EXAMPLE), event_seconds=0.1) == 0
    assert capsys.readouterr().out.startswith("smoke test passed: Gradient Workbench")


def test_smoke_test_fails_on_a_damaged_session(qapp, tmp_path, capsys):
    damaged = tmp_path / "damaged.gwb"
    damaged.write_bytes(b"PK\x03\x04 not really a zip")
    assert workbench.smoke.run_smoke_test(str(damaged), event_seconds=0.1) == 1
    err = capsys.readouterr().err       # a session is opened on the worker: its error arrives as a dialog
    assert "could not open" in err or "Cannot open damaged.gwb" in err


def test_the_icon_is_drawn_at_the_screen_s_pixel_density(qapp):
    """Sharp on high-DPI: at a device pixel ratio of 2 a 32-point icon has 64×64 pixels of its
    own (an icon made from a small bitmap would be scaled up, and blurred, instead)."""
    from PySide6.QtCore import QSize

    from workbench.icon import app_icon

    for ratio in (1.0, 1.5, 2.0, 3.0):
        pixmap = app_icon().pixmap(QSize(32, 32), ratio)
        assert pixmap.size() == QSize(round(32 * ratio), round(32 * ratio)), (ratio, pixmap.size())
        assert pixmap.devicePixelRatio() == ratio


def test_python_garbage_is_collected_on_the_gui_thread_only(make_window, qtbot):
    """A cycle of Python objects (as a closed window's pyqtgraph items form) is freed on the GUI
    thread, never by a worker thread that happens to allocate: freeing Qt objects there hung the
    suite (a dataset-preview thread and the GUI thread each waiting on the other's lock)."""
    import threading

    make_window()
    died = []

    class Marker:
        def __del__(self):
            died.append(threading.current_thread().name)

    marker = Marker()
    marker.cycle = marker
    del marker
    kept = []
    worker = threading.Thread(target=lambda: kept.extend([i] for i in range(20_000)), name="allocating worker")
    worker.start()
    worker.join()
    qtbot.waitUntil(lambda: bool(died), timeout=5_000)
    assert died == [threading.main_thread().name]


@pytest.mark.parametrize("argv", [[], ["open", str(EXAMPLE)]])
def test_without_a_display_the_window_command_exits_2_with_one_line(argv):
    """No DISPLAY, no WAYLAND_DISPLAY, no platform chosen: one line saying so and how to run the
    headless commands, exit status 2 (Qt itself aborts with status 134 and seven lines)."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    done = subprocess.run([sys.executable, "-m", "workbench", *argv], env=env, capture_output=True, text=True,
                          timeout=60, cwd=ROOT)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: no display"), done.stderr
    assert "gradient-workbench train" in lines[0] and "libxcb" not in done.stderr
    # with a platform that needs no display (the tests' offscreen one) the window command goes on
    from workbench.cli import missing_display

    assert missing_display({"QT_QPA_PLATFORM": "offscreen"}, "linux") == ""
    assert missing_display({"DISPLAY": ":0"}, "linux") == ""
    assert missing_display({}, "win32") == ""
