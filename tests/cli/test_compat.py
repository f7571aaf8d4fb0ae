"""Model directories written by an earlier varlen still predict, export and resume.

``tests/fixtures/model_dirs_0_1_0`` holds two directories written by varlen 0.1.0 (main before
issue 19, see its README): a per-sequence classifier with its ``run.json`` and checkpoint, and a
per-step labeller, with the predictions that version made. Never regenerate them: they are the
earlier version.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from varlen.cli import main
from varlen.cli._common import CommandError
from varlen.cli._run_record import upgrade_options
from varlen.cli._train_plan import plan_levels, plan_pooling

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "model_dirs_0_1_0"


@pytest.fixture
def old(tmp_path, monkeypatch):
    """A copy of the fixture folder, made the working directory (its records name paths in it)."""
    folder = tmp_path / "old"
    shutil.copytree(FIXTURE, folder)
    monkeypatch.chdir(folder)
    return folder


def _same_predictions(got: Path, expected: Path) -> None:
    out, then = pd.read_csv(got), pd.read_csv(expected)
    assert list(out.columns) == list(then.columns)
    assert out["prediction"].tolist() == then["prediction"].tolist()
    probabilities = [column for column in then.columns if column.startswith("prob_")]
    np.testing.assert_allclose(out[probabilities], then[probabilities], atol=2e-6)


@pytest.mark.parametrize(
    ("model", "data"), [("seq", "train.csv"), ("steps", "steps.csv")], ids=["sequence", "step"]
)
def test_predict_reads_a_directory_written_by_0_1_0(old, capsys, model, data):
    """Predictions equal those 0.1.0 made; labelled DATA is scored with the recorded target."""
    assert main(["predict", model, data, "--out", "p.csv"]) == 0
    _same_predictions(old / "p.csv", old / f"{model}-predictions.csv")
    assert "accuracy" in capsys.readouterr().err


def test_export_reads_a_directory_written_by_0_1_0(old):
    """Varlen export writes an ONNX file from the old directory."""
    pytest.importorskip("onnxruntime")
    assert main(["export", "seq", "--out", "seq.onnx", "--quiet"]) == 0
    assert (old / "seq.onnx").stat().st_size > 0


def test_resume_reads_a_run_written_by_0_1_0(old, capsys):
    """--resume continues the finished 0.1.0 run from its run.json: same weights, new record."""
    assert main(["train", "train.csv", "--out", "seq", "--resume", "--quiet"]) == 0
    assert "resuming from" not in capsys.readouterr().err  # quiet
    assert main(["predict", "seq", "train.csv", "--out", "p.csv"]) == 0
    _same_predictions(old / "p.csv", old / "seq-predictions.csv")
    config = json.loads((old / "seq" / "config.json").read_text())
    assert config["format"] == "varlen-model/6"  # the one record version, since version 3
    metadata = config["metadata"]
    assert metadata["options"]["steps"] == 2000  # as recorded then, not the new default (None)
    added = {key: metadata["options"][key] for key in ("planner", "pool", "select", "augment")}
    assert added == {"planner": "timed", "pool": 1, "select": "loss", "augment": False}
    assert metadata["options"]["pooling"] == "mean"  # its readout, not the data's default (None)
    assert metadata["options"]["levels"] is True  # it read them: not the data's default (None)
    assert config["model"]["levels"] is True
    changed = main(["train", "train.csv", "--out", "seq", "--resume", "--hidden-size", "3"])
    assert changed == 2
    assert "--hidden-size must be 2 as recorded" in capsys.readouterr().err


def test_missing_option_takes_the_default_it_had_then(old):
    """An option absent from a 0.1.0 record is the default it had in 0.1.0 (as trained)."""
    path = old / "seq" / "config.json"
    config = json.loads(path.read_text())
    config["metadata"]["options"].pop("series_norm")  # 0.1.0's default: True, as trained
    path.write_text(json.dumps(config))
    assert main(["predict", "seq", "train.csv", "--out", "p.csv"]) == 0
    _same_predictions(old / "p.csv", old / "seq-predictions.csv")


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (lambda m: m.update(record_version=99), "record version 99, which this varlen"),
        (
            lambda m: m["options"].update(colour="red"),
            "key 'metadata.options.colour' must be an option of record version 1",
        ),
    ],
    ids=["future-version", "unknown-option"],
)
def test_unknown_records_are_refused_naming_the_version(old, capsys, change, fragment):
    """A record of a later version, or an unknown option: one line naming the version."""
    path = old / "seq" / "config.json"
    config = json.loads(path.read_text())
    change(config["metadata"])
    path.write_text(json.dumps(config))
    assert main(["predict", "seq", "train.csv"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert fragment in err
    assert "0.1.0" in err


def test_predict_scores_only_what_it_can(old, capsys):
    """Unlabelled sequences are left out of the score; unreadable targets give a note.

    A target column that cannot be read as per-sequence targets (it varies within a sequence)
    still gives the predictions, with a note instead of a score.
    """
    frame = pd.read_csv("train.csv")
    frame.loc[frame["sid"] == "s000", "label"] = None
    frame.to_csv("holes.csv", index=False)
    assert main(["predict", "seq", "holes.csv", "--out", "p.csv"]) == 0
    assert "on 15 labelled sequences\n" in capsys.readouterr().err
    frame.loc[frame.index[:3], "label"] = "zz"  # varies within a sequence
    frame.to_csv("vary.csv", index=False)
    assert main(["predict", "seq", "vary.csv", "--out", "p.csv"]) == 0
    err = capsys.readouterr().err
    assert "note: no score: the recorded target 'label' cannot be read" in err
    assert len(pd.read_csv("p.csv")) == 16


def test_a_version_3_record_reads_as_trained_without_augmentation():
    """Version 4 added --augment: a version 3 record reads it as off (what its run did).

    A version 3 record naming it is refused as unknown to its version.
    """
    record = {"data": "t.ts", "steps": None, "planner": "cost", "pool": None, "select": "metric"}

    def upgrade(record, version):
        return upgrade_options(
            record, version=version, written_by="0.2", per_step=False, source="x"
        )

    assert upgrade(record, 3)["augment"] is False
    assert upgrade(record, 3)["planner"] == "cost"
    assert upgrade(record, 4)["augment"] is None  # as given: the data's default
    with pytest.raises(CommandError, match=r"'metadata\.options\.augment' must be an option of"):
        upgrade({**record, "augment": True}, 3)


def test_a_version_4_record_keeps_the_readout_it_trained_with():
    """Version 5 left --pooling to the data (``None``); before it, the default was the mean.

    A version 4 record holds the pooling it used (read as recorded); one that lacks it
    trained with the mean, which it reads, where a version 5 record reads the data's default.
    """
    record = {"data": "t.ts", "steps": None, "augment": None, "select": "metric"}

    def upgrade(record, version):
        return upgrade_options(
            record, version=version, written_by="0.2", per_step=False, source="x"
        )

    assert upgrade(record, 4)["pooling"] == "mean"
    assert upgrade({**record, "pooling": "max"}, 4)["pooling"] == "max"
    new = upgrade(record, 5)["pooling"]
    assert new is None  # as given: the data's default
    long = np.full(10, 1460)
    assert plan_pooling(long, pooling=upgrade(record, 4)["pooling"], kind="sequence")[0] == "mean"
    assert plan_pooling(long, pooling=new, kind="sequence")[0] == "max"


def test_a_version_5_record_reads_the_levels_it_trained_with():
    """Version 6 added --levels (and ModelConfig.levels): every earlier run read them.

    A version 5 record reads ``levels`` True (what its run did); a version 6 record that
    lacks it reads the data's default (``None``); a version 5 record naming it is refused.
    """
    record = {"data": "t.ts", "steps": None, "augment": None, "pooling": None}

    def upgrade(record, version):
        return upgrade_options(
            record, version=version, written_by="0.2", per_step=False, source="x"
        )

    few, lengths = np.repeat(np.arange(10), 5), np.linspace(34, 360, 50)

    def plan(levels):
        return plan_levels(few, lengths, levels=levels, num_features=1, series_norm=True,
                           classification=True, kind="sequence")[0]  # fmt: skip

    assert upgrade(record, 5)["levels"] is True
    assert plan(upgrade(record, 5)["levels"]) is True
    assert upgrade(record, 6)["levels"] is None
    assert plan(upgrade(record, 6)["levels"]) is False
    with pytest.raises(CommandError, match=r"'metadata\.options\.levels' must be an option of"):
        upgrade({**record, "levels": False}, 5)
