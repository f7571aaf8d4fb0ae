"""Tests for Batch, RaggedDataset and Collate: padding, masks, targets, fast path, devices."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st
from torch.utils.data import DataLoader

from tests.reference.batching import collate_reference
from varlen._types import SIDES
from varlen.batching import Batch, BucketBatchSampler, Collate, RaggedDataset, RaggedItems
from varlen.data.grid import LengthGrid
from varlen.data.ragged import Ragged


def _sequences(lengths, trailing, dtype, seed=0):
    rng = np.random.default_rng(seed)
    return [(rng.normal(size=(T, *trailing)) * 10).astype(dtype) for T in lengths]


ragged_inputs = st.fixed_dictionaries(
    {
        "lengths": st.lists(st.integers(0, 7), min_size=1, max_size=6),
        "trailing": st.sampled_from([(), (2,), (1, 3)]),
        "dtype": st.sampled_from([np.float64, np.float32, np.int64]),
    }
)
collate_options = st.fixed_dictionaries(
    {
        "padding": st.sampled_from(SIDES),
        "value": st.sampled_from([0, -1, 7]),
        "pad_to_multiple_of": st.one_of(st.none(), st.integers(1, 4)),
    }
)


def _assert_batch_matches_reference(batch, sequences, indices, options, dtype):
    x, lengths, mask = collate_reference(sequences, dtype=dtype, **options)
    np.testing.assert_array_equal(batch.x.numpy(), x)
    np.testing.assert_array_equal(batch.lengths.numpy(), lengths)
    np.testing.assert_array_equal(batch.mask.numpy(), mask)
    np.testing.assert_array_equal(batch.indices.numpy(), indices)
    assert batch.lengths.dtype == batch.indices.dtype == torch.int64
    assert batch.mask.dtype == torch.bool
    assert batch.padding == options["padding"]


@given(data=ragged_inputs, options=collate_options)
@example(
    data={"lengths": [0], "trailing": (), "dtype": np.float64},
    options={"padding": "pre", "value": -1, "pad_to_multiple_of": 3},
)
@example(
    data={"lengths": [3, 0, 3], "trailing": (2,), "dtype": np.int64},
    options={"padding": "post", "value": 7, "pad_to_multiple_of": 3},
)
def test_collate_list_matches_reference(data, options):
    """Collating a list of items equals padding each sequence alone, for every option."""
    sequences = _sequences(data["lengths"], data["trailing"], data["dtype"])
    indices = list(range(10, 10 + len(sequences)))
    items = [(i, s, None) for i, s in zip(indices, sequences, strict=True)]
    before = [s.copy() for s in sequences]
    batch = Collate(**options)(items)
    _assert_batch_matches_reference(batch, sequences, indices, options, data["dtype"])
    assert batch.targets is None
    assert batch.mask.sum(1).tolist() == batch.lengths.tolist()
    for original, copy in zip(sequences, before, strict=True):
        np.testing.assert_array_equal(original, copy)  # inputs untouched


@pytest.mark.parametrize("route", ["views", "gather"])
@given(
    data=ragged_inputs,
    options=collate_options,
    picks=st.lists(st.integers(-6, 5), max_size=8),
)
@example(
    data={"lengths": [2, 0], "trailing": (), "dtype": np.float32},
    options={"padding": "pre", "value": 0, "pad_to_multiple_of": None},
    picks=[],
)
def test_collate_fast_path_matches_reference(route, data, options, picks):
    """Batches fetched with __getitems__ (any order, repeats, negatives) pad like the oracle.

    Both routes of the fast path run: row views (long rows) and gather first (short rows).
    """
    threshold = 0 if route == "views" else 10**9
    _check_fast_path(data, options, picks, view_min_elements=threshold)


def _check_fast_path(data, options, picks, view_min_elements=None):
    sequences = _sequences(data["lengths"], data["trailing"], data["dtype"])
    n = len(sequences)
    picks = [p for p in picks if -n <= p < n]
    targets = np.arange(n) * 3
    dataset = RaggedDataset(Ragged.from_sequences(sequences), targets=targets)
    items = dataset.__getitems__(picks)
    assert isinstance(items, RaggedItems)
    tuning = {} if view_min_elements is None else {"view_min_elements": view_min_elements}
    batch = Collate(**options, **tuning)(items)
    rows = [p % n for p in picks]
    if rows:
        chosen = [sequences[r] for r in rows]
        _assert_batch_matches_reference(batch, chosen, rows, options, data["dtype"])
        assert_batches_equal(batch, Collate(**options)([dataset[p] for p in picks]))
    else:
        assert batch.x.shape == (0, 0, *data["trailing"])
        assert batch.lengths.shape == batch.indices.shape == (0,)
    assert batch.targets is not None
    assert batch.targets.tolist() == [3 * r for r in rows]


def assert_batches_equal(actual, expected):
    """Assert two Batches hold equal tensors (values, dtypes) and the same padding."""
    for name in Batch._fields:
        left, right = getattr(actual, name), getattr(expected, name)
        if isinstance(left, torch.Tensor):
            torch.testing.assert_close(left, right, rtol=0, atol=0, equal_nan=True)
        else:
            assert left == right


@pytest.mark.parametrize("padding", SIDES)
def test_collate_pads_with_nan_and_casts_to_dtype(padding):
    """value=NaN fills the pads, and dtype converts x in the same copy."""
    sequences = [np.array([1.0, 2.0, 3.0]), np.array([4.0])]
    collate = Collate(padding=padding, value=float("nan"), dtype=torch.float32)
    batch = collate([(0, sequences[0], 1.5), (1, sequences[1], 2.5)])
    assert batch.x.dtype == torch.float32
    assert batch.x[~batch.mask].isnan().all()
    assert batch.x[batch.mask].tolist() == [1.0, 2.0, 3.0, 4.0]
    assert batch.targets is not None
    assert batch.targets.tolist() == [1.5, 2.5]


@pytest.mark.parametrize("fast", [False, True], ids=["list", "getitems"])
def test_collate_converts_across_kinds(fast):
    """Integer data pads straight into a float dtype (NaN pads allowed); floats become ints."""
    dataset = RaggedDataset(Ragged.from_sequences([[1, 2], [3]]))
    items = dataset.__getitems__([0, 1]) if fast else [dataset[0], dataset[1]]
    as_float = Collate(dtype=torch.float32, value=float("nan"))(items)
    assert as_float.x.dtype == torch.float32
    assert as_float.x[as_float.mask].tolist() == [1.0, 2.0, 3.0]
    assert as_float.x[~as_float.mask].isnan().all()
    floats = RaggedDataset(Ragged.from_sequences([[1.0, 2.0], [3.0]]))
    items = floats.__getitems__([0, 1]) if fast else [floats[0], floats[1]]
    as_int = Collate(dtype=torch.int64, value=-1)(items)
    assert as_int.x.dtype == torch.int64
    assert as_int.x.tolist() == [[1, 2], [3, -1]]


def test_collate_casts_to_dtypes_numpy_lacks():
    """A torch dtype without a NumPy twin (bfloat16) is converted in torch."""
    batch = Collate(dtype=torch.bfloat16)([(0, np.array([1.0, 2.0]), None)])
    assert batch.x.dtype == torch.bfloat16
    assert batch.x.tolist() == [[1.0, 2.0]]


def test_collate_stacks_vector_targets_and_keeps_their_dtype():
    """Per-sequence targets (K,) stack to (B, K) in their own dtype."""
    ragged = Ragged.from_sequences([np.ones((2, 3)), np.ones((1, 3))])
    targets = np.array([[1, 0], [0, 1]], dtype=np.int32)
    dataset = RaggedDataset(ragged, targets=targets)
    for batch in (Collate()([dataset[0], dataset[1]]), Collate()(dataset.__getitems__([0, 1]))):
        assert batch.targets is not None
        assert batch.targets.dtype == torch.int32
        assert batch.targets.tolist() == [[1, 0], [0, 1]]


# ---------------------------------------------------------------------- DataLoader


@pytest.mark.parametrize("num_workers", [0, 2])
def test_dataloader_with_bucket_sampler_yields_every_sequence_once(num_workers):
    """DataLoader + BucketBatchSampler + Collate covers the dataset once, in padded Batches."""
    sequences = _sequences(np.random.default_rng(1).integers(0, 20, size=37), (3,), np.float32)
    ragged = Ragged.from_sequences(sequences)
    dataset = RaggedDataset(ragged, targets=np.arange(37))
    sampler = BucketBatchSampler(ragged.lengths, max_tokens=64, seed=2)
    loader = DataLoader(
        dataset, batch_sampler=sampler, collate_fn=Collate(), num_workers=num_workers
    )
    seen = []
    for batch in loader:
        assert isinstance(batch, Batch)
        B, T, F = batch.x.shape
        assert B * max(T, 1) <= 64
        assert F == 3
        for row, index in enumerate(batch.indices.tolist()):
            real = batch.x[row][batch.mask[row]].numpy()
            np.testing.assert_array_equal(real, sequences[index])
        assert batch.targets is not None
        assert batch.targets.tolist() == batch.indices.tolist()
        seen += batch.indices.tolist()
    assert sorted(seen) == list(range(37))


def test_dataloader_uses_the_fast_path(monkeypatch):
    """DataLoader fetches a batch through __getitems__, so Collate gets RaggedItems."""
    received = []
    collate = Collate()
    original = Collate.__call__

    def spy(self, items):
        received.append(type(items))
        return original(self, items)

    monkeypatch.setattr(Collate, "__call__", spy)
    dataset = RaggedDataset(Ragged.from_sequences([[1.0], [2.0, 3.0]]))
    list(DataLoader(dataset, batch_size=2, collate_fn=collate))
    assert received == [RaggedItems]


def test_ragged_items_is_a_sequence_of_dataset_items():
    """RaggedItems reads like the list of items it stands for, so other collates work."""
    dataset = RaggedDataset(Ragged.from_sequences([[1], [2, 3], []]), targets=[5, 6, 7])
    items = dataset.__getitems__([2, -2])
    expected = [dataset[2], dataset[1]]
    assert len(items) == 2
    for got, want in zip(list(items), expected, strict=True):
        assert got[0] == want[0]
        assert got[2] == want[2]
        np.testing.assert_array_equal(got[1], want[1])
    assert list(items[1:].indices) == [1]


# --------------------------------------------------------------------------- Batch


def _small_batch(targets=True):
    dataset = RaggedDataset(
        Ragged.from_sequences([np.ones((2, 2)), np.ones((3, 2))]),
        targets=[0, 1] if targets else None,
    )
    return Collate(dtype=torch.float32)(dataset.__getitems__([0, 1]))


@pytest.mark.parametrize("targets", [True, False], ids=["targets", "no_targets"])
def test_batch_to_moves_every_tensor(targets):
    """Batch.to puts x, lengths, mask, targets and indices on the device in one call."""
    batch = _small_batch(targets)
    moved = batch.to("meta", non_blocking=True)
    tensors = [moved.x, moved.lengths, moved.mask, moved.indices]
    assert all(t.device.type == "meta" for t in tensors)
    assert (moved.targets is None) == (not targets)
    if moved.targets is not None:
        assert moved.targets.device.type == "meta"
    assert moved.padding == batch.padding
    assert batch.x.device.type == "cpu"  # the original is unchanged


def test_batch_pin_memory_pins_every_tensor(monkeypatch):
    """DataLoader's pinning helper pins each tensor of a Batch and keeps it a Batch."""
    from torch.utils.data._utils.pin_memory import pin_memory

    pinned = []

    def fake_pin(self, *args, **kwargs):
        pinned.append(tuple(self.shape))
        return self.clone()

    monkeypatch.setattr(torch.Tensor, "pin_memory", fake_pin)
    batch = _small_batch()
    out = pin_memory(batch)
    assert isinstance(out, Batch)
    assert sorted(pinned) == sorted(
        tuple(t.shape) for t in (batch.x, batch.lengths, batch.mask, batch.targets, batch.indices)
    )
    assert _small_batch(targets=False).pin_memory().targets is None


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_batch_pin_memory_on_accelerator():
    """On a machine with CUDA, pin_memory gives page-locked tensors."""
    batch = _small_batch().pin_memory()
    assert batch.x.is_pinned()
    assert batch.mask.is_pinned()


