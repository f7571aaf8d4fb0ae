"""varlen.nn.functional against per-sequence references, and parity with varlen.data.masks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st
from torch import Tensor

from tests.reference.pooling import (
    contiguous_rows_reference,
    last_step_reference,
    reverse_reference,
    unpad_reference,
)
from tests.reference.ragged import mask_reference
from varlen._types import Padding
from varlen.data import masks as np_masks
from varlen.nn import functional as torch_functional
from varlen.nn.functional import (
    is_contiguous,
    last_valid,
    lengths_to_mask,
    mask_to_lengths,
    repad,
    reverse_padded,
)

NAN = float("nan")
SIDES = ("pre", "post")
sides = st.sampled_from(SIDES)
lengths_lists = st.lists(st.integers(0, 7), max_size=5)
bool_masks = st.integers(0, 4).flatmap(
    lambda B: st.integers(0, 5).flatmap(
        lambda T: st.lists(
            st.lists(st.booleans(), min_size=T, max_size=T), min_size=B, max_size=B
        ).map(lambda rows: torch.tensor(rows, dtype=torch.bool).reshape(B, T))
    )
)


def _batch(
    lengths: list[int], extra: int, padding: str, *, trailing: tuple[int, ...] = (2,), seed: int = 0
) -> tuple[Tensor, Tensor]:
    """Return a float64 ``x (B, T, *trailing)`` with NaN at pads, and ``lengths``."""
    T = max(lengths, default=0) + extra
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(len(lengths), T, *trailing, generator=generator, dtype=torch.float64)
    mask = torch.from_numpy(mask_reference(lengths, T, padding))
    x = x.masked_fill(~mask.reshape(*mask.shape, *([1] * len(trailing))), NAN)
    return x, torch.tensor(lengths, dtype=torch.int64)


def _assert_identical(got: Tensor, want: Tensor) -> None:
    torch.testing.assert_close(got, want, atol=0, rtol=0, equal_nan=True)


# ------------------------------------------------------------------ reverse_padded and repad


@given(lengths=lengths_lists, extra=st.integers(0, 2), padding=sides, seed=st.integers(0, 99))
@example(lengths=[], extra=0, padding="post", seed=0).via("B = 0")
@example(lengths=[0, 0], extra=0, padding="pre", seed=0).via("all lengths 0, T = 0")
@example(lengths=[3, 0, 1], extra=0, padding="pre", seed=0).via("T_i == T beside 0 and 1")
def test_reverse_padded_matches_reference_and_twice_is_identity(lengths, extra, padding, seed):
    """Real steps are reversed where they stand, pads stay, and reversing twice gives x back."""
    x, lengths_t = _batch(lengths, extra, padding, seed=seed)
    before = x.clone()
    once = reverse_padded(x, lengths_t, padding=padding)
    _assert_identical(once, reverse_reference(x, lengths, padding))
    _assert_identical(reverse_padded(once, lengths_t, padding=padding), x)
    _assert_identical(x, before)


@given(
    lengths=lengths_lists,
    extra=st.integers(0, 2),
    padding=sides,
    trailing=st.sampled_from([(), (2,), (1, 3)]),
)
@example(lengths=[0, 0], extra=0, padding="post", trailing=(2,)).via("T = 0")
@example(lengths=[2, 0], extra=0, padding="pre", trailing=()).via("T_i == T and 0")
def test_repad_moves_real_steps_and_round_trips(lengths, extra, padding, trailing):
    """Repadding puts each row's real steps on the other side in order; back again gives x."""
    x, lengths_t = _batch(lengths, extra, padding, trailing=trailing)
    before = x.clone()
    to: Padding = "pre" if padding == "post" else "post"
    moved = repad(x, lengths_t, padding=padding, to=to)
    for got, want in zip(
        unpad_reference(moved, lengths, to), unpad_reference(x, lengths, padding), strict=True
    ):
        _assert_identical(got, want)
    _assert_identical(repad(moved, lengths_t, padding=to, to=padding), x)
    assert repad(x, lengths_t, padding=padding, to=padding) is x
    _assert_identical(x, before)


def test_reverse_padded_and_repad_pass_gradients_through_the_permutation():
    """Gradients of reverse_padded and repad are the upstream gradient permuted back."""
    x, lengths = _batch([3, 1, 0], 1, "post")
    x = x.nan_to_num(0.0).requires_grad_()
    upstream = torch.randn(x.shape, generator=torch.Generator().manual_seed(1), dtype=x.dtype)
    (grad,) = torch.autograd.grad((reverse_padded(x, lengths) * upstream).sum(), x)
    _assert_identical(grad, reverse_padded(upstream, lengths))
    (grad,) = torch.autograd.grad((repad(x, lengths, padding="post", to="pre") * upstream).sum(), x)
    _assert_identical(grad, repad(upstream, lengths, padding="pre", to="post"))


# ------------------------------------------------------------------ last_valid


