"""Save and load a trained model as a directory, without pickling code.

A model directory holds two files:

- ``config.json``: the :class:`~varlen.training.models.ModelConfig`, the feature names, the
  class labels (class id -> original label), the fitted input
  :class:`~varlen.data.normalize.Standardizer` (and, for regression, the target one) as their
  JSON state, the technique, free-form metadata (history, report), the varlen version, and
  the SHA-256 of the weights file.
- ``weights.pt``: the model's ``state_dict``, written by ``torch.save`` and read back with
  ``torch.load(..., weights_only=True)``, which refuses anything but tensors and plain values.

Both files are written atomically together by :func:`varlen._atomic.write_files`: each to a
synced temporary file beside it first, then both renamed (weights first, config last), so a
full disk or a crash while writing leaves the previous model whole, and no file is ever
half-written; the recorded hash catches a weights file and a config from different saves (a
crash between the two renames).
Other files in the directory (such as a training checkpoint) are left alone.

:func:`load_model` validates the whole directory before it builds anything: every key of
``config.json`` and its type, derived from the dataclasses that describe it (:class:`ConfigFile`
and, nested in it, :class:`~varlen.training.models.ModelConfig`; a field added to either is
checked with no key list to update), then the agreement between the parts (features and
labels against the model's sizes, the standardizers' feature counts, the weights' names,
shapes and dtypes). A missing key is an error, never a default; the first problem is one
``ValueError`` line naming the file and the key.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import pickle
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from varlen import __version__
from varlen._atomic import write_files
from varlen._checks import placed
from varlen._schema import SchemaError, check_fields
from varlen.data.normalize import Standardizer
from varlen.training.models import ModelConfig, SequenceModel
from varlen.training.techniques import TECHNIQUES

__all__ = [
    "CONFIG_FILE",
    "FORMAT",
    "MODEL_KEYS_ADDED",
    "RECORD_VERSION",
    "WEIGHTS_FILE",
    "ConfigFile",
    "LoadedModel",
    "load_model",
    "load_tensors",
    "record_version",
    "save_model",
]

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.pt"
RECORD_VERSION = 6
"""The one version of everything varlen writes about a model: ``config.json`` (its
``format``) and the run record of ``varlen train`` (``run.json``, the options kept in the
metadata). Each version reads every earlier one:

1. varlen 0.1.0: ``format`` ``"varlen-model/1"``, nothing else versioned.
2. Per-task option defaults (``None``) in the recorded options; still ``"varlen-model/1"``,
   with ``metadata.record_version`` 2 (the only version recorded there).
3. ``ModelConfig.conv_pools`` (exact max pooling in the front-end); the options ``planner``,
   ``pool``, ``select``. ``format`` ``"varlen-model/3"``; from now on the format is the version.
4. The option ``augment`` (training-time augmentation of real steps); the model is unchanged.
5. The option ``pooling`` left to the data (``None``: max over the real steps of long
   series, mean otherwise); records before it hold the pooling they used; the model is
   unchanged.
6. ``ModelConfig.levels`` (``False``: the model reads each series standardized only) and the
   option ``levels`` left to the data; every model before it read the levels too (``True``).

