"""The drop-in cannot run over the wrong axis, and takes torch's positional/keyword forms."""

from __future__ import annotations

import pytest
import torch

import varlen.nn


@pytest.mark.parametrize("name", ["LSTM", "GRU"])
def test_torch_default_layout_call_is_refused_not_run_over_the_wrong_axis(name):
    """`LSTM(F, H)` fed torch's (T, B, F) with no lengths: a clear error (it ran batch-first)."""
    torch.manual_seed(0)
    module = getattr(varlen.nn, name)(4, 5)
    x = torch.randn(7, 3, 4)  # (T, B, F), as torch code feeds LSTM(4, 5)
    with pytest.raises(ValueError, match=r"built without batch_first.*batch_first=False"):
        module(x)
    state = (torch.zeros(1, 3, 5),) * 2 if name == "LSTM" else torch.zeros(1, 3, 5)
    with pytest.raises(ValueError, match="built without batch_first"):
        module(x, state)  # torch's positional hx
    with pytest.raises(ValueError, match="built without batch_first"):
        module(x, hx=state)


@pytest.mark.parametrize("name", ["LSTM", "GRU"])
def test_varlen_calls_on_an_unstated_layout_run_batch_first_as_before(name):
    """With lengths, a mask, offsets, a packed or 2-D input nothing is ambiguous: unchanged."""
    torch.manual_seed(0)
    module = getattr(varlen.nn, name)(4, 5)
    stated = getattr(varlen.nn, name)(4, 5, batch_first=True)
    stated.load_state_dict(module.state_dict())
    x, lengths = torch.randn(3, 7, 4), torch.tensor([7, 2, 5])
    out, _ = module(x, lengths)
    torch.testing.assert_close(out, stated(x, lengths)[0], rtol=0, atol=0)
    mask = torch.arange(7) < lengths[:, None]
    torch.testing.assert_close(module(x, mask=mask)[0], out, rtol=0, atol=0)
    assert module(x[0])[0].shape == (7, 5)  # one unbatched sequence (T, F)
    values, offsets = torch.cat([x[0, :7], x[1, :2]]), torch.tensor([0, 7, 9])
    torch.testing.assert_close(
        module(values, offsets=offsets)[0], stated(values, offsets=offsets)[0], rtol=0, atol=0
    )


def test_stated_layouts_match_torch_on_its_own_default_call():
    """`LSTM(F, H, batch_first=False)` gives torch's numbers on torch's (T, B, F) call."""
    torch.manual_seed(0)
    reference = torch.nn.LSTM(4, 5, 2, bidirectional=True)
    module = varlen.nn.LSTM(4, 5, 2, batch_first=False, bidirectional=True)
    module.load_state_dict(reference.state_dict())
    x = torch.randn(7, 3, 4)
    want, (h_want, _) = reference(x)
    got, (h_got, _) = module(x)
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(h_got, h_want)


@pytest.mark.parametrize("name", ["LSTM", "GRU"])
def test_positional_constructor_arguments_as_torch_takes_them(name):
    """bias, batch_first, dropout, bidirectional positional after num_layers (TypeError before)."""
    torch_class, varlen_class = getattr(torch.nn, name), getattr(varlen.nn, name)
    args = (4, 5, 2, False, True, 0.25, True)
    reference, module = torch_class(*args), varlen_class(*args)
    for attribute in ("bias", "batch_first", "dropout", "bidirectional", "num_layers"):
        assert getattr(module, attribute) == getattr(reference, attribute), attribute
    module.load_state_dict(reference.state_dict())
    if name == "LSTM":
        projected = varlen_class(4, 5, 1, True, True, 0.0, False, 3)
        assert projected.proj_size == 3


@pytest.mark.parametrize("name", ["LSTM", "GRU"])
def test_forward_takes_torchs_input_keyword(name):
    """`module(input=x)` as with torch (TypeError before); x and input together are refused."""
    torch.manual_seed(0)
    module = getattr(varlen.nn, name)(4, 5, batch_first=True)
    x = torch.randn(2, 3, 4)
    torch.testing.assert_close(module(input=x)[0], module(x)[0], rtol=0, atol=0)
    with pytest.raises(TypeError, match="as x or as input=, got both"):
        module(x, input=x)
    with pytest.raises(TypeError, match="needs the input"):
        module()
