"""The README's set-up commands are the contract with new users and with CI."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```sh\n(.*?)```", text, re.S)
    assert block, "the README starts with a sh block of set-up commands"
    return [line for line in block.group(1).splitlines() if line and not line.startswith("#")]


def test_readme_starts_with_the_two_commands():
    start, test = readme_commands()
    assert start.endswith(".venv/bin/gradient-workbench")
    assert "pytest" in test


def test_ci_runs_exactly_the_readme_test_command():
    _, test = readme_commands()
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test in ci


def test_ci_installs_the_offscreen_qt_libraries():
    ci = (ROOT / ".ci" / "run").read_text()
    for package in ("libgl1", "libegl1", "libglib2.0-0", "libx11-6", "libdbus-1-3", "libfontconfig1",
                    "libfreetype6", "libxkbcommon0", "fonts-dejavu-core"):
        assert package in ci


def test_every_package_ships_in_the_wheel():
    """A plain `packages = [...]` list would leave subpackages out of the wheel (and the frozen
    app) while the editable install used by the tests still worked."""
    import tomllib

    from setuptools import find_packages

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    found = set(find_packages(str(ROOT), **config["tool"]["setuptools"]["packages"]["find"]))
    on_disk = {str(p.parent.relative_to(ROOT)).replace("/", ".")
               for top in ("core", "workbench") for p in (ROOT / top).rglob("__init__.py")}
    assert on_disk and on_disk <= found


def test_import_contracts_hold():
    """The layering in pyproject.toml ([tool.importlinter]): core never imports Qt or the app, the
    engine imports nothing above it, core's packages are layered, and no package has a cycle."""
    import subprocess
    import sys

    lint = Path(sys.executable).parent / "lint-imports"
    proc = subprocess.run([str(lint), "--no-cache"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 broken" in proc.stdout


def test_the_layering_contract_names_every_package_of_core():
    """A new package of core that no contract names would escape the layering unnoticed."""
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    layers = next(c for c in config["contracts"] if c["type"] == "layers")["layers"]
    named = {name.strip().split(".")[1] for row in layers for name in row.split("|")}
    on_disk = {p.stem if p.suffix == ".py" else p.name for p in (ROOT / "core").iterdir()
               if (p.suffix == ".py" and p.stem != "__init__") or (p / "__init__.py").exists()}
    assert on_disk == named


def test_the_readme_lists_every_bundled_example():
    """Every experiment and sweep under resources/examples is a row of the README's table."""
    text = (ROOT / "README.md").read_text()
    rows = set(re.findall(r"^\| `([^`]+)` \|", text, re.MULTILINE))
    examples = ROOT / "resources" / "examples"
    bundled = {p.relative_to(examples).as_posix() for p in examples.rglob("*.json")}
    assert bundled <= rows, f"missing from the README's table: {sorted(bundled - rows)}"
