"""`varlen inspect`: --plot without matplotlib fails first; the auto rule says it differs."""

from __future__ import annotations

import importlib.util

import pytest

from varlen.cli import main


def test_plot_without_matplotlib_fails_before_printing(data_dir, tmp_path, capsys, monkeypatch):
    """No report printed, then an error (it printed the whole report, then exited 1)."""
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *args: None if name == "matplotlib" else real(name, *args),
    )
    code = main(["inspect", str(data_dir / "train.ts"), "--plot", str(tmp_path / "h.png")])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    assert captured.err == (
        'varlen inspect: error: inspect --plot needs matplotlib: pip install "varlen[plot]", '
        "or drop --plot.\n"
    )
    assert not (tmp_path / "h.png").exists()


@pytest.mark.usefixtures("data_dir")
def test_inspect_says_that_train_decides_auto_by_speed(data_dir, capsys):
    """The padding rule of inspect and train's speed estimate can disagree: the report says so."""
    assert main(["inspect", str(data_dir / "train.ts")]) == 0
    out = capsys.readouterr().out
    assert "technique auto would pick: " in out
    assert "`varlen train --technique auto` also weighs the speed of mask and bucket" in out
