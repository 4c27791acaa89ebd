"""Root conftest: make Qt run without a display unless the caller chose a platform.

pytest-qt has no option for the platform, and this must happen before any Qt import.
``setdefault`` lets ``xvfb-run -a env QT_QPA_PLATFORM=xcb pytest`` override it.
"""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("LANG", "C.UTF-8")
