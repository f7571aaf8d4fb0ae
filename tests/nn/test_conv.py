"""MaskedConv1d / ConvFrontEnd against the oracle: each sequence convolved alone."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from varlen.nn import (
    ConvFrontEnd,
    MaskedConv1d,
    masked_max_pool,
    pooled_lengths,
    series_standardize,
)
from varlen.training.models import ModelConfig, SequenceModel


def _pad(seqs: list[torch.Tensor], T: int, *, padding: str, value: float) -> torch.Tensor:
    F = seqs[0].shape[1]
    x = torch.full((len(seqs), T, F), value, dtype=torch.float64)
    for i, s in enumerate(seqs):
        n = s.shape[0]
        if n:
            if padding == "post":
                x[i, :n] = s
            else:
                x[i, T - n :] = s
    return x


def _rows(out: torch.Tensor, i: int, n: int, *, padding: str) -> torch.Tensor:
    T = out.shape[1]
    return out[i, :n] if padding == "post" else out[i, T - n :]


@given(
    lengths=st.lists(st.integers(0, 9), min_size=1, max_size=4),
    padding=st.sampled_from(["pre", "post"]),
    value=st.sampled_from([0.0, -3.0, 1e3]),
    extra=st.integers(0, 3),
)
def test_front_end_matches_each_sequence_alone(
    lengths: list[int], padding: str, value: float, extra: int
) -> None:
    """Outputs at real steps equal the sequence alone; padded outputs are exactly zero."""
    torch.manual_seed(0)
    front = ConvFrontEnd(2, (4, 3), (5, 3)).double()
    seqs = [torch.randn(n, 2, dtype=torch.float64) for n in lengths]
    T = max(lengths) + extra
    x = _pad(seqs, T, padding=padding, value=value)
    out = front(x, torch.tensor(lengths), padding=padding)
    for i, (s, n) in enumerate(zip(seqs, lengths, strict=True)):
        if n:
            alone = front(s[None])[0]
            torch.testing.assert_close(_rows(out, i, n, padding=padding), alone)
    real = torch.zeros(len(lengths), T, dtype=torch.bool)
    for i, n in enumerate(lengths):
        if n:
            real[i, T - n :] = padding == "pre"
            real[i, :n] |= padding == "post"
    assert bool((out[~real] == 0).all())


@pytest.mark.parametrize("padding", ["pre", "post"])
def test_gradients_match_each_sequence_alone(padding: str) -> None:
    """Weight and input gradients equal the per-sequence ones; no gradient reaches a pad."""
    torch.manual_seed(1)
    conv = MaskedConv1d(3, 4, 7).double()
    lengths = [6, 2, 9]
    seqs = [torch.randn(n, 3, dtype=torch.float64, requires_grad=True) for n in lengths]
    x = _pad([s.detach() for s in seqs], 10, padding=padding, value=5.0).requires_grad_(True)
    out = conv(x, torch.tensor(lengths), padding=padding)
    out.pow(2).sum().backward()
    batched = {name: p.grad.clone() for name, p in conv.named_parameters()}  # type: ignore[union-attr]
    conv.zero_grad()
    sum(conv(s[None]).pow(2).sum() for s in seqs).backward()
    for name, p in conv.named_parameters():
        torch.testing.assert_close(batched[name], p.grad)
    assert x.grad is not None
    for i, (s, n) in enumerate(zip(seqs, lengths, strict=True)):
        torch.testing.assert_close(_rows(x.grad, i, n, padding=padding), s.grad)
    real_total = 0.0
    for s in seqs:
        assert s.grad is not None
        real_total += float(s.grad.abs().sum())
    pads = float(x.grad.abs().sum()) - real_total
    assert pads == pytest.approx(0.0, abs=1e-9)  # nothing flows into a pad


@pytest.mark.parametrize("padding", ["pre", "post"])
def test_conv_model_matches_each_sequence_alone(padding: str) -> None:
    """A SequenceModel with a front-end scores each sequence as it scores it alone."""
    torch.manual_seed(2)
    config = ModelConfig(
        1, 3, conv_channels=(8, 8), conv_kernels=(7, 3), pooling="mean", bidirectional=True
    )
    model = SequenceModel(config).double().eval()
    lengths = [12, 1, 7]
    seqs = [torch.randn(n, 1, dtype=torch.float64) for n in lengths]
    x = _pad(seqs, 12, padding=padding, value=-9.0)
    scores = model(x, torch.tensor(lengths), padding=padding)
    for i, s in enumerate(seqs):
        torch.testing.assert_close(scores[i], model(s[None])[0])


def test_bad_arguments_are_refused() -> None:
    """Even kernels, wrong ranks, out-of-range lengths and mismatched configs raise."""
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        MaskedConv1d(1, 2, 4)
    with pytest.raises(ValueError, match=r"x must be \(B, T, F\)"):
        MaskedConv1d(1, 2, 3)(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="lengths must be in"):
        MaskedConv1d(1, 2, 3)(torch.zeros(1, 3, 1), torch.tensor([4]))
    with pytest.raises(ValueError, match="one kernel size per"):
        ModelConfig(1, 2, conv_channels=(4,), conv_kernels=())


@pytest.mark.parametrize("padding", ["pre", "post"])
def test_series_standardize_matches_each_sequence_alone(padding: str) -> None:
    """Each sequence is standardized by its own real steps only; pads are zero."""
    torch.manual_seed(3)
    lengths = [5, 1, 0, 8]
    seqs = [3.0 * torch.randn(n, 2, dtype=torch.float64) + 7.0 for n in lengths]
    x = _pad(seqs, 8, padding=padding, value=100.0)
    out = series_standardize(x, torch.tensor(lengths), padding=padding)  # type: ignore[arg-type]
    for i, (s, n) in enumerate(zip(seqs, lengths, strict=True)):
        if n:
            torch.testing.assert_close(
                _rows(out, i, n, padding=padding), series_standardize(s[None])[0]
            )
    assert float(out[2].abs().sum()) == 0.0
    alone = series_standardize(seqs[3][None])[0]
    torch.testing.assert_close(alone.mean(dim=0), torch.zeros(2, dtype=torch.float64))


@pytest.mark.parametrize("technique", ["mask", "lanes", "one-at-a-time", "pack"])
@pytest.mark.parametrize("pools", [(), (3,)], ids=["no-pool", "pool"])
def test_series_norm_conv_model_is_exact_in_every_exact_technique(
    technique: str, pools: tuple[int, ...]
) -> None:
    """Scores of a conv + series-norm model do not depend on the technique's batching."""
    import numpy as np

    from varlen.batching.dataset import RaggedDataset
    from varlen.data.ragged import Ragged
    from varlen.training.techniques import get_technique

    torch.manual_seed(4)
    config = ModelConfig(
        1,
        3,
        conv_channels=(4,),
        conv_kernels=(3,),
        conv_pools=pools,
        series_norm=True,
        pooling="mean",
    )
    model = SequenceModel(config).eval()
    rng = np.random.default_rng(0)
    lengths = np.array([9, 3, 6, 1])
    values = rng.normal(size=(int(lengths.sum()), 1)).astype(np.float32)
    data = RaggedDataset(Ragged(values, np.concatenate([[0], np.cumsum(lengths)])))
    indices = np.arange(4)
    with torch.no_grad():
        got = get_technique(technique).run(model, data, indices).scores
        want = get_technique("one-at-a-time").run(model, data, indices).scores
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def _pool_alone(s: torch.Tensor, factor: int) -> torch.Tensor:
    """The oracle: windows of ``factor`` steps from step 0, the last one short."""
    return torch.stack([s[i : i + factor].amax(dim=0) for i in range(0, s.shape[0], factor)])