What a version added is read from an earlier record as the value every run had then (an
exact reading, not a default): :data:`MODEL_KEYS_ADDED` here, the options in
:mod:`varlen.cli` (its run record).
"""

FORMAT = f"varlen-model/{RECORD_VERSION}"
"""The ``format`` value of ``config.json`` (see :data:`RECORD_VERSION`)."""

_FORMAT_1 = "varlen-model/1"
_READABLE = frozenset(range(1, RECORD_VERSION + 1))

MODEL_KEYS_ADDED: dict[int, dict[str, Any]] = {3: {"conv_pools": []}, 6: {"levels": True}}
"""Version -> the model keys it added, with the one value every earlier model had (before
version 3 the front-end did not pool)."""

_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True)
class ConfigFile:
    """The keys of ``config.json`` and their types; :func:`load_model` checks each one.

    Args:
        format: :data:`FORMAT`.
        varlen_version: The varlen version that saved the model.
        model: The :class:`~varlen.training.models.ModelConfig` (every field required).
        features: The ``F`` feature names, in input order.
        labels: Class id -> original label (classification); ``null`` for regression.
        normalizer: The input :class:`~varlen.data.normalize.Standardizer`'s state (the
            identity when the model was saved without one: never ``null``).
        target_normalizer: The target standardizer's state (regression; the identity when
            none was given); ``null`` for classification.
        technique: The technique the model was trained with.
        metadata: Free-form JSON metadata (history, report, the training options).
        weights_sha256: The SHA-256 of ``weights.pt``.
    """

    format: str
    varlen_version: str
    model: ModelConfig
    features: tuple[str, ...]
    labels: tuple[str, ...] | None
    normalizer: dict[str, Any]
    target_normalizer: dict[str, Any] | None
    technique: str
    metadata: dict[str, Any]
    weights_sha256: str


class LoadedModel(NamedTuple):
    """A model directory's contents, ready to predict.

    Attributes:
        model: The :class:`~varlen.training.models.SequenceModel` in eval mode, on the CPU.
        normalizer: The input standardizer fitted on the training data (the identity, mean 0
            and std 1, for a model saved without one).
        labels: Class id -> original label (classification), or ``None`` (regression).
        features: The ``F`` feature names, in input order.
        technique: The technique the model was trained with.
        target_normalizer: The target standardizer (regression; the identity if none was
            saved), or ``None`` (classification).
        metadata: Free-form JSON metadata saved with the model.
        varlen_version: The varlen version that saved it.
        record_version: The :data:`RECORD_VERSION` it was saved with (earlier versions are
            read as this one; the options recorded in ``metadata`` are not upgraded here).
    """

    model: SequenceModel
    normalizer: Standardizer
    labels: tuple[str, ...] | None
    features: tuple[str, ...]
    technique: str
    target_normalizer: Standardizer | None
    metadata: dict[str, Any]
    varlen_version: str
    record_version: int = RECORD_VERSION


def _jsonable(value: Any) -> Any:
    """Return ``value`` with NaN/inf floats as ``None`` and tuples as lists (strict JSON)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    return value


def _weights_bytes(model: SequenceModel) -> bytes:
    state = {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()}
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def _check_save_args(
    model: object, features: Sequence[str], labels: Sequence[str] | None
) -> tuple[tuple[str, ...], tuple[str, ...] | None]:
    where = "save_model"
    if not isinstance(model, SequenceModel):
        raise TypeError(f"{where}: model must be a SequenceModel, got {type(model).__name__}.")
    names = tuple(str(name) for name in features)
    if len(names) != model.config.input_size:
        raise ValueError(
            f"{where}: features must name input_size = {model.config.input_size} features, "
            f"got {len(names)}."
        )
    if labels is None:
        if model.config.task == "classification":
            raise ValueError(f"{where}: labels must be given for a classifier, got None.")
        return names, None
    classes = tuple(str(label) for label in labels)
    if model.config.task != "classification" or len(classes) != model.config.output_size:
        raise ValueError(
            f"{where}: labels must be None for a regressor and name output_size = "
            f"{model.config.output_size} classes for a classifier, got {len(classes)} labels "
            f"for a {model.config.task} model."
        )
    return names, classes


