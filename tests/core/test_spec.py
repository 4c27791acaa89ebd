import copy
import json
import time
from pathlib import Path

import pytest

from core.data import DATASETS, IMPORTERS
from core.presets import PRESETS
from core.spec import Experiment, SpecError, load_experiment, parse_experiment
from core.zoo import EXAMPLES as ZOO_EXAMPLES
from tests.core.data.support import LabelledPointsImporter, PointsImporter, registered_importer

EXAMPLES = Path(__file__).resolve().parents[2] / "resources" / "examples"


def base() -> dict:
    return PRESETS["default"][1]()


@pytest.mark.parametrize("key", list(PRESETS))
def test_canonical_round_trip_is_identical_json(key):
    canonical = PRESETS[key][1]()
    experiment = parse_experiment(canonical)
    assert experiment.to_dict() == canonical
    assert json.loads(experiment.to_json()) == canonical
    assert parse_experiment(experiment.to_dict()) == experiment


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.json")), ids=lambda p: p.name)
def test_bundled_examples_are_canonical_and_match_the_presets(path):
    """Every example comes from code: a preset, or a transfer-learning example of core.zoo."""
    data = json.loads(path.read_text())
    assert load_experiment(path).to_dict() == data
    assert data == (PRESETS[path.stem][1]() if path.stem in PRESETS else ZOO_EXAMPLES[path.stem])


def test_minimal_spec_gets_documented_defaults():
    e = parse_experiment({"model": {"layers": [{"units": 10}]}})
    assert e.data.source == "digits" and e.data.validation_split == 0.2
    assert e.optimizer.name == "nadam" and e.learning_rate == 0.001
    assert e.training.epochs == 30 and e.training.batch_size == 32
    assert e.model.layers[0].init == "he_normal"
    assert e.model.layers[0].activation_params == {"alpha": 1.0}
    # The canonical form of a minimal spec parses to the same experiment.
    assert parse_experiment(e.to_dict()) == e


def test_design_md_example_parses():
    spec = {
        "format": "gradient-workbench.experiment", "version": 1,
        "name": "deep ELU + BN on digits", "seed": 42,
        "data": {"source": "digits", "validation_split": 0.2, "test_split": 0.0,
                 "standardize": True, "augmentation": {"type": "none"}},
        "model": {"input_dropout": 0.0,
                  "layers": [{"units": 100, "init": "he_normal", "activation": "elu", "alpha": 1.0,
                              "batch_norm": "before_activation", "dropout": 0.0, "use_bias": True}],
                  "output": {"init": "glorot_uniform"}},
        "optimizer": {"name": "nadam", "learning_rate": 0.001},
        "schedule": {"name": "constant"},
        "regularization": {"l1": 0.0, "l2": 0.0, "max_norm": None, "gradient_clip": {"mode": "none"},
                           "early_stopping": {"enabled": False, "patience": 10, "monitor": "val_loss",
                                              "restore_best_weights": True}},
        "training": {"epochs": 30, "batch_size": 32, "shuffle": True},
    }
    e = parse_experiment(spec)
    assert e.model.layers[0].batch_norm == "before_activation"
    assert e.regularization.early_stopping.patience == 10


def _set(d: dict, path: str, value):
    keys = path.replace("[", ".").replace("]", "").split(".")
    for k in keys[:-1]:
        d = d[int(k)] if k.isdigit() else d[k]
    last = keys[-1]
    if last.isdigit():
        d[int(last)] = value
    else:
        d[last] = value


