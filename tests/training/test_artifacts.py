"""Model directories: config.json + weights.pt, loaded without unpickling, written atomically."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from varlen import __version__
from varlen._atomic import disk_full, inject
from varlen.data.normalize import Standardizer
from varlen.data.ragged import Ragged
from varlen.training.artifacts import (
    CONFIG_FILE,
    RECORD_VERSION,
    WEIGHTS_FILE,
    ConfigFile,
    load_model,
    save_model,
)
from varlen.training.models import ModelConfig, SequenceClassifier, SequenceRegressor


def classifier(seed=0):
    """A tiny two-layer bidirectional GRU classifier with seeded weights."""
    torch.manual_seed(seed)
    return SequenceClassifier(3, 4, hidden_size=5, num_layers=2, bidirectional=True, cell="gru")


def scaler(F=3):
    """A standardizer fitted on random data with ``F`` features."""
    values = np.random.default_rng(0).normal(size=(10, F))
    return Standardizer.fit(Ragged(values, np.array([0, 4, 10])))


def save_classifier(directory, model=None, **options):
    """Save a classifier with labels, features and a normalizer."""
    options.setdefault("normalizer", scaler())
    return save_model(
        directory,
        model if model is not None else classifier(),
        features=["a", "b", "c"],
        labels=["w", "x", "y", "z"],
        technique="pack",
        **options,
    )


def test_save_load_round_trip_classifier(tmp_path):
    """Everything saved comes back: weights, config, labels, features, normalizer, metadata."""
    model = classifier()
    metadata = {"history": [{"loss": 0.5, "val": float("nan")}], "best": (1, 2)}
    folder = save_classifier(tmp_path / "m", model, metadata=metadata)
    assert folder == tmp_path / "m"
    loaded = load_model(folder)
    assert loaded.model.config == model.config
    assert not loaded.model.training
    for name, tensor in model.state_dict().items():
        torch.testing.assert_close(loaded.model.state_dict()[name], tensor, rtol=0, atol=0)
    assert loaded.labels == ("w", "x", "y", "z")
    assert loaded.features == ("a", "b", "c")
    assert loaded.technique == "pack"
    assert loaded.normalizer is not None
    assert loaded.normalizer.state_dict() == scaler().state_dict()
    assert loaded.target_normalizer is None
    assert loaded.metadata == {"history": [{"loss": 0.5, "val": None}], "best": [1, 2]}
    assert loaded.varlen_version == __version__
    x = torch.randn(2, 4, 3)
    model.eval()
    torch.testing.assert_close(
        loaded.model(x, torch.tensor([4, 2])), model(x, torch.tensor([4, 2]))
    )


def test_save_load_round_trip_regressor(tmp_path):
    """A regressor keeps no labels and its target standardizer."""
    torch.manual_seed(0)
    model = SequenceRegressor(2, 1, hidden_size=3)
    target = Standardizer.fit(Ragged(np.array([[1.0], [5.0]]), np.array([0, 2])))
    save_model(tmp_path, model, features=["u", "v"], target_normalizer=target)
    loaded = load_model(tmp_path)
    assert loaded.labels is None
    np.testing.assert_array_equal(loaded.normalizer.mean, [0.0, 0.0])  # saved as the identity
    np.testing.assert_array_equal(loaded.normalizer.scale, [1.0, 1.0])
    assert loaded.target_normalizer is not None
    np.testing.assert_array_equal(loaded.target_normalizer.mean, [3.0])


def test_saved_files_are_json_and_plain_tensors(tmp_path):
    """config.json is strict JSON; weights.pt loads with weights_only=True on its own."""
    save_classifier(tmp_path, metadata={"x": float("inf")})
    config = json.loads(
        (tmp_path / CONFIG_FILE).read_text(), parse_constant=lambda name: pytest.fail(name)
    )
    assert config["format"] == "varlen-model/6"
    assert config["model"]["cell"] == "gru"
    assert config["metadata"] == {"x": None}
    state = torch.load(tmp_path / WEIGHTS_FILE, weights_only=True)
    assert set(state) == set(classifier().state_dict())


def test_save_replaces_files_and_keeps_others(tmp_path):
    """Saving again replaces config and weights, keeps other files, leaves no temporary files."""
    (tmp_path / "checkpoint.pt").write_bytes(b"keep me")
    save_classifier(tmp_path, classifier(0))
    save_classifier(tmp_path, classifier(1))
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "checkpoint.pt",
        CONFIG_FILE,
        WEIGHTS_FILE,
    ]
    assert (tmp_path / "checkpoint.pt").read_bytes() == b"keep me"
    expected = classifier(1).state_dict()
    for name, tensor in load_model(tmp_path).model.state_dict().items():
        torch.testing.assert_close(tensor, expected[name], rtol=0, atol=0)


@pytest.mark.parametrize("name", [WEIGHTS_FILE, CONFIG_FILE])
def test_disk_full_during_save_keeps_the_previous_model_whole(tmp_path, name):
    """A full disk while writing either file leaves both old files, no temp file, loadable."""
    save_classifier(tmp_path, classifier(0))
    before = {path.name: path.read_bytes() for path in tmp_path.iterdir()}
    with inject(disk_full(name=name, after=10)), pytest.raises(OSError, match="disk full") as e:
        save_classifier(tmp_path, classifier(1))
    assert name in str(e.value)
    assert {path.name: path.read_bytes() for path in tmp_path.iterdir()} == before
    expected = classifier(0).state_dict()
    for key, tensor in load_model(tmp_path).model.state_dict().items():
        torch.testing.assert_close(tensor, expected[key], rtol=0, atol=0)


def test_weights_and_config_from_different_saves_are_caught(tmp_path):
    """A crash between the two renames (new weights, old config): the hash says so."""
    save_classifier(tmp_path / "a", classifier(0))
    save_classifier(tmp_path / "b", classifier(1))
    (tmp_path / "a" / WEIGHTS_FILE).write_bytes((tmp_path / "b" / WEIGHTS_FILE).read_bytes())
    with pytest.raises(ValueError, match=r"must match the SHA-256 recorded in config.json"):
        load_model(tmp_path / "a")


def test_save_rejects_bad_arguments(tmp_path):
    """Not a model, wrong feature count, labels missing or misplaced: clear errors."""
    with pytest.raises(TypeError, match=r"save_model: model must be a SequenceModel, got Linear"):
        save_model(tmp_path, torch.nn.Linear(1, 1), features=["a"])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"features must name input_size = 3 features, got 2"):
        save_model(tmp_path, classifier(), features=["a", "b"], labels=list("wxyz"))
    with pytest.raises(ValueError, match=r"labels must be given for a classifier, got None"):
        save_model(tmp_path, classifier(), features=list("abc"))
    with pytest.raises(ValueError, match=r"name output_size = 4 classes .* got 2 labels"):
        save_model(tmp_path, classifier(), features=list("abc"), labels=["w", "x"])
    regressor = SequenceRegressor(1)
    with pytest.raises(ValueError, match=r"labels must be None for a regressor"):
        save_model(tmp_path, regressor, features=["a"], labels=["w"])


def test_load_missing_directory(tmp_path):
    """A directory that does not exist."""
    with pytest.raises(FileNotFoundError, match=r"model directory '.*nope' does not exist"):
        load_model(tmp_path / "nope")


def test_load_directory_without_config(tmp_path):
    """A directory that is not a model directory says how to make one."""
    with pytest.raises(FileNotFoundError, match=r"must be a model directory holding config.json"):
        load_model(tmp_path)


def test_load_directory_without_weights(tmp_path):
    """config.json without weights.pt."""
    save_classifier(tmp_path)
    (tmp_path / WEIGHTS_FILE).unlink()
    with pytest.raises(FileNotFoundError, match=r"must hold weights.pt next to config.json"):
        load_model(tmp_path)


def edit_config(folder, change):
    """Rewrite config.json through ``change(dict)``."""
    path = folder / CONFIG_FILE
    config = json.loads(path.read_text())
    change(config)
    path.write_text(json.dumps(config))


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda c: c.update(format="other/2"), r"must have format 'varlen-model/6', got 'other/2'"),
        (lambda c: c.pop("labels"), r"key 'labels' must be .*, got no such key"),
        (lambda c: c["model"].update(hidden_size=6), r"tensor 'rnn.weight_ih_l0' must be"),
        (lambda c: c["model"].update(colour=1), r"key 'model.colour' must be absent"),
        (lambda c: c["normalizer"].update(version=9), r"state\['version'\] must be 1, got 9"),
    ],
)
def test_load_corrupt_config(tmp_path, change, match):
    """A config.json that was edited into nonsense is a ValueError saying what is wrong."""
    save_classifier(tmp_path)
    edit_config(tmp_path, change)
    with pytest.raises(ValueError, match=match):
        load_model(tmp_path)


def test_load_config_that_is_not_json(tmp_path):
    """A truncated config.json."""
    save_classifier(tmp_path)
    text = (tmp_path / CONFIG_FILE).read_text()
    (tmp_path / CONFIG_FILE).write_text(text[: len(text) // 2])
    with pytest.raises(ValueError, match=r"config.json' must be valid JSON"):
        load_model(tmp_path)


def test_load_truncated_weights(tmp_path):
    """A weights file cut short no longer matches its hash."""
    save_classifier(tmp_path)
    data = (tmp_path / WEIGHTS_FILE).read_bytes()
    (tmp_path / WEIGHTS_FILE).write_bytes(data[:100])
    with pytest.raises(ValueError, match=r"weights.pt' must match the SHA-256"):
        load_model(tmp_path)


class Payload:
    """An object whose unpickling would run code (it must never be unpickled)."""

    def __reduce__(self):
        return (print, ("unpickled!",))


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        ({"rnn.weight": Payload()}, r"holds objects other than tensors and plain values"),
        ([torch.zeros(1)], r"must hold a state dict of tensors, got list"),
    ],
    ids=["code", "list"],
)
def test_load_refuses_weights_that_are_not_tensors(tmp_path, capsys, payload, match):
    """weights.pt is read with weights_only=True: pickled code is refused, not run."""
    import hashlib
    import io

    save_classifier(tmp_path)
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    (tmp_path / WEIGHTS_FILE).write_bytes(buffer.getvalue())
    digest = hashlib.sha256(buffer.getvalue()).hexdigest()
    edit_config(tmp_path, lambda c: c.update(weights_sha256=digest))
    with pytest.raises(ValueError, match=match) as caught:
        load_model(tmp_path)
    assert "unpickled!" not in capsys.readouterr().out
    assert "weights_only" not in str(caught.value)  # never suggest weights_only=False


# ----------------------------------------------------------------------------- validation


def _config_keys():
    return [field.name for field in dataclasses.fields(ConfigFile)]


def _model_keys():
    return [field.name for field in dataclasses.fields(ModelConfig)]


@pytest.mark.parametrize("key", _model_keys())
def test_every_model_key_is_required_none_defaulted(tmp_path, key):
    """A ModelConfig field removed from config.json is an error naming it.

    The keys come from the dataclass: a field added later is covered with no list to update.
    """
    save_classifier(tmp_path)
    edit_config(tmp_path, lambda c: c["model"].pop(key))
    with pytest.raises(ValueError, match=rf"key 'model\.{key}' must be .*got no such key") as e:
        load_model(tmp_path)
    assert "\n" not in str(e.value)
    assert CONFIG_FILE in str(e.value)


@pytest.mark.parametrize("key", _config_keys())
def test_every_top_level_key_is_required(tmp_path, key):
    """Every key of config.json is required, whatever its value may be."""
    save_classifier(tmp_path)
    edit_config(tmp_path, lambda c: c.pop(key))
    match = "must have format" if key == "format" else rf"key '{key}' must be .*no such key"
    with pytest.raises(ValueError, match=match):
        load_model(tmp_path)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda c: c.update(normalizer=None), r"key 'normalizer' must be an object, got NoneType"),
        (lambda c: c["model"].update(pooling="median"), r"key 'model.pooling' must be one of"),
        (lambda c: c["model"].update(hidden_size="5"), r"key 'model.hidden_size' must be an int"),
        (lambda c: c["model"].update(hidden_size=5.0), r"'model.hidden_size' must be an int.*5\.0"),
        (lambda c: c["model"].update(bidirectional=1), r"key 'model.bidirectional' must be true"),
        (lambda c: c["model"].update(hidden_size=0), r"key 'model': ModelConfig: hidden_size"),
        (lambda c: c.update(labels=["w", "x", "y"]), r"key 'labels' must name .* = 4 .* got 3"),
        (lambda c: c.update(labels=["w", "x", "y", "y"]), r"key 'labels' must be distinct"),
        (lambda c: c.update(labels=None), r"key 'labels' must name .* got null"),
        (lambda c: c.update(labels=[1, 2, 3, 4]), r"key 'labels\[0\]' must be a str"),
        (lambda c: c.update(features=["a", "b"]), r"key 'features' must name .* = 3 distinct"),
        (lambda c: c.update(technique="magic"), r"key 'technique' must be one of"),
        (lambda c: c.update(target_normalizer=c["normalizer"]), r"'target_normalizer' must be"),
        (lambda c: c["normalizer"].update(mean=[0.0]), r"key 'normalizer.mean' must hold 3 values"),
        (lambda c: c.update(weights_sha256="x"), r"key 'weights_sha256' must be 64"),
        (lambda c: c.update(metadata=[]), r"key 'metadata' must be an object"),
        (lambda c: c.update(extra=1), r"key 'extra' must be absent"),
    ],
)
def test_tampered_config_is_one_line_naming_the_key(tmp_path, change, match):
    """Edits that used to change predictions silently (or fail late) are clear errors."""
    save_classifier(tmp_path)
    edit_config(tmp_path, change)
    with pytest.raises(ValueError, match=match) as caught:
        load_model(tmp_path)
    assert "\n" not in str(caught.value)


def test_regressor_needs_its_target_standardizer(tmp_path):
    """A regressor's target standardizer edited to null is an error, not unscaled outputs."""
    save_model(tmp_path, SequenceRegressor(2, 1, hidden_size=3), features=["u", "v"])
    load_model(tmp_path)
    edit_config(tmp_path, lambda c: c.update(target_normalizer=None))
    with pytest.raises(ValueError, match=r"key 'target_normalizer' must be a Standardizer"):
        load_model(tmp_path)


