"""The record of a ``varlen train`` run, read back by later versions.

``run.json`` sits beside the run's checkpoint; the options are also kept in the model
directory. Both carry a format version that later versions read.

Both records hold the options as given (:func:`~varlen.cli._train_options.plain`) and carry
the one record version of varlen's files (:data:`varlen.training.artifacts.RECORD_VERSION`):
``run.json`` as ``record_version``, the model directory in its ``format`` (read back as
:attr:`~varlen.training.artifacts.LoadedModel.record_version`). A record written by an earlier
version is read by :func:`upgrade_options`: an option it lacks takes the value it had in the
version that wrote it (:data:`OPTIONS_ADDED`, and :data:`DEFAULTS_CHANGED` for an option
whose default changed since; so a model directory saved before an option existed keeps
predicting and resuming as it did), and a version or an option this varlen does
not know is refused with one line naming the varlen version that wrote it. Records without
``record_version`` are version 1 (varlen 0.1.0).

``run.json`` also holds the run's fingerprint (the options that must not change, the features,
the technique and a digest of the training data) and its planned steps: ``--resume`` continues
the run with the recorded options, refuses a flag that changes them, and refuses to continue
without the record.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from varlen import __version__
from varlen._atomic import write_text
from varlen._schema import SchemaError, check_fields
from varlen.cli._common import CommandError, say
from varlen.cli._train_options import TrainOptions, given_options, plain
from varlen.cli._train_plan import plan_block_steps
from varlen.data.io.store import StoredRagged
from varlen.data.ragged import Ragged
from varlen.training.artifacts import RECORD_VERSION

__all__ = [
    "CHECKPOINT_FILE",
    "DEFAULTS_CHANGED",
    "RECORD_VERSION",
    "RUN_FILE",
    "RunRecord",
    "check_resume",
    "data_digest",
    "fingerprint",
    "read_run_file",
    "recorded_options",
    "resume_command",
    "upgrade_options",
]

CHECKPOINT_FILE = "checkpoint.pt"
RUN_FILE = "run.json"
# RECORD_VERSION is the one version of model directories and run records
# (:data:`varlen.training.artifacts.RECORD_VERSION`): 1 (varlen 0.1.0, unversioned), 2 (task
# defaults as ``None``: ``steps``, ``schedule``, ``conv_layers``, ``series_norm``), 3 (the
# options ``planner``, ``pool``, ``select``), 4 (the option ``augment``; :data:`OPTIONS_ADDED`),
# 5 (``pooling`` may be ``None``: from the data; every earlier record holds the pooling it
# trained with, so it reads as it did), 6 (the option ``levels``: every earlier run read them).

OPTIONS_ADDED: dict[int, dict[str, Any]] = {
    3: {"planner": "timed", "pool": 1, "select": "loss"},
    4: {"augment": False},
    6: {"levels": True},
}
"""Version -> the options it added, with what every run recorded before it did: the timed
plan, no pooling, the epoch of lowest validation loss (3); no augmentation (4); the levels
read beside the standardized view (6)."""

DEFAULTS_CHANGED: dict[int, dict[str, Any]] = {5: {"pooling": "mean"}}
"""Version -> the options whose default it changed, with the default before it: what a record
of an earlier version that lacks the option trained with (the mean readout before 5)."""

_V1_DEFAULTS: dict[str, Any] = {
    "test": None,
    "out": "model",
    "task": "auto",
    "technique": "auto",
    "steps": 2000,
    "epochs": None,
    "time_budget": 300.0,
    "time_limit": None,
    "batch_size": 32,
    "lr": 3e-3,
    "weight_decay": 0.0,
    "schedule": "cosine",
    "warmup": None,
    "hidden_size": 64,
    "num_layers": 1,
    "bidirectional": None,
    "cell": "lstm",
    "pooling": "mean",
    "dropout": 0.1,
    "conv_layers": 3,
    "conv_channels": 64,
    "series_norm": True,
    "val_fraction": 0.2,
    "patience": None,
    "seed": 0,
    "threads": 1,
    "flush_denormal": True,
    "resume": False,
    "id": None,
    "order": None,
    "features": None,
    "target": None,
    "horizon": 0,
}
"""The options of version 1 and their defaults then (``data`` had none)."""

_V1_PER_STEP_IGNORED = ("steps", "schedule", "conv_layers", "series_norm")
"""Options a version-1 per-step run recorded but did not apply (their task default now)."""

NOT_FINGERPRINTED = ("data", "test", "out", "resume", "threads", "time_limit", "time_budget")
"""Options a ``--resume`` may change: where things are, and how this invocation runs."""

KEPT_ON_RESUME = ("test", "threads")
"""Of those, the ones a ``--resume`` takes from the record unless given again."""


def _defaults() -> dict[str, Any]:
    """This version's defaults, as JSON values."""
    values = {}
    for field in fields(TrainOptions):
        if field.name != "data":
            default = field.default
            values[field.name] = os.fspath(default) if isinstance(default, Path) else default
    return values


