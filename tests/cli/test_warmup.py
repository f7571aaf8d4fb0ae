"""`--warmup` longer than the run is refused in one line (it was accepted without a word)."""

from __future__ import annotations

from varlen.cli import main

TINY = ("--hidden-size", "4", "--conv-channels", "4", "--batch-size", "8", "--quiet")


def test_warmup_longer_than_the_run_is_refused(data_dir, tmp_path, capsys):
    """--steps 4 --warmup 10: exit 2, one line naming --warmup and the run's length."""
    out = tmp_path / "m"
    args = ["train", str(data_dir / "train.ts"), "--out", str(out), *TINY, "--warmup", "10"]
    assert main([*args, "--steps", "4", "--technique", "mask"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "--warmup 10 is longer than the run's 4 optimizer steps" in err
    assert not (out / "model.pt").exists()
    assert main([*args, "--epochs", "1", "--technique", "mask"]) == 2  # 48 series: 5 steps
    assert "--warmup 10 is longer than the run's" in capsys.readouterr().err
