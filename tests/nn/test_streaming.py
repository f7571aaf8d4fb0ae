"""Streaming with explicit state against the per-sequence oracle: chunks, streams, ids."""

from __future__ import annotations

import io
from collections.abc import Hashable
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
from varlen.nn.streaming import (
    StreamingRNN,
    StreamPool,
    StreamState,
    reset_state,
    run_one_at_a_time,
)

F_IN, H = 3, 4

# torch's own notice that oneDNN has no projected LSTM (it falls back to its native kernel).
pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections is not supported:UserWarning")


def make_module(kind, num_layers=1, *, proj=False, method="padded", dtype=torch.float64, seed=0):
    """A varlen LSTM/GRU with seeded weights."""
    torch.manual_seed(seed)
    if kind == "LSTM":
        return LSTM(F_IN, H, num_layers, proj_size=2 if proj else 0, method=method, dtype=dtype)
    return GRU(F_IN, H, num_layers, method=method, dtype=dtype)


def random_state(rnn, B, seed, dtype=torch.float64):
    """A random (non-zero) state of B streams for ``rnn``."""
    generator = torch.Generator().manual_seed(seed)
    zeros = rnn.initial_state(B)
    h = torch.randn(zeros.h.shape, generator=generator, dtype=dtype)
    c = None if zeros.c is None else torch.randn(zeros.c.shape, generator=generator, dtype=dtype)
    return StreamState(h, c)


def oracle(module, x, state, b):
    """Run stream ``b``'s whole sequence ``x (T_b, F)`` alone from its row of ``state``."""
    hx = None if state is None else tuple(s[:, b] for s in (state.h, state.c) if s is not None)
    return run_sequence(module, x, hx)


def assert_state_row(state, b, want, atol):
    """Row ``b`` of ``state`` equals the oracle's final state ``want`` (tuple of (L, H_k))."""
    got = [state.h] + ([] if state.c is None else [state.c])
    assert len(got) == len(want)
    for tensor, expected in zip(got, want, strict=True):
        torch.testing.assert_close(tensor[:, b], expected, atol=atol, rtol=0)


def cut(length, sizes):
    """Cut a length into chunk sizes taken from ``sizes`` (0 allowed); the rest goes last."""
    chunks, used = [], 0
    for size in sizes:
        size = min(size, length - used)
        chunks.append(size)
        used += size
    chunks.append(length - used)
    return chunks


@dataclass(frozen=True)
class ChunkCase:
    """Streams of given lengths fed in rounds of chunks of given sizes."""

    kind: str
    num_layers: int
    proj: bool
    method: str
    schedules: tuple[tuple[int, ...], ...]  # per stream, chunk sizes per round (0 allowed)
    padding: str
    with_state: bool
    seed: int


@st.composite
def chunk_cases(draw):
    """Random cells, depths, lengths (0 included) and chunk sizes (0 included)."""
    lengths = draw(st.lists(st.integers(0, 12), min_size=1, max_size=5))
    cuts = [cut(n, draw(st.lists(st.integers(0, 6), max_size=5))) for n in lengths]
    rounds = max(len(c) for c in cuts)
    kind = draw(st.sampled_from(["LSTM", "GRU"]))
    return ChunkCase(
        kind=kind,
        num_layers=draw(st.integers(1, 3)),
        proj=kind == "LSTM" and draw(st.booleans()),
        method=draw(st.sampled_from(["padded", "packed"])),
        schedules=tuple(tuple(c + [0] * (rounds - len(c))) for c in cuts),
        padding=draw(st.sampled_from(["post", "pre"])),
        with_state=draw(st.booleans()),
        seed=draw(st.integers(0, 2**16)),
    )