BAD = [
    ("model.layers[3].units", -5, "model.layers[3].units: must be a positive integer, got -5"),
    ("model.layers[0].units", 1_000_000_000, "model.layers[0].units: must be an integer <= 65536"),
    ("model.layers[0].units", 10.5, "model.layers[0].units: must be an integer, got 10.5"),
    ("model.layers[0].units", True, "model.layers[0].units: must be an integer, got True"),
    ("model.layers[1].activation", "sigmoidal", "model.layers[1].activation: must be one of logistic"),
    ("model.layers[1].activation", "os.system", "model.layers[1].activation: must be one of"),
    ("model.layers[0].alpha", -1, "model.layers[0].alpha: must be a positive number, got -1"),
    ("model.layers[0].init", "xavier", "model.layers[0].init.name: must be one of zeros"),
    ("model.layers[0].init", {"name": "random_normal", "stddev": -1},
     "model.layers[0].init.stddev: must be a positive number, got -1"),
    ("model.layers[0].init", {"name": "random_normal", "sigma": 1},
     "model.layers[0].init.sigma: unknown parameter"),
    ("model.layers[0].batch_norm", True, "model.layers[0].batch_norm: must be \"before_activation\""),
    ("model.layers[0].dropout", 1.0, "model.layers[0].dropout: must be a number in [0, 1), got 1.0"),
    ("model.layers[0].colour", "red", "model.layers[0].colour: unknown field"),
    ("model.input_dropout", -0.1, "model.input_dropout: must be a number in [0, 1)"),
    ("model.output.loss", "hinge", "model.output.loss: must be one of auto"),
    ("optimizer.name", "lion", "optimizer.name: must be one of sgd"),
    ("optimizer.learning_rate", 0, "optimizer.learning_rate: must be a positive number, got 0"),
    ("optimizer.learning_rate", "0.1", "optimizer.learning_rate: must be a positive number"),
    ("optimizer.beta_1", 1.0, "optimizer.beta_1:"),
    ("optimizer.lr", 0.1, "optimizer.lr: unknown parameter"),
    ("schedule.name", "cosine", "schedule.name: must be one of constant"),
    ("schedule.max_learning_rate", -1, "schedule.max_learning_rate:"),
    ("data.source", "imagenet", "data.source: must be one of spirals"),
    ("data.validation_split", 1.5, "data.validation_split: must be a number in [0, 1)"),
    ("data.test_split", 0.8, "data.test_split: validation_split + test_split must leave"),
    ("data.augmentation", {"type": "rotate"}, "data.augmentation.type: must be one of none, shift, noise"),
    ("data.augmentation", {"type": "shift", "max_shift": 0}, "data.augmentation.max_shift: must be a positive"),
    ("data.augmentation", {"type": "noise", "max_shift": 1}, "data.augmentation.max_shift: unknown field"),
    ("data.params", {"n_samples": 5}, "data.params.n_samples: unknown parameter"),
    ("data.path", "x.csv", "data.path: is only used with source 'npz' or 'csv'"),
    ("regularization.l2", -1e-3, "regularization.l2: must be a non-negative number"),
    ("regularization.max_norm", 0, "regularization.max_norm: must be a positive number"),
    ("regularization.gradient_clip", {"mode": "sometimes"}, "regularization.gradient_clip.mode: must be one of"),
    ("regularization.gradient_clip", {"mode": "norm", "threshold": -1},
     "regularization.gradient_clip.threshold: must be a positive number"),
    ("regularization.early_stopping.monitor", "val_f1", "regularization.early_stopping.monitor: must be one of"),
    ("regularization.early_stopping.patience", 0, "regularization.early_stopping.patience: must be a positive"),
    ("training.epochs", 0, "training.epochs: must be a positive integer, got 0"),
    ("training.batch_size", 2.5, "training.batch_size: must be an integer, got 2.5"),
    ("training.on_nan", "ignore", "training.on_nan: must be one of 'stop', 'rollback'"),
    ("training.dtype", "float16", "training.dtype: must be one of 'float32', 'float64'"),
    ("seed", -1, "seed: must be an integer >= 0"),
    ("version", 2, "version: this file was written by a newer Gradient Workbench"),
    ("format", "keras", "format: must be 'gradient-workbench.experiment'"),
    ("surprise", 1, "surprise: unknown field"),
]