def upgrade_options(
    record: Any,
    *,
    version: Any,
    written_by: str,
    per_step: bool,
    source: str,
    key: str = "metadata.options",
) -> dict[str, Any]:
    """Read recorded options of any known version as this version's options.

    Args:
        record: The recorded options (a JSON object).
        version: Its ``record_version`` (1 when absent).
        written_by: The varlen version that wrote it, for errors.
        per_step: Whether the run trained a per-step model.
        source: The file, for errors.
        key: The options' key in it, for errors.

    Returns:
        Every field of :class:`~varlen.cli._train_options.TrainOptions` as JSON values,
        checked against its type.

    Raises:
        CommandError: One line naming the file, if the version or an option is unknown, a
            value has the wrong type, or the record is not an object.
    """
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise CommandError(
            f"{source}: key 'record_version' must be an int >= 1, got {version!r}. The file is "
            "damaged or was edited; train the model again."
        )
    if version > RECORD_VERSION:
        raise CommandError(
            f"{source}: written by varlen {written_by} with record version {version}, which this "
            f"varlen {__version__} cannot read (it reads versions up to {RECORD_VERSION}). "
            "Upgrade varlen to use it."
        )
    if not isinstance(record, dict):
        raise CommandError(
            f"{source}: the options must be an object, got {type(record).__name__}. The file "
            "is damaged or was edited; train the model again."
        )
    known = dict(_V1_DEFAULTS if version == 1 else _defaults())
    for changed_in in sorted(DEFAULTS_CHANGED, reverse=True):  # the earliest change wins
        if changed_in > version:
            known.update(DEFAULTS_CHANGED[changed_in])
    later = {k: v for n, added in OPTIONS_ADDED.items() if n > version for k, v in added.items()}
    known = {key: value for key, value in known.items() if key not in later}
    unknown = sorted(set(record) - set(known) - {"data"})
    if unknown:
        raise CommandError(
            f"{source}: key '{key}.{unknown[0]}' must be an option of record version "
            f"{version} (written by varlen {written_by}), got an option this varlen {__version__} "
            "does not know. The file was edited, or written by a later varlen: upgrade varlen."
        )
    values = {**known, **record}
    if version == 1 and per_step:
        values.update(dict.fromkeys(_V1_PER_STEP_IGNORED))
    values.update(later)  # what the runs of the record's version did
    values = {**_defaults(), **values}  # options added after the record's version
    try:
        check_fields(TrainOptions, values, key=key)
    except SchemaError as error:
        raise CommandError(
            f"{source}: {error}. The file is damaged or was edited; train the model again."
        ) from None
    return values


def options_from(values: Mapping[str, Any], **changes: Any) -> TrainOptions:
    """Build :class:`TrainOptions` from upgraded JSON values.

    Args:
        values: Every field, as :func:`upgrade_options` returns them.
        **changes: Fields to set instead.

    Returns:
        The options.
    """
    kwargs = {**values, **changes}
    for name in ("data", "test", "out"):
        if isinstance(kwargs.get(name), str):
            kwargs[name] = Path(kwargs[name])
    if kwargs.get("features") is not None:
        kwargs["features"] = tuple(kwargs["features"])
    return TrainOptions(**kwargs)