@given(lengths=lengths_lists, extra=st.integers(0, 2), padding=sides, seed=st.integers(0, 99))
@example(lengths=[0, 0], extra=0, padding="pre", seed=0).via("all lengths 0, T = 0")
@example(lengths=[0, 2], extra=1, padding="pre", seed=0).via("length 0, pre")
@example(lengths=[0, 2], extra=1, padding="post", seed=0).via("length 0, post")
@example(lengths=[], extra=2, padding="post", seed=0).via("B = 0")
def test_last_valid_matches_reference(lengths, extra, padding, seed):
    """last_valid takes each row's last real step (zeros for length 0); gradient only there."""
    x, lengths_t = _batch(lengths, extra, padding, seed=seed)
    x.requires_grad_()
    mask = torch.from_numpy(mask_reference(lengths, x.shape[1], padding))
    got = last_valid(x, lengths_t, padding=padding)
    want = last_step_reference(x, mask)
    _assert_identical(got, want)
    assert not torch.isnan(got).any()
    if got.requires_grad:
        (grad,) = torch.autograd.grad(got.sum(), x)
        expected = torch.zeros_like(x)
        for b, n in enumerate(lengths):
            if n:
                expected[b, n - 1 if padding == "post" else x.shape[1] - 1] = 1
        _assert_identical(grad, expected)


# ------------------------------------------------------------------ masks and lengths


@given(lengths=lengths_lists, extra=st.none() | st.integers(0, 3), padding=sides)
@example(lengths=[], extra=None, padding="post").via("B = 0")
@example(lengths=[0, 0], extra=0, padding="pre").via("all lengths 0, T = 0")
@example(lengths=[3], extra=0, padding="pre").via("T_i == T")
def test_lengths_to_mask_matches_reference_and_round_trips(lengths, extra, padding):
    """lengths_to_mask is the step-by-step mask; mask_to_lengths of it gives lengths back."""
    lengths_t = torch.tensor(lengths, dtype=torch.int64)
    T = None if extra is None else max(lengths, default=0) + extra
    mask = lengths_to_mask(lengths_t, T, padding=padding)
    expected_T = max(lengths, default=0) if T is None else T
    assert mask.dtype == torch.bool
    assert torch.equal(mask, torch.from_numpy(mask_reference(lengths, expected_T, padding)))
    assert torch.equal(mask_to_lengths(mask, padding=padding), lengths_t)
    assert bool(is_contiguous(mask, padding=padding).all())


@given(mask=bool_masks, padding=sides)
@example(mask=torch.zeros(0, 3, dtype=torch.bool), padding="post").via("B = 0")
@example(mask=torch.zeros(2, 0, dtype=torch.bool), padding="pre").via("T = 0")
def test_is_contiguous_matches_reference_per_row(mask, padding):
    """is_contiguous tells, per row, whether the mask is one run at the unpadded side."""
    got = is_contiguous(mask, padding=padding)
    assert got.shape == (mask.shape[0],)
    assert got.tolist() == contiguous_rows_reference(mask, padding)


@given(mask=bool_masks, padding=sides)
def test_mask_to_lengths_round_trips_contiguous_masks_and_rejects_others(mask, padding):
    """Contiguous masks go to lengths and back unchanged; any other mask is a ValueError."""
    if all(contiguous_rows_reference(mask, padding)):
        lengths = mask_to_lengths(mask, padding=padding)
        assert lengths.dtype == torch.int64
        assert torch.equal(lengths_to_mask(lengths, mask.shape[1], padding=padding), mask)
    else:
        with pytest.raises(ValueError, match="mask_to_lengths: mask rows must be one run"):
            mask_to_lengths(mask, padding=padding)


# ------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (
            lambda: lengths_to_mask(torch.tensor([[1, 2]])),
            ValueError,
            r"lengths_to_mask: lengths must have shape \(B,\), got \(1, 2\)",
        ),
        (
            lambda: mask_to_lengths(torch.tensor([[1, 0]])),
            TypeError,
            r"mask_to_lengths: mask must be a bool tensor \(True = real step\), got torch.int64",
        ),
        (
            lambda: mask_to_lengths(torch.tensor([True, False])),
            ValueError,
            r"mask_to_lengths: mask must have shape \(B, T\), got \(2,\)",
        ),
        (
            lambda: mask_to_lengths(torch.tensor([[True, True], [True, False]]), padding="pre"),
            ValueError,
            r"one run of True at the end \(padding='pre'\), got a hole or misplaced run in row 1",
        ),
        (
            lambda: repad(torch.zeros(1, 2), torch.tensor([1]), padding="post", to="left"),  # type: ignore[arg-type]
            ValueError,
            "repad: to must be 'pre' or 'post', got 'left'",
        ),
    ],
)
def test_functional_rejects_bad_arguments(call, error, match):
    """Bad shapes, dtypes and non-contiguous masks get a message naming the problem."""
    with pytest.raises(error, match=match):
        call()