@given(
    lengths=st.lists(st.integers(0, 11), min_size=1, max_size=4),
    factor=st.integers(1, 4),
    padding=st.sampled_from(["pre", "post"]),
    value=st.sampled_from([0.0, 1e6, float("nan")]),
    extra=st.integers(0, 3),
)
def test_masked_max_pool_matches_each_sequence_alone(
    lengths: list[int], factor: int, padding: str, value: float, extra: int
) -> None:
    """Each row is its sequence pooled alone (short last window); pads are zero, never win."""
    torch.manual_seed(5)
    seqs = [torch.randn(n, 2, dtype=torch.float64) for n in lengths]
    T = max(lengths) + extra
    x = _pad(seqs, T, padding=padding, value=value)
    out, out_lengths = masked_max_pool(
        x,
        torch.tensor(lengths),
        factor=factor,
        padding=padding,  # type: ignore[arg-type]
    )
    assert out.shape == (len(lengths), -(-T // factor), 2)
    assert out_lengths is not None
    assert out_lengths.tolist() == [-(-n // factor) for n in lengths]
    real = torch.zeros(out.shape[:2], dtype=torch.bool)
    for i, (s, n) in enumerate(zip(seqs, out_lengths.tolist(), strict=True)):
        if n:
            got = _rows(out, i, n, padding=padding)
            torch.testing.assert_close(got, _pool_alone(s, factor))
            torch.testing.assert_close(got, masked_max_pool(s[None], factor=factor)[0][0])
            real[i, :n] = padding == "post"
            real[i, out.shape[1] - n :] |= padding == "pre"
    assert bool((out[~real] == 0).all())


@pytest.mark.parametrize("padding", ["pre", "post"])
def test_pooled_front_end_gradients_match_each_sequence_alone(padding: str) -> None:
    """With pooling between blocks, weight and input gradients equal the per-sequence ones."""
    torch.manual_seed(6)
    front = ConvFrontEnd(2, (4, 3), (5, 3), pools=(2, 3)).double()
    lengths = [13, 1, 6, 0]
    seqs = [torch.randn(n, 2, dtype=torch.float64, requires_grad=True) for n in lengths]
    x = _pad([s.detach() for s in seqs], 15, padding=padding, value=7.0).requires_grad_(True)
    out = front(x, torch.tensor(lengths), padding=padding)
    assert out.shape[1] == 3  # ceil(15 / 6)
    weights = torch.randn(out.shape, dtype=torch.float64)
    (out * weights).sum().backward()
    batched = {name: p.grad.clone() for name, p in front.named_parameters()}  # type: ignore[union-attr]
    front.zero_grad()
    total = torch.zeros((), dtype=torch.float64)
    for i, (s, n) in enumerate(zip(seqs, lengths, strict=True)):
        if n:
            alone = front(s[None])[0]  # (ceil(n / 6), 3)
            k = alone.shape[0]
            total = total + (alone * _rows(weights, i, k, padding=padding)).sum()
    total.backward()
    for name, p in front.named_parameters():
        torch.testing.assert_close(batched[name], p.grad)
    assert x.grad is not None
    for i, (s, n) in enumerate(zip(seqs, lengths, strict=True)):
        if n:
            torch.testing.assert_close(_rows(x.grad, i, n, padding=padding), s.grad)
    real = sum(float(s.grad.abs().sum()) for s in seqs if s.grad is not None)
    assert float(x.grad.abs().sum()) == pytest.approx(real)  # nothing flows into a pad


@pytest.mark.parametrize("padding", ["pre", "post"])
def test_pooled_conv_model_matches_each_sequence_alone(padding: str) -> None:
    """A model whose front-end pools scores each sequence as it scores it alone."""
    torch.manual_seed(7)
    config = ModelConfig(
        1,
        3,
        conv_channels=(8, 8),
        conv_kernels=(7, 3),
        conv_pools=(2, 2),
        pooling="mean",
        bidirectional=True,
        series_norm=True,
    )
    model = SequenceModel(config).double().eval()
    lengths = [17, 1, 6, 4]
    seqs = [torch.randn(n, 1, dtype=torch.float64) for n in lengths]
    x = _pad(seqs, 19, padding=padding, value=-9.0)
    scores = model(x, torch.tensor(lengths), padding=padding)
    for i, s in enumerate(seqs):
        torch.testing.assert_close(scores[i], model(s[None])[0])


@given(
    lengths=st.lists(st.integers(1, 12), min_size=1, max_size=4),
    padding=st.sampled_from(["pre", "post"]),
    value=st.sampled_from([0.0, -9.0, 1e6]),
    extra=st.integers(0, 3),
    bidirectional=st.booleans(),
)
def test_model_without_levels_matches_each_sequence_alone(
    lengths: list[int], padding: str, value: float, extra: int, bidirectional: bool
) -> None:
    """levels=False: each row scores as its sequence alone, and as it rescaled and shifted.

    The model reads each series standardized only (F inputs, not 2 F), so a sequence's gain
    and offset do not reach it (up to the standardization's eps).
    """
    torch.manual_seed(11)
    config = ModelConfig(
        1,
        3,
        conv_channels=(6, 6),
        conv_kernels=(5, 3),
        conv_pools=(2, 1),
        pooling="mean",
        bidirectional=bidirectional,
        series_norm=True,
        levels=False,
    )
    assert config.input_width == 1
    model = SequenceModel(config).double().eval()
    assert model.front is not None
    assert sum(p.numel() for p in model.front.convs[0].parameters()) == 6 * 5 * 1 + 6
    seqs = [torch.randn(n, 1, dtype=torch.float64) for n in lengths]
    x = _pad(seqs, max(lengths) + extra, padding=padding, value=value)
    with torch.no_grad():
        scores = model(x, torch.tensor(lengths), padding=padding)
        for i, s in enumerate(seqs):
            alone = model(s[None])[0]
            torch.testing.assert_close(scores[i], alone)
            if len(s) > 1 and float(s.std()) > 0.1:  # the eps is small beside its variance
                moved = model((3.0 * s - 5.0)[None])[0]
                torch.testing.assert_close(moved, alone, rtol=1e-4, atol=1e-4)


def test_levels_without_the_standardized_view_are_refused() -> None:
    """levels=False reads series_norm's view alone: without series_norm it is an error."""
    with pytest.raises(ValueError, match=r"levels=False .* needs series_norm=True"):
        ModelConfig(1, 2, levels=False)
    assert ModelConfig(2, 2, series_norm=True).input_width == 4  # the levels and the view
    assert ModelConfig(2, 2, series_norm=True, levels=False).input_width == 2
    assert ModelConfig(2, 2).input_width == 2


def test_pooling_arguments_are_refused() -> None:
    """Bad factors and pools that do not fit the convolutions raise, naming the argument."""
    with pytest.raises(ValueError, match="factor must be an int >= 1"):
        masked_max_pool(torch.zeros(1, 3, 1), factor=0)
    with pytest.raises(ValueError, match="factor must be an int >= 1"):
        pooled_lengths(torch.tensor([3]), True)
    with pytest.raises(ValueError, match="one factor per convolution"):
        ConvFrontEnd(1, (4, 4), (3, 3), pools=(2,))
    with pytest.raises(ValueError, match="conv_pools must give one factor"):
        ModelConfig(1, 2, conv_channels=(4,), conv_kernels=(3,), conv_pools=(2, 2))
    with pytest.raises(ValueError, match="conv_pools must be ints >= 1"):
        ModelConfig(1, 2, conv_channels=(4,), conv_kernels=(3,), conv_pools=(0,))