def data_digest(x: Ragged | StoredRagged, y: np.ndarray | StoredRagged) -> str:
    """The SHA-256 of the training data: inputs, their offsets and the encoded targets.

    A store is hashed in one streaming pass, block by block (bounded memory); the bytes
    hashed are the same as for the same sequences in memory, so is the digest.

    Args:
        x: ``B`` normalized training sequences, values ``(N, F)``, in memory or in a store.
        y: The encoded targets (per sequence, or the values of per-step ones; a store's
            per-step targets are hashed block by block).

    Returns:
        The hex digest.
    """
    digest = hashlib.sha256()
    if isinstance(x, StoredRagged):
        for _, block in x.blocks(block_steps=plan_block_steps(x.num_features)):
            digest.update(np.ascontiguousarray(block.values).tobytes())
        offsets = np.zeros(len(x) + 1, dtype=np.int64)
        np.cumsum(x.lengths, out=offsets[1:])
    else:
        digest.update(np.ascontiguousarray(x.values).tobytes())
        offsets = x.offsets
    digest.update(np.ascontiguousarray(offsets).tobytes())
    if isinstance(y, StoredRagged):
        for _, block in y.blocks(block_steps=plan_block_steps(1)):
            digest.update(np.ascontiguousarray(block.values).tobytes())
    else:
        digest.update(np.ascontiguousarray(y).tobytes())
    return digest.hexdigest()


def fingerprint(
    options: TrainOptions, *, features: tuple[str, ...], technique: str, digest: str
) -> dict[str, Any]:
    """What must not change between an interrupted run and its ``--resume``.

    Args:
        options: The options as given (or recorded).
        features: The feature names.
        technique: The chosen technique.
        digest: :func:`data_digest` of the training data.

    Returns:
        A JSON-ready dict.
    """
    kept = plain(options)
    for name in NOT_FINGERPRINTED:
        kept.pop(name)
    kept["features"] = list(features)
    kept["technique"] = technique
    kept["train_data_sha256"] = digest
    return kept


class RunRecord(NamedTuple):
    """``run.json``, read and upgraded."""

    fingerprint: dict[str, Any]
    options: dict[str, Any]
    planned_steps: int
    version: int


def read_run_file(out: Path) -> RunRecord:
    """Read ``out/run.json``.

    Args:
        out: The run's folder.

    Returns:
        The :class:`RunRecord`, its options upgraded.

    Raises:
        CommandError: If the file is missing, unreadable, or of an unknown version.
    """
    run_file = out / RUN_FILE
    where = os.fspath(run_file)
    if not run_file.is_file():
        raise CommandError(
            f"--resume needs {where!r}, written when the run started, got none. Rerun without "
            "--resume to start over."
        )
    try:
        saved = json.loads(run_file.read_text(encoding="utf-8"))
    except (ValueError, OSError):
        saved = None
    if isinstance(saved, dict) and "options" not in saved and "train_data_sha256" in saved:
        raise CommandError(
            f"--resume must find the run's options in {where!r}, got the record of a per-step "
            "run written by varlen 0.1.0, which cannot be continued exactly. Rerun without "
            "--resume to start over."
        )
    try:
        if not isinstance(saved, dict):
            raise TypeError
        version = saved.get("record_version", 1)
        planned = saved["planned_steps"]
        record = saved["fingerprint"]
        if not isinstance(record, dict) or not isinstance(planned, int):
            raise TypeError
    except (KeyError, TypeError):
        raise CommandError(
            f"--resume must find the run's options in {where!r}, got an unreadable file. "
            "Rerun without --resume to start over."
        ) from None
    options = upgrade_options(
        saved["options"],
        version=version,
        written_by=str(saved.get("varlen_version", "0.1.0")),
        per_step=bool(saved.get("per_step", False)),
        source=where,
        key="options",
    )
    return RunRecord(record, options, planned, version)


