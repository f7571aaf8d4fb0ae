"""Save and load a trained model as a directory, without pickling code.

A model directory holds two files:

- ``config.json``: the :class:`~varlen.training.models.ModelConfig`, the feature names, the
  class labels (class id -> original label), the fitted input
  :class:`~varlen.data.normalize.Standardizer` (and, for regression, the target one) as their
  JSON state, the technique, free-form metadata (history, report), the varlen version, and
  the SHA-256 of the weights file.
- ``weights.pt``: the model's ``state_dict``, written by ``torch.save`` and read back with
  ``torch.load(..., weights_only=True)``, which refuses anything but tensors and plain values.

Each file is written to a temporary name and moved into place with ``os.replace`` (weights
first, config last), so a crash never leaves a half-written file; the recorded hash catches a
weights file and a config from different saves. Other files in the directory (such as a
training checkpoint) are left alone.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import torch

from varlen import __version__
from varlen.data.normalize import Standardizer
from varlen.training.models import ModelConfig, SequenceModel

__all__ = ["CONFIG_FILE", "FORMAT", "WEIGHTS_FILE", "LoadedModel", "load_model", "save_model"]

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.pt"
FORMAT = "varlen-model/1"
"""The ``format`` value of ``config.json``; :func:`load_model` rejects any other."""

_KEYS = (
    "format",
    "varlen_version",
    "model",
    "features",
    "labels",
    "normalizer",
    "target_normalizer",
    "technique",
    "metadata",
    "weights_sha256",
)


class LoadedModel(NamedTuple):
    """A model directory's contents, ready to predict.

    Attributes:
        model: The :class:`~varlen.training.models.SequenceModel` in eval mode, on the CPU.
        normalizer: The input standardizer fitted on the training data, or ``None``.
        labels: Class id -> original label (classification), or ``None`` (regression).
        features: The ``F`` feature names, in input order.
        technique: The technique the model was trained with.
        target_normalizer: The target standardizer (regression), or ``None``.
        metadata: Free-form JSON metadata saved with the model.
        varlen_version: The varlen version that saved it.
    """

    model: SequenceModel
    normalizer: Standardizer | None
    labels: tuple[str, ...] | None
    features: tuple[str, ...]
    technique: str
    target_normalizer: Standardizer | None
    metadata: dict[str, Any]
    varlen_version: str


def _jsonable(value: Any) -> Any:
    """Return ``value`` with NaN/inf floats as ``None`` and tuples as lists (strict JSON)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    return value


def _write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, then move it into place."""
    descriptor, temporary = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
    )
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


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
    atomically, other files are kept.

    Args:
        directory: The model directory.
        model: The trained model (any device; weights are saved from the CPU).
        features: The ``F`` feature names, in input order.
        labels: Class id -> original label, for a classifier; ``None`` for a regressor.
        normalizer: The input standardizer fitted on the training data.
        target_normalizer: The standardizer of regression targets, if they were scaled.
        technique: The technique the model was trained with.
        metadata: Free-form JSON-ready metadata (history, report); NaN becomes ``null``.

    Returns:
        The directory as a :class:`~pathlib.Path`.

    Raises:
        TypeError: If ``model`` is not a :class:`SequenceModel`.
        ValueError: If the number of features or labels does not match the model.
    """
    names, classes = _check_save_args(model, features, labels)
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    weights = _weights_bytes(model)
    config = {
        "format": FORMAT,
        "varlen_version": __version__,
        "model": model.config.to_dict(),
        "features": list(names),
        "labels": None if classes is None else list(classes),
        "normalizer": None if normalizer is None else normalizer.state_dict(),
        "target_normalizer": None if target_normalizer is None else target_normalizer.state_dict(),
        "technique": technique,
        "metadata": _jsonable(dict(metadata or {})),
        "weights_sha256": hashlib.sha256(weights).hexdigest(),
    }
    text = json.dumps(config, indent=2, allow_nan=False) + "\n"
    _write_atomic(folder / WEIGHTS_FILE, weights)
    _write_atomic(folder / CONFIG_FILE, text.encode("utf-8"))
    return folder


def _read_config(folder: Path) -> dict[str, Any]:
    where = "load_model"
    if not folder.is_dir():
        raise FileNotFoundError(f"{where}: model directory {os.fspath(folder)!r} does not exist.")
    path = folder / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{where}: {os.fspath(folder)!r} must be a model directory holding {CONFIG_FILE}, "
            "got none. Train one with `varlen train DATA --out DIR`."
        )
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{where}: {os.fspath(path)!r} must be valid JSON, got {error}.") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        got = config.get("format") if isinstance(config, dict) else type(config).__name__
        raise ValueError(f"{where}: {os.fspath(path)!r} must have format {FORMAT!r}, got {got!r}.")
    missing = [key for key in _KEYS if key not in config]
    if missing:
        raise ValueError(f"{where}: {os.fspath(path)!r} must have keys {missing}, got none.")
    return config


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
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as error:  # an UnpicklingError for anything but tensors and plain values
        message = " ".join(str(error).split())[:200]
        raise ValueError(
            f"{where}: {os.fspath(path)!r} must hold only tensors (weights_only), got {message}"
        ) from None
    if not isinstance(state, dict) or not all(
        isinstance(value, torch.Tensor) for value in state.values()
    ):
        raise ValueError(
            f"{where}: {os.fspath(path)!r} must hold a state dict of tensors, "
            f"got {type(state).__name__}."
        )
    return state


def _standardizer(state: Any) -> Standardizer | None:
    return None if state is None else Standardizer.from_state_dict(state)


def load_model(directory: str | os.PathLike[str]) -> LoadedModel:
    """Load a model directory written by :func:`save_model`.

    Args:
        directory: The model directory.

    Returns:
        A :class:`LoadedModel`; the model is on the CPU in eval mode.

    Raises:
        FileNotFoundError: If the directory, ``config.json`` or ``weights.pt`` is missing.
        ValueError: If ``config.json`` is not valid, the weights do not match its hash, or
            they do not fit the model it describes.
    """
    folder = Path(directory)
    config = _read_config(folder)
    state = _read_weights(folder, str(config["weights_sha256"]))
    model = SequenceModel(ModelConfig.from_dict(dict(config["model"])))
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        message = " ".join(str(error).split())
        raise ValueError(
            f"load_model: weights must fit the model in {CONFIG_FILE}, got {message}"
        ) from None
    model.eval()
    labels = config["labels"]
    return LoadedModel(
        model=model,
        normalizer=_standardizer(config["normalizer"]),
        labels=None if labels is None else tuple(str(label) for label in labels),
        features=tuple(str(name) for name in config["features"]),
        technique=str(config["technique"]),
        target_normalizer=_standardizer(config["target_normalizer"]),
        metadata=dict(config["metadata"]),
        varlen_version=str(config["varlen_version"]),
    )