def save_model(
    directory: str | os.PathLike[str],
    model: SequenceModel,
    *,
    features: Sequence[str],
    labels: Sequence[str] | None = None,
    normalizer: Standardizer | None = None,
    target_normalizer: Standardizer | None = None,
    technique: str = "bucket",
    metadata: Mapping[str, Any] | None = None,
) -> Path:
    """Save a model with everything needed to predict into ``directory``.

    The directory is created if needed; ``config.json`` and ``weights.pt`` are replaced
    atomically, other files are kept. A missing ``normalizer`` (and, for a regressor, a
    missing ``target_normalizer``) is saved as the identity, so that ``config.json`` never
    holds ``null`` where a standardizer belongs: a standardizer edited away is an error on
    load, not unstandardized input.

    Args:
        directory: The model directory.
        model: The trained model (any device; weights are saved from the CPU).
        features: The ``F`` feature names, in input order.
        labels: Class id -> original label, for a classifier; ``None`` for a regressor.
        normalizer: The input standardizer fitted on the training data (``None``: identity).
        target_normalizer: The standardizer of regression targets (``None``: identity; must
            be ``None`` for a classifier).
        technique: The technique the model was trained with.
        metadata: Free-form JSON-ready metadata (history, report); NaN becomes ``null``.

    Returns:
        The directory as a :class:`~pathlib.Path`.

    Raises:
        TypeError: If ``model`` is not a :class:`SequenceModel`.
        ValueError: If the number of features or labels does not match the model, a
            standardizer's feature count does not, or ``technique`` is unknown.
        OSError: If a file cannot be written (:class:`varlen._atomic.AtomicWriteError`,
            one line naming it; the previous file is kept whole).
    """
    names, classes = _check_save_args(model, features, labels)
    normalizer, target_normalizer = _check_standardizers(
        model.config, normalizer, target_normalizer
    )
    if technique not in TECHNIQUES:
        raise ValueError(
            f"save_model: technique must be one of {sorted(TECHNIQUES)}, got {technique!r}."
        )
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    weights = _weights_bytes(model)
    config = {
        "format": FORMAT,
        "varlen_version": __version__,
        "model": model.config.to_dict(),
        "features": list(names),
        "labels": None if classes is None else list(classes),
        "normalizer": normalizer.state_dict(),
        "target_normalizer": None if target_normalizer is None else target_normalizer.state_dict(),
        "technique": technique,
        "metadata": _jsonable(dict(metadata or {})),
        "weights_sha256": hashlib.sha256(weights).hexdigest(),
    }
    text = json.dumps(config, indent=2, allow_nan=False) + "\n"
    write_files({folder / WEIGHTS_FILE: weights, folder / CONFIG_FILE: text.encode("utf-8")})
    return folder


def _identity(size: int) -> Standardizer:
    """The standardizer that changes nothing: mean 0, std 1 for ``size`` features."""
    return Standardizer(np.zeros(size), np.ones(size), np.zeros(size))


def _check_standardizers(
    config: ModelConfig, normalizer: Standardizer | None, target: Standardizer | None
) -> tuple[Standardizer, Standardizer | None]:
    """Return the standardizers to save (identities for ``None``), checking their sizes."""
    where = "save_model"
    for name, value, size in (
        ("normalizer", normalizer, config.input_size),
        ("target_normalizer", target, config.output_size),
    ):
        if value is None:
            continue
        if not isinstance(value, Standardizer):
            raise TypeError(f"{where}: {name} must be a Standardizer, got {type(value).__name__}.")
        if value.mean.shape[0] != size:
            raise ValueError(
                f"{where}: {name} must have {size} features for this model, got "
                f"{value.mean.shape[0]}."
            )
    if config.task == "classification":
        if target is not None:
            raise ValueError(
                f"{where}: target_normalizer must be None for a classifier, got a Standardizer."
            )
        return normalizer or _identity(config.input_size), None
    return normalizer or _identity(config.input_size), target or _identity(config.output_size)


class _Invalid(ValueError):
    """A model directory problem, reported as one line naming the file (and key)."""


def _fail(path: Path, problem: str) -> _Invalid:
    text = " ".join(f"load_model: {os.fspath(path)!r}: {problem}".split())
    return _Invalid(
        text.rstrip(".") + ". The file is damaged or was edited; save or train the model again."
    )


