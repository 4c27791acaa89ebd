"""Desktop integration: the menu entry, AppStream metadata, the *.gwb file type, the icons and
the installer that puts them in place (packaging/)."""

from __future__ import annotations

import configparser
import os
import struct
import subprocess
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from .support import PACKAGING, ROOT, require_tool, write_small_session

DESKTOP = PACKAGING / "gradient-workbench.desktop"
METAINFO = PACKAGING / "gradient-workbench.metainfo.xml"
MIME_XML = PACKAGING / "gradient-workbench-mime.xml"
MIME_TYPE = "application/x-gradient-workbench-session"
SIZES = (16, 22, 24, 32, 48, 64, 128, 256, 512)
MIME_NS = {"m": "http://www.freedesktop.org/standards/shared-mime-info"}


def desktop_entry() -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str
    parser.read(DESKTOP, encoding="utf-8")
    return parser["Desktop Entry"]


def test_desktop_file_validate_passes():
    tool = require_tool("desktop-file-validate", "desktop-file-utils")
    result = subprocess.run([tool, str(DESKTOP)], capture_output=True, text=True)
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def test_appstreamcli_validate_passes():
    tool = require_tool("appstreamcli", "appstream")
    result = subprocess.run([tool, "validate", "--no-net", "--explain", str(METAINFO)], capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "E:" not in result.stdout and "W:" not in result.stdout, result.stdout


def test_desktop_entry_opens_sessions_with_the_app():
    entry = desktop_entry()
    assert entry["Exec"] == "gradient-workbench %f"   # a bare FILE.gwb is `open FILE` (workbench/cli.py)
    assert entry["Icon"] == "gradient-workbench"
    assert entry["MimeType"] == f"{MIME_TYPE};"
    assert entry["Terminal"] == "false"
    # the window says which desktop entry it belongs to (Wayland app id, task-bar grouping)
    assert 'setDesktopFileName("gradient-workbench")' in (ROOT / "workbench" / "app.py").read_text()


def test_mime_type_is_a_zip_named_gwb():
    types = ET.parse(MIME_XML).getroot().findall("m:mime-type", MIME_NS)
    assert [t.get("type") for t in types] == [MIME_TYPE]
    mime = types[0]
    assert [g.get("pattern") for g in mime.findall("m:glob", MIME_NS)] == ["*.gwb"]
    assert mime.find("m:sub-class-of", MIME_NS).get("type") == "application/zip"


def test_mime_magic_matches_a_session_the_app_writes(tmp_path):
    """The magic rule (zip header, manifest.json as first member) recognises a real session."""
    data = write_small_session(tmp_path / "run.gwb").read_bytes()
    outer = ET.parse(MIME_XML).getroot().find("m:mime-type/m:magic/m:match", MIME_NS)
    inner = outer.find("m:match", MIME_NS)
    for rule in (outer, inner):
        value = rule.get("value").encode().decode("unicode_escape").encode("latin-1")
        offset = int(rule.get("offset"))
        assert data[offset:offset + len(value)] == value


def test_metainfo_names_the_desktop_entry_the_type_and_the_binary():
    root = ET.parse(METAINFO).getroot()
    assert root.findtext("launchable") == DESKTOP.name
    assert root.findtext("provides/mediatype") == MIME_TYPE
    assert root.findtext("provides/binary") == "gradient-workbench"
    assert root.find("content_rating").get("type").startswith("oars-")
    assert root.findall("screenshots/screenshot"), "AppStream metadata shows screenshots"
    assert len(root.findtext("description/p").split()) > 20


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", path
    return struct.unpack(">II", header[16:24])


def test_icon_pngs_exist_in_every_size_and_the_svg_copies_match_the_source():
    source = (ROOT / "resources" / "icons" / "gradient-workbench.svg").read_bytes()
    for size in SIZES:
        assert png_size(PACKAGING / "icons" / "hicolor" / f"{size}x{size}" / "apps" / "gradient-workbench.png") \
            == (size, size)
    # both copies are written by packaging/make_icons.py: rerun it after editing the SVG
    assert (PACKAGING / "icons" / "hicolor" / "scalable" / "apps" / "gradient-workbench.svg").read_bytes() == source
    assert (ROOT / "workbench" / "resources" / "gradient-workbench.svg").read_bytes() == source


def install(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data"), "XDG_CONFIG_HOME": str(tmp_path / "config"),
           "HOME": str(tmp_path)}
    return subprocess.run(["bash", str(PACKAGING / "install-desktop.sh"), *args], capture_output=True, text=True,
                          env=env, timeout=60)


@pytest.fixture
def fake_app(tmp_path: Path) -> Path:
    """A stand-in for the program that records the arguments it was started with."""
    app = tmp_path / "bin" / "gradient-workbench"
    app.parent.mkdir()
    app.write_text(f'#!/bin/sh\necho "$@" > {tmp_path / "launched"}\n')
    app.chmod(0o755)
    return app


def test_install_desktop_puts_every_file_in_place_and_uninstall_removes_them(tmp_path, fake_app):
    result = install(tmp_path, "--exec", str(fake_app))
    assert result.returncode == 0, result.stderr
    data = tmp_path / "data"
    entry = (data / "applications" / "gradient-workbench.desktop").read_text()
    assert f"Exec={fake_app} %f" in entry and f"TryExec={fake_app}" in entry
    assert (data / "mime" / "packages" / "gradient-workbench-mime.xml").is_file()
    assert (data / "metainfo" / "io.github.gradient_workbench.GradientWorkbench.metainfo.xml").is_file()
    for size in SIZES:
        assert (data / "icons" / "hicolor" / f"{size}x{size}" / "apps" / "gradient-workbench.png").is_file()
        assert (data / "icons" / "hicolor" / f"{size}x{size}" / "mimetypes"
                / "application-x-gradient-workbench-session.png").is_file()
    result = install(tmp_path, "--uninstall")
    assert result.returncode == 0, result.stderr
    left = [p for p in data.rglob("*") if p.is_file() and "gradient" in p.name and p.parent.name != "mime"]
    assert left == []


def test_install_desktop_refuses_without_a_program(tmp_path):
    result = install(tmp_path, "--exec", str(tmp_path / "missing"))
    assert result.returncode == 2 and "not an executable" in result.stderr


def test_a_double_click_on_a_session_starts_the_app_with_the_file(tmp_path, fake_app):
    """After install-desktop.sh, the desktop's own machinery (GIO, as file managers use it)
    recognises a .gwb as a session — by name and, renamed, by content — picks the app as its
    default and starts it with the file's path."""
    require_tool("update-mime-database", "shared-mime-info")
    gio = require_tool("gio", "libglib2.0-bin")
    assert install(tmp_path, "--exec", str(fake_app)).returncode == 0
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data"), "XDG_CONFIG_HOME": str(tmp_path / "config"),
           "HOME": str(tmp_path)}
    session = write_small_session(tmp_path / "run.gwb")
    renamed = tmp_path / "no-suffix"
    renamed.write_bytes(session.read_bytes())
    for path in (session, renamed):
        info = subprocess.run([gio, "info", "-a", "standard::content-type", str(path)], capture_output=True,
                              text=True, env=env, timeout=30)
        assert f"standard::content-type: {MIME_TYPE}" in info.stdout, info.stdout + info.stderr
    default = subprocess.run([gio, "mime", MIME_TYPE], capture_output=True, text=True, env=env, timeout=30)
    assert "gradient-workbench.desktop" in default.stdout.splitlines()[0]
    subprocess.run([gio, "open", str(session)], env=env, timeout=30, check=True)
    launched = tmp_path / "launched"
    deadline = time.monotonic() + 10
    while not launched.exists() and time.monotonic() < deadline:   # gio open does not wait for the app
        time.sleep(0.05)
    assert launched.read_text().strip() == str(session)


def test_installed_tree_validates_as_a_whole(tmp_path, fake_app):
    """appstreamcli checks the metainfo together with the installed desktop entry and icons."""
    tool = require_tool("appstreamcli", "appstream")
    assert install(tmp_path, "--prefix", str(tmp_path / "usr"), "--exec", str(fake_app)).returncode == 0
    result = subprocess.run([tool, "validate-tree", "--no-net", str(tmp_path)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
