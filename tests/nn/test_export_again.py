"""Raw ``torch.onnx.export(..., dynamo=True)`` keeps a dynamic T, also after another export."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from varlen.nn import GRU, LSTM

onnxruntime = pytest.importorskip("onnxruntime")


class Outputs(nn.Module):
    """A 2-layer bidirectional varlen layer: per-step outputs."""

    def __init__(self, cls: type[LSTM] | type[GRU]) -> None:
        super().__init__()
        self.rnn = cls(3, 5, 2, batch_first=True, bidirectional=True)

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:  # noqa: D102
        out: Tensor = self.rnn(x, lengths)[0]
        return out


def _raw_export(model: nn.Module) -> tuple[list[object], np.ndarray]:
    """Export as a user does, with torch's exporter; return x's dims and a T = 7 run."""
    B, T = torch.export.Dim("B", min=1), torch.export.Dim("T", min=1)
    example = (torch.randn(2, 4, 3), torch.tensor([4, 4]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's own exporter warnings
        program = torch.onnx.export(
            model.eval(),
            example,
            dynamo=True,
            input_names=["x", "lengths"],
            dynamic_shapes={"x": {0: B, 1: T}, "lengths": {0: B}},
            verbose=False,
        )
    assert program is not None
    proto = program.model_proto
    dims = [d.dim_param or d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
    session = onnxruntime.InferenceSession(
        proto.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    x = np.random.default_rng(0).normal(size=(3, 7, 3)).astype(np.float32)
    (out,) = session.run(None, {"x": x, "lengths": np.array([7, 2, 5])})
    return dims, out


def test_raw_onnx_export_keeps_a_dynamic_time_axis_export_after_export():
    """LSTM, LSTM again, GRU, GRU again in one process: each graph takes any T.

    torch caches the decomposition an export ran its RNN ops through; the next export found it
    and fixed T at the example's 4 (onnxruntime: "Got invalid dimensions" for T = 7).
    """
    torch.manual_seed(0)
    for cls in (LSTM, LSTM, GRU, GRU):
        model = Outputs(cls)
        dims, out = _raw_export(model)
        assert dims[1] == "T", (cls.__name__, dims)
        x = torch.from_numpy(np.random.default_rng(0).normal(size=(3, 7, 3)).astype(np.float32))
        with torch.no_grad():
            want = model(x, torch.tensor([7, 2, 5]))
        np.testing.assert_allclose(out, want.numpy(), atol=1e-5, rtol=1e-5)
