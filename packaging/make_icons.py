"""Render the application icon's PNG sizes from its SVG source, with Qt alone.

    python packaging/make_icons.py          # writes packaging/icons/hicolor/* and workbench/resources/

The SVG source is ``resources/icons/gradient-workbench.svg``. This script writes

- ``packaging/icons/hicolor/<n>x<n>/apps/gradient-workbench.png`` for every size in ``SIZES``
  and ``packaging/icons/hicolor/scalable/apps/gradient-workbench.svg`` (the freedesktop icon
  theme layout that ``packaging/install-desktop.sh`` copies into ``~/.local/share/icons``);
- ``workbench/resources/gradient-workbench.svg``, the copy the running application loads
  (``workbench.icon``), so installed wheels and frozen builds carry it inside the package.

``--check`` writes nothing and exits 1 if any of those files is missing or out of date.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "resources" / "icons" / "gradient-workbench.svg"
HICOLOR = ROOT / "packaging" / "icons" / "hicolor"
PACKAGE_COPY = ROOT / "workbench" / "resources" / "gradient-workbench.svg"
NAME = "gradient-workbench"
SIZES = (16, 22, 24, 32, 48, 64, 128, 256, 512)


def png_path(size: int) -> Path:
    return HICOLOR / f"{size}x{size}" / "apps" / f"{NAME}.png"


def render(svg: Path, size: int):
    """The SVG drawn into a transparent size × size ARGB image."""
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise SystemExit(f"make_icons: {svg} is not a valid SVG")
    image = QImage(size, size, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
    renderer.render(painter)
    painter.end()
    return image


def outputs() -> dict[Path, bytes]:
    """Every file this script makes, with its content."""
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice

    svg = SOURCE.read_bytes()
    files = {HICOLOR / "scalable" / "apps" / f"{NAME}.svg": svg, PACKAGE_COPY: svg}
    for size in SIZES:
        data = QByteArray()
        buffer = QBuffer(data)
        buffer.open(QIODevice.OpenModeFlag.WriteOnly)
        render(SOURCE, size).save(buffer, "PNG")
        buffer.close()
        files[png_path(size)] = bytes(data.data())
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report missing or stale files (exit 1)")
    args = parser.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtGui import QGuiApplication

    app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])  # noqa: F841 (QImage text/SVG needs one)
    stale = []
    for path, content in outputs().items():
        if path.exists() and path.read_bytes() == content:
            continue
        stale.append(path)
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
    for path in stale:
        print(f"{'stale' if args.check else 'wrote'} {path.relative_to(ROOT)}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
