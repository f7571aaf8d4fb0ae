"""Truncated BPTT against slow references: windows, forward values, gradients and memory."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st
from torch import Tensor

from tests.reference.recurrent import run_sequence
from varlen.nn import GRU, LSTM
from varlen.nn.functional import lengths_to_mask
from varlen.nn.streaming import StreamingRNN
from varlen.training import TBPTTWindow, tbptt_windows, train_tbptt

F_IN, H = 3, 4

# torch's own notice that oneDNN has no projected LSTM (it falls back to its native kernel).
pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections is not supported:UserWarning")


# ---- windows ------------------------------------------------------------------------------


def windows_reference(lengths, k):
    """Per window: (start, rows still running, their steps in the window), by plain loops."""
    windows, start = [], 0
    while start < max(lengths, default=0):
        rows = [b for b, n in enumerate(lengths) if n > start]
        windows.append((start, rows, [min(k, lengths[b] - start) for b in rows]))
        start += k
    return windows


@settings(max_examples=200)
@given(
    lengths=st.lists(st.integers(0, 12), max_size=6),
    slack=st.integers(0, 2),
    k=st.integers(1, 6),
    padding=st.sampled_from(["post", "pre"]),
)
@example(lengths=[], slack=0, k=1, padding="post").via("B = 0")
@example(lengths=[0, 0], slack=0, k=3, padding="pre").via("all lengths 0, T = 0")
@example(lengths=[5, 5], slack=0, k=5, padding="post").via("T_i == k")
def test_tbptt_windows_match_reference(lengths, slack, k, padding):
    """Windows hold the running rows in order, and together every real step exactly once."""
    B, T = len(lengths), max(lengths, default=0) + slack
    x = torch.arange(B * T * 2, dtype=torch.float64).reshape(B, T, 2)
    targets = -x[..., 0]
    lens = torch.tensor(lengths, dtype=torch.int64)
    windows = list(tbptt_windows(x, lens, k, targets=targets, padding=padding))
    reference = windows_reference(lengths, k)
    assert [(w.start, w.rows.tolist(), w.lengths.tolist()) for w in windows] == reference
    mask = lengths_to_mask(lens, T, padding=padding)
    for b in range(B):
        parts = [w.x[w.rows.tolist().index(b), :n] for w in windows for n in [_len(w, b)] if n]
        got = torch.cat(parts) if parts else x.new_zeros(0, 2)
        torch.testing.assert_close(got, x[b][mask[b]])
    for w in windows:
        assert w.targets is not None
        assert w.x.shape[1] == max(w.lengths.tolist())
        torch.testing.assert_close(w.targets, -w.x[..., 0])


def _len(window: TBPTTWindow, b: int) -> int:
    rows = window.rows.tolist()
    return int(window.lengths[rows.index(b)]) if b in rows else 0


def test_tbptt_windows_validate_before_the_first_window():
    """Bad k, shapes, lengths, targets or padding fail at the call, not at iteration."""
    x, lengths = torch.zeros(2, 5, 3), torch.tensor([5, 2])
    with pytest.raises(ValueError, match=r"k must be >= 1 \(steps per window\), got 0"):
        tbptt_windows(x, lengths, 0)
    with pytest.raises(TypeError, match=r"k must be an int, got 2\.5"):
        tbptt_windows(x, lengths, 2.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"x must be a Tensor of shape \(B, T, F\), got \(2, 5\)"):
        tbptt_windows(x[..., 0], lengths, 2)
    with pytest.raises(ValueError, match=r"lengths must have shape \(B,\) = \(2,\), got \(3,\)"):
        tbptt_windows(x, torch.tensor([1, 1, 1]), 2)
    with pytest.raises(ValueError, match=r"lengths must be <= T = 5, got lengths\[1\] == 6"):
        tbptt_windows(x, torch.tensor([5, 6]), 2)
    with pytest.raises(TypeError, match="lengths must be integers"):
        tbptt_windows(x, torch.tensor([5.0, 2.0]), 2)
    with pytest.raises(ValueError, match=r"targets must be a Tensor of shape \(B, T, \*K\)"):
        tbptt_windows(x, lengths, 2, targets=torch.zeros(2, 4))
    with pytest.raises(ValueError, match="padding must be 'pre' or 'post', got 'left'"):
        tbptt_windows(x, lengths, 2, padding="left")  # type: ignore[arg-type]


# ---- training against the oracle ----------------------------------------------------------


class RecordingSGD(torch.optim.SGD):
    """Plain SGD that keeps a copy of every parameter gradient at each step."""

    def __init__(self, params, lr):
        super().__init__(params, lr=lr)
        self.grads: list[list[Tensor]] = []

    def step(self, closure=None):
        """Record the gradients, then take the SGD step."""
        params = self.param_groups[0]["params"]
        self.grads.append(
            [torch.zeros_like(p) if p.grad is None else p.grad.clone() for p in params]
        )
        return super().step(closure)


@dataclass(frozen=True)
class TrainCase:
    """A batch of sequences of given lengths, trained in windows of k steps."""

    kind: str
    num_layers: int
    proj: bool
    lengths: tuple[int, ...]
    k: int
    padding: str
    seed: int


@st.composite
def train_cases(draw):
    """Random cells, depths, lengths (0 included, skewed) and window sizes."""
    kind = draw(st.sampled_from(["LSTM", "GRU"]))
    return TrainCase(
        kind=kind,
        num_layers=draw(st.integers(1, 2)),
        proj=kind == "LSTM" and draw(st.booleans()),
        lengths=tuple(draw(st.lists(st.integers(0, 11), min_size=1, max_size=4))),
        k=draw(st.integers(1, 5)),
        padding=draw(st.sampled_from(["post", "pre"])),
        seed=draw(st.integers(0, 2**16)),
    )


def build(case, dtype):
    """Module, padded batch x (B, T, F), lengths, the unpadded sequences and loss weights."""
    torch.manual_seed(case.seed)
    module: LSTM | GRU
    if case.kind == "LSTM":
        module = LSTM(F_IN, H, case.num_layers, proj_size=2 if case.proj else 0, dtype=dtype)
    else:
        module = GRU(F_IN, H, case.num_layers, dtype=dtype)
    generator = torch.Generator().manual_seed(case.seed)
    B, T = len(case.lengths), max(case.lengths) + 1
    lengths = torch.tensor(case.lengths)
    mask = lengths_to_mask(lengths, T, padding=case.padding)
    x = torch.randn(B, T, F_IN, generator=generator, dtype=dtype).masked_fill(
        ~mask[..., None], float("nan")
    )
    H_out = 2 if case.proj else H
    weights = torch.randn(B, T, H_out, generator=generator, dtype=dtype)
    seqs = [x[b][mask[b]] for b in range(B)]
    return module, x, lengths, seqs, weights, [weights[b][mask[b]] for b in range(B)]


def weighted_sum(output, window):
    """A random linear functional of the window's outputs (pads are exactly zero)."""
    return (output * window.targets).sum()


