"""Tests for BucketBatchSampler: coverage, budgets, determinism, resume and sharding."""

from __future__ import annotations

import itertools
import json
import warnings
from collections import Counter
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tests.reference.batching import budget_cut_reference, padded_cost
from varlen.batching import BucketBatchSampler
from varlen.batching._plan import cut_budget

lengths_lists = st.lists(st.integers(0, 40), max_size=40)
sizings = st.one_of(
    st.builds(lambda b: {"batch_size": b}, st.integers(1, 7)),
    st.builds(lambda m: {"max_tokens": m}, st.integers(1, 120)),
)
options = st.fixed_dictionaries(
    {
        "shuffle": st.booleans(),
        "seed": st.integers(0, 3),
        "jitter": st.sampled_from([0.0, 0.3]),
    }
)


def epoch_plans(lengths, sizing, num_replicas, *, epoch=0, **kwargs):
    """Return every rank's batches for one epoch, and whether any rank warned."""
    plans = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for rank in range(num_replicas):
            sampler = BucketBatchSampler(
                lengths, **sizing, num_replicas=num_replicas, rank=rank, **kwargs
            )
            sampler.set_epoch(epoch)
            plans.append(list(sampler))
    repeats = [w for w in caught if "without repeating" in str(w.message)]
    return plans, bool(repeats)


def single_rank_count(lengths, sizing, *, epoch=0, **kwargs):
    """Return the number of batches of the epoch's plan before any sharding."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sampler = BucketBatchSampler(lengths, **sizing, **kwargs)
    sampler.set_epoch(epoch)
    return len(sampler)


# --------------------------------------------------------------------------- coverage


@given(
    lengths=lengths_lists,
    sizing=sizings,
    num_replicas=st.integers(1, 4),
    epoch=st.integers(0, 2),
    kw=options,
)
@example(lengths=[], sizing={"batch_size": 2}, num_replicas=3, epoch=0, kw={})
@example(lengths=[0, 0, 0], sizing={"max_tokens": 1}, num_replicas=2, epoch=0, kw={})
@example(lengths=[5, 1, 4], sizing={"batch_size": 1}, num_replicas=2, epoch=0, kw={})
@example(lengths=[9] * 7, sizing={"max_tokens": 5}, num_replicas=4, epoch=1, kw={})
def test_bucket_sampler_uses_every_index_exactly_once_across_ranks(
    lengths, sizing, num_replicas, epoch, kw
):
    """Without drop_last every index is used once per epoch, repeating only when unsplittable."""
    plans, warned = epoch_plans(lengths, sizing, num_replicas, epoch=epoch, **kw)
    used = Counter(i for plan in plans for batch in plan for i in batch)
    n = len(lengths)
    M = single_rank_count(lengths, sizing, epoch=epoch, **kw)
    shortfall = max(0, -M % num_replicas - (n - M))  # splits needed beyond those possible
    assert set(used) == set(range(n))
    assert sum(used.values()) == n + shortfall
    assert warned == (shortfall > 0)
    if shortfall:
        assert all(len(batch) == 1 for plan in plans for batch in plan)


@given(lengths=lengths_lists, sizing=sizings, num_replicas=st.integers(1, 4), kw=options)
@example(lengths=[3, 1, 2, 5, 4], sizing={"batch_size": 2}, num_replicas=2, kw={})
def test_bucket_sampler_drop_last_uses_each_index_at_most_once(lengths, sizing, num_replicas, kw):
    """With drop_last no index repeats, full batches only, and only the surplus is dropped."""
    plans, warned = epoch_plans(lengths, sizing, num_replicas, drop_last=True, **kw)
    used = Counter(i for plan in plans for batch in plan for i in batch)
    assert not warned
    assert all(count == 1 for count in used.values())
    assert set(used) <= set(range(len(lengths)))
    if "batch_size" in sizing:
        B = sizing["batch_size"]
        assert all(len(batch) == B for plan in plans for batch in plan)
        assert len(plans[0]) == len(lengths) // B // num_replicas
    else:
        M = single_rank_count(lengths, sizing, **kw)
        assert len(plans[0]) == M // num_replicas


@given(
    lengths=lengths_lists,
    sizing=sizings,
    num_replicas=st.integers(1, 4),
    drop_last=st.booleans(),
    kw=options,
)
def test_bucket_sampler_ranks_get_equal_batch_counts_and_len_is_exact(
    lengths, sizing, num_replicas, drop_last, kw
):
    """Every rank yields the same number of batches, and len() predicts it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        samplers = [
            BucketBatchSampler(
                lengths, **sizing, num_replicas=num_replicas, rank=r, drop_last=drop_last, **kw
            )
            for r in range(num_replicas)
        ]
        counts = [len(list(sampler)) for sampler in samplers]
    assert counts == [len(sampler) for sampler in samplers]
    assert len(set(counts)) == 1
    assert all(batch for sampler in samplers for batch in sampler)  # no empty batch


