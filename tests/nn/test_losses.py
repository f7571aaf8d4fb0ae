"""Masked losses and metrics against per-sequence oracles: values, gradients, edges, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st

from tests.reference.losses import per_sequence_values, reduce_reference
from varlen._types import Padding
from varlen.nn import (
    MaskedAccuracy,
    MaskedCrossEntropyLoss,
    MaskedL1Loss,
    MaskedMSELoss,
    masked_accuracy,
    masked_cross_entropy,
    masked_mae,
    masked_mse,
)
from varlen.nn.functional import lengths_to_mask

FUNCTIONS = {
    "ce": masked_cross_entropy,
    "mse": masked_mse,
    "mae": masked_mae,
    "accuracy": masked_accuracy,
}
C, F = 4, 2

lengths_lists = st.one_of(
    st.lists(st.integers(0, 6), min_size=1, max_size=5),
    st.lists(st.sampled_from([0, 1, 1, 1, 12]), min_size=1, max_size=6),  # skewed
)


def _batch(
    kind: str, lengths: list[int], padding: Padding, seed: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random float64 ``(B, T, ...)`` inputs and targets with garbage (NaN, -7) at the pads."""
    generator = torch.Generator().manual_seed(seed)
    B, T = len(lengths), max(lengths, default=0)
    classes = kind in ("ce", "accuracy")
    shape = (B, T, C) if classes else (B, T, F)
    x = torch.randn(shape, dtype=torch.float64, generator=generator)
    if classes:
        y = torch.randint(0, C, (B, T), generator=generator)
    else:
        y = torch.randn(shape, dtype=torch.float64, generator=generator)
    real = lengths_to_mask(torch.tensor(lengths), T, padding=padding)
    x = x.masked_fill(~real.reshape(B, T, 1), math.nan)
    y = y.masked_fill(~real, -7) if classes else y.masked_fill(~real.reshape(B, T, 1), math.nan)
    return x, y, real


def _unpadded(t: torch.Tensor, real: torch.Tensor) -> list[torch.Tensor]:
    return [t[i][real[i]] for i in range(len(t))]


@given(
    lengths=lengths_lists,
    kind=st.sampled_from(sorted(FUNCTIONS)),
    padding=st.sampled_from(["pre", "post"]),
    reduction=st.sampled_from(["step", "sequence", "sum"]),
    by=st.sampled_from(["lengths", "mask", "both"]),
    seed=st.integers(0, 2**16),
)
@example(lengths=[0], kind="ce", padding="post", reduction="step", by="lengths", seed=0)
@example(lengths=[0, 0], kind="accuracy", padding="pre", reduction="sequence", by="mask", seed=1)
@example(lengths=[1], kind="mse", padding="pre", reduction="sequence", by="lengths", seed=2)
def test_masked_losses_match_per_sequence_reference(lengths, kind, padding, reduction, by, seed):
    """Every loss/metric equals the per-sequence oracle, for every side, reduction and length."""
    x, y, real = _batch(kind, lengths, padding, seed)
    lengths_t = torch.tensor(lengths)
    kwargs = {
        "lengths": lengths_t if by != "mask" else None,
        "mask": real if by != "lengths" else None,
    }
    got = FUNCTIONS[kind](x, y, padding=padding, reduction=reduction, **kwargs)
    values = per_sequence_values(kind, _unpadded(x, real), _unpadded(y, real))
    empty = math.nan if kind == "accuracy" and reduction != "sum" else 0.0
    torch.testing.assert_close(
        got, reduce_reference(values, reduction, empty=empty), equal_nan=True
    )


@given(
    lengths=lengths_lists,
    kind=st.sampled_from(["ce", "mse", "mae"]),
    padding=st.sampled_from(["pre", "post"]),
    reduction=st.sampled_from(["step", "sequence", "sum"]),
    seed=st.integers(0, 2**16),
)
@example(lengths=[0, 3], kind="ce", padding="pre", reduction="sequence", seed=0)
@example(lengths=[0, 0], kind="mse", padding="post", reduction="step", seed=0)
def test_masked_loss_gradients_match_reference_and_are_zero_at_pads(
    lengths, kind, padding, reduction, seed
):
    """Input gradients equal the oracle's at real steps and are exactly zero at pads (NaN there)."""
    x, y, real = _batch(kind, lengths, padding, seed)
    x.requires_grad_(True)
    FUNCTIONS[kind](x, y, torch.tensor(lengths), padding=padding, reduction=reduction).backward()
    assert x.grad is not None
    pads = x.grad[~real]
    assert torch.equal(pads, torch.zeros_like(pads))
    pieces = [piece.detach().clone().requires_grad_(True) for piece in _unpadded(x, real)]
    reference = reduce_reference(
        per_sequence_values(kind, pieces, _unpadded(y, real)), reduction, empty=0.0
    )
    if reference.requires_grad:
        reference.backward()
    for i, piece in enumerate(pieces):
        expected = piece.grad if piece.grad is not None else torch.zeros_like(piece)
        torch.testing.assert_close(x.grad[i][real[i]], expected)


