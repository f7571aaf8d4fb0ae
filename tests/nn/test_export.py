"""Export: ONNX (verified in onnxruntime), torch.export, and clear refusals of legacy capture."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from tests.reference.recurrent import run_sequence
from varlen.nn import GRU, LSTM, ExportError, export_onnx

onnxruntime = pytest.importorskip("onnxruntime")

F_IN, H = 3, 5


class Tagger(nn.Module):
    """Per-step outputs and the final h, batch-first, with a fixed padding side."""

    def __init__(self, cls: type[LSTM] | type[GRU], padding: str) -> None:
        super().__init__()
        self.rnn = cls(F_IN, H, 2, bidirectional=True)
        self.padding = padding

    def forward(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:  # noqa: D102
        out, state = self.rnn(x, lengths, padding=self.padding)
        h = state[0] if isinstance(state, tuple) else state
        return out, h.transpose(0, 1)  # (B, T, D * H), (B, L * D, H)


class Ignores(nn.Module):
    """torch's LSTM on the padded batch, lengths ignored: pads leak into the results."""

    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.LSTM(F_IN, H, batch_first=True)

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:  # noqa: D102
        h: Tensor = self.rnn(x)[1][0][-1]
        return h + 0 * lengths[:, None]


@pytest.mark.parametrize(("cls", "padding"), [(LSTM, "pre"), (GRU, "post")])
def test_export_onnx_matches_each_sequence_alone_in_onnxruntime(tmp_path, cls, padding):
    """The written graph, run from outside in onnxruntime, equals the textbook oracle.

    Dynamic B and T, lengths 0 and 1 included, garbage at pads, fp32 at 1e-5.
    """
    torch.manual_seed(0)
    model = Tagger(cls, padding)
    report = export_onnx(
        model, tmp_path / "m.onnx", input_size=F_IN, padding=padding, output_names=["out", "h"]
    )
    assert report.max_error <= 1e-5
    assert report.input_names == ("x", "lengths")
    session = onnxruntime.InferenceSession(str(report.path), providers=["CPUExecutionProvider"])
    lengths = [6, 0, 1, 11, 3]
    T = 11
    x = torch.randn(len(lengths), T, F_IN)
    out, h = session.run(None, {"x": x.numpy(), "lengths": np.array(lengths, dtype=np.int64)})
    assert out.shape == (len(lengths), T, 2 * H)
    for b, n in enumerate(lengths):
        steps = slice(0, n) if padding == "post" else slice(T - n, T)
        pads = np.ones(T, dtype=bool)
        pads[steps] = False
        want_out, want_state = run_sequence(model.rnn, x[b, steps])
        np.testing.assert_allclose(out[b, steps], want_out.detach().numpy(), atol=1e-5, rtol=0)
        np.testing.assert_allclose(h[b], want_state[0].detach().numpy(), atol=1e-5, rtol=0)
        assert not out[b, pads].any()


def test_export_onnx_refuses_a_model_that_depends_on_padding(tmp_path):
    """A model that lets pads leak fails the check; the existing file is kept, none written."""
    target = tmp_path / "kept.onnx"
    target.write_bytes(b"previous")
    with pytest.raises(ExportError, match="differs from the sequence run alone"):
        # (no length 0 here: torch's LSTM cannot run an empty sequence alone)
        export_onnx(Ignores(), target, input_size=F_IN, check_lengths=[[5, 2, 1]])
    assert target.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept.onnx"]


def test_export_onnx_rejects_bad_arguments(tmp_path):
    """Bad padding or check batches: a clear error before any export."""
    model, target = Tagger(LSTM, "post"), tmp_path / "m.onnx"
    with pytest.raises(ValueError, match="padding"):
        export_onnx(model, target, input_size=F_IN, padding="mid")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="check_lengths"):
        export_onnx(model, target, input_size=F_IN, check_lengths=[[0]])
    assert not target.exists()


@pytest.mark.parametrize(
    "example_lengths", [[6, 6], [1] * 30 + [6, 0]], ids=["no-pads", "would-be-grouped"]
)
def test_torch_export_fixed_time_matches_eager_for_any_lengths(example_lengths):
    """``torch.export.export``, fixed T (dynamic B), from an example without pads or a grouped one.

    (An example that eager mode would split into row groups exports the general graph too.)
    The exported program takes the general route, so it is right for any lengths, 0 included
    (torch's own LSTM decomposition fixes T: pytorch/pytorch#115092).
    """
    torch.manual_seed(0)
    model = Tagger(LSTM, "pre").eval()
    T = 6
    example = (torch.randn(len(example_lengths), T, F_IN), torch.tensor(example_lengths))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        program = torch.export.export(
            model,
            example,
            dynamic_shapes={"x": {0: torch.export.Dim("B")}, "lengths": {0: torch.export.Dim("B")}},
        )
    x, lengths = torch.randn(4, T, F_IN), torch.tensor([0, 1, 6, 3])
    got = program.module()(x, lengths)
    want = model(x, lengths)
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, atol=1e-6, rtol=0)


@pytest.mark.parametrize("cls", [LSTM, GRU])
def test_torch_export_dynamic_time_with_torchs_while_loop_decompositions(cls):
    """Dynamic B and T with torch's while-loop RNN decompositions (inference only)."""
    from torch.export._patches import (
        register_gru_while_loop_decomposition,
        register_lstm_while_loop_decomposition,
    )

    # An earlier torch.export of an RNN leaves torch's T-fixing decomposition in the ops'
    # dispatch caches, where the while-loop registration does not reach.
    for op in (torch.ops.aten.lstm.input, torch.ops.aten.gru.input):
        op._dispatch_cache.clear()
    torch.manual_seed(0)
    model = Tagger(cls, "pre").eval()
    example = (torch.randn(2, 5, F_IN), torch.tensor([5, 5]))
    B, T = torch.export.Dim("B"), torch.export.Dim("T")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's own tracing warnings (non-leaf .grad, ...)
        with register_lstm_while_loop_decomposition(), register_gru_while_loop_decomposition():
            program = torch.export.export(
                model, example, dynamic_shapes={"x": {0: B, 1: T}, "lengths": {0: B}}
            )
    x, lengths = torch.randn(4, 9, F_IN), torch.tensor([9, 0, 1, 4])
    for got, want in zip(program.module()(x, lengths), model(x, lengths), strict=True):
        torch.testing.assert_close(got, want, atol=1e-6, rtol=0)


def test_legacy_capture_is_refused_with_a_clear_error(tmp_path):
    """jit.trace and the legacy ONNX exporter refuse; jit.script refuses."""
    model = Tagger(GRU, "post").eval()
    example = (torch.randn(2, 4, F_IN), torch.tensor([4, 4]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(RuntimeError, match="legacy TorchScript tracing"):
            torch.jit.trace(model, example)
        with pytest.raises(RuntimeError, match="legacy TorchScript tracing"):
            torch.onnx.export(model, example, str(tmp_path / "legacy.onnx"), dynamo=False)
        with pytest.raises(RuntimeError, match="cannot be scripted"):
            torch.jit.script(model)
