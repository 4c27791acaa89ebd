"""Helpers of the packaging tests: the repository's paths, a small session file, and system
tools that a test needs (skipped on a developer machine without them, a failure on CI, whose
.ci/run installs them)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGING = ROOT / "packaging"
DOCS = ROOT / "docs"


def require_tool(name: str, package: str) -> str:
    """Path of the program ``name``; without it: skip here, fail on CI (``CI`` set)."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (Debian package {package}; .ci/run installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def write_small_session(path: Path) -> Path:
    """A real session file, as the app writes it, of a tiny untrained model (fast)."""
    from core.sessions.trainer_io import save_trainer
    from core.spec import parse_experiment
    from core.training import Trainer

    experiment = parse_experiment({"name": "tiny", "data": {"source": "moons", "params": {"n_samples": 64}},
                                   "model": {"layers": [{"units": 4}]}, "training": {"epochs": 1}})
    save_trainer(path, Trainer(experiment))
    return path