def run_chunks(case, dtype, atol):
    """Feed every stream in chunks through StreamingRNN; compare with the oracle on the whole."""
    module = make_module(
        case.kind, case.num_layers, proj=case.proj, method=case.method, dtype=dtype, seed=case.seed
    )
    rnn = StreamingRNN(module)
    B, rounds = len(case.schedules), len(case.schedules[0])
    generator = torch.Generator().manual_seed(case.seed)
    seqs = [torch.randn(sum(s), F_IN, generator=generator, dtype=dtype) for s in case.schedules]
    start = random_state(rnn, B, case.seed + 1, dtype) if case.with_state else None
    state = start
    outputs: list[list[Tensor]] = [[] for _ in range(B)]
    used = [0] * B
    for r in range(rounds):
        sizes = [case.schedules[b][r] for b in range(B)]
        T_c = max(sizes) + 1  # one extra all-pad column
        chunk = torch.full((B, T_c, F_IN), float("nan"), dtype=dtype)
        lengths = torch.tensor(sizes)
        mask = lengths_to_mask(lengths, T_c, padding=case.padding)
        for b in range(B):
            chunk[b][mask[b]] = seqs[b][used[b] : used[b] + sizes[b]]
        out, state = rnn(chunk, lengths, state, padding=case.padding)
        assert torch.equal(out[~mask], torch.zeros_like(out[~mask]))
        for b in range(B):
            outputs[b].append(out[b][mask[b]])
            used[b] += sizes[b]
    for b in range(B):
        want_out, want_state = oracle(module, seqs[b], start, b)
        torch.testing.assert_close(torch.cat(outputs[b]), want_out, atol=atol, rtol=0)
        assert_state_row(state, b, want_state, atol)


@settings(max_examples=120)
@given(case=chunk_cases())
@example(
    case=ChunkCase(
        "LSTM", 2, True, "padded", ((0, 3, 0, 2), (0, 0, 0, 0), (5, 0, 0, 0)), "post", True, 0
    )
).via("0-length chunks, an empty stream, projection, given state")
@example(case=ChunkCase("GRU", 3, False, "packed", ((1,) * 6, (6, 0, 0, 0, 0, 0)), "pre", False, 1))
def test_streaming_chunks_match_whole_sequence_oracle_float64(case):
    """Chunks of any sizes (0 included) give the whole sequence's outputs and state (float64)."""
    run_chunks(case, torch.float64, atol=1e-10)


@settings(max_examples=40)
@given(case=chunk_cases())
def test_streaming_chunks_match_whole_sequence_oracle_float32(case):
    """On float32 the chunked results match the oracle to 1e-5."""
    run_chunks(case, torch.float32, atol=1e-5)


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_streaming_equals_one_pass_of_the_module(kind):
    """Feeding chunks equals one module call on the whole padded batch, exactly."""
    module = make_module(kind, 2)
    rnn = StreamingRNN(module)
    x = torch.randn(3, 9, F_IN, dtype=torch.float64)
    lengths = torch.tensor([9, 4, 0])
    whole, whole_state = module(x, lengths)
    state: StreamState | None = None
    outs = []
    for start, stop in [(0, 2), (2, 2), (2, 7), (7, 9)]:
        part = (lengths - start).clamp(0, stop - start)
        out, state = rnn(x[:, start:stop], part, state)
        outs.append(out)
    torch.testing.assert_close(torch.cat(outs, 1), whole, atol=1e-12, rtol=0)
    assert state is not None
    torch.testing.assert_close(state.to_hx(), whole_state, atol=1e-12, rtol=0)


def test_streaming_forward_does_not_mutate_inputs():
    """The chunk, lengths and state passed in equal their clones after the call."""
    rnn = StreamingRNN(make_module("LSTM"))
    chunk = torch.randn(2, 3, F_IN, dtype=torch.float64)
    chunk[1, 2] = float("nan")
    lengths = torch.tensor([3, 2])
    state = random_state(rnn, 2, 0)
    before = (chunk.clone(), lengths.clone(), state.h.clone(), state.c.clone())
    rnn(chunk, lengths, state)
    for got, want in zip((chunk, lengths, state.h, state.c), before, strict=True):
        torch.testing.assert_close(got, want, equal_nan=True)


def test_streaming_gradients_flow_through_the_carried_state():
    """Without detach, gradients of a later chunk reach the earlier chunk's input."""
    rnn = StreamingRNN(make_module("GRU"))
    first = torch.randn(1, 3, F_IN, dtype=torch.float64, requires_grad=True)
    _, state = rnn(first)
    out, _ = rnn(torch.randn(1, 2, F_IN, dtype=torch.float64), None, state)
    (grad,) = torch.autograd.grad(out.sum(), first)
    assert grad.abs().sum() > 0
    _, detached = rnn(torch.randn(1, 2, F_IN, dtype=torch.float64), None, state.detach())
    assert detached.h.grad_fn is not None  # the new chunk still builds a graph
    assert state.detach().h.grad_fn is None