# ----------------------------------------------------------------------------- budgets


@given(
    lengths=lengths_lists,
    max_tokens=st.integers(1, 120),
    num_replicas=st.integers(1, 4),
    drop_last=st.booleans(),
    kw=options,
)
@example(lengths=[50, 3, 0], max_tokens=10, num_replicas=1, drop_last=False, kw={})
@example(lengths=[10, 10, 5], max_tokens=10, num_replicas=2, drop_last=False, kw={})
def test_bucket_sampler_respects_token_budget(lengths, max_tokens, num_replicas, drop_last, kw):
    """Every batch costs B * max(T_max, 1) <= max_tokens, unless it is one long sequence."""
    sizing = {"max_tokens": max_tokens}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plans, _ = epoch_plans(lengths, sizing, num_replicas, drop_last=drop_last, **kw)
    L = np.asarray(lengths, dtype=np.int64)
    for batch in (batch for plan in plans for batch in plan):
        over = padded_cost(L, batch, floor=1) > max_tokens
        assert not over or (len(batch) == 1 and L[batch[0]] > max_tokens)


@given(lengths=lengths_lists, batch_size=st.integers(1, 7), num_replicas=st.integers(1, 4))
def test_bucket_sampler_respects_batch_size(lengths, batch_size, num_replicas):
    """No batch exceeds batch_size; on one rank all but at most one batch are full."""
    plans, _ = epoch_plans(lengths, {"batch_size": batch_size}, num_replicas)
    sizes = [len(batch) for plan in plans for batch in plan]
    assert all(size <= batch_size for size in sizes)
    if num_replicas == 1:
        assert sum(size < batch_size for size in sizes) <= 1


