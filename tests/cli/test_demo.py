"""`varlen demo` and its Python API `varlen.training.demo`."""

from __future__ import annotations

import csv
import json
import math
import re
from dataclasses import replace

import pytest
import torch

from tests.cli._data import run_cli
from varlen.cli import main
from varlen.cli._demo_report import format_notes, format_table, plot_demo, write_rows
from varlen.cli.demo import QUICK_EPOCHS, DemoOptions, demo_config
from varlen.training.demo import DemoConfig, DemoRow, run_demo
from varlen.training.techniques import TECHNIQUES

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TINY = DemoConfig(hidden_size=8, epochs=1, batch_size=64)
"""A configuration that trains in about a second per technique."""


def _rows() -> list[DemoRow]:
    return [
        DemoRow("pad-post", "post", False, 0.5, 0.6, 20_000.0, 0.65, 3.0, 4, 2),
        DemoRow("mask", "mask", True, 0.98, 1.0, 15_000.0, 0.65, 2.5, 5, 3),
    ]


def test_demo_quick_command_prints_the_table_and_writes_the_files(tmp_path):
    """`python -m varlen.cli demo --quick` prints both rows and writes a PNG, CSV and JSON."""
    out_dir = tmp_path / "out"
    result = run_cli(
        "demo", "--quick", "--techniques", "mask", "pad-post", "--out-dir", out_dir,
        cwd=tmp_path, timeout=240,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    header = "technique test acc real steps/s pad eff epochs wall s exact"
    assert lines[0].split() == header.split(" ")
    row = r"\s+(0\.\d{3}|1\.000)\s+[\d,]+\s+(0\.\d\d|1\.00)\s+2\s+\d+\.\d\s+"
    assert re.fullmatch(r"mask" + row + "yes", lines[1])
    assert re.fullmatch(r"pad-post" + row + "no", lines[2])
    assert "short sequences are blurred by their batch" in " ".join(result.stdout.split())
    png = (out_dir / "varlen-demo.png").read_bytes()
    assert png.startswith(PNG_SIGNATURE)
    assert len(png) > 1000
    with (out_dir / "varlen-demo.csv").open() as file:
        records = list(csv.DictReader(file))
    assert [r["technique"] for r in records] == ["mask", "pad-post"]
    document = json.loads((out_dir / "varlen-demo.json").read_text())
    assert document["config"]["epochs"] == QUICK_EPOCHS
    assert [r["epochs"] for r in document["rows"]] == [QUICK_EPOCHS, QUICK_EPOCHS]
    assert all(1 <= r["best_epoch"] <= QUICK_EPOCHS for r in document["rows"])  # from 1
    assert "wrote" in result.stderr
    # stderr is a pipe here: no bars, but one line per finished technique (it was silent)
    progress = [line for line in result.stderr.splitlines() if line.startswith("demo: ")]
    assert [line.split(":")[1].strip() for line in progress] == ["mask", "pad-post"]
    assert progress[-1].endswith("(2/2 techniques)")


def test_run_demo_measures_each_technique_in_order():
    """run_demo returns one plausible row per technique, in the order asked."""
    names = ["pack", "bucket", "pad-pre"]
    rows = run_demo(techniques=names, config=TINY, progress=False)
    assert [row.technique for row in rows] == names
    for row in rows:
        technique = TECHNIQUES[row.technique]
        assert row.exact == technique.exact
        assert row.description == technique.description
        assert 0.0 <= row.test_accuracy <= 1.0
        assert 0.0 <= row.val_accuracy <= 1.0
        assert row.real_steps_per_second > 0
        assert 0.0 < row.padding_efficiency <= 1.0
        assert row.seconds > 0
        assert (row.epochs, row.best_epoch) == (1, 1)  # counted from 1, as everywhere
    by_name = {row.technique: row for row in rows}
    assert by_name["pack"].padding_efficiency == 1.0  # no compute on pads
    assert by_name["bucket"].padding_efficiency > by_name["pad-pre"].padding_efficiency


def test_run_demo_is_reproducible_and_exact_techniques_agree():
    """Same seed, same numbers; exact techniques on the same batches learn the same model."""
    names = ["mask", "lanes"]  # exact, and the same random batches
    before = torch.get_rng_state()
    first = run_demo(techniques=names, config=TINY, progress=False)
    torch.testing.assert_close(torch.get_rng_state(), before)  # global RNG untouched
    second = run_demo(techniques=names, config=TINY, progress=False)
    assert [r.test_accuracy for r in first] == [r.test_accuracy for r in second]
    assert [r.val_accuracy for r in first] == [r.val_accuracy for r in second]
    assert math.isclose(first[0].test_accuracy, first[1].test_accuracy, abs_tol=2 / 370)


def test_run_demo_progress_goes_to_stderr_only(capsys):
    """With progress on, bars and per-technique lines go to stderr; stdout stays clean."""
    run_demo(techniques=["bucket"], config=TINY, progress=True)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "bucket: test accuracy" in captured.err
    assert "demo:" in captured.err


@pytest.mark.parametrize(
    ("techniques", "match"),
    [
        ([], r"techniques must be a non-empty sequence"),
        ("mask", r"techniques must be a non-empty sequence"),
        (["mask", "nope"], r"techniques\[1\] must be one of pad-pre, .*, got 'nope'"),
        (["mask", "pack", "mask"], r"techniques must be distinct, got \['mask'\]"),
    ],
    ids=["empty", "string", "unknown", "repeated"],
)
def test_run_demo_rejects_bad_techniques(techniques, match):
    """Bad technique lists raise ValueError before any work."""
    with pytest.raises(ValueError, match=match):
        run_demo(techniques=techniques, config=TINY, progress=False)


@pytest.mark.parametrize("num_threads", [0, True])
def test_run_demo_rejects_bad_thread_counts(num_threads):
    """num_threads must be a positive int or None."""
    with pytest.raises(ValueError, match=r"num_threads must be >= 1 or None"):
        run_demo(techniques=["mask"], config=TINY, progress=False, num_threads=num_threads)


def test_run_demo_restores_the_thread_count():
    """run_demo trains on the threads asked for and restores torch's setting afterwards."""
    original = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        run_demo(techniques=["bucket"], config=TINY, progress=False, num_threads=1)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(original)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"validation_fraction": 0.0}, r"validation_fraction must be in \(0, 1\)"),
        ({"patience": 0}, r"patience must be an int >= 1, got 0"),
        ({"seed": 1.5}, r"seed must be an int >= 0"),
        ({"epochs": 0}, r"epochs must be an int >= 1"),
        ({"hidden_size": 0}, r"hidden_size must be an int >= 1"),
        ({"pooling": "sum"}, r"pooling must be 'last' or 'mean' or 'max', got 'sum'"),
    ],
)
def test_demo_config_rejects_bad_values(options, match):
    """DemoConfig validates its fields when built."""
    with pytest.raises(ValueError, match=match):
        DemoConfig(**options)


