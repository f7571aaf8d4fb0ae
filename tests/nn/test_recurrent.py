"""varlen.nn.LSTM and GRU against the per-sequence oracle: the central promise."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import event, example, given, settings
from hypothesis import strategies as st
from torch import Tensor, nn

from tests.reference.recurrent import run_sequence
from varlen.data.grid import LengthGrid
from varlen.data.ragged import Ragged
from varlen.nn import GRU, LSTM
from varlen.nn import recurrent as recurrent_module
from varlen.nn._gates import cell_of
from varlen.nn._plans import (
    DEFAULT_TUNING,
    LSTM_CALL_WORK,
    LSTM_SPILL_FLOATS,
    LSTM_STEP_WORK,
    Plan,
    Tuning,
    gru_tuning,
    lstm_tuning,
    plan_call,
    row_groups,
)
from varlen.nn.functional import lengths_to_mask

F_IN, H = 3, 4

# torch's own notice that oneDNN has no projected LSTM (it falls back to its native kernel).
pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections is not supported:UserWarning")


@dataclass(frozen=True)
class Case:
    """One randomly drawn configuration and batch."""

    kind: str
    lengths: tuple[int, ...]
    T: int
    padding: str
    bidirectional: bool
    num_layers: int
    proj: bool
    with_hx: bool
    method: str
    holes: bool
    pad_value: float
    seed: int
    bias: bool = True


@st.composite
def cases(draw: st.DrawFn) -> Case:
    """Random lengths (0, 1, equal, skewed), sides, directions, depths, cells and methods."""
    lengths = draw(
        st.one_of(
            st.lists(st.integers(0, 9), min_size=1, max_size=6),
            st.lists(st.sampled_from([0, 1]), min_size=1, max_size=4),
            st.integers(1, 9).flatmap(lambda n: st.lists(st.just(n), min_size=1, max_size=4)),
            st.lists(st.sampled_from([1, 1, 1, 14]), min_size=2, max_size=6),  # skewed
        )
    )
    T = max(lengths) + draw(st.integers(0, 2))
    return Case(
        kind=draw(st.sampled_from(["LSTM", "GRU"])),
        lengths=tuple(lengths),
        T=T,
        padding=draw(st.sampled_from(["pre", "post"])),
        bidirectional=draw(st.booleans()),
        num_layers=draw(st.integers(1, 3)),
        proj=draw(st.booleans()),
        with_hx=draw(st.booleans()),
        method=draw(st.sampled_from(["padded", "packed"])),
        holes=draw(st.booleans()),
        pad_value=draw(st.sampled_from([0.0, float("nan"), 1e6, -3.0])),
        seed=draw(st.integers(0, 2**16)),
        bias=draw(st.booleans()),
    )


def _module(case: Case, dtype: torch.dtype = torch.float64) -> LSTM | GRU:
    torch.manual_seed(case.seed)
    common: dict[str, Any] = {
        "bidirectional": case.bidirectional,
        "method": case.method,
        "dtype": dtype,
    }
    if case.kind == "LSTM":
        return LSTM(F_IN, H, case.num_layers, proj_size=2 if case.proj else 0, **common)
    return GRU(F_IN, H, case.num_layers, **common)


def _batch(case: Case, dtype: torch.dtype) -> tuple[Tensor, Tensor, Tensor]:
    """Return ``x (B, T, F)`` with pad values at pads, ``lengths``, and the real-step mask."""
    generator = torch.Generator().manual_seed(case.seed)
    B = len(case.lengths)
    x = torch.randn(B, case.T, F_IN, generator=generator, dtype=dtype)
    lengths = torch.tensor(case.lengths)
    if case.holes:
        mask = torch.rand(B, case.T, generator=generator) < 0.6
    else:
        mask = lengths_to_mask(lengths, case.T, padding=case.padding)  # type: ignore[arg-type]
    x = x.masked_fill(~mask[:, :, None], case.pad_value)
    return x.requires_grad_(), lengths, mask


def _initial_state(module: nn.RNNBase, case: Case, dtype: torch.dtype) -> tuple[Tensor, ...] | None:
    if not case.with_hx:
        return None
    generator = torch.Generator().manual_seed(case.seed + 1)
    D = 2 if module.bidirectional else 1
    B = len(case.lengths)
    sizes = [module.proj_size or H, H][: 2 if case.kind == "LSTM" else 1]
    shape = (module.num_layers * D, B)
    return tuple(
        torch.randn(*shape, size, generator=generator, dtype=dtype).requires_grad_()
        for size in sizes
    )


def _run_varlen(module, case, x, lengths, mask, hx, tuning=None):
    state_arg = (hx if case.kind == "LSTM" else hx[0]) if hx is not None else None
    if tuning is not None:  # the library's own forward, with other tuning constants
        given = (
            {"lengths": None, "mask": mask} if case.holes else {"lengths": lengths, "mask": None}
        )
        out, state = recurrent_module._forward(
            module, cell_of(module), x, given["lengths"], mask=given["mask"],
            padding="post" if case.holes else case.padding, hx=state_arg,
            method=case.method, tuning=tuning,
        )  # fmt: skip
        return out, tuple(state)
    if case.holes:
        out, state = module(x, mask=mask, hx=state_arg)
    else:
        out, state = module(x, lengths, padding=case.padding, hx=state_arg)
    return out, (tuple(state) if case.kind == "LSTM" else (state,))


def _loss(outputs: list[Tensor], states: list[tuple[Tensor, ...]], seed: int) -> Tensor:
    """A random linear functional of every output and state, so gradients test everything."""
    generator = torch.Generator().manual_seed(seed)
    total = torch.zeros((), dtype=torch.float64)
    for tensor in [*outputs, *(s for group in states for s in group)]:
        weights = torch.randn(tensor.shape, generator=generator, dtype=tensor.dtype)
        total = total + (tensor * weights).sum()
    return total


def _compare(case: Case, dtype: torch.dtype, atol: float, tuning: Tuning | None = None) -> None:
    module = _module(case, dtype)
    x, lengths, mask = _batch(case, dtype)
    hx = _initial_state(module, case, dtype)
    out, state = _run_varlen(module, case, x, lengths, mask, hx, tuning)
    B = len(case.lengths)

    # Outputs: exactly zero at pads; the oracle's outputs at real steps.
    assert torch.equal(out[~mask], torch.zeros_like(out[~mask]))
    ref_outputs, ref_states = [], []
    for b in range(B):
        row_hx = tuple(s[:, b] for s in hx) if hx is not None else None
        ref_out, ref_state = run_sequence(module, x[b][mask[b]], row_hx)
        ref_outputs.append(ref_out)
        ref_states.append(ref_state)
        torch.testing.assert_close(out[b][mask[b]], ref_out, atol=atol, rtol=0)
        for got, want in zip(state, ref_state, strict=True):
            torch.testing.assert_close(got[:, b], want, atol=atol, rtol=0)

    # Gradients with respect to the inputs, the initial state and every weight.
    leaves = [x, *(hx or ()), *module.parameters()]
    ours = [out[b][mask[b]] for b in range(B)]
    ours_states = [tuple(s[:, b] for s in state) for b in range(B)]
    got_grads = _grads(_loss(ours, ours_states, case.seed), leaves)
    ref_grads = _grads(_loss(ref_outputs, ref_states, case.seed), leaves)
    for got, want in zip(got_grads, ref_grads, strict=True):
        torch.testing.assert_close(got, want, atol=atol * 10, rtol=0)


def _grads(loss: Tensor, leaves: list[Tensor]) -> list[Tensor]:
    """Gradients of ``loss`` for each leaf, zeros where it does not depend on the leaf."""
    if not loss.requires_grad:
        return [torch.zeros_like(leaf) for leaf in leaves]
    grads = torch.autograd.grad(loss, leaves, allow_unused=True)
    return [
        torch.zeros_like(leaf) if g is None else g for g, leaf in zip(grads, leaves, strict=True)
    ]


@settings(max_examples=200)
@given(case=cases())
@example(
    case=Case("LSTM", (0, 0), 0, "pre", True, 2, True, True, "padded", False, float("nan"), 0)
).via("all lengths 0 and T = 0")
@example(
    case=Case("GRU", (1, 9, 0), 9, "pre", True, 3, False, True, "padded", False, float("nan"), 1)
).via("length 1 and 0 beside a long one, pre-padding, given hx")
def test_recurrent_matches_per_sequence_oracle_float64(case):
    """Outputs, final states and all gradients equal each sequence run alone (float64, 1e-10)."""
    _compare(case, torch.float64, atol=1e-10)


@settings(max_examples=60)
@given(case=cases())
def test_recurrent_matches_per_sequence_oracle_float32(case):
    """On float32 (the fused oneDNN kernel), results match the oracle to 1e-5."""
    _compare(case, torch.float32, atol=1e-5)


@st.composite
def uneven_cases(draw: st.DrawFn) -> Case:
    """Batches of 8-24 rows with very uneven lengths: the ones split into groups of rows."""
    lengths = draw(
        st.one_of(
            st.lists(st.integers(0, 12), min_size=8, max_size=24),
            st.lists(st.sampled_from([0, 1, 1, 2, 20]), min_size=8, max_size=24),  # skewed
        )
    )
    case = draw(cases())
    return replace(case, lengths=tuple(lengths), T=max(lengths) + draw(st.integers(0, 2)))


FREE_CALLS = Tuning(call_cost=0)


@settings(max_examples=60)
@given(case=uneven_cases())
def test_recurrent_uneven_batches_match_the_oracle_float64(case):
    """Uneven batches (run as groups of rows of similar length) match the oracle at 1e-10.

    Calls are made free here (a tuning parameter), so that even these small batches are split
    whenever a split saves padded steps.
    """
    split = row_groups(torch.tensor(case.lengths), case.T, FREE_CALLS) is not None
    event(f"split into groups: {split}")
    _compare(case, torch.float64, atol=1e-10, tuning=FREE_CALLS)


MULTIPLY = Tuning(select_limit=0)  # pads zeroed by the multiplication at every size
DEFAULT = Tuning()


@settings(max_examples=40)
@given(case=cases())
def test_recurrent_matches_the_oracle_with_either_pad_zeroing(case):
    """Small batches zero their pads by a select, large ones by a multiplication: both exact.

    The default tuning selects at the sizes tested above; this runs the multiplication.
    """
    _compare(case, torch.float64, atol=1e-10, tuning=MULTIPLY)


def test_the_plan_zeroes_pads_by_a_select_up_to_its_limit():
    """``select_limit`` (a tuning parameter) bounds ``B * T * F``; only eagerly on the CPU."""

    def plan(
        *, F: int = 4, graph: bool = False, total: int | None = None, tuning: Tuning = DEFAULT
    ) -> Plan:
        return plan_call(
            B=2, T=3, host_lengths=torch.tensor([3, 1]), unmasked=False, method="padded",
            device_type="cpu", graph=graph, tuning=tuning, F=F, total=total,
        )  # fmt: skip

    assert plan().select
    assert not plan(tuning=MULTIPLY).select
    assert not plan(graph=True).select
    assert not plan(F=10_000).select
    assert plan(total=4).route == "padded"
    assert plan(total=6).route == "full"  # the total read on the host decides


@pytest.mark.parametrize("layout", ["post", "pre"])
def test_pad_steps_from_the_kept_step_index_match_a_fresh_arange(layout):
    """The kept (grown, sliced) step index gives the pad mask of a fresh ``arange``."""
    for T in (1, 5, 70, 3, 200, 64, 0):
        lengths = torch.randint(0, T + 1, (6,), generator=torch.Generator().manual_seed(T))
        kept = recurrent_module._pad_steps(lengths, T, layout, graph=False)
        fresh = recurrent_module._pad_steps(lengths, T, layout, graph=True)
        assert torch.equal(kept, fresh)


def test_recurrent_splits_an_uneven_batch_into_groups():
    """A batch of skewed lengths is planned as groups of rows; results match the oracle."""
    case = Case(
        "LSTM", (1,) * 30 + (40, 0), 40, "pre", True, 2, False, True, "padded", holes=False,
        pad_value=float("nan"), seed=5,
    )  # fmt: skip
    plan = plan_call(
        B=32, T=40, host_lengths=torch.tensor(case.lengths), unmasked=False, method="padded",
        device_type="cpu", graph=False,
    )  # fmt: skip
    assert plan.route == "groups"
    assert len(plan.groups) > 1
    assert sorted(torch.cat(plan.groups).tolist()) == list(range(32))
    _compare(case, torch.float64, atol=1e-10)


def test_row_groups_follow_their_tuning_parameters():
    """The split depends on the constants passed: costly calls or a high bar keep the batch."""
    lengths = torch.tensor([1] * 30 + [40, 0])
    assert row_groups(lengths, 40) is not None
    assert row_groups(lengths, 40, Tuning(call_cost=10_000)) is None
    assert row_groups(lengths, 40, Tuning(min_rows=64)) is None
    assert row_groups(lengths, 40, Tuning(min_saving=0.99)) is None
    assert row_groups(torch.tensor([3] * 16), 4) is None  # 75% real: nothing to save
    assert row_groups(torch.zeros(16, dtype=torch.int64), 4) is None  # no real step


def test_a_step_by_step_kernel_pays_for_the_steps_each_group_runs():
    """With a cost per step run, splitting long uniform lengths into groups does not pay.

    Lengths uniform in [1, 300] over 128 rows: groups save cells, but each group of a
    step-by-step kernel (torch's CPU GRU) runs its own ~300 steps; the GRU's
    tuning declines the split for a small layer and keeps it for a large one, as measured.
    """
    lengths = torch.arange(1, 301, 300 / 128).long()[:128]
    assert row_groups(lengths, 300) is not None  # fused kernel: calls cost, steps do not
    assert row_groups(lengths, 300, Tuning(step_cost=12)) is None
    big = torch.arange(1, 101, 100 / 256).long()[:256]  # 256 rows: the rows' work dominates
    assert row_groups(big, 100, Tuning(step_cost=12)) is not None
    # The GRU's own: a step's fixed cost counts, more for smaller layers, with or without
    # autograd.
    assert gru_tuning(64, 8).step_cost == 12
    assert gru_tuning(128, 32).step_cost == 3
    gru = GRU(8, 64)
    with torch.no_grad():
        assert recurrent_module.cell_tuning(gru, cell_of(gru)).step_cost == 12
    assert recurrent_module.cell_tuning(gru, cell_of(gru)).step_cost == 12
    lstm = LSTM(8, 64)
    assert recurrent_module.cell_tuning(lstm, cell_of(lstm)) == lstm_tuning(64, 8, training=True)


def test_the_lstm_tuning_counts_fixed_costs_in_the_layers_own_cells():
    """A group's and a step's fixed costs weigh more against a narrow layer's cheap cells.

    Pure planning: the narrow layer declines a split that the wide one takes; only training
    counts the values kept for the backward pass; stacked training keeps the default.
    """
    narrow, wide = lstm_tuning(16, 4, training=False), lstm_tuning(256, 64, training=False)
    assert narrow.call_cost > wide.call_cost
    assert narrow.step_cost > wide.step_cost
    assert narrow.call_cost == round(LSTM_CALL_WORK[0] / (16 * 20))
    assert narrow.step_cost == round(LSTM_STEP_WORK / (16 * 20))
    assert narrow.spill_floats == 0
    lengths = torch.arange(1, 51, 50 / 128).long()[:128]  # 128 rows, uniform in [1, 50]
    assert row_groups(lengths, 50, narrow) is None
    assert row_groups(lengths, 50, wide) is not None
    trained = lstm_tuning(64, 12, training=True)
    assert (trained.cell_floats, trained.spill_floats) == (4 * 64, LSTM_SPILL_FLOATS)
    assert trained.call_cost == round(LSTM_CALL_WORK[1] / (64 * 76))
    assert lstm_tuning(64, 12, training=True, stacks=2) is DEFAULT_TUNING
    bidirectional = LSTM(12, 64, bidirectional=True)
    with torch.no_grad():
        expected = lstm_tuning(64, 12, training=False, stacks=2)
        assert recurrent_module.cell_tuning(bidirectional, cell_of(bidirectional)) == expected
    assert expected.call_cost == round(LSTM_CALL_WORK[0] / (2 * 64 * 76))


def test_a_training_call_past_its_spill_size_splits_even_without_pads_to_skip():
    """Cells of a call keeping too many values for the backward cost more: split them.

    128 rows of 100 steps, one row short by a step (a batch with nearly nothing to skip):
    with the kept values counted (4 x 64 per cell: 3.3 M past 2 M) the split into groups
    of at most 2 M is cheaper; without, or under the limit, the batch stays whole.
    """
    lengths = torch.full((128,), 100)
    lengths[0] = 99
    plain = Tuning(call_cost=100, group_grid=None)
    assert row_groups(lengths, 100, plain) is None
    spilling = replace(plain, cell_floats=256, spill_floats=2_000_000, spill_cost=1.5)
    split = row_groups(lengths, 100, spilling)
    assert split is not None
    groups, steps = split
    assert all(len(rows) * s * 256 <= 2_000_000 for rows, s in zip(groups, steps, strict=True))
    assert sorted(torch.cat(groups).tolist()) == list(range(128))
    assert spilling.run_cost(64, 100) == 6400
    assert spilling.run_cost(128, 100) == 1.5 * 12800
    assert row_groups(lengths, 100, replace(spilling, spill_floats=4_000_000)) is None


@pytest.mark.parametrize(
    ("lengths", "T", "unmasked", "method", "device_type", "graph", "route"),
    [
        ([], 3, False, "auto", "cpu", False, "empty"),
        ([2, 2], 0, False, "auto", "cpu", False, "empty"),
        ([3, 3], 3, True, "packed", "cpu", True, "full"),  # nothing to mask
        ([3, 3], 3, False, "auto", "cpu", False, "full"),  # no pads: torch's forward
        ([3, 1], 3, False, "auto", "cpu", False, "padded"),
        ([3, 1], 3, False, "packed", "cpu", False, "packed"),
        ([3, 1], 3, False, "auto", "cuda", False, "packed"),  # the CUDA default
        ([3, 3], 3, False, "auto", "cpu", True, "padded"),  # capturing: the general route
        ([3, 1], 3, False, "packed", "cuda", True, "padded"),
    ],
)
def test_plan_call_routes(lengths, T, unmasked, method, device_type, graph, route):
    """Each route is chosen from the arguments alone; a captured graph is always general."""
    plan = plan_call(
        B=len(lengths), T=T, host_lengths=torch.tensor(lengths, dtype=torch.int64),
        unmasked=unmasked, method=method, device_type=device_type, graph=graph,
    )  # fmt: skip
    assert plan.route == route


def test_plan_call_without_host_lengths_never_reads_them():
    """Lengths on an accelerator are not read on the host: the general padded route."""
    plan = plan_call(
        B=2, T=3, host_lengths=None, unmasked=False, method="padded", device_type="cuda",
        graph=False,
    )  # fmt: skip
    assert plan.route == "padded"


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize(("num_layers", "proj", "with_hx"), [(1, False, False), (3, True, True)])
def test_recurrent_full_batches_match_the_oracle(kind, bidirectional, num_layers, proj, with_hx):
    """A batch without pads (lengths all T; planned as torch's own forward) matches the oracle.

    Outputs, states and gradients, float64 at 1e-10, as for batches with pads.
    """
    case = Case(
        kind, (5, 5, 5), 5, "post", bidirectional, num_layers, proj and kind == "LSTM",
        with_hx, "padded", holes=False, pad_value=0.0, seed=3,
    )  # fmt: skip
    plan = plan_call(
        B=3, T=5, host_lengths=torch.tensor(case.lengths), unmasked=False, method="padded",
        device_type="cpu", graph=False,
    )  # fmt: skip
    assert plan.route == "full"
    _compare(case, torch.float64, atol=1e-10)


@pytest.mark.parametrize("method", ["padded", "packed"])
def test_recurrent_method_per_call_overrides_the_module(method):
    """``method=`` in a call runs that method once; the module's own method is unchanged."""
    torch.manual_seed(0)
    module = LSTM(F_IN, H, method="auto")
    x, lengths = torch.randn(3, 4, F_IN), torch.tensor([4, 1, 0])
    want_out, want_state = module(x, lengths)
    out, state = module(x, lengths, method=method)
    torch.testing.assert_close(out, want_out, atol=1e-6, rtol=0)
    torch.testing.assert_close(tuple(state), tuple(want_state), atol=1e-6, rtol=0)
    assert module.method == "auto"
    with pytest.raises(ValueError, match="method"):
        module(x, lengths, method="fast")


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
def test_recurrent_pre_and_post_padding_give_the_same_results(kind, bidirectional):
    """A batch padded before or after its real steps gives the same per-sequence results."""
    torch.manual_seed(0)
    cls = LSTM if kind == "LSTM" else GRU
    module = cls(F_IN, H, 2, bidirectional=bidirectional)
    seqs = [torch.randn(n, F_IN) for n in (5, 1, 3, 0, 7)]
    lengths = torch.tensor([len(s) for s in seqs])
    post = nn.utils.rnn.pad_sequence(seqs, batch_first=True)
    pre = nn.utils.rnn.pad_sequence(seqs, batch_first=True, padding_side="left")
    out_post, state_post = module(post, lengths)
    out_pre, state_pre = module(pre, lengths, padding="pre")
    for b, n in enumerate(lengths.tolist()):
        torch.testing.assert_close(out_post[b, :n], out_pre[b, pre.shape[1] - n :])
    torch.testing.assert_close(state_post, state_pre)


@pytest.mark.parametrize("cls", [LSTM, GRU])
def test_recurrent_loads_a_torch_state_dict_and_matches_torch_without_padding(cls):
    """A torch state dict loads unchanged, and full-length batches give torch's results."""
    torch.manual_seed(0)
    torch_cls = nn.LSTM if cls is LSTM else nn.GRU
    reference = torch_cls(F_IN, H, 2, batch_first=True, bidirectional=True)
    module = cls(F_IN, H, 2, bidirectional=True, batch_first=True)
    module.load_state_dict(reference.state_dict())
    assert list(module.state_dict()) == list(reference.state_dict())
    x = torch.randn(3, 6, F_IN)
    want_out, want_state = reference(x)
    got_out, got_state = module(x)
    torch.testing.assert_close(got_out, want_out)
    torch.testing.assert_close(tuple(got_state) if cls is LSTM else got_state, want_state)


def test_recurrent_takes_a_ragged_and_a_batch_object():
    """A Ragged input and any object with .x/.lengths/.padding give the tensor-path results."""
    torch.manual_seed(0)
    module = LSTM(F_IN, H)
    rng = np.random.default_rng(0)
    ragged = Ragged.from_sequences([rng.normal(size=(n, F_IN)).astype(np.float32) for n in (4, 2)])
    padded, lengths = ragged.to_padded(padding="pre")

    @dataclass
    class Batch:
        x: Tensor
        lengths: Tensor
        padding: str

    want_out, want_state = module(
        torch.from_numpy(padded), torch.from_numpy(lengths), padding="pre"
    )
    got_out, got_state = module(Batch(torch.from_numpy(padded), torch.from_numpy(lengths), "pre"))
    torch.testing.assert_close(got_out, want_out)
    torch.testing.assert_close(got_state, want_state)
    ragged_out, ragged_state = module(ragged)
    torch.testing.assert_close(ragged_state, want_state)
    torch.testing.assert_close(ragged_out[1, :2], want_out[1, 2:])


@pytest.mark.parametrize("method", ["padded", "packed"])
@pytest.mark.parametrize(("B", "T"), [(2, 3), (64, 10)])  # (64, 10): large enough to split
def test_recurrent_all_empty_batch_backpropagates_with_every_method(method, B, T):
    """A batch of length-0 rows gives zeros and the initial state, connected to the graph."""
    torch.manual_seed(0)
    module = LSTM(F_IN, H, method=method)
    out, (h, c) = module(torch.randn(B, T, F_IN), torch.zeros(B, dtype=torch.int64))
    assert torch.equal(out, torch.zeros(B, T, H))
    assert torch.equal(h, torch.zeros(1, B, H))
    (out.sum() + h.sum() + c.sum()).backward()
    assert all(p.grad is not None and not p.grad.any() for p in module.parameters())


def test_recurrent_mask_with_holes_skips_masked_steps():
    """A masked step inside a sequence leaves the state unchanged and outputs zeros (Keras)."""
    torch.manual_seed(0)
    module = GRU(F_IN, H, dtype=torch.float64)
    x = torch.randn(1, 5, F_IN, dtype=torch.float64)
    mask = torch.tensor([[True, False, True, False, True]])
    out, h = module(x, mask=mask)
    want_out, want_h = run_sequence(module, x[0, [0, 2, 4]])
    torch.testing.assert_close(out[0, [0, 2, 4]], want_out)
    assert torch.equal(out[0, [1, 3]], torch.zeros(2, H, dtype=torch.float64))
    torch.testing.assert_close(h[:, 0], want_h[0])


def test_recurrent_dropout_keeps_pads_zero_in_training():
    """Between-layer dropout in training leaves padded outputs exactly zero."""
    torch.manual_seed(0)
    module = LSTM(F_IN, H, 3, dropout=0.5).train()
    out, _ = module(torch.randn(3, 6, F_IN), torch.tensor([6, 2, 0]))
    assert torch.equal(out[1, 2:], torch.zeros(4, H))
    assert torch.equal(out[2], torch.zeros(6, H))


def test_recurrent_backward_works_in_eval_mode():
    """Gradients flow in eval mode too (e.g. for attributions)."""
    module = LSTM(F_IN, H).eval()
    x = torch.randn(2, 4, F_IN, requires_grad=True)
    out, _ = module(x, torch.tensor([4, 1]))
    out.sum().backward()
    assert x.grad is not None
    assert torch.equal(x.grad[1, 1:], torch.zeros(3, F_IN))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"lengths": torch.tensor([5, 1])}, ValueError, r"lengths must be in \[0, T\] = \[0, 4\]"),
        ({"lengths": torch.tensor([-1, 1])}, ValueError, r"got lengths\[0\] == -1"),
        ({"lengths": torch.tensor([[1], [2]])}, ValueError, r"lengths must have shape \(B,\)"),
        ({"lengths": torch.tensor([1.0, 2.0])}, TypeError, "lengths must be integers"),
        (
            {"lengths": (torch.zeros(1), torch.zeros(1))},  # torch's module(x, hx) form
            ValueError,
            r"h0 must have shape \(L\*D, B, H\)",
        ),
        ({"mask": torch.ones(2, 4)}, TypeError, "mask must be a bool tensor"),
        (
            {"mask": torch.ones(2, 3, dtype=torch.bool)},
            ValueError,
            r"mask must have shape \(B, T\)",
        ),
        (
            {"lengths": torch.tensor([4, 1]), "mask": torch.ones(2, 4, dtype=torch.bool)},
            ValueError,
            "mask and lengths must agree",
        ),
        ({"padding": "left"}, ValueError, "padding must be 'pre' or 'post', got 'left'"),
        ({"hx": torch.zeros(1, 2, H)}, TypeError, r"hx must be a tuple \(h0, c0\)"),
        (
            {"hx": (torch.zeros(1, 3, H), torch.zeros(1, 2, H))},
            ValueError,
            r"h0 must have shape \(L\*D, B, H\) = \(1, 2, 4\)",
        ),
        (
            {"hx": (torch.zeros(1, 2, H, dtype=torch.float64), torch.zeros(1, 2, H))},
            TypeError,
            "h0 must have dtype torch.float32",
        ),
    ],
)
def test_lstm_rejects_bad_arguments(kwargs, error, match):
    """Bad lengths, masks, sides and states get an error naming what was expected and received."""
    module = LSTM(F_IN, H, batch_first=True)  # the layout stated: only the argument is wrong
    with pytest.raises(error, match=match):
        module(torch.zeros(2, 4, F_IN), **kwargs)


