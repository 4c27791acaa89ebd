"""The model zoo (resources/zoo) and its examples (resources/examples/*transfer*, pretrain_*)."""

import hashlib
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from core.cli.main import run_headless
from core.sessions.format import load_session
from core.zoo import EXAMPLES, EXAMPLES_DIR, MAX_ZOO_BYTES, ZOO, ZOO_DIR


def test_the_zoo_is_complete_and_small():
    assert sorted(p.stem for p in ZOO_DIR.glob("*.gwb")) == sorted(ZOO)
    for name in ZOO:
        assert (ZOO_DIR / f"{name}.gwb").stat().st_size < MAX_ZOO_BYTES, name


@pytest.mark.parametrize("key", list(EXAMPLES))
def test_examples_are_written_from_the_zoo_module(key):
    assert json.loads((EXAMPLES_DIR / f"{key}.json").read_text()) == EXAMPLES[key]


def weights_sha256(path: Path) -> str:
    with zipfile.ZipFile(path) as zf:
        return hashlib.sha256(zf.read("weights.npz")).hexdigest()


@pytest.mark.parametrize("name", list(ZOO))
def test_info_on_every_zoo_session_prints_lineage_parameter_counts_and_gradient_norms(name, capsys):
    path = ZOO_DIR / f"{name}.gwb"
    session = load_session(path)
    assert session.experiment.to_dict() == EXAMPLES[ZOO[name]]
    assert run_headless(["info", str(path)]) == 0
    text = capsys.readouterr().out
    # parameter counts, computed here from the arrays themselves
    trainable = [a for k, a in session.weights.items() if not k.endswith(("moving_mean", "moving_variance"))]
    total = sum(a.size for a in trainable)
    assert f"{'total':<32} {'':<17} {total:>10,} parameters" in text
    first = sum(a.size for k, a in session.weights.items() if k.startswith("layers.0.")
                and not k.endswith(("moving_mean", "moving_variance")))
    assert f"{first:>10,} parameters" in text
    # the last recorded gradient norms, one line per layer
    step = int(session.history["step"][-1])
    assert f"gradient norms at step {step:,} (input → output)" in text
    for label, value in zip(session.history["layer_names"], session.history["grad_norm"][-1], strict=True):
        assert f"  {label:<32} {value:.3e}" in text
    assert np.isfinite(session.history["grad_norm"][-1]).all()
    # lineage: a reused layer names its source file, whose weights are the ones recorded
    assert "lineage (layers reused from saved sessions)" in text
    transfer = session.experiment.model.transfer
    if transfer is None:
        assert session.lineage == [] and "none: every layer was trained from its initialization" in text
        return
    source = (EXAMPLES_DIR / transfer.source).resolve()
    assert source.parent == ZOO_DIR.resolve() and source.exists()
    assert [e["layer"] for e in session.lineage] == list(transfer.layers)
    for entry in session.lineage:
        assert entry["weights_sha256"] == weights_sha256(source)
        assert f"<- layer {entry['source_layer']} of {transfer.source}" in text


@pytest.mark.parametrize("key", [k for k in EXAMPLES if k.startswith("transfer_")])
def test_transfer_examples_train_from_the_command_line(key, tmp_path):
    out = tmp_path / f"{key}.gwb"
    assert run_headless(["train", str(EXAMPLES_DIR / f"{key}.json"), "--out", str(out), "--epochs", "1",
                         "--quiet"]) == 0
    session = load_session(out)
    assert [e["path"] for e in session.lineage] == [str((EXAMPLES_DIR / EXAMPLES[key]["model"]["transfer"]["from"])
                                                        .resolve())] * len(session.lineage)