@given(lengths=st.lists(st.integers(0, 40), max_size=60), sizing=sizings)
def test_bucket_sampler_batches_do_not_interleave_in_length(lengths, sizing):
    """Without jitter, batches are contiguous runs of the sorted lengths."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plan = list(BucketBatchSampler(lengths, **sizing, seed=5))
    spans = sorted((min(lengths[i] for i in b), max(lengths[i] for i in b)) for b in plan)
    assert all(high <= next_low for (_, high), (next_low, _) in itertools.pairwise(spans))


def test_bucket_sampler_without_shuffle_is_sorted_and_index_stable():
    """shuffle=False yields batches shortest first, ties in index order, every epoch."""
    lengths = [3, 1, 3, 2, 1, 3]
    sampler = BucketBatchSampler(lengths, batch_size=2, shuffle=False)
    assert list(sampler) == [[1, 4], [3, 0], [2, 5]]
    sampler.set_epoch(7)
    assert list(sampler) == [[1, 4], [3, 0], [2, 5]]


@given(ordered=st.lists(st.integers(0, 30), max_size=80), max_tokens=st.integers(1, 100))
@example(ordered=[], max_tokens=1)
@example(ordered=[0, 0, 0], max_tokens=2)
@example(ordered=[40, 1], max_tokens=10)
def test_cut_budget_matches_greedy_reference(ordered, max_tokens):
    """The windowed vectorized greedy cut equals a step-by-step greedy loop."""
    bounds = cut_budget(np.asarray(ordered, dtype=np.int64), max_tokens)
    assert np.diff(bounds).tolist() == budget_cut_reference(ordered, max_tokens)


# ------------------------------------------------------------------------ determinism


def _big_lengths(n=300):
    rng = np.random.default_rng(0)
    return np.clip(rng.lognormal(np.log(30), 1.0, n), 1, 300).astype(np.int64)


@pytest.mark.parametrize("sizing", [{"batch_size": 8}, {"max_tokens": 400}], ids=["bs", "tok"])
def test_bucket_sampler_same_seed_gives_same_batches(sizing):
    """Two samplers with the same seed and epoch yield identical batches."""
    lengths = _big_lengths()
    first, second = (BucketBatchSampler(lengths, **sizing, seed=11) for _ in range(2))
    first.set_epoch(3)
    second.set_epoch(3)
    assert list(first) == list(second)
    assert list(first) == list(second)  # a second pass over the same epoch repeats it


@pytest.mark.parametrize("sizing", [{"batch_size": 8}, {"max_tokens": 400}], ids=["bs", "tok"])
def test_bucket_sampler_new_epoch_or_seed_gives_new_order(sizing):
    """set_epoch and a different seed reshuffle the batches (and their composition)."""
    lengths = _big_lengths()
    sampler = BucketBatchSampler(lengths, **sizing, seed=0)
    epoch0 = list(sampler)
    sampler.set_epoch(1)
    epoch1 = list(sampler)
    other_seed = list(BucketBatchSampler(lengths, **sizing, seed=1))
    assert epoch0 != epoch1
    assert epoch0 != other_seed
    assert sorted(map(sorted, epoch0)) != sorted(map(sorted, epoch1))  # ties move between batches
    assert sorted(i for b in epoch0 for i in b) == sorted(i for b in epoch1 for i in b)


def test_bucket_sampler_steps_pair_similar_batches_across_ranks():
    """At each step, the ranks' batches are neighbours in length (little DDP waiting)."""
    lengths = _big_lengths(512)
    plans, _ = epoch_plans(lengths, {"batch_size": 16}, 2)
    for batch0, batch1 in zip(*plans, strict=True):
        low, high = sorted([batch0, batch1], key=lambda b: max(lengths[b]))
        assert max(lengths[low]) <= min(lengths[high])  # adjacent runs of the sorted order


# ------------------------------------------------------------------------------ resume

FACTORIES: dict[str, Callable[[np.ndarray], BucketBatchSampler]] = {
    "batch_size": lambda L: BucketBatchSampler(L, batch_size=4, seed=3),
    "max_tokens": lambda L: BucketBatchSampler(L, max_tokens=90, seed=3),
    "drop_last": lambda L: BucketBatchSampler(L, batch_size=4, drop_last=True, seed=1),
    "no_shuffle": lambda L: BucketBatchSampler(L, batch_size=5, shuffle=False),
    "jitter": lambda L: BucketBatchSampler(L, max_tokens=60, jitter=0.5, seed=2),
    "rank1of3": lambda L: BucketBatchSampler(L, batch_size=3, num_replicas=3, rank=1),
    "rank0of2_drop": lambda L: BucketBatchSampler(
        L, max_tokens=50, num_replicas=2, rank=0, drop_last=True
    ),
}
RESUME_LENGTHS = np.random.default_rng(4).integers(0, 30, size=53)


@pytest.mark.parametrize("factory", FACTORIES.values(), ids=FACTORIES.keys())
@given(stop=st.integers(0, 40), epoch=st.integers(0, 3))
@example(stop=0, epoch=0)
@example(stop=40, epoch=1)
def test_bucket_sampler_resume_equals_uninterrupted_run(factory, stop, epoch):
    """Stopping after any batch and resuming from state_dict replays the uninterrupted run."""
    reference = factory(RESUME_LENGTHS)
    reference.set_epoch(epoch)
    this_epoch = list(reference)
    reference.set_epoch(epoch + 1)
    next_epoch = list(reference)

    interrupted = factory(RESUME_LENGTHS)
    interrupted.set_epoch(epoch)
    batches = iter(interrupted)
    taken = [next(batches) for _ in range(min(stop, len(this_epoch)))]
    state = json.loads(json.dumps(interrupted.state_dict()))  # plain ints, serializable

    resumed = factory(RESUME_LENGTHS)
    resumed.load_state_dict(state)
    assert len(resumed) == len(this_epoch) - len(taken)
    assert taken + list(resumed) == this_epoch
    assert len(resumed) == len(this_epoch)  # the pass completed: back to the full epoch
    resumed.set_epoch(epoch + 1)
    assert list(resumed) == next_epoch