@pytest.mark.parametrize(("path", "value", "message"), BAD, ids=[f"{p}={v!r}"[:60] for p, v, _ in BAD])
def test_bad_values_are_refused_naming_the_field(path, value, message):
    spec = copy.deepcopy(base())
    if path == "model.layers[3].units":
        spec["model"]["layers"].append(dict(spec["model"]["layers"][0]))
    _set(spec, path, value)
    with pytest.raises(SpecError) as info:
        parse_experiment(spec)
    assert str(info.value).startswith(message), str(info.value)
    assert "\n" not in str(info.value)


def test_schedule_checked_against_the_optimizer_rate():
    spec = base()
    spec["optimizer"]["learning_rate"] = 0.05
    spec["schedule"] = {"name": "one_cycle", "max_learning_rate": 0.01}
    with pytest.raises(SpecError, match=r"^schedule\.max_learning_rate: "):
        parse_experiment(spec)


def test_absurd_sizes_are_refused_before_any_allocation():
    spec = base()
    spec["model"]["layers"] = [{"units": 60_000} for _ in range(100)]
    start = time.perf_counter()
    with pytest.raises(SpecError, match=r"^model\.layers: would need .* weights"):
        parse_experiment(spec)
    assert time.perf_counter() - start < 1.0
    spec["model"]["layers"] = [{"units": 5}] * 1001
    with pytest.raises(SpecError, match=r"^model\.layers: must hold at most 1000 layers"):
        parse_experiment(spec)


def test_no_hidden_layers_is_refused():
    spec = base()
    spec["model"]["layers"] = []
    with pytest.raises(SpecError, match=r"^model\.layers: must hold at least one hidden layer"):
        parse_experiment(spec)


def test_not_an_object():
    with pytest.raises(SpecError, match="must be a JSON object, got list"):
        parse_experiment([1, 2])


