"""`varlen export` twice in one process, and of a per-step model (both failed before)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.cli.conftest import TINY
from varlen.cli import main

onnxruntime = pytest.importorskip("onnxruntime")


def _run_other_T(path: Path) -> np.ndarray:
    """Run the graph on T = 9 (the check's and the example's T differ): scores."""
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    features = session.get_inputs()[0].shape[2]
    x = np.random.default_rng(0).normal(size=(3, 9, features)).astype(np.float32)
    (scores,) = session.run(None, {"x": x, "lengths": np.array([9, 1, 4], dtype=np.int64)})
    return np.asarray(scores)


def test_export_twice_in_one_process(ts_model, tmp_path, capsys):
    """The second export of one process keeps a dynamic T (onnxruntime refused it before)."""
    for name in ("first.onnx", "second.onnx"):
        assert main(["export", str(ts_model), "--out", str(tmp_path / name)]) == 0
        assert f"wrote {tmp_path / name}" in capsys.readouterr().err
        assert _run_other_T(tmp_path / name).shape == (3, 2)


def test_per_step_model_exports_with_zeros_at_pads(tmp_path, capsys):
    """A per-step labeller's directory exports; the graph is (B, T, K), zero at pads."""
    rng = np.random.default_rng(0)
    rows = [
        (f"s{i}", t, float(rng.normal()), float(rng.normal()), "ab"[(t // 3 + i) % 2])
        for i in range(16)
        for t in range(int(rng.integers(4, 12)))
    ]
    table = tmp_path / "steps.csv"
    pd.DataFrame(rows, columns=["sid", "step", "f0", "f1", "label"]).to_csv(table, index=False)
    model = tmp_path / "model"
    args = ["train", str(table), "--id", "sid", "--order", "step", "--target", "label"]
    assert main([*args, "--features", "f0,f1", "--out", str(model), *TINY[:4], "--quiet"]) == 0
    assert main(["export", str(model), "--out", str(tmp_path / "steps.onnx")]) == 0, (
        capsys.readouterr().err
    )
    scores = _run_other_T(tmp_path / "steps.onnx")
    assert scores.shape == (3, 9, 2)
    assert not scores[1, 1:].any()
    assert not scores[2, 4:].any()
    assert scores[0].all()