def run_train(case, dtype, lr):
    """train_tbptt with a recording optimizer; returns outputs per row, grads, result, module."""
    module, x, lengths, seqs, weights, _ = build(case, dtype)
    outputs: list[list[Tensor]] = [[] for _ in seqs]

    def loss_fn(output, window):
        for i, b in enumerate(window.rows.tolist()):
            outputs[b].append(output[i, : int(window.lengths[i])].detach())
        return weighted_sum(output, window)

    optimizer = RecordingSGD(module.parameters(), lr=lr)
    result = train_tbptt(
        module,
        x,
        lengths,
        k=case.k,
        loss_fn=loss_fn,
        optimizer=optimizer,
        targets=weights,
        padding=case.padding,
    )
    return outputs, optimizer.grads, result, module


def assert_state(state, b, want, atol):
    """Row ``b`` of ``state`` equals the oracle's final state ``want``."""
    got = [state.h] + ([] if state.c is None else [state.c])
    for tensor, expected in zip(got, want, strict=True):
        torch.testing.assert_close(tensor[:, b], expected, atol=atol, rtol=0)


def check_forward(case, dtype, atol):
    """Windowed outputs, stitched per row, and the final state equal the oracle's."""
    module, _, _, seqs, _, _ = build(case, dtype)
    outputs, grads, result, _ = run_train(case, dtype, lr=0.0)
    assert result.losses.shape == (len(grads),)
    for b, seq in enumerate(seqs):
        want_out, want_state = run_sequence(module, seq)
        got = torch.cat(outputs[b]) if outputs[b] else want_out.new_zeros(want_out.shape)
        torch.testing.assert_close(got, want_out, atol=atol, rtol=0)
        assert_state(result.state, b, want_state, atol)