def test_load_experiment_file_errors(tmp_path):
    with pytest.raises(SpecError, match="no such experiment file"):
        load_experiment(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{ not json")
    with pytest.raises(SpecError, match=r"not valid JSON \(line 1"):
        load_experiment(bad)


@pytest.mark.parametrize(("text", "path", "values"), [
    ('{"seed": 42, "model": {"layers": [{"units": 4}]}, "seed": 7}', "seed", "(42, then 7)"),
    ('{"model": {"layers": [{"units": 4}, {"units": 4, "activation": "elu", "activation": "relu"}]}}',
     "model.layers[1].activation", "('elu', then 'relu')"),
    ('{"model": {"layers": [{"units": 4}]}, "training": {"epochs": 1}, "training": {"epochs": 9}}',
     "training", "({'epochs': 1}, then {'epochs': 9})"),
])
def test_a_key_given_twice_is_refused_naming_it(tmp_path, text, path, values):
    """JSON keeps the last of two equal keys without a word: an edit that added a field already
    set further up would be ignored."""
    spec = tmp_path / "twice.json"
    spec.write_text(text)
    with pytest.raises(SpecError) as refused:
        load_experiment(spec)
    assert refused.value.path == path
    assert str(refused.value) == (f"{path}: given twice in {spec} {values}; each field may appear once in an "
                                  "object: delete the one you do not mean")


def test_sessions_the_app_wrote_hold_no_key_twice_and_still_load(tmp_path):
    """Sessions are read as before (not through load_experiment); those the app writes, and the
    ones shipped in resources/zoo by earlier versions, have each key once."""
    import zipfile

    from core.sessions.format import load_session
    from core.sessions.trainer_io import save_trainer
    from core.training import Trainer

    def strict(pairs):
        keys = [k for k, _ in pairs]
        assert len(keys) == len(set(keys)), keys
        return dict(pairs)

    fresh = tmp_path / "fresh.gwb"
    save_trainer(fresh, Trainer(parse_experiment({"data": {"source": "moons", "params": {"n_samples": 40}},
                                                  "model": {"layers": [{"units": 3}]}})), {})
    sessions = [fresh, *sorted((EXAMPLES.parent / "zoo").glob("*.gwb"))]
    assert len(sessions) > 1
    for path in sessions:
        with zipfile.ZipFile(path) as zf:
            members = [n for n in zf.namelist() if n.endswith(".json")]
            assert "experiment.json" in members
            for name in members:
                json.loads(zf.read(name), object_pairs_hook=strict)
        assert load_session(path).experiment is not None


def test_csv_source_needs_path_and_target():
    spec = base()
    spec["data"] = {"source": "csv", "path": "data.csv"}
    with pytest.raises(SpecError, match=r"^data\.target: must name the target column"):
        parse_experiment(spec)
    spec["data"]["target"] = "label"
    e = parse_experiment(spec)
    assert e.data.to_dict()["path"] == "data.csv" and e.data.to_dict()["target"] == "label"


def test_data_sources_allowed_by_the_parser_are_the_registries():
    """data.source is a registered source or a file importer, whatever the registries hold."""
    spec = base()
    spec["data"] = {"source": "imagenet"}
    with pytest.raises(SpecError) as info:
        parse_experiment(spec)
    assert str(info.value).endswith(f"must be one of {', '.join(DATASETS.names() + IMPORTERS.names())}, "
                                    f"got 'imagenet'")
    for name in IMPORTERS:
        importer = IMPORTERS.get(name)
        spec["data"] = {"source": name}
        what = "folder" if importer.reads_folder else "file"
        with pytest.raises(SpecError, match=rf"^data\.path: must be a {what} path for source '{name}'"):
            parse_experiment(spec)
        path = "images" if importer.reads_folder else f"data{importer.extensions[0]}"
        spec["data"] = {"source": name, "path": path}
        if importer.needs_target:
            with pytest.raises(SpecError, match=r"^data\.target: must name the target column"):
                parse_experiment(spec)
            spec["data"]["target"] = "label"
        else:
            spec["data"]["target"] = "label"
            with pytest.raises(SpecError, match=r"^data\.target: is only used with source 'csv', not"):
                parse_experiment(spec)
            del spec["data"]["target"]
        if importer.needs_labels_file:
            with pytest.raises(SpecError, match=rf"^data\.labels_path: must be the path of the labels file for "
                                                rf"source '{name}', got None"):
                parse_experiment(spec)
            spec["data"]["labels_path"] = "labels.gz"
        else:
            spec["data"]["labels_path"] = "labels.gz"
            with pytest.raises(SpecError, match=r"^data\.labels_path: is only used with source 'idx', not"):
                parse_experiment(spec)
            del spec["data"]["labels_path"]
        data = parse_experiment(spec).data
        assert data.source == name and data.path == path
        assert ("target" in data.to_dict()) == importer.needs_target
        assert ("labels_path" in data.to_dict()) == importer.needs_labels_file
        spec["data"]["params"] = {"noise": 0.1}
        if importer.parameters():
            with pytest.raises(SpecError, match=rf"^data\.params\.noise: unknown parameter for dataset '{name}'; "
                                                rf"allowed: {', '.join(importer.parameters())}"):
                parse_experiment(spec)
        else:
            with pytest.raises(SpecError, match=rf"^data\.params: must be empty for source '{name}'"):
                parse_experiment(spec)


def test_idx_labels_path_and_image_folder_params_round_trip():
    spec = base()
    spec["data"] = {"source": "idx", "path": "train-images.gz", "labels_path": "sub/train-labels.gz"}
    e = parse_experiment(spec)
    assert (e.data.path, e.data.labels_path) == ("train-images.gz", "sub/train-labels.gz")
    assert parse_experiment(e.to_dict()) == e
    assert json.dumps(parse_experiment(e.to_dict()).to_dict()) == json.dumps(e.to_dict())
    spec["data"] = {"source": "image_folder", "path": "photos", "params": {"size": 16, "grayscale": False}}
    e = parse_experiment(spec)
    assert dict(e.data.params) == {"size": 16, "grayscale": False} and e.data.labels_path is None
    assert parse_experiment(e.to_dict()) == e and "labels_path" not in e.to_dict()["data"]
    spec["data"]["params"] = {"size": 1}
    with pytest.raises(SpecError, match=r"^data\.params\.size: must be .*2"):
        parse_experiment(spec)
    spec["data"] = {"source": "digits", "labels_path": "l.gz"}
    with pytest.raises(SpecError, match=r"^data\.labels_path: is only used with source 'idx', not 'digits'"):
        parse_experiment(spec)


@pytest.mark.parametrize("needs_target", [False, True])
def test_a_registered_importer_is_accepted_by_the_parser(needs_target):
    importer = LabelledPointsImporter if needs_target else PointsImporter
    spec = base()
    spec["data"] = {"source": "points", "path": "p.pts"}
    with pytest.raises(SpecError, match=r"^data\.source: must be one of .*, npz, csv, idx, image_folder, got 'points'"):
        parse_experiment(spec)
    with registered_importer("points", importer):
        if needs_target:
            with pytest.raises(SpecError, match=r"^data\.target: must name the target column"):
                parse_experiment(spec)
            spec["data"]["target"] = "label"
        e = parse_experiment(spec)
        assert (e.data.source, e.data.path, e.data.target) == ("points", "p.pts", "label" if needs_target else None)
        assert parse_experiment(e.to_dict()) == e   # the canonical form round-trips
        bad = copy.deepcopy(spec)
        bad["data"]["source"] = "moons"
        with pytest.raises(SpecError, match=r"^data\.path: is only used with source 'npz' or 'csv' or 'idx' or "
                                            r"'image_folder' or 'points', "):
            parse_experiment(bad)
        if not needs_target:
            spec["data"]["target"] = "label"
            with pytest.raises(SpecError, match=r"^data\.target: is only used with source 'csv', not 'points'"):
                parse_experiment(spec)
    with pytest.raises(SpecError, match=r"^data\.source: must be one of"):   # removed again
        parse_experiment(e.to_dict())


def test_experiment_is_immutable_and_replaceable():
    e = parse_experiment(base())
    with pytest.raises(AttributeError):
        e.seed = 3  # type: ignore[misc]
    assert isinstance(e.replace(seed=3), Experiment) and e.replace(seed=3).seed == 3


def test_a_layer_takes_alpha_dropout_and_keeps_ordinary_dropout_out_of_its_json():
    spec = base()
    spec["model"]["layers"][0].update(dropout=0.1, dropout_type="alpha")
    e = parse_experiment(spec)
    assert e.model.layers[0].dropout_type == "alpha" and e.model.layers[0].dropout == 0.1
    assert e.to_dict()["model"]["layers"][0]["dropout_type"] == "alpha"
    assert parse_experiment(e.to_dict()) == e
    assert "dropout_type" not in e.to_dict()["model"]["layers"][1]          # ordinary: as before
    spec["model"]["layers"][0]["dropout_type"] = "gaussian"
    with pytest.raises(SpecError, match=r'^model\.layers\[0\]\.dropout_type: must be "standard" .* or "alpha" '
                                        r".*got 'gaussian'"):
        parse_experiment(spec)


def test_blas_threads_is_auto_or_a_count_and_left_out_of_the_json_while_auto():
    base = {"data": {"source": "xor"}, "model": {"layers": [{"units": 4}]}}
    auto = parse_experiment(base)
    assert auto.training.blas_threads == "auto" and "blas_threads" not in auto.to_dict()["training"]
    two = parse_experiment({**base, "training": {"blas_threads": 2}})
    assert two.training.blas_threads == 2 and two.to_dict()["training"]["blas_threads"] == 2
    assert parse_experiment(two.to_dict()) == two
    for bad in (0, 257, "two", 1.5, True, None):
        with pytest.raises(SpecError, match=r'^training\.blas_threads: must be "auto" or an integer from 1 to 256'):
            parse_experiment({**base, "training": {"blas_threads": bad}})