@pytest.mark.parametrize("kind", ["ce", "mse", "mae", "accuracy"])
def test_masked_none_reduction_is_per_step_and_zero_at_pads(kind):
    """``reduction='none'`` gives ``(B, T)`` per-step values, zero at pads, whatever they hold."""
    x, y, real = _batch(kind, [3, 0, 1], "pre", 0)
    got = FUNCTIONS[kind](x, y, torch.tensor([3, 0, 1]), padding="pre", reduction="none")
    assert got.shape == (3, 3)
    assert torch.equal(got[~real], torch.zeros_like(got[~real]))
    values = per_sequence_values(kind, _unpadded(x, real), _unpadded(y, real))
    for i, value in enumerate(values):
        torch.testing.assert_close(got[i][real[i]], value)


def test_masked_loss_with_no_real_step_is_zero_and_connected():
    """A batch of length-0 rows gives a loss of 0 that backward accepts (zero gradient)."""
    x = torch.randn(2, 3, C, requires_grad=True)
    loss = masked_cross_entropy(x, torch.zeros(2, 3, dtype=torch.long), torch.tensor([0, 0]))
    assert float(loss.detach()) == 0.0
    loss.backward()
    assert x.grad is not None
    assert torch.equal(x.grad, torch.zeros_like(x.grad))


def test_masked_loss_t_zero():
    """``T = 0`` works: a loss of 0 and an accuracy of NaN."""
    x, y = torch.zeros(2, 0, C), torch.zeros(2, 0, dtype=torch.long)
    assert float(masked_cross_entropy(x, y, torch.tensor([0, 0]))) == 0.0
    assert math.isnan(float(masked_accuracy(x, y, torch.tensor([0, 0]))))


def test_masked_losses_treat_every_step_as_real_without_lengths():
    """Without lengths or mask the losses equal torch's own."""
    x, y = torch.randn(3, 4, C), torch.randint(0, C, (3, 4))
    expected = torch.nn.functional.cross_entropy(x.reshape(12, C), y.reshape(12))
    torch.testing.assert_close(masked_cross_entropy(x, y), expected)
    p, t = torch.randn(3, 4, 2), torch.randn(3, 4, 2)
    torch.testing.assert_close(masked_mse(p, t), torch.nn.functional.mse_loss(p, t))
    torch.testing.assert_close(masked_mae(p, t), torch.nn.functional.l1_loss(p, t))


def test_masked_loss_modules_match_functions():
    """The module forms give the functional results with their stored options."""
    x, y, _ = _batch("ce", [3, 1, 0], "pre", 4)
    lengths = torch.tensor([3, 1, 0])
    module = MaskedCrossEntropyLoss(padding="pre", reduction="sequence")
    torch.testing.assert_close(
        module(x, y, lengths),
        masked_cross_entropy(x, y, lengths, padding="pre", reduction="sequence"),
    )
    p, t, _ = _batch("mse", [2, 2, 0], "post", 5)
    lengths = torch.tensor([2, 2, 0])
    torch.testing.assert_close(MaskedMSELoss()(p, t, lengths), masked_mse(p, t, lengths))
    torch.testing.assert_close(MaskedL1Loss()(p, t, lengths), masked_mae(p, t, lengths))
    assert "reduction='sequence'" in repr(module)


@pytest.mark.parametrize("reduction", ["step", "sequence"])
def test_masked_accuracy_accumulates_like_one_batch(reduction):
    """``update`` over batches then ``compute`` equals the function on all of them at once."""
    x, y, _ = _batch("accuracy", [5, 0, 2, 1, 3], "post", 7)
    lengths = torch.tensor([5, 0, 2, 1, 3])
    metric = MaskedAccuracy(reduction=reduction)
    assert math.isnan(float(metric.compute()))
    for rows in (slice(0, 2), slice(2, 5)):
        metric.update(x[rows], y[rows], lengths[rows])
    whole = masked_accuracy(x, y, lengths, reduction=reduction)
    torch.testing.assert_close(metric.compute(), whole.to(torch.float64))
    metric.reset()
    torch.testing.assert_close(metric(x, y, lengths), whole.to(torch.float64))