@pytest.mark.parametrize(
    ("x", "error", "match"),
    [
        (
            torch.zeros(2, 4),
            ValueError,
            r"x must have shape \(B, T, F\), or \(T, F\) .* got \(2, 4\)",
        ),
        (torch.zeros(2, 4, 5), ValueError, "x must have F = input_size = 3 features"),
        (torch.zeros(2, 4, F_IN, dtype=torch.float64), TypeError, "Cast x with"),
        ([[1.0]], TypeError, "x must be a Tensor"),
    ],
)
def test_gru_rejects_bad_inputs(x, error, match):
    """Bad inputs get an error that says what was expected and how to fix it."""
    with pytest.raises(error, match=match):
        GRU(F_IN, H, batch_first=True)(x)


def test_gru_rejects_hx_that_is_not_a_tensor():
    """A GRU state must be one tensor, not an LSTM-style tuple."""
    with pytest.raises(TypeError, match=r"hx must be a Tensor \(L\*D, B, H\)"):
        GRU(F_IN, H, batch_first=True)(torch.zeros(2, 4, F_IN), hx=(torch.zeros(1, 2, H),))


def test_recurrent_rejects_lengths_beside_a_ragged():
    """A Ragged carries its own lengths; passing lengths too is an error."""
    ragged = Ragged.from_sequences([np.zeros((2, F_IN), dtype=np.float32)])
    with pytest.raises(ValueError, match="lengths must be None when x is a Ragged"):
        LSTM(F_IN, H)(ragged, torch.tensor([2]))


