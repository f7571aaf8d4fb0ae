"""Half precision and autocast: the control columns stay finite and pads stay exact no-ops."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from tests.reference.recurrent import _gru_step, _lstm_step, run_sequence
from varlen.nn import GRU, LSTM
from varlen.nn._gates import cell_of, control_saturation, input_weight, layer_params, saturation

F_IN, H = 3, 4
FP16_MAX = torch.finfo(torch.float16).max


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_saturation_is_finite_and_saturates_in_its_dtype(dtype):
    """``sigmoid(+-s)`` is exactly 1 and 0 in ``dtype``, and ``s`` is finite there."""
    value = torch.tensor(saturation(dtype), dtype=dtype)
    assert torch.isfinite(value)
    assert torch.sigmoid(value).item() == 1.0
    assert torch.sigmoid(-value).item() == 0.0
    assert (0 * value).item() == 0.0  # a real step (indicator 0) gets exactly nothing


@pytest.mark.parametrize("autocast_dtype", [torch.float16, torch.bfloat16])
def test_control_columns_follow_the_autocast_dtype(autocast_dtype):
    """Under autocast, float32 weights get columns that stay finite once cast to its dtype."""
    module = LSTM(F_IN, H)
    with torch.autocast("cpu", dtype=autocast_dtype):
        value = control_saturation(input_weight(module))
        params = layer_params(module, cell_of(module), 0, 0, reset=True)
    assert value == saturation(autocast_dtype)
    assert torch.isfinite(params[0].to(autocast_dtype)).all()
    # Outside autocast the float32 columns keep the float32 constant.
    assert control_saturation(input_weight(module)) == saturation(torch.float32)


def test_half_module_columns_are_finite():
    """A module cast with ``.half()`` builds finite float16 columns."""
    module = GRU(F_IN, H).half()
    params = layer_params(module, cell_of(module), 0, 0, reset=True)
    assert params[0].dtype == torch.float16
    assert torch.isfinite(params[0]).all()
    assert params[0][:, F_IN:].abs().max() <= FP16_MAX


def _run_augmented(module: nn.RNNBase, params: list[Tensor], x: Tensor, pads: Tensor) -> Tensor:
    """Step through ``x (T, F)`` with a pad-indicator column as the fused kernel would.

    ``params`` are the layer's parameters with the control column, in the kernel's dtype;
    the step equations are the textbook ones of the oracle, in that dtype.
    """
    names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
    p: dict[str, Tensor | None] = dict(zip(names, params, strict=True))
    p["weight_hr"] = None
    h = x.new_zeros(H)
    c = x.new_zeros(H)
    outs = []
    for t in range(x.shape[0]):
        step = torch.cat([x[t], pads[t : t + 1].to(x.dtype)])
        if isinstance(module, nn.LSTM):
            h, c = _lstm_step(step, h, c, p)
        else:
            h = _gru_step(step, h, p)
        outs.append(h)
    return torch.stack(outs)


@pytest.mark.parametrize("cls", [LSTM, GRU])
@pytest.mark.parametrize("padding", ["pre", "post"])
def test_float16_autocast_pads_are_exact_no_ops(cls, padding):
    """What CUDA fp16 autocast computes, built on the CPU: no NaN, pads exact no-ops.

    oneDNN has no float16 LSTM on the CPU, so the kernel's float16 arithmetic is written out:
    float32 weights, their control columns built under ``autocast(float16)``, everything cast
    to float16 as autocast casts a kernel's inputs, then the step equations in float16. With
    the old float32 constant (1e30) the column became inf and ``0 * inf`` NaN at real steps.
    """
    torch.manual_seed(0)
    module = cls(F_IN, H)
    with torch.autocast("cpu", dtype=torch.float16):
        params = [p.to(torch.float16) for p in layer_params(module, cell_of(module), 0, 0)]
    real = torch.randn(5, F_IN).to(torch.float16)
    pad = torch.zeros(3, F_IN, dtype=torch.float16)
    x = torch.cat([pad, real]) if padding == "pre" else torch.cat([real, pad])
    pads = torch.tensor([1] * 3 + [0] * 5 if padding == "pre" else [0] * 5 + [1] * 3)
    out = _run_augmented(module, params, x, pads)
    assert torch.isfinite(out).all()
    # The oracle: the sequence alone, same float16 weights, same equations, no column.
    half = cls(F_IN, H, dtype=torch.float16)
    half.load_state_dict(module.state_dict())
    want, _ = run_sequence(half, real)
    got = out[3:] if padding == "pre" else out[:5]
    torch.testing.assert_close(got, want, atol=2e-3, rtol=0)
    if padding == "pre":
        assert torch.equal(out[:3], torch.zeros_like(out[:3]))  # the zero state stays zero
    else:
        assert torch.equal(out[5:], out[4:5].expand(3, H)) or isinstance(module, nn.LSTM)


@pytest.mark.parametrize("cls", [LSTM, GRU])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
def test_bfloat16_autocast_matches_each_sequence_alone(cls, bidirectional):
    """``autocast("cpu", bfloat16)`` end to end: forward and backward equal the sequence alone.

    The oracle is each sequence run alone through the same module under the same autocast:
    outputs and states bit for bit, input gradients within bfloat16 rounding, none at pads.
    """
    torch.manual_seed(0)
    module = cls(F_IN, H, 2, bidirectional=bidirectional)
    lengths = torch.tensor([6, 1, 0, 4])
    x = torch.randn(4, 6, F_IN).requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, state = module(x, lengths, padding="pre")
    h = state[0] if isinstance(state, tuple) else state
    # torch's CPU autocast lowers the LSTM to bfloat16 (the GRU stays in float32).
    assert out.dtype == (torch.bfloat16 if cls is LSTM else torch.float32)
    assert torch.isfinite(out.float()).all()
    (out.float().sum() + h.float().sum()).backward()
    batch_grad = x.grad
    assert batch_grad is not None
    assert torch.isfinite(batch_grad).all()
    assert not batch_grad[2].any()  # the length-0 row
    for b in (0, 1, 3):
        n = int(lengths[b])
        row = x.detach()[b, 6 - n :].clone().requires_grad_()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            alone_out, alone_state = module(row[None], torch.tensor([n]))
        alone_h = alone_state[0] if isinstance(alone_state, tuple) else alone_state
        torch.testing.assert_close(out[b, 6 - n :].float(), alone_out[0].float(), atol=0, rtol=0)
        torch.testing.assert_close(h[:, b].float(), alone_h[:, 0].float(), atol=0, rtol=0)
        (alone_out.float().sum() + alone_h.float().sum()).backward()
        assert row.grad is not None
        # Gradients: within bfloat16 rounding (its backward sums in another order).
        torch.testing.assert_close(batch_grad[b, 6 - n :], row.grad, atol=4e-3, rtol=2e-2)
        assert not batch_grad[b, : 6 - n].any()  # no gradient reaches a pad
