"""run_lanes against the per-sequence oracle: outputs, final states and gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.reference.recurrent import run_sequence
from varlen.data.ragged import Ragged
from varlen.nn import GRU, LSTM
from varlen.nn.lanes import run_lanes

pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections is not supported:UserWarning")


@settings(max_examples=80)
@given(
    lengths=st.lists(st.integers(0, 9), min_size=1, max_size=7),
    kind=st.sampled_from(["LSTM", "GRU"]),
    bidirectional=st.booleans(),
    num_layers=st.integers(1, 2),
    proj=st.booleans(),
    bias=st.booleans(),
    num_lanes=st.integers(1, 3),
    window=st.one_of(st.none(), st.integers(1, 6)),
    seed=st.integers(0, 1000),
)
def test_run_lanes_matches_per_sequence_oracle(
    lengths, kind, bidirectional, num_layers, proj, bias, num_lanes, window, seed
):
    """Each sequence's outputs, final h and c, and all gradients equal it run alone (1e-10)."""
    if bidirectional:
        window = None
    torch.manual_seed(seed)
    if kind == "LSTM":
        module: LSTM | GRU = LSTM(
            3,
            4,
            num_layers,
            bias=bias,
            bidirectional=bidirectional,
            proj_size=2 if proj else 0,
            dtype=torch.float64,
        )
    else:
        module = GRU(3, 4, num_layers, bias=bias, bidirectional=bidirectional, dtype=torch.float64)
    sizes = torch.tensor(lengths)
    x = torch.randn(int(sizes.sum()), 3, dtype=torch.float64, requires_grad=True)
    out = run_lanes(module, x, sizes, num_lanes=num_lanes, window=window)
    offsets = [0, *torch.cumsum(sizes, 0).tolist()]
    generator = torch.Generator().manual_seed(seed)
    w_out = torch.randn(out.values.shape, generator=generator, dtype=torch.float64)
    w_h = torch.randn(out.h.shape, generator=generator, dtype=torch.float64)
    w_c = torch.randn((*out.h.shape[:2], 4), generator=generator, dtype=torch.float64)
    loss = (out.values * w_out).sum() + (out.h * w_h).sum()
    if out.c is not None:
        loss = loss + (out.c * w_c).sum()
    reference = torch.zeros((), dtype=torch.float64)
    for b in range(len(lengths)):
        ref_out, ref_state = run_sequence(module, x[offsets[b] : offsets[b + 1]])
        torch.testing.assert_close(
            out.values[offsets[b] : offsets[b + 1]], ref_out, atol=1e-10, rtol=0
        )
        torch.testing.assert_close(out.h[:, b], ref_state[0], atol=1e-10, rtol=0)
        reference = reference + (ref_out * w_out[offsets[b] : offsets[b + 1]]).sum()
        reference = reference + (ref_state[0] * w_h[:, b]).sum()
        if out.c is not None:
            torch.testing.assert_close(out.c[:, b], ref_state[1], atol=1e-10, rtol=0)
            reference = reference + (ref_state[1] * w_c[:, b]).sum()
    with torch.inference_mode():  # the cell state is rebuilt in place when no grad is needed
        frozen = run_lanes(module, x.detach(), sizes, num_lanes=num_lanes, window=window)
    torch.testing.assert_close(frozen.values, out.values, atol=1e-12, rtol=0)
    torch.testing.assert_close(frozen.h, out.h, atol=1e-12, rtol=0)
    torch.testing.assert_close(frozen.c, out.c, atol=1e-12, rtol=0)
    leaves = [x, *module.parameters()]
    if not loss.requires_grad:
        return
    got = torch.autograd.grad(loss, leaves, allow_unused=True)
    # Every sequence empty: the oracle computes nothing, so every gradient must be zero.
    no_grad = [None] * len(leaves)
    want = (
        torch.autograd.grad(reference, leaves, allow_unused=True)
        if reference.requires_grad
        else no_grad
    )
    for g, w, leaf in zip(got, want, leaves, strict=True):
        g = torch.zeros_like(leaf) if g is None else g
        w = torch.zeros_like(leaf) if w is None else w
        torch.testing.assert_close(g, w, atol=1e-9, rtol=0)


