"""Torch's input forms on varlen.nn.LSTM/GRU: jagged, cu_seqlens, packed, time-major.

Nested jagged tensors, values + offsets (cu_seqlens), PackedSequence, batch_first=False and
torch's module(x, hx) call.

Ragged forms are checked against the per-sequence oracle (outputs, final states and the
gradients of inputs, initial states and weights); torch's forms against torch.nn.LSTM/GRU.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pack_sequence

from tests.reference.recurrent import run_sequence
from varlen.nn import GRU, LSTM, StreamingRNN, run_lanes, run_one_at_a_time

DT = torch.float64
LENGTHS = (4, 0, 1, 6, 0, 3)


def make(kind: str, **kwargs: Any) -> nn.RNNBase:
    """A float64 varlen module (2 layers, bidirectional unless told)."""
    torch.manual_seed(0)
    options = {"num_layers": 2, "bidirectional": True, "dtype": DT, **kwargs}
    return (LSTM if kind == "lstm" else GRU)(3, 4, **options)


def sequences(lengths: tuple[int, ...] = LENGTHS) -> list[Tensor]:
    """Leaf float64 sequences ``(T_i, 3)`` that require grad."""
    generator = torch.Generator().manual_seed(1)
    return [torch.randn(n, 3, dtype=DT, generator=generator).requires_grad_() for n in lengths]


def initial_state(module: nn.RNNBase, B: int) -> tuple[Tensor, ...]:
    """Per-sequence initial states ``(L * D, B, H_k)`` that require grad."""
    generator = torch.Generator().manual_seed(2)
    D = 2 if module.bidirectional else 1
    shape = (module.num_layers * D, B, module.hidden_size)
    count = 2 if isinstance(module, nn.LSTM) else 1
    return tuple(
        torch.randn(shape, dtype=DT, generator=generator).requires_grad_() for _ in range(count)
    )


def as_nested(seqs: list[Tensor]) -> tuple[Tensor, Callable[[Any], list[Tensor]]]:
    """A jagged nested tensor of ``seqs`` (in the graph), and how to split its outputs."""
    offsets = torch.tensor([0, *torch.tensor([len(s) for s in seqs]).cumsum(0).tolist()])
    njt = torch.nested.nested_tensor_from_jagged(torch.cat(seqs), offsets)

    def split(out: Any) -> list[Tensor]:
        assert out.is_nested
        assert out.layout == torch.jagged
        assert torch.equal(out.offsets(), offsets)
        return list(out.unbind())

    return njt, split


def as_values(dtype: torch.dtype) -> Callable[[list[Tensor]], tuple[Tensor, Tensor]]:
    """A builder of ``(values (N, F), offsets (B + 1,))`` with offsets of ``dtype``."""

    def build(seqs: list[Tensor]) -> tuple[Tensor, Tensor]:
        sizes = [len(s) for s in seqs]
        offsets = torch.tensor([0, *torch.tensor(sizes).cumsum(0).tolist()], dtype=dtype)
        return torch.cat(seqs), offsets

    return build


def flat(state: Any) -> list[Tensor]:
    """A state as a list of tensors (an LSTM's tuple, a GRU's tensor)."""
    return list(state) if isinstance(state, tuple) else [state]


def oracle(
    module: nn.RNNBase, seqs: list[Tensor], hx: tuple[Tensor, ...]
) -> tuple[list[Tensor], tuple[Tensor, ...]]:
    """Each sequence alone, step by step: outputs and states ``(L * D, B, H_k)``."""
    outs, finals = [], []
    for b, s in enumerate(seqs):
        out, final = run_sequence(module, s, tuple(h[:, b] for h in hx))
        outs.append(out)
        finals.append(final)
    states = tuple(torch.stack([f[k] for f in finals], dim=1) for k in range(len(hx)))
    return outs, states


def run_form(
    module: nn.RNNBase, form: str, seqs: list[Tensor], hx: tuple[Tensor, ...]
) -> tuple[list[Tensor], tuple[Tensor, ...]]:
    """Run ``seqs`` in ``form``; return the per-sequence outputs and the states."""
    torch_hx: Any = hx if len(hx) == 2 else hx[0]
    if form == "nested":
        njt, split = as_nested(seqs)
        out, state = module(njt, hx=torch_hx)
        outs = split(out)
    else:
        values, offsets = as_values(torch.int32 if form == "offsets32" else torch.int64)(seqs)
        out, state = module(values, hx=torch_hx, offsets=offsets)
        assert out.shape[0] == values.shape[0]
        outs = list(out.split([len(s) for s in seqs]))
    return outs, tuple(state) if isinstance(state, tuple) else (state,)


def grads(outs: list[Tensor], states: tuple[Tensor, ...], leaves: list[Tensor]) -> list[Tensor]:
    """Gradients of a fixed random weighting of everything returned, w.r.t. ``leaves``."""
    generator = torch.Generator().manual_seed(3)
    loss = torch.zeros((), dtype=DT)
    for o in outs:
        loss = loss + (o * torch.randn(o.shape, dtype=DT, generator=generator)).sum()
    loss = loss + sum(
        (s * torch.randn(s.shape, dtype=DT, generator=generator)).sum() for s in states
    )
    return list(torch.autograd.grad(loss, leaves, allow_unused=True))


@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("form", ["nested", "offsets32", "offsets64"])
def test_ragged_forms_match_the_oracle_with_gradients(kind, form):
    """Outputs, final states and gradients (inputs, initial states, weights) per sequence."""
    module = make(kind)
    seqs = sequences()
    hx = initial_state(module, len(seqs))
    leaves = [*seqs, *hx, *module.parameters()]
    outs, states = run_form(module, form, seqs, hx)
    want_outs, want_states = oracle(module, seqs, hx)
    for got, want in zip(outs, want_outs, strict=True):
        torch.testing.assert_close(got, want)
    for got, want in zip(states, want_states, strict=True):
        torch.testing.assert_close(got, want)
    for got, want in zip(
        grads(outs, states, leaves), grads(want_outs, want_states, leaves), strict=True
    ):
        if want is None:
            assert got is None or not got.any()
        else:
            torch.testing.assert_close(got, want)


@pytest.mark.parametrize("form", ["nested", "offsets64"])
def test_ragged_forms_with_every_sequence_empty_stay_in_the_graph(form):
    """B sequences of length 0: zero outputs, the initial state, and backward works."""
    module = make("lstm")
    seqs = sequences((0, 0, 0))
    outs, states = run_form(module, form, seqs, tuple(torch.zeros(4, 3, 4, dtype=DT) for _ in "hc"))
    assert [tuple(o.shape) for o in outs] == [(0, 8)] * 3
    assert all(not s.any() for s in states)
    torch.stack([s.sum() for s in states]).sum().backward()  # connected to the weights
    assert module.weight_ih_l0.grad is not None


def test_default_state_and_values_without_grad():
    """No hx: zero initial states; plain values (no grad) on int32 offsets."""
    module = make("gru", bidirectional=False, num_layers=1)
    seqs = [s.detach() for s in sequences()]
    values, offsets = as_values(torch.int32)(seqs)
    out, h = module(values, offsets=offsets)
    want_outs, want_states = oracle(module, seqs, (torch.zeros(1, len(seqs), 4, dtype=DT),))
    torch.testing.assert_close(out, torch.cat(want_outs))
    torch.testing.assert_close(h, want_states[0])


@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("enforce_sorted", [True, False])
def test_packed_sequence_in_packed_sequence_out_like_torch(kind, enforce_sorted):
    """Same PackedSequence (data, batch sizes, indices) and final state as torch, and grads."""
    module = make(kind)
    reference = (nn.LSTM if kind == "lstm" else nn.GRU)(
        3, 4, num_layers=2, bidirectional=True, dtype=DT
    )
    reference.load_state_dict(module.state_dict())
    lengths = (6, 4, 3, 1) if enforce_sorted else (3, 6, 1, 4)
    seqs = sequences(lengths)
    hx = initial_state(module, len(seqs))
    torch_hx: Any = hx if kind == "lstm" else hx[0]
    packed = pack_sequence(seqs, enforce_sorted=enforce_sorted)
    got, got_state = module(packed, torch_hx)  # torch's positional hx
    want, want_state = reference(packed, torch_hx)
    assert isinstance(got, PackedSequence)
    torch.testing.assert_close(got.data, want.data)
    assert torch.equal(got.batch_sizes, want.batch_sizes)
    for name in ("sorted_indices", "unsorted_indices"):
        assert (getattr(got, name) is None) == (getattr(want, name) is None)
        if getattr(want, name) is not None:
            assert torch.equal(getattr(got, name), getattr(want, name))
    for a, b in zip(flat(got_state), flat(want_state), strict=True):
        torch.testing.assert_close(a, b)
    leaves = [*seqs, *hx, *module.parameters()]
    mine = torch.autograd.grad(
        got.data.sum() + sum(s.sum() for s in flat(got_state)), leaves, retain_graph=True
    )
    theirs = torch.autograd.grad(
        want.data.sum() + sum(s.sum() for s in flat(want_state)),
        [*seqs, *hx, *reference.parameters()],
    )
    for a, b in zip(mine, theirs, strict=True):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_batch_first_false_runs_time_major_like_torch(kind):
    """(T, B, F) in, (T, B, H) out; with lengths, the padded steps are exact no-ops."""
    module = make(kind, batch_first=False)
    assert module.batch_first is False
    reference = (nn.LSTM if kind == "lstm" else nn.GRU)(
        3, 4, num_layers=2, bidirectional=True, dtype=DT
    )
    reference.load_state_dict(module.state_dict())
    x = torch.randn(5, 3, 3, dtype=DT)  # (T, B, F)
    got, got_state = module(x)
    want, want_state = reference(x)
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(
        got_state[0] if kind == "lstm" else got_state,
        want_state[0] if kind == "lstm" else want_state,
    )
    lengths = torch.tensor([5, 2, 0])
    out, _ = module(x, lengths)
    batch_first = make(kind)
    expected, _ = batch_first(x.transpose(0, 1), lengths)
    torch.testing.assert_close(out, expected.transpose(0, 1))


def test_batch_first_true_is_accepted_and_is_the_default():
    """Code ported from torch passes batch_first=True: same module, same results.

    Not given, varlen's calls (with lengths) run batch-first; torch's bare call is refused
    (its time axis is unclear: see tests/nn/test_dropin_axis.py).
    """
    torch.manual_seed(0)
    a = LSTM(3, 4, batch_first=True)
    torch.manual_seed(0)
    b = LSTM(3, 4)
    x, lengths = torch.randn(2, 5, 3), torch.tensor([5, 3])
    assert a.batch_first
    assert b.batch_first
    torch.testing.assert_close(a(x)[0], a(x, torch.tensor([5, 5]))[0])
    torch.testing.assert_close(a(x, lengths)[0], b(x, lengths)[0])


def test_torch_positional_hx_form():
    """module(x, (h0, c0)) is torch's call: the tuple is the initial state, not lengths."""
    module = make("lstm", batch_first=True)  # torch's call needs a stated layout
    x = torch.randn(2, 5, 3, dtype=DT)
    hx = initial_state(module, 2)
    torch.testing.assert_close(module(x, hx)[0], module(x, hx=hx)[0])
    gru = make("gru", batch_first=True)
    h0 = initial_state(gru, 2)[0]
    torch.testing.assert_close(gru(x, h0)[1], gru(x, hx=h0)[1])