@pytest.mark.parametrize("padding", SIDES)
def test_batch_feeds_varlen_lstm_directly(padding):
    """varlen.nn.LSTM takes a Batch as its input, reading x, lengths and padding."""
    from varlen.nn import LSTM

    torch.manual_seed(0)
    lstm = LSTM(2, 4)
    dataset = RaggedDataset(Ragged.from_sequences(_sequences([3, 1, 0], (2,), np.float32)))
    batch = Collate(padding=padding)(dataset.__getitems__([0, 1, 2]))
    out, state = lstm(batch)
    expected_out, expected_state = lstm(batch.x, batch.lengths, padding=padding)
    torch.testing.assert_close(out, expected_out)
    torch.testing.assert_close(state.h, expected_state.h)


# ---------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"padding": "left"}, ValueError, r"padding must be 'pre' or 'post', got 'left'"),
        ({"value": "0"}, TypeError, r"value must be a number, got '0'"),
        ({"value": True}, TypeError, r"value must be a number"),
        ({"pad_to_multiple_of": 0}, ValueError, r"pad_to_multiple_of must be >= 1, got 0"),
        ({"dtype": "float32"}, TypeError, r"dtype must be a torch.dtype or None"),
    ],
)
def test_collate_rejects_bad_options(kwargs, error, match):
    """Bad Collate options raise at construction, naming the option."""
    with pytest.raises(error, match=r"^Collate: " + match):
        Collate(**kwargs)


