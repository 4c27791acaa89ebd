"""The distributable builds: wheel and sdist (twine-checked) and the PyInstaller one-folder app,
started offscreen on an example session (packaging/build.sh --smoke).

Slow (one to two minutes) and writes build/ and dist/, so it is deselected by default
(marker ``packaging``); run it with ``python -m pytest -m packaging``.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from core import __version__

from .support import PACKAGING, ROOT

pytestmark = pytest.mark.packaging


def test_build_script_builds_and_the_frozen_app_passes_its_smoke_test():
    env = {**os.environ, "PYTHON": sys.executable}
    result = subprocess.run(["bash", str(PACKAGING / "build.sh"), "--smoke"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "smoke test passed: Gradient Workbench" in result.stdout
    dist = ROOT / "dist"
    assert (dist / f"gradient_workbench-{__version__}-py3-none-any.whl").is_file()
    assert (dist / f"gradient_workbench-{__version__}.tar.gz").is_file()
    app = dist / "gradient-workbench"
    assert os.access(app / "gradient-workbench", os.X_OK)
    assert (app / "desktop" / "install-desktop.sh").is_file() and (app / "examples" / "default.json").is_file()
    # scikit-learn's bundled data sets are inside the build
    assert list(app.rglob("sklearn/datasets/data/digits.csv.gz"))