def test_demo_options_quick_and_epochs():
    """--quick trains QUICK_EPOCHS epochs unless --epochs says otherwise; --seed is kept."""
    assert demo_config(DemoOptions()).epochs == DemoConfig().epochs
    assert demo_config(DemoOptions(quick=True)).epochs == QUICK_EPOCHS
    assert demo_config(DemoOptions(quick=True, epochs=5, seed=7)) == replace(
        DemoConfig(), epochs=5, seed=7
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--techniques", "nope"], "invalid choice: 'nope'"),
        (["--epochs", "0"], "epochs must be an int >= 1, got 0"),
    ],
    ids=["unknown-technique", "zero-epochs"],
)
def test_demo_command_bad_options_exit_2(argv, message, capsys):
    """Bad options are exit code 2 with a message, before training."""
    assert main(["demo", *argv]) == 2
    assert message in capsys.readouterr().err


def test_demo_command_out_dir_that_is_a_file_exits_2(tmp_path, capsys):
    """--out-dir naming a file is a one-line error, exit 2, before training."""
    target = tmp_path / "taken"
    target.write_text("")
    assert main(["demo", "--out-dir", str(target)]) == 2
    err = capsys.readouterr().err
    assert (
        err.strip()
        == f"varlen demo: error: --out-dir must be a folder, got the file {str(target)!r}."
    )


def test_demo_command_config_file_without_techniques_exits_2(tmp_path, capsys):
    """A TOML config with an empty technique list is exit 2."""
    config = tmp_path / "demo.toml"
    config.write_text("techniques = []\n")
    assert main(["demo", "--config", str(config), "--out-dir", str(tmp_path)]) == 2
    assert "--techniques must name at least one technique" in capsys.readouterr().err


def test_format_table_and_notes_cover_every_row():
    """The table has a header and a line per row; the notes explain every row."""
    rows = _rows()
    table = format_table(rows).splitlines()
    assert len(table) == 3
    assert table[1].split()[0] == "pad-post"
    assert table[1].endswith("no")
    assert table[2].endswith("yes")
    notes = format_notes(rows)
    for row in rows:
        assert f"\n  {row.technique} " in notes
    assert max(len(line) for line in notes.splitlines()) <= 92


def test_plot_demo_writes_a_png(tmp_path):
    """plot_demo writes a PNG file and returns its path."""
    path = plot_demo(_rows(), tmp_path / "chart.png")
    assert path == tmp_path / "chart.png"
    assert path.read_bytes().startswith(PNG_SIGNATURE)


def test_write_rows_csv_and_json_round_trip(tmp_path):
    """CSV holds every field of every row; JSON holds the rows and the config."""
    rows = _rows()
    write_rows(rows, tmp_path / "rows.csv")
    write_rows(rows, tmp_path / "rows.json", config=TINY)
    with (tmp_path / "rows.csv").open() as file:
        records = list(csv.DictReader(file))
    assert [float(r["test_accuracy"]) for r in records] == [0.5, 0.98]
    assert [r["exact"] for r in records] == ["False", "True"]
    document = json.loads((tmp_path / "rows.json").read_text())
    assert document["config"]["hidden_size"] == TINY.hidden_size
    assert [DemoRow(**r) for r in document["rows"]] == rows


@pytest.fixture
def one_thread():
    """Run the test on one torch thread (tiny models; spinning threads slow a busy machine)."""
    original = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(original)


@pytest.mark.usefixtures("one_thread")
def test_fit_validates_inexact_techniques_on_their_own_batches():
    """Training scores pad-post validation the way pad-post trains (its pads), not with masking."""
    from varlen.training.demo import _load_data
    from varlen.training.loop import TrainConfig, evaluate, fit
    from varlen.training.models import SequenceClassifier

    data = _load_data(TINY)
    torch.manual_seed(0)
    model = SequenceClassifier(12, data.num_classes, hidden_size=8)
    config = TrainConfig(technique="pad-post", epochs=1, batch_size=16, seed=0)
    validation = (data.x_val, data.y_val)
    result = fit(
        model, data.x_train, data.y_train, config=config, validation=validation, progress=False
    )
    as_trained, _ = evaluate(model, *validation, technique="pad-post", batch_size=16)
    masked, _ = evaluate(model, *validation, technique="mask")
    assert result.history[0].val_loss == pytest.approx(as_trained, rel=1e-6)
    assert abs(as_trained - masked) > 1e-3  # the two really differ