@pytest.mark.filterwarnings("ignore:The PyTorch API of nested tensors:UserWarning")
@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda m, v, o: m(v, offsets=o.float()), TypeError, r"int32 or int64"),
        (lambda m, v, o: m(v, offsets=o[:-1]), ValueError, r"end at N = 14"),
        (lambda m, v, o: m(v, offsets=o.flip(0)), ValueError, r"start at 0"),
        (lambda m, v, o: m(v, torch.tensor([1]), offsets=o), ValueError, r"lengths must be None"),
        (lambda m, v, o: m(v[:, :2], offsets=o), ValueError, r"F = input_size = 3"),
        (lambda m, v, o: m(v.float(), offsets=o), TypeError, r"dtype and device of the weights"),
        (
            lambda m, v, o: m(torch.nested.nested_tensor([v[:2], v[:3]])),
            ValueError,
            r"layout torch.jagged",
        ),
    ],
)
def test_ragged_forms_reject_bad_input(call, error, match):
    """Clear errors for offsets that do not cut x, extra lengths, wrong features or layout."""
    module = make("lstm")
    values, offsets = as_values(torch.int64)([s.detach() for s in sequences()])
    with pytest.raises(error, match=r"^varlen\.nn\.LSTM: .*" + match):
        call(module, values, offsets)


