"""The user guide: every picture it shows exists and is made by docs/make_screenshots.py (so
running the script brings all of them up to date), every link resolves, and every lesson
starts from a bundled example."""

from __future__ import annotations

import importlib.util
import re
import xml.etree.ElementTree as ET
from pathlib import Path

from .support import DOCS, PACKAGING, ROOT

GUIDE = DOCS / "guide"
LESSONS = sorted(GUIDE.glob("0*.md"))
IMAGE = re.compile(r"!\[[^\]]*\]\(([^)\s]+)\)|<img [^>]*src=\"([^\"]+)\"")
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")


def screenshot_script():
    spec = importlib.util.spec_from_file_location("make_screenshots", DOCS / "make_screenshots.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def made_by_a_script() -> set[str]:
    """File names of docs/screenshots made by docs/make_screenshots.py (its registered names), or
    named by another docs/make_*screenshots*.py script (the monitor's own, for instance)."""
    made = {f"{name}.png" for name in screenshot_script().SHOTS}
    others = [path.read_text(encoding="utf-8") for path in DOCS.glob("make_*screenshots*.py")
              if path.name != "make_screenshots.py"]
    for image in (DOCS / "screenshots").glob("*.png"):
        if any(f'"{image.stem}"' in text or f'"{image.name}"' in text for text in others):
            made.add(image.name)
    return made


def markdown_files() -> list[Path]:
    return sorted(DOCS.rglob("*.md"))


def images_shown() -> dict[Path, list[Path]]:
    """Image file → the markdown files that show it."""
    shown: dict[Path, list[Path]] = {}
    for md in markdown_files():
        for match in IMAGE.finditer(md.read_text(encoding="utf-8")):
            target = match.group(1) or match.group(2)
            if "://" not in target:
                shown.setdefault((md.parent / target).resolve(), []).append(md)
    return shown


def test_the_guide_has_a_tour_and_the_six_lessons():
    assert (GUIDE / "README.md").is_file()
    titles = [path.read_text(encoding="utf-8").splitlines()[0] for path in LESSONS]
    assert len(titles) == 6, titles
    for word, title in zip(["anishing", "atch", "ptimizer", "chedule", "egulariz", "ransfer"], titles, strict=True):
        assert word in title


def test_every_image_in_the_docs_exists_and_is_made_by_the_script():
    made = made_by_a_script()
    shown = images_shown()
    assert shown, "the guide shows screenshots"
    for image, pages in shown.items():
        where = ", ".join(str(p.relative_to(ROOT)) for p in pages)
        assert image.is_file(), f"{where} shows {image}, which does not exist: run python docs/make_screenshots.py"
        if image.parent == DOCS / "screenshots":
            assert image.name in made, f"{image.name} (shown in {where}) is not made by docs/make_screenshots.py"


def test_every_screenshot_the_script_makes_is_used():
    shown = {path.name for path in images_shown()}
    metainfo = ET.parse(PACKAGING / "gradient-workbench.metainfo.xml").getroot()
    listed = {Path(image.text.strip()).name for image in metainfo.iter("image")}
    for name in screenshot_script().SHOTS:
        assert f"{name}.png" in shown | listed, f"screenshot {name} is made but shown nowhere"
    stray = {path.name for path in (DOCS / "screenshots").glob("*.png")} - made_by_a_script()
    assert not stray, f"images in docs/screenshots that the script does not make: {sorted(stray)}"


def test_appstream_screenshots_are_pictures_of_the_docs():
    metainfo = ET.parse(PACKAGING / "gradient-workbench.metainfo.xml").getroot()
    for image in metainfo.iter("image"):
        path = image.text.strip()
        assert path.startswith("https://") and "/docs/screenshots/" in path
        assert (DOCS / "screenshots" / Path(path).name).is_file(), path


def test_links_between_pages_resolve():
    for md in markdown_files():
        for target in LINK.findall(md.read_text(encoding="utf-8")):
            if "://" in target or target.startswith("#"):
                continue
            assert (md.parent / target.split("#")[0]).exists(), f"{md.relative_to(ROOT)} links to missing {target}"


def test_every_lesson_starts_from_a_bundled_example():
    examples = {path.name for path in (ROOT / "resources" / "examples").glob("*.json")}
    zoo = {path.name for path in (ROOT / "resources" / "zoo").glob("*.gwb")}
    for lesson in LESSONS:
        text = lesson.read_text(encoding="utf-8")
        opened = re.search(r"Open `(?:resources/examples/)?([\w.-]+\.(?:json|gwb))`", text)
        assert opened, f"{lesson.name} does not start by opening an example"
        assert opened.group(1) in examples | zoo, f"{lesson.name} opens {opened.group(1)}, which is not bundled"
        for name in re.findall(r"`(?:[\w./-]*/)?([\w.-]+\.json)`", text):
            assert name in examples, f"{lesson.name} names {name}, which is not in resources/examples"


def test_readme_links_the_guide():
    assert "docs/guide/README.md" in (ROOT / "README.md").read_text(encoding="utf-8")