@pytest.mark.parametrize(
    ("items", "error", "match"),
    [
        ([], ValueError, r"items must hold at least one item, got an empty list"),
        ([np.ones(3)], TypeError, r"items\[0\] must be an \(index, sequence, target\) tuple"),
        ([(0, np.float64(1.0), None)], ValueError, r"items\[0\] sequence must have shape"),
        (
            [(0, np.ones((2, 3)), None), (1, np.ones((2, 4)), None)],
            ValueError,
            r"items\[1\] sequence has trailing shape \(4,\), expected \(3,\) like items\[0\]",
        ),
        (
            [(0, np.ones(2), 1), (1, np.ones(2), None)],
            TypeError,
            r"targets must be all None or all given, got items\[0\] target 1 and items\[1\]",
        ),
        ([(0, np.ones(2, dtype=np.int64), None)], ValueError, r"value must be representable"),
    ],
)
def test_collate_rejects_bad_items(items, error, match):
    """Malformed items raise an error naming the offending item."""
    with pytest.raises(error, match=r"^Collate: " + match):
        Collate(value=0.5)(items) if "representable" in match else Collate()(items)


def test_collate_fast_path_rejects_values_that_do_not_fit():
    """NaN cannot pad integer sequences on the fast path either."""
    dataset = RaggedDataset(Ragged.from_sequences([[1, 2]]))
    with pytest.raises(ValueError, match=r"^Collate: value must be representable in dtype int64"):
        Collate(value=float("nan"))(dataset.__getitems__([0]))