def recorded_options(options: TrainOptions, args: argparse.Namespace) -> TrainOptions:
    """For ``--resume``: the options recorded in ``out/run.json``, with this run's locations.

    A flag given again with the recorded value is fine; one with another value is refused
    (except those of :data:`NOT_FINGERPRINTED`). ``--test`` and ``--threads`` not given again
    are the recorded ones.

    Args:
        options: The options built from the flags.
        args: The parsed arguments (to tell given flags from defaults).

    Returns:
        The recorded options.

    Raises:
        CommandError: If ``run.json`` is missing or unreadable while a checkpoint exists, or a
            given flag conflicts with the recorded run.
    """
    out = options.out
    if not (out / RUN_FILE).is_file() and not (out / CHECKPOINT_FILE).is_file():
        return options  # nothing to resume: a fresh run (said by check_resume)
    record = read_run_file(out)
    mine = plain(options)
    given = given_options(args)
    for name in sorted(given - set(NOT_FINGERPRINTED)):
        if record.options[name] != mine[name]:
            flag = "--" + name.replace("_", "-")
            raise CommandError(
                f"--resume continues the run recorded in {os.fspath(out / RUN_FILE)!r}: {flag} "
                f"must be {record.options[name]!r} as recorded (or left out), got {mine[name]!r}. "
                "Rerun without --resume to start over with new options."
            )
    here = {
        name: getattr(options, name)
        for name in NOT_FINGERPRINTED
        if name not in KEPT_ON_RESUME or name in given
    }
    return options_from(record.options, **here)


def check_resume(
    options: TrainOptions,
    record: dict[str, Any],
    args: Any,
    *,
    planned_steps: int,
    per_step: bool,
    rank: int,
) -> bool:
    """Return whether to resume; write ``run.json``, or check it against the run (rank 0 writes).

    Args:
        options: The options (recorded ones when resuming).
        record: The run's :func:`fingerprint`.
        args: The parsed arguments (for messages).
        planned_steps: The planned optimizer steps.
        per_step: Whether the model is per step.
        rank: This process's rank.

    Returns:
        Whether the run continues from its checkpoint.

    Raises:
        CommandError: If ``run.json`` is missing beside a checkpoint, or the run's options or
            data differ from the interrupted run's.
    """
    checkpoint = options.out / CHECKPOINT_FILE
    if options.resume and checkpoint.is_file():
        saved = read_run_file(options.out).fingerprint
        keys = set(saved) | {"features", "technique", "train_data_sha256"}
        changed = sorted(key for key in keys if saved.get(key) != record.get(key))
        if changed:
            key = changed[0]
            raise CommandError(
                f"--resume must use the options and data of the interrupted run, got "
                f"{key} = {record.get(key)!r} instead of {saved.get(key)!r}. "
                "Rerun without --resume to start over."
            )
        say(args, f"resuming from {os.fspath(checkpoint)}")
        return True
    if options.resume:
        say(args, f"no checkpoint in {os.fspath(options.out)}: starting from scratch")
    elif checkpoint.is_file():
        say(args, f"starting over (pass --resume to continue from {os.fspath(checkpoint)})")
    if rank == 0:
        options.out.mkdir(parents=True, exist_ok=True)
        content = {
            "record_version": RECORD_VERSION,
            "varlen_version": __version__,
            "per_step": per_step,
            "fingerprint": record,
            "options": plain(options),
            "planned_steps": planned_steps,
        }
        write_text(options.out / RUN_FILE, json.dumps(content, indent=2) + "\n")
    return False


def resume_command(options: TrainOptions) -> str:
    """The command that resumes this run: data, out, and the test file and threads.

    Args:
        options: The run's options.

    Returns:
        A shell command line.
    """
    parts = ["varlen", "train", os.fspath(options.data), "--out", os.fspath(options.out)]
    if options.test is not None:
        parts += ["--test", os.fspath(options.test)]
    parts += ["--threads", str(options.threads), "--resume"]
    return " ".join(shlex.quote(part) for part in parts)
