"""Root conftest: make Qt run without a display unless the caller chose a platform, and keep
every test off the network.

pytest-qt has no option for the platform, and this must happen before any Qt import.
``setdefault`` lets ``xvfb-run -a env QT_QPA_PLATFORM=xcb pytest`` override it.

The book's data sets download on first use: the tests point their cache at an empty folder
of this run and their download location at a port where nothing listens, so a test that
reached for Fashion-MNIST by accident fails at once instead of touching the network (the
download tests serve their own files from 127.0.0.1 and set both variables themselves).
"""

import os
import tempfile

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("LANG", "C.UTF-8")
os.environ["GRADIENT_WORKBENCH_CACHE"] = tempfile.mkdtemp(prefix="gwb-test-cache-")
os.environ["GRADIENT_WORKBENCH_MIRROR"] = "http://127.0.0.1:9/no-network-in-tests"
