"""The version comes from one place, ``core.__version__``, and every place that shows it agrees:
the package metadata, ``--version``, the session manifest, Help › About, the running
application, the AppStream release and the CHANGELOG."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
import zipfile
from importlib import metadata

import pytest

from core import __version__

from .support import PACKAGING, ROOT, write_small_session


def test_version_is_a_release_number():
    assert re.fullmatch(r"\d+\.\d+\.\d+", __version__)


def test_package_metadata_reads_core_version():
    assert 'version = {attr = "core.__version__"}' in (ROOT / "pyproject.toml").read_text()
    # the installed metadata is written at install time: reinstall (pip install -e .) after a bump
    assert metadata.version("gradient-workbench") == __version__


def test_version_option_prints_it(capsys):
    from workbench.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"gradient-workbench {__version__}"


def test_session_manifest_records_it(tmp_path):
    with zipfile.ZipFile(write_small_session(tmp_path / "run.gwb")) as zf:
        assert json.loads(zf.read("manifest.json"))["app_version"] == __version__


def test_about_box_and_application_show_it(qtbot, tmp_path, monkeypatch):
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QMessageBox

    import workbench.main_window as main_window
    from workbench.app import create_app

    shown = []

    class Box(QMessageBox):
        @staticmethod
        def about(parent, title, text):
            shown.append(text)

    monkeypatch.setattr(main_window, "QMessageBox", Box)
    app = create_app()
    assert app.applicationVersion() == __version__
    window = main_window.MainWindow(settings=QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    window.about()
    assert len(shown) == 1 and f"Gradient Workbench {__version__}" in shown[0]
    window.controller.shutdown()


def test_appstream_release_and_changelog_name_it():
    releases = ET.parse(PACKAGING / "gradient-workbench.metainfo.xml").getroot().findall("releases/release")
    assert releases[0].get("version") == __version__, "add a <release> for the new version (newest first)"
    changelog = (ROOT / "CHANGELOG.md").read_text()
    first = re.search(r"^## \[?(\d+\.\d+\.\d+)", changelog, re.M)
    assert first and first.group(1) == __version__, "CHANGELOG.md starts with the current version"