@settings(max_examples=80)
@given(case=train_cases())
@example(case=TrainCase("LSTM", 2, True, (11, 0, 1, 7), 3, "pre", 0)).via("mixed ends, length 0")
def test_train_tbptt_forward_matches_full_sequence_oracle_float64(case):
    """Windows with carried state give the whole sequence's outputs and final state (float64)."""
    check_forward(case, torch.float64, atol=1e-10)


@settings(max_examples=30)
@given(case=train_cases())
def test_train_tbptt_forward_matches_full_sequence_oracle_float32(case):
    """On float32 the windowed forward values match the oracle to 1e-5."""
    check_forward(case, torch.float32, atol=1e-5)


def tbptt_reference(case, dtype, lr):
    """Slow truncated BPTT: every sequence run alone by the oracle, window by window.

    The state carried into a window is the oracle's state at the window start, detached; one
    plain SGD step per window over the loss of all sequences still running.
    """
    module, _, _, seqs, _, weights = build(case, dtype)
    ref = copy.deepcopy(module)
    params = list(ref.parameters())
    states: list[tuple[Tensor, ...] | None] = [None] * len(seqs)
    grads = []
    for start in range(0, max(case.lengths), case.k):
        loss = torch.zeros((), dtype=dtype)
        for b, seq in enumerate(seqs):
            if len(seq) <= start:
                continue
            out, final = run_sequence(ref, seq[start : start + case.k], states[b])
            loss = loss + (out * weights[b][start : start + case.k]).sum()
            states[b] = tuple(s.detach() for s in final)
        window_grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            for p, g in zip(params, window_grads, strict=True):
                p.add_(g, alpha=-lr)
        grads.append(window_grads)
    return grads, params, states


@settings(max_examples=40)
@given(case=train_cases())
@example(case=TrainCase("LSTM", 2, True, (11, 0, 1, 7), 3, "post", 0)).via("mixed ends")
def test_train_tbptt_gradients_and_updates_match_truncated_reference(case):
    """Each window's gradients, and the weights after each update, equal the slow reference."""
    _, grads, result, module = run_train(case, torch.float64, lr=0.05)
    ref_grads, ref_params, ref_states = tbptt_reference(case, torch.float64, lr=0.05)
    assert len(grads) == len(ref_grads)
    for got_window, want_window in zip(grads, ref_grads, strict=True):
        for got, want in zip(got_window, want_window, strict=True):
            torch.testing.assert_close(got, want, atol=1e-9, rtol=0)
    for got, want in zip(module.parameters(), ref_params, strict=True):
        torch.testing.assert_close(got, want, atol=1e-10, rtol=0)
    for b, want_state in enumerate(ref_states):
        if want_state is not None:
            assert_state(result.state, b, want_state, 1e-10)


def test_train_tbptt_starts_every_batch_from_zero_state():
    """A second call is not influenced by the first: no state leaks between batches."""
    case = TrainCase("GRU", 1, False, (6, 3), 2, "post", 0)
    module, x, lengths, _, weights, _ = build(case, torch.float64)
    optimizer = torch.optim.SGD(module.parameters(), lr=0.0)
    first = train_tbptt(
        module, x, lengths, k=2, loss_fn=weighted_sum, optimizer=optimizer, targets=weights
    )
    again = train_tbptt(
        module, x, lengths, k=2, loss_fn=weighted_sum, optimizer=optimizer, targets=weights
    )
    torch.testing.assert_close(first.losses, again.losses, atol=0, rtol=0)
    torch.testing.assert_close(first.state.h, again.state.h, atol=0, rtol=0)


def test_train_tbptt_drops_ended_rows_from_later_windows():
    """The model only sees the sequences still running in each window."""
    seen: list[int] = []

    class Counting(StreamingRNN):
        def forward(self, chunk, lengths=None, state=None, *, padding="post"):
            seen.append(chunk.shape[0])
            assert state is not None
            assert not state.h.requires_grad  # the carried state is detached
            return super().forward(chunk, lengths, state, padding=padding)

    lstm = LSTM(F_IN, H)
    x = torch.randn(4, 10, F_IN)
    optimizer = torch.optim.SGD(lstm.parameters(), lr=0.01)
    result = train_tbptt(
        Counting(lstm),
        x,
        torch.tensor([10, 2, 0, 5]),
        k=3,
        loss_fn=lambda out, window: out.sum(),
        optimizer=optimizer,
    )
    assert seen == [3, 2, 1, 1]
    assert result.losses.shape == (4,)
    assert torch.equal(result.state.h[:, 2], torch.zeros(1, H))