def test_bucket_sampler_resume_from_consumed_position():
    """Lowering state['position'] to the batches consumed resumes right after them."""
    sampler = BucketBatchSampler(RESUME_LENGTHS, batch_size=4, seed=9)
    full = list(sampler)
    state = sampler.state_dict()
    assert state["position"] == len(full)
    state["position"] = 5
    resumed = BucketBatchSampler(RESUME_LENGTHS, batch_size=4, seed=0)  # seed comes from state
    resumed.load_state_dict(state)
    assert list(resumed) == full[5:]


def test_bucket_sampler_set_epoch_restarts_from_the_beginning():
    """set_epoch after load_state_dict cancels the pending resume."""
    sampler = BucketBatchSampler(RESUME_LENGTHS, batch_size=4)
    full = list(sampler)
    sampler.load_state_dict({**sampler.state_dict(), "position": 3})
    sampler.set_epoch(0)
    assert list(sampler) == full


# -------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"lengths": [1.5, 2.0], "batch_size": 2}, TypeError, r"lengths must be integers"),
        ({"lengths": [[[1, 2]]], "batch_size": 2}, ValueError, r"lengths must have shape \(B,\)"),
        (
            {"lengths": [[1, 2]], "max_tokens": (3,)},
            ValueError,
            r"max_tokens must be an int or a tuple of K = 2 ints",
        ),
        ({"lengths": [[1, 2]], "max_tokens": (3, 0)}, ValueError, r"max_tokens\[1\] must be"),
        ({"lengths": [1, -2], "batch_size": 2}, ValueError, r"lengths must be >= 0"),
        (
            {"lengths": [1], "batch_size": 2, "max_tokens": 9},
            ValueError,
            r"pass exactly one .*, got both\.",
        ),
        (
            {"lengths": [1]},
            ValueError,
            r"pass exactly one of batch_size and max_tokens, got neither",
        ),
        ({"lengths": [1], "batch_size": 0}, ValueError, r"batch_size must be >= 1, got 0"),
        ({"lengths": [1], "batch_size": 2.0}, TypeError, r"batch_size must be an int"),
        ({"lengths": [1], "batch_size": True}, TypeError, r"batch_size must be an int"),
        ({"lengths": [1], "max_tokens": -3}, ValueError, r"max_tokens must be >= 1, got -3"),
        ({"lengths": [1], "batch_size": 1, "seed": -1}, ValueError, r"seed must be >= 0"),
        ({"lengths": [1], "batch_size": 1, "num_replicas": 0}, ValueError, r"num_replicas must"),
        (
            {"lengths": [1], "batch_size": 1, "num_replicas": 2, "rank": 2},
            ValueError,
            r"rank must be in \[0, num_replicas\) = \[0, 2\), got 2",
        ),
        ({"lengths": [1], "batch_size": 1, "rank": -1}, ValueError, r"rank must be >= 0"),
        ({"lengths": [1], "batch_size": 1, "jitter": -0.1}, ValueError, r"jitter must be"),
        ({"lengths": [1], "batch_size": 1, "jitter": "x"}, ValueError, r"jitter must be"),
    ],
)
def test_bucket_sampler_rejects_bad_arguments(kwargs, error, match):
    """Bad constructor arguments raise a message naming the argument and the fix."""
    kwargs = dict(kwargs)
    lengths = kwargs.pop("lengths")
    with pytest.raises(error, match=r"^BucketBatchSampler: " + match):
        BucketBatchSampler(lengths, **kwargs)


