"""``core`` must import and train with Qt unavailable (scripts, notebooks, servers)."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Every module below core/, found by walking the folder: a new module is covered without an edit.
CORE_MODULES = sorted(
    ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
    for path in (ROOT / "core").rglob("*.py")
)

SCRIPT = """
import importlib, sys
sys.modules["PySide6"] = None      # any `import PySide6` now raises ImportError
sys.modules["pyqtgraph"] = None
for name in sys.argv[1:]:
    importlib.import_module(name)
from core.spec import parse_experiment
from core.training import Trainer
t = Trainer(parse_experiment({"data": {"source": "xor", "params": {"n_samples": 200}},
                              "model": {"layers": [{"units": 8}]}, "training": {"epochs": 1}}))
print(t.fit())
loaded = [m for m, module in sys.modules.items() if module is not None]
assert not [m for m in loaded if m.startswith(("PySide6", "pyqtgraph", "workbench"))], loaded
"""


def test_the_walk_finds_every_package():
    for name in ("core", "core.engine.optimizers", "core.data", "core.sessions.format", "core.cli.main",
                 "core.labs.lr_finder", "core.sweeps.runner", "core.export.pytorch", "core.training"):
        assert name in CORE_MODULES


def test_every_core_module_imports_and_trains_with_pyside6_blocked():
    proc = subprocess.run([sys.executable, "-c", SCRIPT, *CORE_MODULES], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "completed"


def test_core_never_imports_qt_or_the_app():
    """Dependencies flow one way: workbench → core (DESIGN.md); the import-linter contracts in
    pyproject.toml check the same on the import graph, this on the source text."""
    forbidden = re.compile(r"^\s*(from|import)\s+(PySide6|pyqtgraph|workbench)\b", re.M)
    paths = list((ROOT / "core").rglob("*.py"))
    assert len(paths) == len(CORE_MODULES)
    for path in paths:
        assert not forbidden.search(path.read_text()), path