def _read_config(folder: Path) -> tuple[dict[str, Any], int]:
    where = "load_model"
    if not folder.exists():
        raise FileNotFoundError(f"{where}: model directory {os.fspath(folder)!r} does not exist.")
    if not folder.is_dir():
        raise NotADirectoryError(
            f"{where}: the model must be a directory (from `varlen train --out DIR`), got the "
            f"file {os.fspath(folder)!r}."
        )
    path = folder / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{where}: {os.fspath(folder)!r} must be a model directory holding {CONFIG_FILE}, "
            "got none. Train one with `varlen train DATA --out DIR`."
        )
    try:
        config = json.loads(
            path.read_text(encoding="utf-8"),
            parse_constant=_no_constant,
            object_pairs_hook=_no_duplicates,
        )
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError) as error:
        text = " ".join(str(error).split())
        raise ValueError(f"{where}: {os.fspath(path)!r} must be valid JSON, got {text}.") from None
    version = record_version(config) if isinstance(config, dict) else None
    if not isinstance(config, dict) or version is None:
        got = config.get("format") if isinstance(config, dict) else type(config).__name__
        raise ValueError(f"{where}: {os.fspath(path)!r} must have format {FORMAT!r}, got {got!r}.")
    if version not in _READABLE:
        raise ValueError(
            f"{where}: {os.fspath(path)!r}: written by varlen {config.get('varlen_version')} "
            f"with record version {version}, which this varlen {__version__} cannot read (it "
            f"reads versions 1 to {RECORD_VERSION}). Upgrade varlen to use it."
        )
    config = _upgrade(config, version)
    try:
        check_fields(ConfigFile, config)
    except SchemaError as error:
        raise _fail(path, str(error)) from None
    _check_agreement(path, config)
    return config, version


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``json.loads`` hook: a key given twice in one object is refused (never "the last wins")."""
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise ValueError(f"key {key!r} appears twice in one object")
        seen[key] = value
    return seen


def record_version(config: Mapping[str, Any]) -> int | None:
    """The version of a ``config.json`` (see :data:`RECORD_VERSION`), or ``None`` if unknown.

    ``format`` ``"varlen-model/N"`` is version ``N``, except ``"varlen-model/1"``, which
    versions 1 and 2 both wrote: version 2 recorded itself as ``metadata.record_version``.

    Args:
        config: The parsed ``config.json``.

    Returns:
        The version (perhaps one this varlen cannot read: see :func:`load_model`), or
        ``None`` if ``format`` names no varlen model version.
    """
    name = config.get("format")
    if name == _FORMAT_1:
        metadata = config.get("metadata")
        legacy = metadata.get("record_version", 1) if isinstance(metadata, dict) else 1
        return legacy if isinstance(legacy, int) and not isinstance(legacy, bool) else None
    prefix = "varlen-model/"
    if isinstance(name, str) and name.startswith(prefix) and name[len(prefix) :].isdigit():
        return int(name[len(prefix) :])
    return None


def _upgrade(config: dict[str, Any], version: int) -> dict[str, Any]:
    """A config of an earlier version, read as the current one (keys it lacked had one value)."""
    upgraded = {**config, "format": FORMAT}
    model = config.get("model")
    if isinstance(model, dict):
        added: dict[str, Any] = {}
        for later, keys in MODEL_KEYS_ADDED.items():
            if later > version:
                added.update({key: value for key, value in keys.items() if key not in model})
        upgraded["model"] = {**model, **added}
    return upgraded


def _no_constant(name: str) -> Any:
    """``json.loads`` hook: NaN and Infinity are not JSON (varlen writes them as null)."""
    raise ValueError(f"{name} is not valid JSON")


@dataclass(frozen=True)
class StandardizerState:
    """The JSON state of a :class:`~varlen.data.normalize.Standardizer` in ``config.json``.

    Args:
        version: The state's version.
        mean: ``(F,)`` finite means.
        std: ``(F,)`` finite standard deviations, ``>= 0``.
        count: ``(F,)`` finite counts of real steps, ``>= 0``.
        eps: The finite floor of the std, ``> 0``.
    """

    version: int
    mean: list[float]
    std: list[float]
    count: list[float]
    eps: float


def _check_standardizer_state(key: str, state: Any, size: int) -> str:
    """The first problem of a standardizer's JSON state: types, shapes, finiteness ('' if none)."""
    try:
        check_fields(StandardizerState, state, key=key)
    except SchemaError as error:
        return str(error)
    for name in ("mean", "std", "count"):
        values = state[name]
        if len(values) != size:
            got = len(values)
            return f"key '{key}.{name}' must hold {size} values (one per feature), got {got}"
        bad = [value for value in values if not math.isfinite(value)]
        if bad:
            return f"key '{key}.{name}' must hold finite numbers, got {bad[0]!r}"
        if name != "mean" and min(values, default=0.0) < 0:
            return f"key '{key}.{name}' must hold numbers >= 0, got {min(values)!r}"
    if not (math.isfinite(state["eps"]) and state["eps"] > 0):
        return f"key '{key}.eps' must be a finite number > 0, got {state['eps']!r}"
    return ""