# ---- StreamState --------------------------------------------------------------------------


def lstm_state(B=3, L=2, seed=0):
    """A random LSTM state with H_out = 2 and H = 5."""
    generator = torch.Generator().manual_seed(seed)
    return StreamState(torch.randn(L, B, 2, generator=generator), torch.randn(L, B, 5))


def tensors(state):
    """The tensors of a state: [h] or [h, c]."""
    return [state.h] + ([] if state.c is None else [state.c])


@st.composite
def states_and_ops(draw):
    """A state and another of the same shape, row picks, assignment targets and done flags."""
    B, with_c = draw(st.integers(0, 6)), draw(st.booleans())
    generator = torch.Generator().manual_seed(draw(st.integers(0, 2**16)))

    def random_state():
        c = torch.randn(2, B, 4, generator=generator) if with_c else None
        return StreamState(torch.randn(2, B, 3, generator=generator), c)

    picks = draw(st.lists(st.integers(0, B - 1), max_size=8)) if B else []
    targets = draw(st.permutations(range(B)))
    targets = targets[: draw(st.integers(0, B))]
    done = draw(st.lists(st.booleans(), min_size=B, max_size=B))
    return random_state(), random_state(), picks, targets, done


@settings(max_examples=100)
@given(case=states_and_ops())
def test_stream_state_ops_match_per_row_reference(case):
    """Methods select, assign and reset equal per-row loops and never modify their inputs."""
    state, other, picks, targets, done = case
    B = state.batch_size
    before = [t.clone() for t in tensors(state) + tensors(other)]
    for got, full in zip(tensors(state.select(picks)), tensors(state), strict=True):
        want = torch.stack([full[:, i] for i in picks], 1) if picks else full[:, :0]
        assert torch.equal(got, want)
    merged = state.assign(targets, other[: len(targets)])
    for got, ours, theirs in zip(tensors(merged), tensors(state), tensors(other), strict=True):
        for b in range(B):
            source = theirs[:, targets.index(b)] if b in targets else ours[:, b]
            assert torch.equal(got[:, b], source)
    fresh = state.reset(torch.tensor(done, dtype=torch.bool))
    for got, ours in zip(tensors(fresh), tensors(state), strict=True):
        for b in range(B):
            assert torch.equal(got[:, b], torch.zeros_like(ours[:, b]) if done[b] else ours[:, b])
    for got, want in zip(tensors(state) + tensors(other), before, strict=True):
        assert torch.equal(got, want)


def test_stream_state_select_and_assign_are_inverse():
    """assign(i, select(i)) gives the state back, and select gathers rows in the given order."""
    state = lstm_state(B=4)
    picked = state.select([3, 1])
    torch.testing.assert_close(picked.h, state.h[:, [3, 1]])
    torch.testing.assert_close(picked.c, state.c[:, [3, 1]])
    back = state.assign([3, 1], picked)
    torch.testing.assert_close(back.h, state.h)
    torch.testing.assert_close(back.c, state.c)
    by_mask = state.select(torch.tensor([True, False, False, True]))
    torch.testing.assert_close(by_mask.h, state.h[:, [0, 3]])
    assert len(state.select([])) == 0


def test_stream_state_assign_replaces_only_the_given_rows():
    """Assigning writes the other state's rows at the indices and leaves the rest unchanged."""
    state, other = lstm_state(B=4, seed=0), lstm_state(B=2, seed=1)
    merged = state.assign(torch.tensor([2, 0]), other)
    torch.testing.assert_close(merged.h[:, [2, 0]], other.h)
    torch.testing.assert_close(merged.h[:, [1, 3]], state.h[:, [1, 3]])
    torch.testing.assert_close(merged.c[:, [2, 0]], other.c)