def test_nan_in_config_is_not_json(tmp_path):
    """NaN/Infinity are not JSON; varlen never writes them."""
    save_classifier(tmp_path)
    path = tmp_path / CONFIG_FILE
    path.write_text(path.read_text().replace('"eps": 1e-10', '"eps": NaN'))
    with pytest.raises(ValueError, match=r"must be valid JSON, got NaN is not valid JSON"):
        load_model(tmp_path)


def test_weights_of_another_dtype_are_refused(tmp_path):
    """load_state_dict would cast float64 weights silently: the dtype must match."""
    import hashlib
    import io

    save_classifier(tmp_path)
    state = {k: v.double() for k, v in classifier().state_dict().items()}
    buffer = io.BytesIO()
    torch.save(state, buffer)
    (tmp_path / WEIGHTS_FILE).write_bytes(buffer.getvalue())
    digest = hashlib.sha256(buffer.getvalue()).hexdigest()
    edit_config(tmp_path, lambda c: c.update(weights_sha256=digest))
    with pytest.raises(ValueError, match=r"must be torch.float32 .* got torch.float64"):
        load_model(tmp_path)


def test_model_path_that_is_a_file(tmp_path):
    """A file where the directory belongs says so (it used to say 'does not exist')."""
    (tmp_path / "model").write_text("x")
    with pytest.raises(NotADirectoryError, match=r"must be a directory .* got the file"):
        load_model(tmp_path / "model")


