"""``varlen export`` as a user runs it: the ONNX graph reproduces ``varlen predict``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.cli._data import run_cli
from varlen.data.io.ts import read_ts

onnxruntime = pytest.importorskip("onnxruntime")


def test_export_then_run_in_onnxruntime_matches_predict(data_dir, ts_model, tmp_path):
    """The exported predictor (standardizer inside) gives ``varlen predict``'s probabilities."""
    exported = run_cli("export", ts_model, "--out", "model.onnx", cwd=tmp_path, timeout=300)
    assert exported.returncode == 0, exported.stderr
    assert "wrote model.onnx" in exported.stderr
    # Only varlen's own lines: no Python warning, no log line of torch's exporter.
    assert [line.split(" ")[0] for line in exported.stderr.splitlines()] == ["exporting", "wrote"]
    # Written like every other varlen file (varlen._atomic): no temporary left, and the mode a
    # plain open() gives under this umask (a bare temporary file would be private, 0o600).
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]
    (tmp_path / "plain").write_bytes(b"")
    mode = (tmp_path / "model.onnx").stat().st_mode & 0o777
    assert mode == (tmp_path / "plain").stat().st_mode & 0o777
    predicted = run_cli("predict", ts_model, data_dir / "test.ts", "--out", "p.csv", cwd=tmp_path)
    assert predicted.returncode == 0, predicted.stderr
    want = pd.read_csv(tmp_path / "p.csv")[["prob_down", "prob_up"]].to_numpy()
    x = read_ts(data_dir / "test.ts").x
    padded, lengths = x.to_padded(padding="post")
    session = onnxruntime.InferenceSession(str(tmp_path / "model.onnx"))
    assert [i.name for i in session.get_inputs()] == ["x", "lengths"]
    (scores,) = session.run(
        None, {"x": padded.astype(np.float32), "lengths": lengths.astype(np.int64)}
    )
    shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
    np.testing.assert_allclose(shifted / shifted.sum(axis=1, keepdims=True), want, atol=2e-6)


def test_export_errors_are_one_line(ts_model, tmp_path):
    """A wrong suffix: one line, exit code 2, nothing written."""
    bad = run_cli("export", ts_model, "--out", "model.txt", cwd=tmp_path)
    assert bad.returncode == 2
    assert "--out must end in .onnx" in bad.stderr
    assert "Traceback" not in bad.stderr
    assert not (tmp_path / "model.txt").exists()