def test_stream_state_indexing_keeps_the_batch_dimension():
    """An int index gives a one-stream state, negative ints count from the end, slices work."""
    state = lstm_state(B=3)
    assert state[1].h.shape == (2, 1, 2)
    torch.testing.assert_close(state[-1].h, state.h[:, 2:])
    torch.testing.assert_close(state[np.int64(0)].c, state.c[:, :1])
    torch.testing.assert_close(state[1:].h, state.h[:, 1:])
    torch.testing.assert_close(state[[2, 2]].h, state.h[:, [2, 2]])
    assert (state.batch_size, state.num_layers, len(state)) == (3, 2, 3)


def test_stream_state_reset_zeros_done_rows_only():
    """Both reset and reset_state zero the done rows and keep the others, without mutation."""
    state = lstm_state(B=3)
    before = state.h.clone()
    for fresh in (
        state.reset(torch.tensor([False, True, False])),
        reset_state(state, [False, True, False]),
    ):
        assert torch.equal(fresh.h[:, 1], torch.zeros(2, 2))
        assert fresh.c is not None
        assert torch.equal(fresh.c[:, 1], torch.zeros(2, 5))
        torch.testing.assert_close(fresh.h[:, [0, 2]], state.h[:, [0, 2]])
    torch.testing.assert_close(state.h, before)


def test_stream_state_state_dict_round_trips_through_torch_save():
    """state_dict -> torch.save -> torch.load -> from_state_dict gives equal tensors."""
    for state in (lstm_state(), StreamState(torch.randn(1, 2, 3))):
        buffer = io.BytesIO()
        torch.save(state.state_dict(), buffer)
        buffer.seek(0)
        loaded = StreamState.from_state_dict(torch.load(buffer))
        torch.testing.assert_close(loaded.h, state.h)
        assert (loaded.c is None) == (state.c is None)
        if state.c is not None:
            torch.testing.assert_close(loaded.c, state.c)


def test_stream_state_state_dict_is_a_detached_copy():
    """The saved tensors do not alias the state and carry no graph."""
    h = torch.randn(1, 2, 3, requires_grad=True)
    saved = StreamState(h * 2).state_dict()
    assert saved["h"].grad_fn is None
    saved["h"].zero_()
    assert (h * 2).abs().sum() > 0


def test_stream_state_to_moves_dtype_and_hx_round_trips():
    """to() casts every tensor; from_hx(to_hx()) gives the same tensors for LSTM and GRU."""
    state = lstm_state()
    cast = state.to(dtype=torch.float64)
    assert cast.h.dtype == cast.c.dtype == torch.float64
    assert state.to("cpu").h is state.h
    again = StreamState.from_hx(state.to_hx())
    assert again.h is state.h
    assert again.c is state.c
    gru = StreamState(torch.randn(1, 2, 3))
    assert StreamState.from_hx(gru.to_hx()).h is gru.h
    assert "h=(2, 3, 2)" in repr(state)


def test_stream_state_concatenate_joins_streams_in_order():
    """Concatenating stacks the streams of several states along B."""
    a, b = lstm_state(B=2, seed=0), lstm_state(B=0, seed=1)
    c = lstm_state(B=1, seed=2)
    joined = StreamState.concatenate([a, b, c])
    torch.testing.assert_close(joined.h, torch.cat([a.h, c.h], 1))
    torch.testing.assert_close(joined.c, torch.cat([a.c, c.c], 1))


@pytest.mark.parametrize(
    ("h", "c", "error", "match"),
    [
        ([1.0], None, TypeError, "h must be a Tensor"),
        (torch.zeros(2, 3), None, ValueError, r"h must have shape \(L, B, H_out\)"),
        (torch.zeros(2, 3, 4), "c", TypeError, "c must be a Tensor"),
        (torch.zeros(2, 3, 4), torch.zeros(2, 2, 4), ValueError, r"c must have shape .* \(2, 3\)"),
        (torch.zeros(2, 3, 4), torch.zeros(2, 3, 5, dtype=torch.float64), TypeError, "dtype"),
    ],
)
def test_stream_state_rejects_malformed_tensors(h, c, error, match):
    """A state whose tensors are not (L, B, H) with matching (L, B), dtype and device fails."""
    with pytest.raises(error, match=match):
        StreamState(h, c)


