"""Root conftest: make Qt run without a display unless the caller chose a platform, and keep
every test off the network.

pytest-qt has no option for the platform, and this must happen before any Qt import.
A platform already chosen wins: ``xvfb-run -a env QT_QPA_PLATFORM=xcb pytest`` overrides it.

The book's data sets download on first use: the tests point their cache at an empty folder
of this run and their download location at a port where nothing listens, so a test that
reached for Fashion-MNIST by accident fails at once instead of touching the network (the
download tests serve their own files from 127.0.0.1 and set both variables themselves).
"""

import os
import tempfile

if "QT_QPA_PLATFORM" not in os.environ:
    # One virtual 1920 x 1080 screen (the offscreen platform's own is 800 x 600): the window sizes
    # itself from its screen, and the tests expect the room of a common desktop.
    _screens = os.path.join(tempfile.mkdtemp(prefix="gwb-test-screen-"), "screens.json")
    with open(_screens, "w", encoding="utf-8") as fh:
        fh.write('{"screens": [{"name": "test", "x": 0, "y": 0, "width": 1920, "height": 1080}]}')
    os.environ["QT_QPA_PLATFORM"] = f"offscreen:configfile={_screens}"
os.environ.setdefault("LANG", "C.UTF-8")
os.environ["GRADIENT_WORKBENCH_CACHE"] = tempfile.mkdtemp(prefix="gwb-test-cache-")
os.environ["GRADIENT_WORKBENCH_MIRROR"] = "http://127.0.0.1:9/no-network-in-tests"
