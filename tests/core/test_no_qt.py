"""``core`` must import and train with Qt unavailable (scripts, notebooks, servers)."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import sys
sys.modules["PySide6"] = None      # any `import PySide6` now raises ImportError
sys.modules["pyqtgraph"] = None
import core, core.activations, core.cli, core.datasets, core.diagnostics, core.initializers, core.layers
import core.losses, core.network, core.optimizers, core.presets, core.regularization, core.schedules
import core.session, core.spec, core.training
from core.spec import parse_experiment
from core.training import Trainer
t = Trainer(parse_experiment({"data": {"source": "xor", "params": {"n_samples": 200}},
                              "model": {"layers": [{"units": 8}]}, "training": {"epochs": 1}}))
print(t.fit())
assert not [m for m in sys.modules if m.startswith(("PySide6.", "pyqtgraph."))]
"""


def test_core_imports_and_trains_with_pyside6_blocked():
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "completed"


def test_core_never_imports_qt_or_the_app():
    """Dependencies flow one way: workbench → core (DESIGN.md)."""
    forbidden = re.compile(r"^\s*(from|import)\s+(PySide6|pyqtgraph|workbench)\b", re.M)
    for path in (ROOT / "core").glob("*.py"):
        assert not forbidden.search(path.read_text()), path