def _standardizer_from(path: Path, key: str, state: Any, size: int) -> Standardizer:
    problem = _check_standardizer_state(key, state, size)
    if problem:
        raise _fail(path, problem)
    try:
        scaler = Standardizer.from_state_dict(state)
    except (TypeError, ValueError) as error:
        raise _fail(path, f"key {key!r} must be a Standardizer state: {error}") from None
    if scaler.mean.shape[0] != size:
        raise _fail(
            path, f"key {key!r} must standardize {size} features, got {scaler.mean.shape[0]}"
        )
    return scaler


def _check_agreement(path: Path, config: dict[str, Any]) -> None:  # noqa: C901 (flat checks)
    """Check that the parts of a type-checked config agree with each other."""
    try:
        model = ModelConfig(**config["model"])
    except (TypeError, ValueError) as error:
        raise _fail(path, f"key 'model': {error}") from None
    features, labels = config["features"], config["labels"]
    if len(features) != model.input_size or len(set(features)) != len(features):
        raise _fail(
            path,
            f"key 'features' must name model.input_size = {model.input_size} distinct "
            f"features, got {len(features)}: {features[:8]}",
        )
    classifier = model.task == "classification"
    if classifier and (labels is None or len(labels) != model.output_size):
        got = "null" if labels is None else f"{len(labels)} labels"
        raise _fail(
            path,
            f"key 'labels' must name model.output_size = {model.output_size} classes, got {got}",
        )
    if classifier and len(set(labels)) != len(labels):
        raise _fail(path, f"key 'labels' must be distinct, got {labels}")
    if not classifier and labels is not None:
        raise _fail(path, "key 'labels' must be null for a regression model, got a list")
    _standardizer_from(path, "normalizer", config["normalizer"], model.input_size)
    target = config["target_normalizer"]
    if classifier and target is not None:
        raise _fail(path, "key 'target_normalizer' must be null for a classifier, got an object")
    if not classifier:
        if target is None:
            raise _fail(path, "key 'target_normalizer' must be a Standardizer state, got null")
        _standardizer_from(path, "target_normalizer", target, model.output_size)
    if config["technique"] not in TECHNIQUES:
        raise _fail(
            path,
            f"key 'technique' must be one of {sorted(TECHNIQUES)}, got {config['technique']!r}",
        )
    digest = config["weights_sha256"]
    if len(digest) != 64 or not set(digest) <= _HEX:
        raise _fail(path, f"key 'weights_sha256' must be 64 lowercase hex digits, got {digest!r}")