def test_stream_state_methods_reject_bad_arguments():
    """select, assign, reset, indexing, concatenate and from_state_dict validate their input."""
    state = lstm_state(B=3)
    gru = StreamState(torch.zeros(2, 1, 2))
    with pytest.raises(ValueError, match=r"bool indices mask must have shape \(B,\) = \(3,\)"):
        state.select(torch.tensor([True, False]))
    with pytest.raises(TypeError, match="indices must be a 1-D sequence of ints"):
        state.select(torch.tensor([0.5]))
    with pytest.raises(IndexError, match=r"index must be in \[-3, 3\), got 3"):
        state[3]
    with pytest.raises(TypeError, match="other must be a StreamState"):
        state.assign([0], gru.h)
    with pytest.raises(TypeError, match="one cell kind"):
        state.assign([0], gru)
    with pytest.raises(ValueError, match="other must hold K = 2 streams"):
        state.assign([0, 1], state[0])
    with pytest.raises(TypeError, match="done must be bool"):
        state.reset(torch.tensor([0, 1, 0]))
    with pytest.raises(ValueError, match=r"done must have shape \(B,\) = \(3,\)"):
        state.reset(torch.tensor([True]))
    with pytest.raises(ValueError, match="states must hold at least one state"):
        StreamState.concatenate([])
    with pytest.raises(TypeError, match="share dtype and device"):
        StreamState.concatenate([state, state.to(dtype=torch.float64)])
    with pytest.raises(ValueError, match=r"same \(L, H_out, H\)"):
        StreamState.concatenate([state, lstm_state(L=1)])
    with pytest.raises(ValueError, match="must have key 'h'"):
        StreamState.from_state_dict({"c": state.c})


# ---- StreamingRNN errors ------------------------------------------------------------------


def test_streaming_rnn_rejects_bidirectional_and_foreign_modules():
    """A bidirectional module cannot stream; torch's own LSTM is not accepted."""
    with pytest.raises(ValueError, match="must be unidirectional, got bidirectional=True"):
        StreamingRNN(LSTM(F_IN, H, bidirectional=True))
    with pytest.raises(TypeError, match=r"must be a varlen\.nn\.LSTM or varlen\.nn\.GRU, got LSTM"):
        StreamingRNN(torch.nn.LSTM(F_IN, H, batch_first=True))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("other", "error", "match"),
    [
        (lambda: make_module("LSTM", 2), ValueError, "L = 1 layers"),  # more layers
        (lambda: LSTM(F_IN, H + 1, dtype=torch.float64), ValueError, "H_out = 4 and H = 4"),
        (lambda: LSTM(F_IN, H, proj_size=2, dtype=torch.float64), ValueError, "H_out = 4"),
        (lambda: make_module("GRU"), TypeError, "must be an LSTM state"),
        (lambda: LSTM(F_IN, H), TypeError, "dtype and device of the weights"),
    ],
    ids=["layers", "hidden", "proj", "kind", "dtype"],
)
def test_streaming_rnn_rejects_a_state_from_another_model(other, error, match):
    """A state made for another model's shape, cell kind or dtype is refused before any work."""
    rnn = StreamingRNN(make_module("LSTM", 1))
    foreign = StreamingRNN(other()).initial_state(2)
    with pytest.raises(error, match=match):
        rnn(torch.randn(2, 3, F_IN, dtype=torch.float64), None, foreign)


def test_streaming_rnn_rejects_wrong_batch_and_arguments():
    """A state for another number of streams, a non-state, a bad chunk or batch size fails."""
    rnn = StreamingRNN(make_module("GRU"))
    chunk = torch.randn(2, 3, F_IN, dtype=torch.float64)
    with pytest.raises(ValueError, match="state must hold B = 2 streams, one per chunk row, got 3"):
        rnn(chunk, None, rnn.initial_state(3))
    with pytest.raises(TypeError, match="state must be a StreamState or None, got Tensor"):
        rnn(chunk, None, torch.zeros(1, 2, H))
    with pytest.raises(TypeError, match="must be a GRU state"):
        rnn(chunk, None, StreamState(torch.zeros(1, 2, H), torch.zeros(1, 2, H)))
    with pytest.raises(TypeError, match="chunk must be a Tensor"):
        rnn(chunk.numpy())
    with pytest.raises(ValueError, match=r"chunk must have shape \(B, T_c, F\)"):
        rnn(chunk[0])
    with pytest.raises(TypeError, match="batch_size must be an int"):
        rnn.initial_state(2.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="batch_size must be >= 0"):
        rnn.initial_state(-1)