def test_save_rejects_mismatched_standardizers(tmp_path):
    """A standardizer of the wrong size, or a target one for a classifier."""
    with pytest.raises(ValueError, match=r"normalizer must have 3 features .* got 2"):
        save_classifier(tmp_path, normalizer=scaler(2))
    with pytest.raises(ValueError, match=r"target_normalizer must be None for a classifier"):
        save_model(
            tmp_path,
            classifier(),
            features=list("abc"),
            labels=list("wxyz"),
            target_normalizer=scaler(4),
        )
    with pytest.raises(ValueError, match=r"technique must be one of"):
        save_model(
            tmp_path, classifier(), features=list("abc"), labels=list("wxyz"), technique="magic"
        )


def test_a_format_1_directory_still_loads_without_pooling(tmp_path):
    """A model saved as varlen-model/1 (no conv_pools key: no pooling then) still loads."""
    save_classifier(tmp_path)

    def as_format_1(config):
        config["format"] = "varlen-model/1"
        config["model"].pop("conv_pools")

    edit_config(tmp_path, as_format_1)
    assert load_model(tmp_path).model.config.conv_pools == ()
    assert load_model(tmp_path).record_version == 1


def test_a_format_5_directory_reads_the_levels(tmp_path):
    """A model saved as varlen-model/5 (no levels key: every model read them) loads with them."""
    save_classifier(tmp_path)

    def as_format_5(config):
        config["format"] = "varlen-model/5"
        config["model"].pop("levels")

    edit_config(tmp_path, as_format_5)
    loaded = load_model(tmp_path)
    assert loaded.model.config.levels is True
    assert loaded.record_version == 5


def test_one_record_version_for_every_format(tmp_path):
    """Version 2 wrote format 1 with metadata.record_version 2; a later version is refused."""
    save_classifier(tmp_path)
    assert load_model(tmp_path).record_version == RECORD_VERSION == 6

    def as_version_2(config):
        config["format"] = "varlen-model/1"
        config["model"].pop("conv_pools")
        config["metadata"]["record_version"] = 2

    edit_config(tmp_path, as_version_2)
    assert load_model(tmp_path).record_version == 2
    edit_config(tmp_path, lambda c: c.update(format="varlen-model/7"))
    with pytest.raises(ValueError, match="record version 7, which this varlen"):
        load_model(tmp_path)