def test_bucket_sampler_set_epoch_rejects_bad_epochs():
    """set_epoch takes a non-negative int only."""
    sampler = BucketBatchSampler([1, 2], batch_size=1)
    with pytest.raises(ValueError, match=r"set_epoch: epoch must be >= 0, got -1"):
        sampler.set_epoch(-1)
    with pytest.raises(TypeError, match=r"set_epoch: epoch must be an int"):
        sampler.set_epoch(1.0)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        ({"position": None}, ValueError, r"missing \['position'\]"),
        ({"num_sequences": 7}, ValueError, r"num_sequences'\] must equal .* = 53, got 7"),
        ({"num_replicas": 2}, ValueError, r"num_replicas'\] must equal .* = 1, got 2"),
        ({"epoch": 1.5}, TypeError, r"state\['epoch'\] must be an int"),
        ({"seed": -4}, ValueError, r"state\['seed'\] must be >= 0"),
    ],
)
def test_bucket_sampler_load_state_dict_rejects_bad_states(change, error, match):
    """A state from another dataset, world size or epoch length is refused clearly."""
    sampler = BucketBatchSampler(RESUME_LENGTHS, batch_size=4)
    state = {**sampler.state_dict(), **change}
    state = {key: value for key, value in state.items() if value is not None}
    with pytest.raises(error, match=r"^BucketBatchSampler.load_state_dict: .*" + match):
        sampler.load_state_dict(state)


def test_bucket_sampler_load_state_dict_is_o1_and_checks_position_when_planning():
    """Loading plans nothing; a position beyond the epoch's end is refused at the next pass."""
    sampler = BucketBatchSampler(RESUME_LENGTHS, batch_size=4)
    sampler.load_state_dict({**sampler.state_dict(), "position": 99})
    assert sampler._cache is None  # nothing planned, nothing replayed
    with pytest.raises(ValueError, match=r"position'\] must be <= 14 .* got 99"):
        list(sampler)
    assert len(list(sampler)) == 14  # the bad resume was dropped: a full epoch


# ---------------------------------------------------------------- several lengths


@given(
    pairs=st.lists(st.tuples(st.integers(0, 30), st.integers(0, 30)), max_size=40),
    budget=st.tuples(st.integers(1, 90), st.integers(1, 90)),
    num_replicas=st.integers(1, 3),
)
def test_bucket_sampler_bounds_every_length_column(pairs, budget, num_replicas):
    """(n, K) lengths: every column's B * T_max fits its budget; all used, equal counts."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plans, _ = epoch_plans(
            pairs or np.zeros((0, 2), np.int64), {"max_tokens": budget}, num_replicas
        )
    L = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    assert len({len(plan) for plan in plans}) == 1
    assert {i for plan in plans for b in plan for i in b} == set(range(len(L)))
    for batch in (batch for plan in plans for batch in plan):
        over = [padded_cost(L[:, k], batch, floor=1) > budget[k] for k in range(2)]
        assert not any(over) or (len(batch) == 1 and (L[batch[0]] > budget).any())


def test_bucket_sampler_warns_about_sequences_over_budget():
    """A sequence longer than max_tokens gets its own batch and a warning at construction."""
    with pytest.warns(UserWarning, match=r"1 sequence\(s\) are longer than max_tokens = 10"):
        sampler = BucketBatchSampler([3, 25, 2, 4], max_tokens=10, shuffle=False)
    assert list(sampler) == [[2, 0], [3], [1]]  # 2 * 3 <= 10 < 3 * 4


def test_bucket_sampler_warns_when_it_must_repeat():
    """With singleton batches that cannot be split, the shortfall is repeated with a warning."""
    samplers = [BucketBatchSampler([4, 2, 3], batch_size=1, num_replicas=2, rank=r) for r in (0, 1)]
    with pytest.warns(UserWarning, match=r"Repeating 1 sequence\(s\) this epoch"):
        plans = [list(sampler) for sampler in samplers]
    assert [len(plan) for plan in plans] == [2, 2]
    assert sorted(i for plan in plans for b in plan for i in b) in (
        [0, 0, 1, 2],
        [0, 1, 1, 2],
        [0, 1, 2, 2],
    )