def test_masked_losses_do_not_mutate_inputs():
    """Inputs and targets equal their clones after the call."""
    x, y, _ = _batch("mse", [2, 3], "post", 8)
    before = (x.clone(), y.clone())
    masked_mse(x, y, torch.tensor([2, 3]))
    torch.testing.assert_close((x, y), before, equal_nan=True)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: masked_mse(torch.zeros(2, 3), torch.zeros(2, 4)), ValueError, "target must have"),
        (lambda: masked_mse(torch.zeros(3), torch.zeros(3)), ValueError, r"shape \(B, T, ...\)"),
        (lambda: masked_mse([1.0], torch.zeros(1)), TypeError, "must be tensors"),  # type: ignore[arg-type]
        (
            lambda: masked_mse(torch.zeros(2, 3), torch.zeros(2, 3), torch.tensor([4, 1])),
            ValueError,
            r"lengths must be in \[0, T\]",
        ),
        (
            lambda: masked_mse(torch.zeros(2, 3), torch.zeros(2, 3), reduction="mean"),  # type: ignore[arg-type]
            ValueError,
            "reduction must be",
        ),
        (
            lambda: masked_mae(torch.zeros(2, 3), torch.zeros(2, 3), padding="left"),  # type: ignore[arg-type]
            ValueError,
            "padding must be",
        ),
        (
            lambda: masked_cross_entropy(torch.zeros(2, 3, 4), torch.full((2, 3), 4)),
            ValueError,
            r"class ids in \[0, C\) = \[0, 4\).*target\[0, 0\] == 4",
        ),
        (
            lambda: masked_cross_entropy(torch.zeros(2, 3, 4), torch.zeros(2, 3)),
            TypeError,
            "integer class ids",
        ),
        (
            lambda: masked_cross_entropy(torch.zeros(2, 3), torch.zeros(2, 3, dtype=torch.long)),
            ValueError,
            r"shape \(B, T, C\)",
        ),
        (
            lambda: masked_cross_entropy(torch.zeros(2, 3, 4), torch.zeros(2, 2, dtype=torch.long)),
            ValueError,
            r"target must have shape \(B, T\) = \(2, 3\)",
        ),
        (
            lambda: masked_cross_entropy(
                torch.zeros(1, 2, 4), torch.zeros(1, 2, dtype=torch.long), label_smoothing=2.0
            ),
            ValueError,
            "label_smoothing",
        ),
        (
            lambda: masked_accuracy(
                torch.zeros(1, 2, 4),
                torch.zeros(1, 2, dtype=torch.long),
                torch.tensor([1]),
                mask=torch.tensor([[True, True]]),
            ),
            ValueError,
            "mask and lengths must agree",
        ),
        (
            lambda: masked_accuracy(
                torch.zeros(1, 2, 4), torch.zeros(1, 2, dtype=torch.long), mask=torch.ones(1, 2)
            ),
            TypeError,
            "mask must be a bool tensor",
        ),
        (lambda: MaskedMSELoss(reduction="avg"), ValueError, "MaskedMSELoss: reduction must"),  # type: ignore[arg-type]
        (lambda: MaskedCrossEntropyLoss(label_smoothing=-1.0), ValueError, "Loss: label_smoothing"),
        (lambda: MaskedAccuracy(reduction="sum"), ValueError, "MaskedAccuracy: reduction"),  # type: ignore[arg-type]
    ],
)
def test_masked_losses_reject_bad_input(call, error, match):
    """Bad shapes, dtypes, values and options raise with a message naming them."""
    with pytest.raises(error, match=match):
        call()


def test_masked_loss_sequence_reduction_weighs_sequences_equally():
    """A long sequence outweighs a short one with 'step', not with 'sequence'."""
    p = torch.tensor(np.array([[1.0] * 9 + [0.0], [3.0] + [0.0] * 9]))
    lengths = torch.tensor([9, 1])
    assert float(masked_mae(p, torch.zeros_like(p), lengths)) == pytest.approx(1.2)
    assert float(masked_mae(p, torch.zeros_like(p), lengths, reduction="sequence")) == 2.0
