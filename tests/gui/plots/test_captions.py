"""A plot's caption fits its width in whole words: its shorter readings first, then its first words
and "…"; never a word cut short (a narrowed dock read "Loss, accuracy and l")."""

from __future__ import annotations

from typing import Any

import pytest

from workbench.monitor.plots.base import FittingLabel, shorter_forms


@pytest.mark.parametrize("text", ["Loss, accuracy and learning rate",
                                  "Gradient heatmap (log10 norm)",
                                  "Effective LR: median |Δθ| / |g| per layer (Adam's per-weight rate)"])
def test_a_caption_narrowed_step_by_step_shows_whole_words_that_fit(qtbot: Any, text: str) -> None:
    label = FittingLabel(text)
    qtbot.addWidget(label)
    label.show()
    words = set(" ".join(shorter_forms(text)).replace(":", " ").replace(",", " ").split())
    seen = []
    for width in range(600, 30, -10):
        label.resize(width, 24)
        shown = label.text()
        seen.append(shown)
        assert label.toolTip() == label.full_text() == text
        room = label.contentsRect().width()
        first = shorter_forms(text)[-1].split(" ")[0].rstrip(",:")
        if label.fontMetrics().horizontalAdvance(first + "…") <= room:      # room for a whole word
            assert label.fontMetrics().horizontalAdvance(shown) <= room, (width, shown)
            kept = shown.removesuffix("…").replace(":", " ").replace(",", " ").split()
            assert set(kept) <= words, (width, shown)      # every word shown is one of the caption's
    assert seen[0] == text and any(s.endswith("…") for s in seen)
