"""Truncated and tampered model directories and checkpoints: exit 2, one line naming the file.

Nothing here is ever unpickled or silently defaulted: a damaged file is refused before any
prediction is made, and a checkpoint that cannot be trusted stops `--resume`.
"""

from __future__ import annotations

import io
import json
import re

import pytest
import torch

from tests.faults.conftest import TINY, one_line
from varlen.cli import main


def _predict(model, data):
    return main(["predict", str(model), str(data / "new.ts")])


@pytest.mark.parametrize("fraction", [0.0, 0.3, 0.9, 0.999])
@pytest.mark.parametrize("name", ["config.json", "weights.pt"])
def test_truncated_model_file(fault_data, model_copy, capsys, name, fraction):
    """A model file cut short anywhere: predict refuses it in one line naming it."""
    path = model_copy / name
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    assert _predict(model_copy, fault_data) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    one_line(captured.err, "predict", name)


def _edit(model, change):
    path = model / "config.json"
    config = json.loads(path.read_text())
    change(config)
    path.write_text(json.dumps(config))


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (lambda c: c["model"].pop("pooling"), "'model.pooling'"),
        (lambda c: c.update(normalizer=None), "'normalizer'"),
        (lambda c: c.update(labels=c["labels"][:1]), "'labels'"),
        (lambda c: c["model"].update(output_size=3), "'labels'"),
        (lambda c: c["model"].update(hidden_size=5), "'rnn.weight_ih_l0'"),
        (lambda c: c["metadata"]["options"].update(colour=1), "'metadata.options.colour'"),
        (lambda c: c["metadata"]["options"].update(id=3), "'metadata.options.id'"),
        (lambda c: c["normalizer"].update(mean=[True, False]), "'normalizer.mean[0]'"),
        (lambda c: c["normalizer"].update(std=["1", "1"]), "'normalizer.std[0]'"),
        (lambda c: c["normalizer"].update(count="2"), "'normalizer.count'"),
        (lambda c: c["normalizer"].update(mean=[0.0]), "'normalizer.mean' must hold 2 values"),
        (lambda c: c["normalizer"].update(std=[1.0, -1.0]), "'normalizer.std' must hold numbers"),
        (lambda c: c["normalizer"].update(eps=True), "'normalizer.eps'"),
    ],
    ids=[
        "nested-key",
        "normalizer-null",
        "labels",
        "output-size",
        "shape",
        "option",
        "type",
        "mean-bool",
        "std-str",
        "count-str",
        "mean-shape",
        "std-negative",
        "eps-bool",
    ],
)
def test_tampered_config(fault_data, model_copy, capsys, change, fragment):
    """Edits that once changed predictions silently are one line naming the key."""
    _edit(model_copy, change)
    assert _predict(model_copy, fault_data) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    one_line(captured.err, "predict", "config.json", fragment)


@pytest.mark.parametrize(
    ("edit", "fragment"),
    [
        (
            lambda text: text.replace('"technique": ', '"technique": "bucket", "technique": ', 1),
            "'technique' appears twice",
        ),
        (
            lambda text: re.sub(r'("mean": \[\s*)[-+\d.eE]+', r"\g<1>1e400", text, count=1),
            "'normalizer.mean' must hold finite numbers",
        ),
    ],
    ids=["duplicate-key", "infinite"],
)
def test_config_text_edits(fault_data, model_copy, capsys, edit, fragment):
    """A key given twice (the last would win) and a number beyond float64: one line, exit 2."""
    path = model_copy / "config.json"
    text = path.read_text()
    path.write_text(edit(text))
    assert path.read_text() != text
    assert _predict(model_copy, fault_data) == 2
    one_line(capsys.readouterr().err, "predict", "config.json", fragment)


def test_model_path_that_is_a_file(fault_data, tmp_path, capsys):
    """A file where the model directory belongs is named as a file."""
    path = tmp_path / "model"
    path.write_text("not a directory")
    assert _predict(path, fault_data) == 2
    one_line(capsys.readouterr().err, "predict", "must be a directory", "got the file")


class Payload:
    """Code that would run if unpickled."""

    def __reduce__(self):
        return (print, ("PAYLOAD RAN",))


def _interrupted_run(fault_data, tmp_path):
    """A run directory with run.json and a checkpoint, as an interrupted run leaves it."""
    out = tmp_path / "run"
    assert main(["train", str(fault_data / "train.ts"), "--out", str(out), *TINY]) == 0
    for name in ("config.json", "weights.pt"):
        (out / name).unlink()
    return out


def _torch_bytes(payload):
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "damage",
    ["truncated-half", "truncated-tail", "empty", "pickle-payload", "not-a-dict", "wrong-keys"],
)
def test_damaged_checkpoint_with_resume(fault_data, tmp_path, capsys, damage):
    """--resume on a damaged checkpoint: exit 2, one line naming it, never weights_only=False."""
    out = _interrupted_run(fault_data, tmp_path)
    path = out / "checkpoint.pt"
    data = path.read_bytes()
    content = {
        "truncated-half": data[: len(data) // 2],
        "truncated-tail": data[:-10],
        "empty": b"",
        "pickle-payload": _torch_bytes({"epoch": Payload()}),
        "not-a-dict": _torch_bytes([torch.zeros(2)]),
        "wrong-keys": _torch_bytes({"epoch": 0}),
    }[damage]
    path.write_bytes(content)
    capsys.readouterr()
    argv = ["train", str(fault_data / "train.ts"), "--out", str(out), *TINY, "--resume"]
    assert main(argv) == 2
    captured = capsys.readouterr()
    line = one_line(captured.err, "train", repr(str(path)))
    assert "weights_only" not in line
    assert "PAYLOAD RAN" not in captured.out + captured.err
    assert path.read_bytes() == content  # left for the user to inspect, not overwritten
