"""Write the session-format fixtures of tests/data (run from the repository root).

One file per released session format, kept forever (CONTRIBUTING.md, "Formats"): a file written by format
1 must load, be migrated and resume in every later version. So this script writes only the
fixture of the *current* format, and only if it does not exist yet; never regenerate an old
one (pass --force only while that format is still unreleased).

    python tests/data/make_fixtures.py
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from core.sessions.format import VERSION  # noqa: E402
from core.sessions.trainer_io import save_trainer  # noqa: E402
from core.spec import parse_experiment  # noqa: E402
from core.training import Trainer  # noqa: E402

HERE = Path(__file__).resolve().parent

# Small, and with every kind of state a session holds: batch norm (moving statistics), dropout,
# shuffling, Nadam (slots and a scalar), 1cycle, early stopping (best weights), saved half-way
# through an epoch (the permutation and the running sums), and (since format 3) checkpoints
# every 2 steps, at most 3, so the nine steps trained leave two, at 4 and 8, thinned once.
SPEC = {
    "name": f"session format {VERSION} fixture", "seed": 11,
    "data": {"source": "moons", "params": {"n_samples": 80}, "validation_split": 0.25},
    "model": {"input_dropout": 0.1,
              "layers": [{"units": 8, "batch_norm": "before_activation", "dropout": 0.1},
                         {"units": 6, "activation": "selu", "init": "lecun_normal"}]},
    "optimizer": {"name": "nadam", "learning_rate": 0.01},
    "schedule": {"name": "one_cycle"},
    "regularization": {"l2": 0.001, "early_stopping": {"enabled": True, "patience": 5}},
    "training": {"epochs": 4, "batch_size": 10, "checkpoints": {"every": 2, "keep": 3}},
}


def main(force: bool = False) -> Path:
    path = HERE / f"session_v{VERSION}.gwb"
    if path.exists() and not force:
        print(f"{path} exists; fixtures of released formats are never rewritten")
        return path
    trainer = Trainer(parse_experiment(SPEC))
    trainer.fit(epochs=1)
    for _ in range(3):
        trainer.train_batch()
    save_trainer(path, trainer)
    print(f"wrote {path}")
    return path


if __name__ == "__main__":
    main(force="--force" in sys.argv[1:])
