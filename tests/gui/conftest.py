"""GUI tests never touch the user's data folder: recovery copies (autosave) go to a temporary one."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.recovery import DATA_ENV


@pytest.fixture(autouse=True)
def _private_user_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "user-data"
    monkeypatch.setenv(DATA_ENV, str(folder))
    return folder