def test_recurrent_rejects_unknown_method():
    """The method is checked when the module is built."""
    with pytest.raises(ValueError, match="method must be 'auto' or 'padded' or 'packed'"):
        LSTM(F_IN, H, method="fast")  # type: ignore[arg-type]


def test_a_huge_uint64_length_is_reported_as_itself():
    """The torch check names the length the caller passed, not its int64 wrap-around."""
    with pytest.raises(ValueError, match=r"lengths\[0\] == 18446744073709551615"):
        LSTM(1, 2)(torch.zeros(1, 3, 1), np.array([2**64 - 1], dtype=np.uint64))


@pytest.mark.parametrize("padding", ["post", "pre"])
def test_groups_run_to_lengths_on_their_grid_and_match_the_oracle(padding):
    """Groups run to grid lengths (at most T): few kernel shapes; outputs, states, grads exact."""
    lengths = (3, 5, 6, 7, 9, 11, 13, 17, 19, 23, 26, 29, 31, 33, 37, 50)
    grid = LengthGrid(step=1)  # 0, 1, 2, 4, 8, 16, 32, 64: coarse, to show the rounding
    tuning = Tuning(min_rows=4, min_group_rows=4, call_cost=1, min_saving=0.05, group_grid=grid)
    plan = plan_call(
        B=16, T=50, host_lengths=torch.tensor(lengths), unmasked=False, method="padded",
        device_type="cpu", graph=False, tuning=tuning,
    )  # fmt: skip
    assert plan.route == "groups"
    ran = [min(grid.round_up(max(lengths[i] for i in rows.tolist())), 50) for rows in plan.groups]
    assert plan.group_steps == tuple(ran)  # each group runs to its longest, on the grid
    assert set(ran) <= {*grid.lengths(50).tolist(), 50}
    case = Case(
        "LSTM", lengths, 50, padding, True, 2, False, True, "padded", holes=False,
        pad_value=float("nan"), seed=7,
    )  # fmt: skip
    _compare(case, torch.float64, atol=1e-10, tuning=tuning)