# ---- StreamPool ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PoolCase:
    """Streams that join at some round, send chunks (or skip rounds) and finish when done."""

    kind: str
    num_layers: int
    joins: tuple[int, ...]  # round at which each stream joins
    schedules: tuple[tuple[int, ...], ...]  # chunk sizes, one per round after joining
    skips: tuple[tuple[bool, ...], ...]  # whether a round's chunk is left out of the call
    as_tensor: bool
    seed: int


@st.composite
def pool_cases(draw):
    """Streams joining late, skipping rounds, 0-length chunks, finishing at different times."""
    S = draw(st.integers(1, 5))
    lengths = draw(st.lists(st.integers(0, 10), min_size=S, max_size=S))
    schedules = tuple(tuple(cut(n, draw(st.lists(st.integers(0, 5), max_size=4)))) for n in lengths)
    skips = tuple(
        tuple(draw(st.lists(st.booleans(), min_size=len(s), max_size=len(s)))) for s in schedules
    )
    return PoolCase(
        kind=draw(st.sampled_from(["LSTM", "GRU"])),
        num_layers=draw(st.integers(1, 2)),
        joins=tuple(draw(st.lists(st.integers(0, 3), min_size=S, max_size=S))),
        schedules=schedules,
        skips=skips,
        as_tensor=draw(st.booleans()),
        seed=draw(st.integers(0, 2**16)),
    )


def simulate_pool(case):
    """Run the case through a StreamPool; return (module, sequences, outputs, final states)."""
    module = make_module(case.kind, case.num_layers, seed=case.seed)
    pool = StreamPool(module)
    rng = np.random.default_rng(case.seed)
    ids: list[Hashable] = [("sensor", i) if i % 2 else f"s{i}" for i in range(len(case.joins))]
    seqs = [rng.normal(size=(sum(s), F_IN)) for s in case.schedules]
    outputs: dict[Hashable, list[Tensor]] = {stream_id: [] for stream_id in ids}
    finals: dict[Hashable, StreamState] = {}
    cursor, used = [0] * len(ids), [0] * len(ids)
    for r in range(max(case.joins) + 2 * max(len(s) for s in case.schedules) + 1):
        pool.join([stream_id for i, stream_id in enumerate(ids) if case.joins[i] == r])
        chunks = {}
        for i, stream_id in enumerate(ids):
            if stream_id not in pool or cursor[i] == len(case.schedules[i]):
                continue
            if case.skips[i][cursor[i]] and r % 2:  # leave this stream out of this round
                continue
            size = case.schedules[i][cursor[i]]
            part = seqs[i][used[i] : used[i] + size]
            chunks[stream_id] = torch.from_numpy(part) if case.as_tensor else part
            cursor[i], used[i] = cursor[i] + 1, used[i] + size
        for stream_id, out in pool.step(list(chunks.items())[::-1]).items():
            outputs[stream_id].append(out)
        done = [s for i, s in enumerate(ids) if s in pool and cursor[i] == len(case.schedules[i])]
        finals.update(zip(done, [pool.finish([s]) for s in done], strict=True))
    assert len(pool) == 0
    assert set(finals) == set(ids)
    return module, ids, seqs, outputs, finals


@settings(max_examples=60)
@given(case=pool_cases())
@example(
    case=PoolCase(
        "LSTM",
        2,
        (0, 1, 0),
        ((0, 4), (3,), (2, 0, 1)),
        ((True, False), (False,), (False, True, True)),
        as_tensor=False,
        seed=0,
    )
).via("late join, skipped rounds, 0-length chunks")
def test_stream_pool_matches_per_stream_oracle(case):
    """Streams joining, skipping and finishing at any time get their own sequence's results."""
    module, ids, seqs, outputs, finals = simulate_pool(case)
    for i, stream_id in enumerate(ids):
        want_out, want_state = run_sequence(module, torch.from_numpy(seqs[i]))
        got = torch.cat(outputs[stream_id]) if outputs[stream_id] else torch.zeros(0, H)
        torch.testing.assert_close(got, want_out.to(got.dtype), atol=1e-10, rtol=0)
        assert_state_row(finals[stream_id], 0, want_state, 1e-10)