def test_nested_view_with_holes():
    """A non-contiguous jagged view (narrowed rows) runs on its own real steps."""
    module = make("lstm")
    seqs = [s.detach() for s in sequences((5, 4, 6))]
    padded = torch.nested.narrow(
        torch.stack([nn.functional.pad(s, (0, 0, 0, 6 - len(s))) for s in seqs]),
        dim=1,
        start=torch.tensor([0, 1, 2]),
        length=torch.tensor([2, 3, 0]),
        layout=torch.jagged,
    )
    out, (h, _) = module(padded)
    assert out.is_nested
    pieces = [seqs[0][0:2], seqs[1][1:4], seqs[2][2:2]]
    want_outs, want_states = oracle(
        module, pieces, tuple(torch.zeros(4, 3, 4, dtype=DT) for _ in "hc")
    )
    for got, want in zip(out.unbind(), want_outs, strict=True):
        torch.testing.assert_close(got, want)
    torch.testing.assert_close(h, want_states[0])


def test_pack_padded_sequence_round_trip_matches_lengths_call():
    """pack_padded_sequence -> varlen -> PackedSequence equals varlen on (x, lengths)."""
    module = make("lstm")
    x = torch.randn(3, 6, 3, dtype=DT)
    lengths = torch.tensor([6, 2, 4])
    out, state = module(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
    direct, direct_state = module(x, lengths)
    padded, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=True)
    torch.testing.assert_close(padded, direct)
    torch.testing.assert_close(state.h, direct_state.h)