SIDED: dict[str, Callable[[Any], object]] = {
    "lengths_to_mask": lambda p: lengths_to_mask(torch.tensor([1]), padding=p),
    "mask_to_lengths": lambda p: mask_to_lengths(torch.ones(1, 1, dtype=torch.bool), padding=p),
    "is_contiguous": lambda p: is_contiguous(torch.ones(1, 1, dtype=torch.bool), padding=p),
    "repad": lambda p: repad(torch.zeros(1, 1), torch.tensor([1]), padding=p, to="post"),
    "reverse_padded": lambda p: reverse_padded(torch.zeros(1, 1), torch.tensor([1]), padding=p),
    "last_valid": lambda p: last_valid(torch.zeros(1, 1), torch.tensor([1]), padding=p),
}


@pytest.mark.parametrize("name", list(SIDED))
def test_functional_rejects_unknown_padding_side(name):
    """Every function checks padding is 'pre' or 'post' and names itself in the message."""
    with pytest.raises(ValueError, match=f"{name}: padding must be 'pre' or 'post', got 'left'"):
        SIDED[name]("left")


# ------------------------------------------------------------------ NumPy <-> torch parity


@given(lengths=lengths_lists, extra=st.none() | st.integers(0, 3), padding=sides)
@example(lengths=[], extra=None, padding="pre").via("B = 0")
@example(lengths=[0], extra=0, padding="post").via("T = 0")
def test_lengths_to_mask_parity_with_numpy(lengths, extra, padding):
    """The torch and NumPy lengths_to_mask give the same mask."""
    T = None if extra is None else max(lengths, default=0) + extra
    got = lengths_to_mask(torch.tensor(lengths, dtype=torch.int64), T, padding=padding)
    want = np_masks.lengths_to_mask(np.array(lengths, dtype=np.int64), T, padding=padding)
    np.testing.assert_array_equal(got.numpy(), want)


def _outcome(call: Callable[[], Any]) -> tuple[str, Any]:
    """Return ``("ok", result)`` or ``("error", exception type)``."""
    try:
        return "ok", call()
    except (TypeError, ValueError, IndexError, RuntimeError) as error:
        return "error", type(error)


@given(mask=bool_masks, padding=sides)
@example(mask=torch.tensor([[False, True]]), padding="post").via("misplaced run")
@example(mask=torch.zeros(0, 0, dtype=torch.bool), padding="pre").via("B = T = 0")
def test_mask_to_lengths_and_is_contiguous_parity_with_numpy(mask, padding):
    """Both mask_to_lengths give the same lengths or raise the same type; same contiguity."""
    got = _outcome(lambda: mask_to_lengths(mask, padding=padding).numpy())
    want = _outcome(lambda: np_masks.mask_to_lengths(mask.numpy(), padding=padding))
    assert got[0] == want[0]
    if got[0] == "ok":
        np.testing.assert_array_equal(got[1], want[1])
    else:
        assert got[1] is want[1]
    # The torch is_contiguous is per row (no host sync); NumPy's is one bool for the batch.
    torch_rows = is_contiguous(mask, padding=padding)
    assert bool(torch_rows.all()) == np_masks.is_contiguous(mask.numpy(), padding=padding)


@pytest.mark.parametrize(
    "value", [[[1, 0]], [True, False], [[True, False, True]]], ids=["non-bool", "1-D", "hole"]
)
def test_mask_to_lengths_raises_the_same_exception_types_as_numpy(value):
    """Invalid masks raise the same exception type from the torch and NumPy functions."""
    with pytest.raises((TypeError, ValueError)) as torch_error:
        mask_to_lengths(torch.tensor(value))
    with pytest.raises((TypeError, ValueError)) as numpy_error:
        np_masks.mask_to_lengths(np.array(value))
    assert torch_error.type is numpy_error.type


# Invalid inputs: the torch functions raise the NumPy twins' exception types.
INVALID: dict[str, tuple[str, tuple[Any, ...], dict[str, Any]]] = {
    "float lengths": ("lengths_to_mask", ([1.5, 2.0],), {}),
    "bool lengths": ("lengths_to_mask", ([True, False],), {}),
    "negative lengths": ("lengths_to_mask", ([-1, 2],), {}),
    "lengths above maxlen": ("lengths_to_mask", ([3, 2], 2), {}),
    "negative maxlen": ("lengths_to_mask", ([1, 2], -1), {}),
    "float maxlen": ("lengths_to_mask", ([1, 2], 2.5), {}),
    "int mask": ("is_contiguous", ([[1, 0]],), {}),
    "1-D mask": ("is_contiguous", ([True, False],), {}),
}


@pytest.mark.parametrize("case", list(INVALID))
def test_functional_raises_like_numpy_on_invalid_input(case):
    """Invalid lengths, maxlen and masks raise the NumPy twin's exception type in torch too."""
    name, (value, *rest), kwargs = INVALID[case]
    numpy_outcome = _outcome(lambda: getattr(np_masks, name)(np.array(value), *rest, **kwargs))
    torch_outcome = _outcome(
        lambda: getattr(torch_functional, name)(torch.tensor(value), *rest, **kwargs)
    )
    assert numpy_outcome[0] == "error"
    assert torch_outcome == numpy_outcome