def test_stream_pool_save_and_restore_continues_exactly():
    """A pool restored from its state_dict continues like the uninterrupted pool."""
    module = make_module("LSTM", 2)
    rng = np.random.default_rng(0)
    first = {"a": rng.normal(size=(3, F_IN)), "b": rng.normal(size=(5, F_IN))}
    second = {"b": rng.normal(size=(2, F_IN)), "a": rng.normal(size=(4, F_IN))}
    pool = StreamPool(module)
    pool.join(["a", "b", "c"])
    pool.finish(["c"])
    pool.step(first)
    buffer = io.BytesIO()
    torch.save(pool.state_dict(), buffer)
    buffer.seek(0)
    restored = StreamPool(StreamingRNN(module))
    restored.load_state_dict(torch.load(buffer, weights_only=False))
    assert restored.ids == ("a", "b")
    want, got = pool.step(second), restored.step(second)
    for stream_id in ("a", "b"):
        torch.testing.assert_close(got[stream_id], want[stream_id])
    with pytest.raises(ValueError, match="finished stream"):
        restored.step({"c": np.zeros((1, F_IN))})


def test_stream_pool_join_with_a_given_state_and_state_of():
    """A stream may join with a saved state and continues from it; state_of reads one row."""
    module = make_module("GRU")
    pool = StreamPool(module)
    saved = StreamState(torch.randn(1, 1, H, dtype=torch.float64))
    pool.join(["x"], state=saved)
    torch.testing.assert_close(pool.state_of("x").h, saved.h)
    chunk = torch.randn(4, F_IN, dtype=torch.float64)
    out = pool.step({"x": chunk})["x"]
    want, _ = run_sequence(module, chunk, (saved.h[:, 0],))
    torch.testing.assert_close(out, want, atol=1e-10, rtol=0)


def test_stream_pool_keeps_no_graph_and_does_not_mutate_chunks():
    """Stored states are detached and the caller's chunk arrays are unchanged."""
    pool = StreamPool(make_module("LSTM"))
    pool.join([1, 2])
    chunk = np.random.default_rng(0).normal(size=(3, F_IN))
    before = chunk.copy()
    out = pool.step({1: chunk, 2: chunk[:0]})
    assert out[1].requires_grad
    assert out[2].shape == (0, H)
    assert pool.state.h.grad_fn is None
    np.testing.assert_array_equal(chunk, before)
    assert pool.step({}) == {}


def test_stream_pool_errors_name_the_stream():
    """Chunks for unknown, finished or repeated ids and malformed chunks fail with the id."""
    pool = StreamPool(make_module("LSTM"))
    pool.join(["a", "b"])
    pool.finish(["b"])
    ok = np.zeros((2, F_IN))
    with pytest.raises(ValueError, match=r"stream 'zz' must be active, got an unknown id"):
        pool.step({"zz": ok})
    with pytest.raises(ValueError, match=r"stream 'b' must be active, got a finished stream"):
        pool.step({"b": ok})
    with pytest.raises(ValueError, match=r"stream 'b' must be active"):
        pool.finish(["b"])
    with pytest.raises(ValueError, match=r"stream 'q' must be active"):
        pool.state_of("q")
    with pytest.raises(ValueError, match="stream ids must be distinct, got 'a' twice"):
        pool.step([("a", ok), ("a", ok)])
    with pytest.raises(ValueError, match="stream_ids must be distinct"):
        pool.finish(["a", "a"])
    with pytest.raises(ValueError, match="stream ids must be new, got 'a'"):
        pool.join(["a"])
    with pytest.raises(ValueError, match=r"chunk of stream 'a' must have shape \(T_c, F\)"):
        pool.step({"a": np.zeros((2, F_IN + 1))})
    with pytest.raises(TypeError, match="chunk of stream 'a' must be a NumPy array or tensor"):
        pool.step({"a": [[0.0] * F_IN]})
    with pytest.raises(ValueError, match="state must hold B = 1 streams"):
        pool.join(["c"], state=StreamingRNN(make_module("LSTM")).initial_state(2))