def test_a_batch_without_steps_stays_in_the_graph():
    """An x of shape (B, 0, F): zero outputs, zero states, connected to the weights (DDP)."""
    module = make("lstm")
    out, (h, c) = module(torch.zeros(3, 0, 3, dtype=DT), torch.zeros(3, dtype=torch.int64))
    assert out.shape == (3, 0, 8)
    assert not h.any()
    (h.sum() + c.sum()).backward()
    assert module.weight_hh_l1.grad is not None


@pytest.mark.filterwarnings("ignore::UserWarning")  # torch's NJT caching notes while compiling
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit inside dynamo
def test_nested_input_under_torch_compile():
    """A compiled model with a jagged input: the layer runs eagerly (graph break), same result."""
    module = make("lstm", num_layers=1, bidirectional=False)
    head = nn.Linear(4, 2, dtype=DT)
    njt, _ = as_nested([s.detach() for s in sequences()])

    def model(x: Tensor) -> Tensor:
        out, (h, _) = module(x)
        total: Tensor = head(out).values().sum() + h.sum()
        return total

    torch.testing.assert_close(torch.compile(model)(njt), model(njt))


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_unbatched_sequence_like_torch(kind):
    """One (T, F) sequence with a (L*D, H) state, as torch takes it."""
    module = make(kind)
    reference = (nn.LSTM if kind == "lstm" else nn.GRU)(
        3, 4, num_layers=2, bidirectional=True, dtype=DT
    )
    reference.load_state_dict(module.state_dict())
    x = torch.randn(5, 3, dtype=DT)
    hx = tuple(h[:, 0] for h in initial_state(module, 1))
    torch_hx: Any = hx if kind == "lstm" else hx[0]
    got, got_state = module(x, torch_hx)
    want, want_state = reference(x, torch_hx)
    torch.testing.assert_close(got, want)
    for a, b in zip(flat(got_state), flat(want_state), strict=True):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize(
    "use",
    [
        lambda m: StreamingRNN(m),
        lambda m: run_lanes(m, torch.zeros(3, 3, dtype=DT), torch.tensor([3]), num_lanes=1),
        lambda m: run_one_at_a_time(m, [torch.zeros(3, 3, dtype=DT)]),
    ],
    ids=["streaming", "lanes", "one-at-a-time"],
)
def test_batch_first_helpers_refuse_a_time_major_module(use):
    """Streaming, lanes and the oracle run batch-first chunks: a time-major module is refused."""
    with pytest.raises(ValueError, match=r"module must be batch-first, got batch_first=False"):
        use(make("lstm", bidirectional=False, batch_first=False))


def test_importing_varlen_nn_does_not_load_dynamo():
    """The eager wrapper is made on first use: `import varlen.nn` stays seconds faster."""
    code = "import sys, varlen.nn\nassert 'torch._dynamo' not in sys.modules\n"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