def test_train_tbptt_learns_a_task_that_crosses_windows():
    """Loss falls over 3x on a delayed-copy task over sequences up to 8x the window."""
    torch.manual_seed(0)
    lstm, head = LSTM(1, 16), torch.nn.Linear(16, 1)
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.normal(size=(4, 200, 1)).astype(np.float32))
    y = torch.cat([torch.zeros(4, 2), x[:, :-2, 0]], dim=1)  # y_t = x_{t-2}

    def loss_fn(out, window):
        mask = lengths_to_mask(window.lengths, out.shape[1])
        return ((head(out)[..., 0] - window.targets)[mask] ** 2).mean()

    optimizer = torch.optim.Adam([*lstm.parameters(), *head.parameters()], lr=0.03)
    lengths = torch.tensor([200, 150, 200, 90])
    epochs = [
        train_tbptt(lstm, x, lengths, k=25, loss_fn=loss_fn, optimizer=optimizer, targets=y)
        for _ in range(6)
    ]
    first, last = float(epochs[0].losses.mean()), float(epochs[-1].losses.mean())
    assert last < 0.3 * first, (first, last)


def test_train_tbptt_rejects_bidirectional_and_foreign_models():
    """A bidirectional layer cannot be windowed; a torch module is refused."""
    x, lengths = torch.zeros(1, 4, F_IN), torch.tensor([4])
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)

    def loss_fn(out, window):
        return out.sum()

    bidirectional = LSTM(F_IN, H, bidirectional=True)
    with pytest.raises(ValueError, match="must be unidirectional"):
        train_tbptt(bidirectional, x, lengths, k=2, loss_fn=loss_fn, optimizer=optimizer)
    foreign = torch.nn.LSTM(F_IN, H)
    with pytest.raises(TypeError, match=r"must be a varlen\.nn\.LSTM or varlen\.nn\.GRU"):
        train_tbptt(foreign, x, lengths, k=2, loss_fn=loss_fn, optimizer=optimizer)  # type: ignore[arg-type]


# ---- memory -------------------------------------------------------------------------------


class LiveSavedBytes:
    """Saved-tensor hooks that track the bytes the autograd graph keeps alive, and the peak."""

    def __init__(self):
        self.live = 0
        self.peak = 0

    def pack(self, tensor):
        """Count a tensor the graph saves."""
        return _Saved(self, tensor)

    @staticmethod
    def unpack(saved):
        """Give the saved tensor back to backward."""
        return saved.tensor


class _Saved:
    def __init__(self, meter, tensor):
        self.meter, self.tensor = meter, tensor
        self.nbytes = tensor.numel() * tensor.element_size()
        meter.live += self.nbytes
        meter.peak = max(meter.peak, meter.live)

    def __del__(self):
        self.meter.live -= self.nbytes


def peak_graph_bytes(T, *, k=None):
    """Peak bytes held by autograd graphs: train_tbptt with windows of k, or one graph."""
    torch.manual_seed(0)
    lstm = LSTM(2, 8, batch_first=True)
    x = torch.randn(1, T, 2, generator=torch.Generator().manual_seed(0))
    meter = LiveSavedBytes()
    with torch.autograd.graph.saved_tensors_hooks(meter.pack, meter.unpack):
        if k is None:
            out, _ = lstm(x)
            (out**2).mean().backward()
        else:
            optimizer = torch.optim.SGD(lstm.parameters(), lr=0.01)
            train_tbptt(
                lstm,
                x,
                torch.tensor([T]),
                k=k,
                loss_fn=lambda out, window: (out**2).mean(),
                optimizer=optimizer,
            )
    return meter.peak


@pytest.mark.parametrize(
    "T", [20_000, pytest.param(100_000, marks=pytest.mark.slow)], ids=["20k", "100k"]
)
def test_train_tbptt_graph_memory_does_not_grow_with_sequence_length(T):
    """On a long sequence the graph holds one window: the same peak as on 1k steps."""
    short, long = peak_graph_bytes(1_000, k=500), peak_graph_bytes(T, k=500)
    one_graph = peak_graph_bytes(T)
    assert short > 0
    assert long == short
    assert one_graph > (T // 500) // 2 * long  # one graph keeps T / k windows' worth