def test_stream_pool_load_state_dict_rejects_bad_input():
    """A state_dict with other keys, repeated ids or ids not matching the state fails."""
    pool = StreamPool(make_module("GRU"))
    pool.join(["a", "b"])
    saved = pool.state_dict()
    with pytest.raises(ValueError, match="state_dict must have keys"):
        pool.load_state_dict({"ids": []})
    with pytest.raises(ValueError, match="ids must be distinct"):
        pool.load_state_dict({**saved, "ids": ["a", "a"]})
    with pytest.raises(ValueError, match="state must hold B = 3 streams"):
        pool.load_state_dict({**saved, "ids": ["a", "b", "c"]})


# ---- run_one_at_a_time --------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
def test_run_one_at_a_time_matches_oracle(kind, bidirectional):
    """Each sequence alone from zeros: outputs and states equal the per-sequence oracle."""
    torch.manual_seed(0)
    cls = LSTM if kind == "LSTM" else GRU
    module = cls(F_IN, H, 2, bidirectional=bidirectional, dtype=torch.float64)
    seqs = [torch.randn(n, F_IN, dtype=torch.float64) for n in (5, 0, 1, 3)]
    outputs, state = run_one_at_a_time(module, seqs)
    states = tuple(state) if kind == "LSTM" else (state,)
    for b, seq in enumerate(seqs):
        want_out, want_state = run_sequence(module, seq)
        torch.testing.assert_close(outputs[b], want_out, atol=1e-10, rtol=0)
        for got, want in zip(states, want_state, strict=True):
            torch.testing.assert_close(got[:, b], want, atol=1e-10, rtol=0)


def test_run_one_at_a_time_handles_no_sequences():
    """B = 0 gives no outputs and an (L * D, 0, H) state."""
    outputs, (h, c) = run_one_at_a_time(make_module("LSTM", 2), [])
    assert outputs == []
    assert h.shape == (2, 0, H)
    assert c.shape == (2, 0, H)


def test_run_one_at_a_time_differs_from_carrying_state_across_sequences():
    """Carrying state from one sequence into the next (stateful=True) changes the results."""
    module = make_module("GRU")
    seqs = [torch.randn(4, F_IN, dtype=torch.float64) for _ in range(2)]
    outputs, _ = run_one_at_a_time(module, seqs)
    _, carried = module(seqs[0][None], torch.tensor([4]))
    leaked, _ = module(seqs[1][None], torch.tensor([4]), hx=carried)
    assert (leaked[0] - outputs[1]).abs().max() > 1e-3


def test_run_one_at_a_time_rejects_bad_input():
    """A foreign module, a non-tensor or a wrongly shaped sequence fails, naming its index."""
    module = make_module("GRU")
    with pytest.raises(TypeError, match=r"module must be a varlen\.nn\.LSTM"):
        run_one_at_a_time(torch.nn.GRU(F_IN, H), [])  # type: ignore[call-overload]
    with pytest.raises(TypeError, match=r"sequences\[1\] must be a Tensor"):
        run_one_at_a_time(module, [torch.zeros(1, F_IN), np.zeros((1, F_IN))])  # type: ignore[list-item]
    with pytest.raises(ValueError, match=r"sequences\[0\] must have shape \(T_i, F\) = \(T_i, 3\)"):
        run_one_at_a_time(module, [torch.zeros(1, 2)])


@pytest.mark.parametrize("ids", ["car7", "sensor42", b"ab", 7])
def test_pool_refuses_a_plain_string_as_ids(ids):
    """join("car7") used to join 'c', 'a', 'r', '7': a string is an error naming the fix."""
    pool = StreamPool(LSTM(2, 3))
    with pytest.raises(TypeError, match=r"stream_ids must be a list of ids, got .* Pass \["):
        pool.join(ids)
    with pytest.raises(TypeError, match=r"stream_ids must be a list of ids"):
        pool.finish(ids)
    assert len(pool.ids) == 0
    pool.join([ids])  # one id, as a list
    assert list(pool.ids) == [ids]


def test_pool_step_refuses_a_string():
    """step("ab") is not a chunk mapping."""
    pool = StreamPool(LSTM(2, 3))
    with pytest.raises(TypeError, match=r"chunks must be"):
        pool.step("ab")  # type: ignore[arg-type]