@pytest.mark.parametrize(
    ("args", "error", "match"),
    [
        (([[1, 2]],), TypeError, r"x must be a varlen Ragged or StoredRagged, got list"),
        ((Ragged.from_sequences([[1]]), ["a"]), TypeError, r"targets must be numeric or bool"),
        (
            (Ragged.from_sequences([[1]]), [1, 2]),
            ValueError,
            r"targets .* B = len\(x\) = 1, got \(2,\)",
        ),
        ((Ragged.from_sequences([[1]]), 3), ValueError, r"targets must have shape \(B, \*K\)"),
    ],
)
def test_ragged_dataset_rejects_bad_arguments(args, error, match):
    """RaggedDataset checks its sequences and targets up front."""
    with pytest.raises(error, match=r"^RaggedDataset: " + match):
        RaggedDataset(*args)


def test_ragged_dataset_indexing_errors():
    """Bad indices name the valid range, for one item and for a batch."""
    dataset = RaggedDataset(Ragged.from_sequences([[1], [2]]))
    with pytest.raises(IndexError, match=r"index must be in \[-B, B\) = \[-2, 2\), got 2"):
        dataset[2]
    with pytest.raises(TypeError, match=r"index must be an int, got 0.5"):
        dataset[0.5]  # type: ignore[index]
    with pytest.raises(IndexError, match=r"indices\[1\] == -3"):
        dataset.__getitems__([0, -3])
    with pytest.raises(TypeError, match=r"indices must be integers, got dtype float64"):
        dataset.__getitems__([0.0])  # type: ignore[list-item]
    with pytest.raises(ValueError, match=r"indices must have shape \(B,\), got \(1, 1\)"):
        dataset.__getitems__([[0]])  # type: ignore[list-item]


def test_ragged_dataset_items_and_lengths():
    """Items are (index, read-only sequence view, target); lengths come from the Ragged."""
    ragged = Ragged.from_sequences([[1, 2, 3], [], [4]])
    dataset = RaggedDataset(ragged, targets=np.array([0.5, 1.5, 2.5]))
    index, sequence, target = dataset[-1]
    assert (index, sequence.tolist(), target) == (2, [4], 2.5)
    assert dataset.lengths.tolist() == [3, 0, 1]
    assert len(dataset) == 3
    assert RaggedDataset(ragged)[1][2] is None


@pytest.mark.parametrize("padding", ["post", "pre"])
@pytest.mark.parametrize("threshold", [0, 10**9])  # rows from views, or gathered first
def test_collate_pads_up_to_a_length_grid(padding, threshold):
    """T is max(T_i) rounded up to the grid; real steps, lengths and mask are unchanged."""
    x = Ragged.from_sequences([np.arange(n * 2.0).reshape(n, 2) for n in (10, 3, 0, 5)])
    items = RaggedDataset(x).__getitems__([0, 1, 2, 3])
    grid = LengthGrid(step=1 / 4)
    plain = Collate(padding=padding, view_min_elements=threshold)(items)
    rounded = Collate(padding=padding, grid=grid, view_min_elements=threshold)(items)
    assert plain.x.shape[1] == 10
    assert rounded.x.shape[1] == grid.round_up(10) == 12
    assert torch.equal(rounded.x[rounded.mask], plain.x[plain.mask])
    assert torch.equal(rounded.lengths, plain.lengths)
    assert not rounded.x[~rounded.mask].any()
    capped = Collate(grid=grid.fitted(x.lengths))(items)
    assert capped.x.shape[1] == 10  # the data's longest is the grid's top
    with pytest.raises(TypeError, match=r"Collate: grid must be a varlen\.data\.grid\.LengthGrid"):
        Collate(grid=0.25)  # type: ignore[arg-type]
