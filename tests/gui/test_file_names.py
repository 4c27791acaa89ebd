"""The file names the window proposes, and the extension it adds to a typed one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from workbench.file_names import MAX_PROPOSED, proposed_name, with_extension

from .monitor_support import make_window_fixture, tiny_experiment  # noqa: F401 (fixture)
from .test_sessions import save_as


@pytest.mark.parametrize("typed, expected", [("run", "run.gwb"), ("lr0.01", "lr0.01.gwb"), ("a.GWB", "a.GWB"),
                                             ("b.gwb", "b.gwb"), ("v1.2.json", "v1.2.json.gwb")])
def test_the_extension_is_added_never_put_in_place_of_a_typed_dot(typed: str, expected: str) -> None:
    assert with_extension(Path("/x") / typed, ".gwb") == Path("/x") / expected


def test_a_proposed_name_has_no_character_a_file_system_refuses_and_is_cut_at_a_word() -> None:
    name = proposed_name("default: He + ELU + BN, Nadam, 1cycle on the digits, early stopping and more words")
    assert name.startswith("default - He + ELU + BN, Nadam, 1cycle")
    assert len(name) <= MAX_PROPOSED and not name.endswith((" ", ","))
    assert name in "default - He + ELU + BN, Nadam, 1cycle on the digits, early stopping and more words"
    assert proposed_name('a/b\\c*d?e"f<g>h|i') == "a b c d e f g h i"
    assert proposed_name(":::") == "experiment" and proposed_name("x" * 200) == "x" * MAX_PROPOSED


def test_save_as_proposes_a_clean_name_and_keeps_a_typed_dot(make_window: Any, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    window = make_window(tiny_experiment())
    assert window.state.set_field("name", "moons: lr 0.01 / batch 32") is None
    starts = save_as(window, tmp_path / "lr0.01", monkeypatch)
    assert Path(starts[0]).name == "moons - lr 0.01 batch 32.gwb"
    assert (tmp_path / "lr0.01.gwb").is_file() and window.state.file == tmp_path / "lr0.01.gwb"
