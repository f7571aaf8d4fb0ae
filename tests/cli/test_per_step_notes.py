"""Per-step CLI: a forecaster with nothing to forecast, and predict's --order note."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from varlen.cli import main

FAST = ("--epochs", "1", "--hidden-size", "4", "--batch-size", "8", "--quiet")


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A long table, 16 sequences of 4..11 steps: sid, step, rank (another order), f0, f1, y."""
    rng = np.random.default_rng(0)
    rows = [
        (f"s{i}", t, 100 - t, float(rng.normal()), float(rng.normal()), float(t % 3 + i % 2))
        for i in range(16)
        for t in range(int(rng.integers(4, 12)))
    ]
    path = tmp_path_factory.mktemp("steps") / "steps.csv"
    columns = ["sid", "step", "rank", "f0", "f1", "y"]
    pd.DataFrame(rows, columns=columns).to_csv(path, index=False)
    return path


def test_forecaster_with_nothing_to_forecast_is_refused(table, tmp_path, capsys):
    """--horizon at least the longest sequence: one line saying so (it said 'extreme values')."""
    args = ["train", str(table), "--id", "sid", "--order", "step", "--target", "y"]
    code = main([*args, "--horizon", "11", "--out", str(tmp_path / "m"), *FAST])
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "--horizon 11 leaves nothing to forecast" in err
    assert "longest sequence of 'steps.csv' has 11 steps. Give --horizon < 11." in err


def test_per_step_predict_says_when_order_overrides_the_record(table, tmp_path, capsys):
    """The README's promised note, as on the per-sequence path (it was missing per step)."""
    model = tmp_path / "m"
    args = ["train", str(table), "--id", "sid", "--order", "step", "--target", "y"]
    assert main([*args, "--features", "f0,f1", "--out", str(model), *FAST]) == 0
    capsys.readouterr()
    out = tmp_path / "p.csv"
    assert main(["predict", str(model), str(table), "--order", "rank", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "varlen predict: note: --order 'rank' overrides the model's recorded --order 'step'" in (
        err
    )
    assert main(["predict", str(model), str(table), "--out", str(out), "--quiet"]) == 0
    assert "note" not in capsys.readouterr().err
