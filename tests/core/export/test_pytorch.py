"""Export to PyTorch: the script (torch-free checks, in every run) and, with the marker ``torch``,
the script run under PyTorch: same data, same logits as the workbench's network, the first
epoch's training loss within 1 % from the session's weights with shuffling off, and a run from
the command line.

The torch-free checks are parametrized over the registries (optimizers, schedules, activations,
initializers, losses, data sources, augmentations): every registered name is either translated
(and its script compiles) or refused on purpose with ``ExportError``, so a newly registered name
the exporter lacks fails here until it gets an entry or a stated reason. User strings (the
experiment's name, the session's file name) are checked with hostile values: the script compiles
and gives them back unchanged. The ``torch`` tests are deselected by default (pyproject's addopts); CI
installs the CPU build of torch and runs them with ``pytest -m torch`` (.ci/run)."""

import ast
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.cli.main import run_headless
from core.data import DATASETS, dataset_names
from core.engine.activations import ACTIVATIONS
from core.engine.initializers import INITIALIZERS
from core.engine.losses import LOSSES
from core.engine.optimizers import OPTIMIZERS as OPTIMIZER_REGISTRY
from core.engine.optimizers import SGD
from core.engine.schedules import SCHEDULES as SCHEDULE_REGISTRY
from core.export import pytorch_template
from core.export.pytorch import (
    REFUSED,
    TRANSLATIONS,
    ExportError,
    export_pytorch,
    pytorch_script,
    torch_state,
    translation,
)
from core.sessions.format import load_session
from core.sessions.trainer_io import save_trainer
from core.spec import AUGMENTATIONS, parse_experiment
from core.training import Trainer
from tests.core.data.book_support import served_book_sets
from tests.core.data.support import write_idx_pair, write_image_folder

ROOT = Path(__file__).resolve().parents[3]

LAYERS = [{"units": 24, "activation": "elu", "alpha": 0.7, "batch_norm": "before_activation", "init": "he_uniform"},
          {"units": 16, "activation": "leaky_relu", "batch_norm": "after_activation", "init": "glorot_normal"},
          {"units": 16, "activation": "selu", "init": "lecun_normal", "use_bias": False},
          {"units": 12, "activation": "tanh", "init": {"name": "random_normal", "stddev": 0.3}}]
OPTIMIZERS = {"sgd": {"learning_rate": 0.05}, "momentum": {"learning_rate": 0.01, "momentum": 0.8},
              "nesterov": {"learning_rate": 0.01}, "adagrad": {"learning_rate": 0.02},
              "rmsprop": {"learning_rate": 0.002, "rho": 0.8}, "adam": {"learning_rate": 0.002},
              "nadam": {"learning_rate": 0.002}, "adamw": {"learning_rate": 0.002, "weight_decay": 0.01},
              "adamax": {"learning_rate": 0.002, "beta_2": 0.99}}
SCHEDULES = {"constant": {}, "power": {"steps": 20, "power": 1.5}, "exponential": {"steps": 30},
             "piecewise": {"boundaries": [1], "values": [0.01, 0.001]}, "performance": {"patience": 2},
             "one_cycle": {}}


def experiment(source="moons", optimizer="nadam", schedule="constant", **sections):
    data = {"source": source}
    if source in DATASETS and "n_samples" in DATASETS.get(source).parameters():
        data["params"] = {"n_samples": 240}
    spec = {"name": f"export {source} {optimizer} {schedule}", "seed": 11, "data": data,
            "model": {"layers": LAYERS},
            "optimizer": {"name": optimizer, **OPTIMIZERS.get(optimizer, {})},
            "schedule": {"name": schedule, **SCHEDULES.get(schedule, {})},
            "regularization": {"l1": 1e-5, "l2": 1e-4, "max_norm": 4.0, "gradient_clip": {"mode": "global_norm",
                                                                                           "threshold": 5.0}},
            "training": {"epochs": 3, "batch_size": 32, "shuffle": False}}
    for key, value in sections.items():
        spec[key] = {**spec.get(key, {}), **value} if isinstance(value, dict) else value
    return spec


