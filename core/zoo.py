"""A small model zoo and the transfer-learning examples, made reproducibly from this file.

``python -m core.zoo`` (from the repository root) writes the example experiments of
``resources/examples/`` that this module defines and trains the sessions of
``resources/zoo/`` from them, in dependency order: pretrained models first, then the
models that reuse their layers (whose lineage therefore points at the zoo files).
``python -m core.zoo --measure`` reruns the comparisons of ``docs/transfer.md`` (reused
layers versus the same network from scratch, several seeds) and prints its tables.

The two stories, both from chapter 11:

* **Reusing pretrained layers** — a deep He + ELU + batch-norm network learns digits 0-4;
  its six lower layers are reused for digits 5-9 with a small training set, frozen for the
  first epoch while the new top layers learn, then unfrozen.
* **Pretraining on an auxiliary task** — with only ~50 labels per class but all images
  unlabeled, the same network first learns to tell real digits from corrupted ones
  (``data.source: "corrupted"``), then its lower layers are reused for the 10-class task.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.spec import parse_experiment

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES_DIR = ROOT / "resources" / "examples"
ZOO_DIR = ROOT / "resources" / "zoo"

# The deep network of both stories: 8 × 50 He + ELU with batch norm, the book's default recipe.
# Batch sizes are chosen so an epoch's last batch is not a handful of examples (batch-norm
# statistics of 1-3 examples are degenerate and would make the last step's gradients odd).
DEEP = [{"units": 50, "init": "he_normal", "activation": "elu", "batch_norm": "before_activation"}] * 8


def _spec(name: str, data: dict[str, Any], epochs: int, batch_size: int, transfer: dict[str, Any] | None = None,
          seed: int = 42) -> dict[str, Any]:
    model: dict[str, Any] = {"layers": DEEP}
    if transfer is not None:
        model["transfer"] = transfer
    spec = {"name": name, "seed": seed, "data": data, "model": model,
            "optimizer": {"name": "nadam", "learning_rate": 0.001},
            "training": {"epochs": epochs, "batch_size": batch_size}}
    return parse_experiment(spec).to_dict()


#: Example experiments (``resources/examples/<key>.json``), canonical JSON. A transfer
#: example's ``from`` is relative to the examples folder.
EXAMPLES: dict[str, dict[str, Any]] = {
    "pretrain_digits_0-4": _spec(
        "digits 0-4 (for reuse on 5-9)",
        {"source": "digits", "params": {"classes": [0, 1, 2, 3, 4]}, "validation_split": 0.2}, 15, 32),
    "transfer_digits_5-9": _spec(
        "digits 5-9 reusing 6 layers of the 0-4 model (36 labels a class)",
        {"source": "digits", "params": {"classes": [5, 6, 7, 8, 9]}, "validation_split": 0.8}, 10, 20,
        {"from": "../zoo/digits_0-4.gwb", "layers": [0, 1, 2, 3, 4, 5], "unfreeze_at_epoch": 1}),
    "pretrain_corrupted_digits": _spec(
        "real vs corrupted digits (auxiliary task, no labels)",
        {"source": "corrupted", "params": {"base": "digits", "corruption": "swap", "fraction": 0.5},
         "validation_split": 0.1}, 10, 30),
    "transfer_50_labels": _spec(
        "digits with 50 labels a class, lower layers pretrained on real vs corrupted",
        {"source": "digits", "validation_split": 0.72}, 10, 24,
        {"from": "../zoo/digits_corrupted.gwb", "layers": [0, 1, 2, 3, 4, 5, 6], "freeze": []}),
}

#: Zoo sessions (``resources/zoo/<name>.gwb``) and the example each is trained from, in order.
ZOO: dict[str, str] = {
    "digits_0-4": "pretrain_digits_0-4",
    "digits_5-9_transfer": "transfer_digits_5-9",
    "digits_corrupted": "pretrain_corrupted_digits",
    "digits_50_labels_transfer": "transfer_50_labels",
}

MAX_ZOO_BYTES = 1024**2


def write_examples(folder: Path = EXAMPLES_DIR) -> list[Path]:
    out = []
    for key, spec in EXAMPLES.items():
        path = folder / f"{key}.json"
        path.write_text(json.dumps(spec, indent=2) + "\n", encoding="utf-8")
        out.append(path)
    return out


def make_zoo(zoo: Path = ZOO_DIR, examples: Path = EXAMPLES_DIR) -> list[Path]:
    """Train every zoo session from its example (sources first) and save it."""
    from core.sessions.trainer_io import save_trainer
    from core.training import Trainer

    zoo.mkdir(parents=True, exist_ok=True)
    written = []
    for name, key in ZOO.items():
        # relative, so lineage paths in the shipped files do not name the machine they were made on
        folder = Path(_relative(examples))
        trainer = Trainer(parse_experiment(EXAMPLES[key]), folder)
        trainer.fit()
        path = zoo / f"{name}.gwb"
        save_trainer(path, trainer)
        size = path.stat().st_size
        if size > MAX_ZOO_BYTES:
            raise RuntimeError(f"{path} is {size:,} bytes; zoo files stay under {MAX_ZOO_BYTES:,}")
        print(f"{path}: {size:,} bytes, val_accuracy {trainer.history['val_accuracy'][-1]:.3f}")
        written.append(path)
    return written


def _relative(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


# ----------------------------------------------------------------------------- measurements


SHALLOW = [{"units": 100, "init": "he_normal", "activation": "elu"}] * 3


def variants(key: str) -> dict[str, tuple[dict[str, Any] | None, list[dict[str, Any]]]]:
    """The settings compared for an example, as (transfer, layers): from scratch, the
    example's own transfer, the alternatives a user would try (frozen for the whole run,
    fine-tuned from the start), and a shallow, wide network from scratch for reference."""
    own = EXAMPLES[key]["model"]["transfer"]
    n = len(own["layers"])
    settings = {
        "frozen until epoch 1": {**own, "freeze": None, "unfreeze_at_epoch": 1},
        "frozen until epoch 2": {**own, "freeze": None, "unfreeze_at_epoch": 2},
        "frozen for the whole run": {**own, "freeze": None, "unfreeze_at_epoch": None},
        "fine-tuned from the start": {**own, "freeze": [], "unfreeze_at_epoch": None},
    }
    out: dict[str, tuple[dict[str, Any] | None, list[dict[str, Any]]]] = {"8 × 50 from scratch": (None, DEEP)}
    for what, transfer in settings.items():
        mine = all(transfer[k] == own[k] for k in ("freeze", "unfreeze_at_epoch"))
        out[f"8 × 50, reuse {n}, {what}" + (" (the example)" if mine else "")] = (transfer, DEEP)
    out["3 × 100 (no batch norm) from scratch, for reference"] = (None, SHALLOW)
    return out


def measure(key: str, seeds: Sequence[int] = (100, 101, 102, 103, 104),
            examples: Path = EXAMPLES_DIR) -> list[tuple[str, np.ndarray]]:
    """Validation accuracy per epoch for each variant: an array (seeds, epochs). A seed sets
    the split (which images are labelled), the initialization and the order, the same for
    every variant, so the variants can be compared seed by seed."""
    from core.training import Trainer

    results = []
    for label, (transfer, layers) in variants(key).items():
        curves = []
        for seed in seeds:
            spec = copy.deepcopy(EXAMPLES[key])
            spec["seed"] = seed
            spec["model"]["layers"] = layers
            spec["model"]["transfer"] = transfer
            trainer = Trainer(parse_experiment(spec), examples)
            trainer.fit()
            curves.append(trainer.history["val_accuracy"])
        results.append((label, np.array(curves)))
    return results


def table(results: list[tuple[str, np.ndarray]], epochs_shown: Sequence[int] = (1, 2, 5, 10)) -> str:
    """Markdown: mean validation accuracy (min–max over seeds) after the given epochs, and the
    difference to the first row (from scratch) seed by seed, at epoch 2 and at the end."""
    first = results[0][1]
    last = first.shape[1]
    lines = ["| | " + " | ".join(f"epoch {e}" for e in epochs_shown)
             + f" | vs scratch, epoch 2 | vs scratch, epoch {last} |",
             "|---|" + "---|" * (len(epochs_shown) + 2)]
    for i, (label, curves) in enumerate(results):
        cells = [f"{curves[:, e - 1].mean():.3f} ({curves[:, e - 1].min():.3f}–{curves[:, e - 1].max():.3f})"
                 for e in epochs_shown]
        for e in (2, last):
            gain = curves[:, e - 1] - first[:, e - 1]
            cells.append("" if i == 0 else f"{gain.mean():+.3f} ({gain.min():+.3f} to {gain.max():+.3f})")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core.zoo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--measure", action="store_true", help="print the tables of docs/transfer.md")
    parser.add_argument("--examples-only", action="store_true", help="only write resources/examples/*.json")
    args = parser.parse_args(argv)
    if args.measure:
        for key in ("transfer_digits_5-9", "transfer_50_labels"):
            print(f"\n{key} (validation accuracy, mean (min–max) over 5 seeds)\n")
            print(table(measure(key)))
        return 0
    for path in write_examples():
        print(path)
    if not args.examples_only:
        make_zoo()
    return 0


if __name__ == "__main__":
    sys.exit(main())