def test_run_lanes_takes_a_ragged_and_float32():
    """A float32 Ragged runs on the fused kernel and matches the oracle to 1e-5."""
    torch.manual_seed(0)
    module = LSTM(3, 4)
    rng = np.random.default_rng(0)
    ragged = Ragged.from_sequences([rng.normal(size=(n, 3)).astype(np.float32) for n in (6, 2, 9)])
    out = run_lanes(module, ragged, num_lanes=2, window=4)
    for b, sequence in enumerate(ragged):
        ref_out, (h, c) = run_sequence(module, torch.from_numpy(np.array(sequence)))
        start = int(ragged.offsets[b])
        torch.testing.assert_close(
            out.values[start : start + len(sequence)], ref_out, atol=1e-5, rtol=0
        )
        torch.testing.assert_close(out.h[:, b], h, atol=1e-5, rtol=0)
        assert out.c is not None
        torch.testing.assert_close(out.c[:, b], c, atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    "module", [LSTM(3, 4), GRU(3, 4, bidirectional=True)], ids=["lstm", "bi-gru"]
)
def test_run_lanes_all_empty_results_stay_in_the_graph(module):
    """Every sequence empty: zero results, connected to the weights (backward works)."""
    out = run_lanes(module, torch.zeros(0, 3), torch.tensor([0, 0]), num_lanes=2)
    D = 2 if module.bidirectional else 1
    assert out.values.shape == (0, D * 4)
    assert torch.equal(out.h, torch.zeros(D, 2, 4))
    loss = out.h.sum() + (out.c.sum() if out.c is not None else 0)
    loss.backward()
    assert all(p.grad is not None and not p.grad.any() for p in module.parameters())


def test_run_lanes_skips_the_cell_state_on_request():
    """cell_state=False returns c = None (only h is gathered)."""
    out = run_lanes(LSTM(2, 3), torch.randn(5, 2), [2, 3], num_lanes=1, cell_state=False)
    assert out.c is None


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (
            lambda m: run_lanes(torch.nn.LSTM(2, 3), torch.zeros(3, 2), [3], num_lanes=1),  # type: ignore[arg-type]
            TypeError,
            "module must be a varlen.nn.LSTM or GRU",
        ),
        (
            lambda m: run_lanes(m, torch.zeros(3, 2), [2], num_lanes=1),
            ValueError,
            r"lengths must be >= 0 and sum to N = 3, got sum 2",
        ),
        (
            lambda m: run_lanes(m, torch.zeros(3, 5), [3], num_lanes=1),
            ValueError,
            r"x must have shape \(N, F\) with F = input_size = 2",
        ),
        (
            lambda m: run_lanes(m, torch.zeros(3, 2), None, num_lanes=1),
            ValueError,
            "lengths must be given with a tensor x",
        ),
        (
            lambda m: run_lanes(m, torch.zeros(3, 2, dtype=torch.float64), [3], num_lanes=1),
            TypeError,
            "x must have the dtype of the weights",
        ),
        (
            lambda m: run_lanes(m, [[0.0, 0.0]], [1], num_lanes=1),  # type: ignore[arg-type]
            TypeError,
            r"x must be a Tensor \(N, F\) or a varlen.Ragged",
        ),
        (
            lambda m: run_lanes(m, torch.zeros(3, 2), [3], num_lanes=0),
            ValueError,
            "num_lanes must be an int >= 1",
        ),
    ],
)
def test_run_lanes_rejects_bad_input(call, error, match):
    """Wrong modules, shapes, lengths and lane sizes get clear errors."""
    with pytest.raises(error, match=match):
        call(LSTM(2, 3))


def test_run_lanes_rejects_windows_for_bidirectional_modules():
    """A bidirectional layer cannot carry state across windows: it must see whole lanes."""
    module = GRU(2, 3, bidirectional=True)
    with pytest.raises(ValueError, match="window must cover the longest lane"):
        run_lanes(module, torch.zeros(8, 2), [4, 4], num_lanes=1, window=3)