def session_at_start(tmp_path, spec, name="run.gwb", base_dir=None):
    """A session saved before any training (the initial weights), and its trainer."""
    trainer = Trainer(parse_experiment(spec), base_dir)
    path = tmp_path / name
    save_trainer(path, trainer, {"base_dir": str(base_dir)} if base_dir else None)
    return load_session(path), trainer


def data_files(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((150, 3)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(np.int64) + (X[:, 2] > 1)
    np.savez(tmp_path / "data.npz", X=X, y=y)
    names = ["low", "mid", "high"]
    lines = ["a,b,c,kind"] + [f"{a:.5f},{b:.5f},{c:.5f},{names[k]}" for (a, b, c), k in zip(X, y, strict=True)]
    (tmp_path / "data.csv").write_text("\n".join(lines) + "\n")


# ----------------------------------------------------------------------------- without torch


@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
@pytest.mark.parametrize("schedule", list(SCHEDULES))
def test_script_compiles_for_every_optimizer_and_schedule(tmp_path, optimizer, schedule):
    session, _ = session_at_start(tmp_path, experiment(optimizer=optimizer, schedule=schedule))
    text = pytorch_script(session, "run.weights.npz")
    compile(text, "model.py", "exec")
    expected = {"rmsprop": "KerasRMSprop(", "adagrad": "KerasAdagrad(", "momentum": "KerasMomentum(",
                "nesterov": "nesterov=True", "nadam": "momentum_decay=1.0", "adam": "torch.optim.Adam(",
                "adamw": "torch.optim.AdamW(", "sgd": "torch.optim.SGD(", "adamax": "KerasAdamax("}[optimizer]
    assert expected in text
    scheduler = {"constant": "scheduler = None", "performance": "ReduceLROnPlateau"}.get(schedule, "LambdaLR")
    assert scheduler in text
    assert "import torch" in text and not re.search(r"^\s*(from|import) (core|workbench)\b", text, re.M)


def test_script_holds_the_layers_and_hyperparameters(tmp_path):
    spec = experiment(model={"input_dropout": 0.1, "layers": [{**LAYERS[0], "dropout": 0.25}, *LAYERS[1:]]})
    session, _ = session_at_start(tmp_path, spec)
    text = pytorch_script(session)
    tree = ast.parse(text)
    assigned = {t.id: node.value for node in tree.body if isinstance(node, ast.Assign)
                for t in node.targets if isinstance(t, ast.Name)}
    layers = ast.literal_eval(assigned["LAYERS"])
    assert [row["units"] for row in layers] == [24, 16, 16, 12]
    assert layers[0] == {"units": 24, "init": {"name": "he_uniform"}, "activation": "elu", "alpha": 0.7,
                         "batch_norm": "before_activation", "dropout": 0.25, "use_bias": True}
    assert layers[3]["init"] == {"name": "random_normal", "stddev": 0.3}
    assert ast.literal_eval(assigned["INPUT_DROPOUT"]) == 0.1
    assert "N_INPUTS, N_OUTPUTS = 2, 2" in text
    assert ast.literal_eval(assigned["SEED"]) == 11 and ast.literal_eval(assigned["SHUFFLE"]) is False
    for needle in ("nn.BatchNorm1d(units, eps=1e-5, momentum=0.01)", "nn.ELU(alpha=row[\"alpha\"])",
                   "nn.LeakyReLU(negative_slope=row[\"alpha\"])", "nn.Dropout(", "L1, L2 = 1e-05, 0.0001",
                   "MAX_NORM = 4.0", "CLIP_MODE, CLIP_THRESHOLD = 'global_norm', 5.0", "def generate(rng):",
                   "PARAMS = {'n_samples': 240, 'noise': 0.1}"):
        assert needle in text, needle
    assert "WEIGHTS = None" in text


def test_weights_file_has_torch_names_and_transposed_kernels(tmp_path):
    session, trainer = session_at_start(tmp_path, experiment())
    out = tmp_path / "model.py"
    written = export_pytorch(session, out, with_weights=True)
    assert written == [out, tmp_path / "model.weights.npz"]
    with np.load(written[1], allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    assert np.array_equal(arrays["dense_0.weight"], session.weights["layers.0.kernel"].T)
    assert np.array_equal(arrays["bn_0.running_var"], session.weights["layers.0.moving_variance"])
    assert np.array_equal(arrays["bn_1.weight"], session.weights["layers.1.gamma"])
    assert "dense_2.bias" not in arrays  # use_bias false
    assert np.array_equal(arrays["output.weight"], session.weights["output.kernel"].T)
    assert set(torch_state(session)) == set(arrays)
    assert "Path(__file__).with_name('model.weights.npz')" in out.read_text()


def test_export_command(tmp_path, capsys):
    session, _ = session_at_start(tmp_path, experiment())
    out = tmp_path / "net.py"
    assert run_headless(["export", str(session.path), "--to", "pytorch", str(out), "--with-weights"]) == 0
    assert out.exists() and (tmp_path / "net.weights.npz").exists()
    compile(out.read_text(), str(out), "exec")
    assert run_headless(["export", str(session.path), "--to", "pytorch", str(tmp_path / "net.txt")]) == 2
    assert "must end in .py" in capsys.readouterr().err
    assert run_headless(["export", str(tmp_path / "none.gwb"), "--to", "pytorch", str(out)]) == 2
    assert run_headless(["export", str(session.path), "--to", "keras", str(out)]) == 2


# ----------------------------------------------------------------------------- every registry name

# (family as the exporter names it, the names the workbench accepts there)
FAMILIES = [(registry.family, registry.names()) for registry in
            (OPTIMIZER_REGISTRY, SCHEDULE_REGISTRY, ACTIVATIONS, INITIALIZERS, LOSSES)] \
    + [("dataset", dataset_names()), ("augmentation", list(AUGMENTATIONS))]
REGISTERED = [(family, name) for family, names in FAMILIES for name in names]


def spec_using(family, name, tmp_path):
    """An experiment that uses ``name`` of ``family`` (and defaults elsewhere), and its base folder."""
    data_files(tmp_path)
    if family == "optimizer":
        return experiment(optimizer=name), None
    if family == "schedule":
        return experiment(schedule=name), None
    if family == "activation":
        return experiment(model={"layers": [{"units": 8, "activation": name}, *LAYERS[1:]]}), None
    if family == "initializer":
        return experiment(model={"layers": [{"units": 8, "init": name}], "output": {"init": name}}), None
    if family == "loss":
        if name == "mse":  # float targets
            rng = np.random.default_rng(1)
            X = rng.standard_normal((80, 3))
            np.savez(tmp_path / "regression.npz", X=X, y=X @ np.array([1.0, -2.0, 0.5]))
            return experiment(source="npz", data={"path": "regression.npz"},
                              model={"output": {"loss": name}}), tmp_path
        return experiment(model={"output": {"loss": name}}), None
    if family == "augmentation":
        return experiment(source="digits", data={"augmentation": {"type": name}}), None
    if name == "idx":
        write_idx_pair(tmp_path, n=60, shape=(4, 4))
        return experiment(source=name, data={"path": "images-idx3-ubyte.gz",
                                             "labels_path": "labels-idx1-ubyte.gz"}), tmp_path
    if name == "image_folder":
        write_image_folder(tmp_path / "photos", {"a": 20, "b": 20}, size=(5, 5))
        return experiment(source=name, data={"path": "photos", "params": {"size": 4}}), tmp_path
    if name in ("npz", "csv"):
        return experiment(source=name, data={"path": f"data.{name}", **({"target": "kind"} if name == "csv" else {})}),\
            tmp_path
    if name == "corrupted":
        return experiment(source=name, data={"params": {"base": "moons", "base_params": {"n_samples": 100}}}), None
    return experiment(source=name), None


@pytest.mark.parametrize("family, name", REGISTERED)
def test_every_registered_name_is_translated_or_refused_on_purpose(family, name):
    translated, refused = name in TRANSLATIONS[family], name in REFUSED.get(family, {})
    assert translated != refused, (
        f"{family} {name!r} is registered but the PyTorch exporter has no entry for it in "
        f"core.export.pytorch.TRANSLATIONS[{family!r}] (nor a reason to refuse it in REFUSED)" if not translated
        else f"{family} {name!r} is both translated and refused")


@pytest.mark.parametrize("family, names", FAMILIES, ids=[family for family, _ in FAMILIES])
def test_the_exporter_s_tables_name_only_registered_names(family, names):
    assert set(TRANSLATIONS[family]) | set(REFUSED.get(family, {})) <= set(names)


@pytest.mark.parametrize("family, name", REGISTERED)
def test_every_registered_name_exports_a_script_that_compiles_or_is_refused_by_name(tmp_path, monkeypatch, family,
                                                                                    name):
    spec, base_dir = spec_using(family, name, tmp_path)
    with served_book_sets(monkeypatch):      # the book's sets as small local files, never the network
        session, _ = session_at_start(tmp_path, spec, base_dir=base_dir)
    if name in REFUSED.get(family, {}):
        with pytest.raises(ExportError, match=rf"{family} {name!r}.*; supported {family} names: ") as refusal:
            pytorch_script(session)
        assert "\n" not in str(refusal.value)
        assert REFUSED[family][name] in str(refusal.value)
        return
    text = pytorch_script(session, "run.weights.npz")
    compile(text, "model.py", "exec")
    assert not re.search(r"^\s*(from|import) (core|workbench)\b", text, re.M)


SCRIPT_TABLES = {"activation": "ACTIVATIONS", "initializer": "INITIALIZERS", "loss": "LOSSES",
                 "augmentation": "AUGMENTATIONS"}


@pytest.mark.parametrize("family", list(SCRIPT_TABLES))
def test_the_script_dispatches_on_every_translated_name(tmp_path, family):
    """The script's own tables (its build_model, init_kernel, make_loss and augment look names up in
    them) hold every name of the family, so a layer table edited in the script can use any."""
    session, _ = session_at_start(tmp_path, experiment())
    tree = ast.parse(pytorch_script(session))
    tables = {t.id: node.value for node in tree.body if isinstance(node, ast.Assign)
              for t in node.targets if isinstance(t, ast.Name)}
    keys = [ast.literal_eval(k) for k in tables[SCRIPT_TABLES[family]].keys]
    assert keys == dict(FAMILIES)[family]


@pytest.fixture
def throwaway_optimizer():
    """An optimizer registered for one test (plain SGD under a new name), removed again afterwards."""
    name = "throwaway_sgd"

    class ThrowawaySGD(SGD):
        """SGD under another name: a new registry entry the exporter has never heard of."""

    OPTIMIZER_REGISTRY.register(name)(ThrowawaySGD)
    try:
        yield name
    finally:
        OPTIMIZER_REGISTRY._entries.pop(name)  # the registry has no public removal: it is filled once at import
    assert name not in OPTIMIZER_REGISTRY


def test_a_newly_registered_optimizer_is_refused_by_name(tmp_path, capsys, throwaway_optimizer):
    session, _ = session_at_start(tmp_path, experiment(optimizer=throwaway_optimizer))
    assert session.experiment.optimizer.name == throwaway_optimizer
    with pytest.raises(ExportError) as refusal:
        pytorch_script(session)
    message = str(refusal.value)
    assert f"optimizer {throwaway_optimizer!r}" in message
    assert "supported optimizer names: " + ", ".join(TRANSLATIONS["optimizer"]) in message
    assert throwaway_optimizer not in message.split("supported")[1]
    # the command line: bad input, exit 2, one line naming it, nothing written
    out = tmp_path / "net.py"
    assert run_headless(["export", str(session.path), "--to", "pytorch", str(out), "--with-weights"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"optimizer {throwaway_optimizer!r}" in err
    assert not out.exists() and not (tmp_path / "net.weights.npz").exists()


@pytest.mark.parametrize("family", [family for family, _ in FAMILIES])
def test_an_unknown_name_is_refused_for_every_family(family):
    with pytest.raises(ExportError, match=rf"cannot export {family} 'no_such_thing' to PyTorch: .*; supported "
                                          rf"{family} names: {re.escape(', '.join(TRANSLATIONS[family]))}$"):
        translation(family, "no_such_thing")


# ----------------------------------------------------------------------------- user strings

HOSTILE_NAMES = [
    'ends the docstring """',
    'x"""\nimport os\nos.system("echo injected")\n"""',
    "C:\\Users\\runs\\x",
    "trailing backslash \\",
    "it's \"quoted\" and '''triple'''",
    "line one\nline two\r\n\ttabbed",
    "@@DATA@@ @@NAME@@ @@SEED@@",
    "\\N{BULLET} \\u2022 {braces} %s ✓",
]


def script_constants(text):
    tree = ast.parse(text)
    return tree, {t.id: node.value for node in tree.body if isinstance(node, ast.Assign)
                  for t in node.targets if isinstance(t, ast.Name)}


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_hostile_experiment_names_compile_and_round_trip(tmp_path, name):
    session, _ = session_at_start(tmp_path, experiment(name=name))
    assert session.experiment.name == name
    text = pytorch_script(session, "run.weights.npz")
    compile(text, "model.py", "exec")
    tree, constants = script_constants(text)
    assert ast.literal_eval(constants["EXPERIMENT"]) == name
    assert name not in ast.get_docstring(tree)
    imported = {alias.name for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom)
                for alias in node.names}
    assert "os" not in imported and "injected" not in ast.dump(tree).replace(repr(name), "")
    assert ast.literal_eval(constants["SEED"]) == 11  # the slots after NAME are filled as usual


@pytest.mark.parametrize("file_name", ['run """ x.gwb', "back\\slash.gwb", "quo'te\".gwb", "new\nline.gwb"])
def test_hostile_session_file_names_compile_and_round_trip(tmp_path, file_name):
    session, _ = session_at_start(tmp_path, experiment(), name=file_name)
    out = tmp_path / "model.py"
    export_pytorch(session, out, with_weights=True)
    text = out.read_text(encoding="utf-8")
    compile(text, str(out), "exec")
    _, constants = script_constants(text)
    assert ast.literal_eval(constants["EXPORTED_FROM"]) == file_name


def test_hostile_data_paths_and_target_columns_are_literals(tmp_path):
    folder = tmp_path / 'da"""ta\\dir'
    folder.mkdir()
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 2))
    target = 'ki"""nd\\'
    lines = [f'a,b,"{target.replace(chr(34), chr(34) * 2)}"'] + [f"{a:.4f},{b:.4f},{int(a > 0)}" for a, b in X]
    (folder / "d.csv").write_text("\n".join(lines) + "\n")
    spec = experiment(source="csv", data={"path": "d.csv", "target": target})
    session, _ = session_at_start(tmp_path, spec, base_dir=folder)
    text = pytorch_script(session)
    compile(text, "model.py", "exec")
    _, constants = script_constants(text)
    assert ast.literal_eval(constants["TARGET"]) == target
    assert ast.literal_eval(constants["DATA_PATH"].args[0]) == str(folder / "d.csv")


def test_every_template_slot_is_filled(tmp_path):
    session, _ = session_at_start(tmp_path, experiment())
    text = pytorch_script(session)
    assert pytorch_template.SLOTS and not re.search(r"@@[A-Z0-9]+@@", text)


# ----------------------------------------------------------------------------- with torch

torch_tests = pytest.mark.torch


def load_script(path):
    spec = importlib.util.spec_from_file_location(f"exported_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def exported(tmp_path, spec, base_dir=None):
    session, trainer = session_at_start(tmp_path, spec, base_dir=base_dir)
    out = tmp_path / "model.py"
    export_pytorch(session, out, with_weights=True)
    return load_script(out), trainer


@torch_tests
@pytest.mark.parametrize("source", ["moons", "spirals", "blobs", "digits", "iris", "npz", "csv"])
def test_exported_data_and_logits_are_the_workbench_s(tmp_path, source):
    import torch
    data_files(tmp_path)
    extra = {"data": {"source": source, "path": f"data.{source}", **({"target": "kind"} if source == "csv" else {})}} \
        if source in ("npz", "csv") else {}
    if source == "digits":
        extra = {"data": {"source": "digits", "params": {"classes": [3, 8, 5]}}}
    module, trainer = exported(tmp_path, experiment(source=source, **extra), base_dir=tmp_path)
    data = module.load_data()
    for part in ("X_train", "y_train", "X_val", "y_val", "X_test", "y_test"):
        assert np.array_equal(data[part], getattr(trainer, part)), part
    model = module.load_weights(module.build_model(), module.WEIGHTS).eval()
    with torch.no_grad():
        logits = model(torch.from_numpy(trainer.X_val)).numpy()
    expected = trainer.network.predict_logits(trainer.X_val)
    np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())


@torch_tests
@pytest.mark.parametrize("optimizer, schedule", [(o, "constant") for o in OPTIMIZERS]
                         + [("nadam", s) for s in SCHEDULES if s != "constant"] + [("nesterov", "one_cycle")])
def test_first_epoch_loss_within_one_percent(tmp_path, optimizer, schedule):
    module, trainer = exported(tmp_path, experiment(source="digits", optimizer=optimizer, schedule=schedule,
                                                    data={"params": {}}))
    model = module.load_weights(module.build_model(), module.WEIGHTS)
    history = module.train(model, module.load_data(), epochs=2, shuffle=False, verbose=False)
    trainer.fit(epochs=2)
    assert history["loss"][0] == pytest.approx(trainer.history["loss"][0], rel=0.01)
    assert history["val_accuracy"][1] == pytest.approx(trainer.history["val_accuracy"][1], abs=0.05)


@torch_tests
def test_exported_script_trains_from_the_command_line(tmp_path):
    spec = experiment(training={"shuffle": True, "epochs": 2}, data={"test_split": 0.2},
                      regularization={"early_stopping": {"enabled": True, "patience": 1}})
    session, _ = session_at_start(tmp_path, spec)
    out = tmp_path / "train_me.py"
    export_pytorch(session, out, with_weights=True)
    proc = subprocess.run([sys.executable, str(out), "--epochs", "2", "--save", str(tmp_path / "m.pt")],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "epoch 1/2" in proc.stdout and "test accuracy" in proc.stdout
    assert (tmp_path / "m.pt").exists()


def test_the_script_uses_no_name_it_does_not_define(tmp_path):
    """The script copies workbench functions (the split, the generators, the augmentations); a
    helper one of them calls must be copied too. ``compile`` cannot see a missing name, so the
    script is checked for undefined names (F821) the way the project's own code is."""
    session, _ = session_at_start(tmp_path, experiment())
    script = tmp_path / "model.py"
    script.write_text(pytorch_script(session))
    ruff = Path(sys.executable).parent / "ruff"
    proc = subprocess.run([str(ruff), "check", "--isolated", "--select", "F821,F822,F823", str(script)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_script_dispatches_on_every_dropout_type(tmp_path):
    from core.engine.layers import DROPOUT_TYPES

    session, _ = session_at_start(tmp_path, experiment())
    tree = ast.parse(pytorch_script(session))
    tables = {t.id: node.value for node in tree.body if isinstance(node, ast.Assign)
              for t in node.targets if isinstance(t, ast.Name)}
    assert [ast.literal_eval(k) for k in tables["DROPOUTS"].keys] == list(DROPOUT_TYPES)


@torch_tests
def test_alpha_dropout_exports_as_torch_s_with_the_same_correction(tmp_path):
    """A SELU layer with alpha dropout becomes nn.AlphaDropout, whose kept and dropped values
    are the workbench's a·x + b and a·α′ + b (the same a, b), and whose logits at inference
    are the workbench's."""
    import torch

    from core.engine.layers import alpha_dropout

    layers = [{"units": 8, "init": "lecun_normal", "activation": "selu", "dropout": 0.2, "dropout_type": "alpha"}] * 2
    module, trainer = exported(tmp_path, experiment(model={"layers": layers}))
    model = module.load_weights(module.build_model(), module.WEIGHTS)
    drops = [m for m in model.modules() if isinstance(m, torch.nn.Dropout | torch.nn.AlphaDropout)]
    assert len(drops) == 2 and all(isinstance(m, torch.nn.AlphaDropout) and m.p == 0.2 for m in drops)
    x = np.full((400, 50), 0.5)
    theirs = np.unique(np.round(drops[0].train()(torch.from_numpy(x)).numpy(), 9))
    multiplier, shift = alpha_dropout(x.shape, 0.2, np.random.default_rng(0), x.dtype)
    ours = np.unique(np.round(x * multiplier + shift, 9))
    np.testing.assert_allclose(theirs, ours, rtol=1e-7)
    model.eval()
    with torch.no_grad():
        logits = model(torch.from_numpy(trainer.X_val)).numpy()
    np.testing.assert_allclose(logits, trainer.network.predict_logits(trainer.X_val), rtol=1e-5, atol=1e-6)


BOOK_AND_IDX = ["fashion_mnist", "mnist", "cifar10", "idx"]


@pytest.mark.parametrize("name", BOOK_AND_IDX)
def test_a_book_set_or_idx_script_reads_its_files_itself_and_uses_no_undefined_name(tmp_path, monkeypatch, name):
    """The script carries its own IDX / CIFAR-binary readers and download with SHA-256 check: no
    workbench import, no pickle, and every name it uses defined (ruff F821)."""
    spec, base_dir = spec_using("dataset", name, tmp_path)
    with served_book_sets(monkeypatch):
        session, _ = session_at_start(tmp_path, spec, base_dir=base_dir)
        text = pytorch_script(session)
    assert not re.search(r"^\s*(from|import) (core|workbench)\b", text, re.M)
    assert not re.search(r"^\s*(import pickle|from pickle)|allow_pickle=True|pickle\.load", text, re.M)
    if name != "idx":
        assert "sha256" in text and "def fetch(name)" in text
    script = tmp_path / "model.py"
    script.write_text(text)
    ruff = Path(sys.executable).parent / "ruff"
    proc = subprocess.run([str(ruff), "check", "--isolated", "--select", "F821,F822,F823", str(script)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@torch_tests
@pytest.mark.parametrize("name, params", [("fashion_mnist", {}), ("mnist", {"n_train": 30, "n_test": 12}),
                                          ("cifar10", {}), ("cifar10", {"grayscale": True, "n_train": 20}),
                                          ("idx", None)])
def test_exported_book_and_idx_data_are_the_workbench_s(tmp_path, monkeypatch, name, params):
    """The script's own readers, subsets and published test split give the workbench's arrays,
    row for row (the book's sets served as small local files, fetched by the script from the
    workbench's cache folder)."""
    spec, base_dir = spec_using("dataset", name, tmp_path)
    if params is not None:
        spec["data"]["params"] = params
    with served_book_sets(monkeypatch):
        module, trainer = exported(tmp_path, spec, base_dir=base_dir)
        data = module.load_data()
    for part in ("X_train", "y_train", "X_val", "y_val", "X_test", "y_test"):
        assert np.array_equal(data[part], getattr(trainer, part)), part
    if name != "idx":
        assert len(data["X_test"]) == len(trainer.dataset.test_rows)      # the published test set