def _read_weights(folder: Path, expected_sha256: str) -> dict[str, torch.Tensor]:
    where = "load_model"
    path = folder / WEIGHTS_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{where}: {os.fspath(folder)!r} must hold {WEIGHTS_FILE} next to {CONFIG_FILE}, "
            "got none."
        )
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != expected_sha256:
        raise ValueError(
            f"{where}: {os.fspath(path)!r} must match the SHA-256 recorded in {CONFIG_FILE}, "
            "got a different file (corrupt, or from another save). Save the model again."
        )
    state = load_tensors(path, data, where=where)
    if not isinstance(state, dict) or not all(
        isinstance(name, str) and isinstance(value, torch.Tensor) for name, value in state.items()
    ):
        raise ValueError(
            f"{where}: {os.fspath(path)!r} must hold a state dict of tensors, "
            f"got {type(state).__name__}."
        )
    return state


def load_tensors(path: Path, data: bytes | None = None, *, where: str | None) -> Any:
    """Read a file written by ``torch.save`` with ``weights_only=True``, in one clear error.

    A file that is truncated or damaged, or that holds anything but tensors and plain values
    (a pickle payload), is a ``ValueError`` naming the file; the message never suggests
    loading it unsafely.

    Args:
        path: The file (named in the error; read unless ``data`` is given).
        data: The file's bytes, if already read.
        where: The caller's name, the message's prefix (``None``: named by the enclosing
            :class:`~varlen._checks.error_context`).

    Returns:
        What the file holds.

    Raises:
        ValueError: If the file cannot be read safely.
        OSError: If it cannot be read at all.
    """
    content = path.read_bytes() if data is None else data  # a read error names the file
    try:
        return torch.load(io.BytesIO(content), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:  # what weights_only refuses: code, or unknown classes
        cause = "holds objects other than tensors and plain values, which varlen never loads"
    except Exception:  # anything else from parsing bytes in memory: the content is damaged
        cause = "is truncated or damaged (not a complete file written by torch.save)"
    raise placed(where, ValueError(f"{os.fspath(path)!r} {cause}; delete it or replace it."))


def _check_state(model: SequenceModel, state: dict[str, torch.Tensor]) -> None:
    """Weights must have the model's names, shapes and dtypes (load_state_dict would cast)."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise ValueError(
            f"load_model: {WEIGHTS_FILE} must hold the tensors of the model in {CONFIG_FILE}, "
            f"got missing {missing[:5]} and unexpected {unexpected[:5]}."
        )
    for name, tensor in expected.items():
        got = state[name]
        if got.shape != tensor.shape or got.dtype != tensor.dtype:
            raise ValueError(
                f"load_model: {WEIGHTS_FILE} tensor {name!r} must be {tensor.dtype} of shape "
                f"{tuple(tensor.shape)} for the model in {CONFIG_FILE}, got {got.dtype} of "
                f"shape {tuple(got.shape)}."
            )


def load_model(directory: str | os.PathLike[str]) -> LoadedModel:
    """Load a model directory written by :func:`save_model`, validating all of it first.

    Args:
        directory: The model directory.

    Returns:
        A :class:`LoadedModel`; the model is on the CPU in eval mode.

    Raises:
        FileNotFoundError: If the directory, ``config.json`` or ``weights.pt`` is missing.
        NotADirectoryError: If ``directory`` is a file.
        ValueError: If ``config.json`` is not valid (a key missing, unknown, of the wrong
            type, or disagreeing with another: the message names it), the weights do not
            match its hash, or they do not fit the model it describes.
    """
    folder = Path(directory)
    config, version = _read_config(folder)
    state = _read_weights(folder, str(config["weights_sha256"]))
    model_config = ModelConfig(**config["model"])
    model = SequenceModel(model_config)
    _check_state(model, state)
    model.load_state_dict(state)
    model.eval()
    labels = config["labels"]
    normalizer = Standardizer.from_state_dict(config["normalizer"])
    target = config["target_normalizer"]
    return LoadedModel(
        model=model,
        normalizer=normalizer,
        labels=None if labels is None else tuple(labels),
        features=tuple(config["features"]),
        technique=config["technique"],
        target_normalizer=None if target is None else Standardizer.from_state_dict(target),
        metadata=dict(config["metadata"]),
        varlen_version=config["varlen_version"],
        record_version=version,
    )
