"""Export of per-step and large-scale models: zero pads in the graph, a scale-relative check."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from varlen.nn import ExportError, export_onnx
from varlen.training.models import ModelConfig, SequenceModel
from varlen.training.per_step import StepRegressor

onnxruntime = pytest.importorskip("onnxruntime")

CHECK = [[0, 1, 5, 3], [4, 2]]  # lengths 0 and 1 included, pads in both batches


def test_per_step_model_exports_with_zeros_at_pads(tmp_path):
    """The head's bias is zeroed at pads in the graph (the check failed with 'differs ... 0.3')."""
    torch.manual_seed(0)
    model = StepRegressor(3, 2, hidden_size=4)
    linear = model.head[-1]
    assert isinstance(linear, nn.Linear)
    with torch.no_grad():
        linear.bias.fill_(0.5)
    x, lengths = torch.randn(2, 5, 3), torch.tensor([5, 2])
    out = model(x, lengths)
    assert not out[1, 2:].any()  # zero at pads in eager mode too
    report = export_onnx(model, tmp_path / "steps.onnx", input_size=3, check_lengths=CHECK)
    session = onnxruntime.InferenceSession(str(report.path), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"x": x.numpy(), "lengths": lengths.numpy()})
    np.testing.assert_allclose(got, out.detach().numpy(), atol=1e-5)
    assert not got[1, 2:].any()


class BiasAtPads(nn.Module):
    """Per-step outputs that are right at real steps and 0.25 at pads."""

    def __init__(self) -> None:
        super().__init__()
        self.model = StepRegressor(3, 1, hidden_size=4)

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:  # noqa: D102
        steps = torch.arange(x.shape[1])[None, :]
        pads = (steps >= lengths[:, None])[:, :, None]
        out: Tensor = self.model(x, lengths) + 0.25 * pads
        return out


def test_the_check_names_the_positions_that_differ(tmp_path):
    """The error says pad steps (not only 'differs from the sequence run alone by 0.25')."""
    target = tmp_path / "m.onnx"
    with pytest.raises(ExportError) as caught:
        export_onnx(BiasAtPads(), target, input_size=3, check_lengths=[[2, 5]])
    message = str(caught.value)
    assert "by 0.25 >" in message
    assert "at pad steps 2, 3, 4 (of T = 5)" in message
    assert "row 0" in message
    assert "real step" not in message
    assert not target.exists()


class LargeTargets(nn.Module):
    """A regressor in large target units, as a Predictor undoes a target standardizer."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        config = ModelConfig(
            3, 1, task="regression", hidden_size=64, conv_channels=(32, 32),
            conv_kernels=(5, 3), bidirectional=True,
        )  # fmt: skip
        self.model = SequenceModel(config)

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:  # noqa: D102
        out: Tensor = self.model(x, lengths) * 3.3e5 + 1e6
        return out


def test_large_outputs_are_checked_relative_to_their_scale(tmp_path):
    """Outputs near 1e6 differ by float32's rounding step (0.0625), not by a bug: exported."""
    report = export_onnx(LargeTargets(), tmp_path / "big.onnx", input_size=3)
    assert 1e-5 < report.max_error <= 0.0625  # the old atol-only check refused this graph
    with pytest.raises(ValueError, match="rtol must be a finite number >= 0"):
        export_onnx(LargeTargets(), tmp_path / "x.onnx", input_size=3, rtol=-1.0)


def test_a_model_without_levels_exports_and_stays_blind_to_gain_and_offset(tmp_path):
    """levels=False (the standardized view alone) exports, checked against each row alone.

    In onnxruntime a sequence scores as it scores shifted and rescaled, as in eager mode.
    """
    torch.manual_seed(3)
    config = ModelConfig(
        1, 3, conv_channels=(4,), conv_kernels=(3,), pooling="mean", bidirectional=True,
        series_norm=True, levels=False,
    )  # fmt: skip
    model = SequenceModel(config).eval()
    report = export_onnx(model, tmp_path / "z.onnx", input_size=1, check_lengths=CHECK)
    session = onnxruntime.InferenceSession(str(report.path), providers=["CPUExecutionProvider"])
    x, lengths = torch.randn(2, 6, 1), np.array([6, 4])
    moved = torch.cat([2.5 * x[:1] - 4.0, 0.5 * x[1:] + 7.0])
    moved[1, 4:] = 0.0  # pads
    (got,) = session.run(None, {"x": x.numpy(), "lengths": lengths})
    (got_moved,) = session.run(None, {"x": moved.numpy(), "lengths": lengths})
    np.testing.assert_allclose(got_moved, got, atol=1e-3)
    with torch.no_grad():
        np.testing.assert_allclose(got, model(x, torch.from_numpy(lengths)).numpy(), atol=1e-5)
