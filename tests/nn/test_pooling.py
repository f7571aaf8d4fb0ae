"""Pooling over real steps against per-sequence references: values, gradients, edges, errors."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st
from torch import Tensor

from tests.reference.pooling import (
    attention_reference,
    first_step_reference,
    last_step_reference,
    max_reference,
    mean_reference,
)
from varlen.nn.functional import last_valid, lengths_to_mask
from varlen.nn.pooling import (
    AttentionPooling,
    LastStepPooling,
    MaxPooling,
    MeanPooling,
    attention_pool,
    first_step,
    last_and_first,
    last_step,
    masked_max,
    masked_mean,
    masked_softmax,
)
from varlen.nn.recurrent import GRU, LSTM

NAN, INF = float("nan"), float("inf")
HOWS = ("lengths", "mask", "holes", "none")


@dataclass(frozen=True)
class Case:
    """One random batch: lengths, padded length, features, side, how real steps are given."""

    lengths: tuple[int, ...]
    T: int
    F: int
    padding: str
    how: str  # "lengths", "mask" (contiguous), "holes" (mask with holes) or "none"
    pad_value: float
    seed: int


@st.composite
def cases(draw: st.DrawFn, *, even_features: bool = False) -> Case:
    """Random lengths (0, 1, equal, skewed), sides, pad values (NaN, inf, garbage) and seeds."""
    lengths = draw(
        st.one_of(
            st.lists(st.integers(0, 7), max_size=5),
            st.lists(st.sampled_from([0, 1]), min_size=1, max_size=4),
            st.lists(st.sampled_from([1, 1, 11]), min_size=2, max_size=5),
        )
    )
    how = draw(st.sampled_from(HOWS))
    T = max(lengths, default=0) + draw(st.integers(0, 2))
    if how == "none":
        lengths = [T] * len(lengths)
    F = draw(st.integers(1, 3)) * (2 if even_features else 1)
    return Case(
        lengths=tuple(lengths),
        T=T,
        F=F,
        padding=draw(st.sampled_from(["pre", "post"])),
        how=how,
        pad_value=draw(st.sampled_from([0.0, NAN, INF, -INF, 1e300, -3.0])),
        seed=draw(st.integers(0, 2**16)),
    )


def _batch(case: Case, dtype: torch.dtype = torch.float64) -> tuple[Tensor, Tensor, dict[str, Any]]:
    """Return ``x (B, T, F)`` (pad values at pads, requires grad), the real-step mask, kwargs."""
    generator = torch.Generator().manual_seed(case.seed)
    B = len(case.lengths)
    x = torch.randn(B, case.T, case.F, generator=generator, dtype=dtype)
    lengths = torch.tensor(case.lengths, dtype=torch.int64)
    if case.how == "holes":
        mask = torch.rand(B, case.T, generator=generator) < 0.6
    else:
        mask = lengths_to_mask(lengths, case.T, padding=case.padding)  # type: ignore[arg-type]
    x = x.masked_fill(~mask[:, :, None], case.pad_value).requires_grad_()
    by_how: dict[str, dict[str, Any]] = {
        "lengths": {"lengths": lengths, "padding": case.padding},
        "mask": {"mask": mask, "padding": case.padding},
        "holes": {"mask": mask, "padding": case.padding},
        "none": {"padding": case.padding},
    }
    return x, mask, by_how[case.how]


def _grads(output: Tensor, leaves: list[Tensor], seed: int) -> list[Tensor]:
    """Gradients of a random linear functional of ``output``; zeros where unused."""
    generator = torch.Generator().manual_seed(seed)
    weights = torch.randn(output.shape, generator=generator, dtype=output.dtype)
    loss = (output * weights).sum()
    if not loss.requires_grad:
        return [torch.zeros_like(leaf) for leaf in leaves]
    grads = torch.autograd.grad(loss, leaves, allow_unused=True)
    return [
        torch.zeros_like(leaf) if g is None else g for g, leaf in zip(grads, leaves, strict=True)
    ]


def _assert_same(got: Tensor, want: Tensor) -> None:
    torch.testing.assert_close(got, want, atol=1e-12, rtol=1e-12, equal_nan=True)


def _assert_pads_get_no_gradient(grad: Tensor, mask: Tensor) -> None:
    assert torch.isfinite(grad).all()
    assert torch.equal(grad[~mask], torch.zeros_like(grad[~mask]))


def _check_against_reference(
    pool: Callable[..., Tensor], reference: Callable[[Tensor, Tensor], Tensor], case: Case
) -> None:
    x, mask, kwargs = _batch(case)
    x_before = x.detach().clone()
    mask_before = mask.clone()
    got = pool(x, **kwargs)
    want = reference(x, mask)
    _assert_same(got, want)
    assert not torch.isnan(got).any()  # real values are random normals: any NaN leaked
    (got_grad,) = _grads(got, [x], case.seed)
    (want_grad,) = _grads(want, [x], case.seed)
    _assert_same(got_grad, want_grad)
    _assert_pads_get_no_gradient(got_grad, mask)
    _assert_same(x.detach(), x_before)
    assert torch.equal(mask, mask_before)


POOLS = {
    "last_step": (last_step, last_step_reference),
    "first_step": (first_step, first_step_reference),
    "masked_mean": (masked_mean, mean_reference),
    "masked_max": (masked_max, max_reference),
}


@pytest.mark.parametrize("name", list(POOLS))
@settings(max_examples=150)
@given(case=cases())
@example(case=Case((), 0, 2, "post", "lengths", NAN, 0)).via("B = 0, T = 0")
@example(case=Case((0, 0), 0, 1, "pre", "lengths", NAN, 0)).via("all lengths 0, T = 0")
@example(case=Case((0, 0), 3, 2, "pre", "mask", NAN, 0)).via("all lengths 0, T > 0")
@example(case=Case((3, 0, 1), 3, 2, "pre", "lengths", NAN, 1)).via("T_i == T beside 0 and 1")
@example(case=Case((2, 0, 4), 4, 3, "post", "holes", -INF, 2)).via("holes, -inf pads")
def test_pooling_matches_per_sequence_reference(name, case):
    """Values and input gradients equal the per-row reference; pads get zero gradient."""
    pool, reference = POOLS[name]
    _check_against_reference(pool, reference, case)


@settings(max_examples=150)
@given(case=cases(even_features=True))
@example(case=Case((0, 3, 1), 3, 4, "pre", "lengths", NAN, 0)).via("pre-padding with length 0")
def test_last_and_first_takes_forward_half_last_and_backward_half_first(case):
    """The forward half comes from the last real step, the backward half from the first."""

    def reference(x: Tensor, mask: Tensor) -> Tensor:
        H = x.shape[2] // 2
        last = last_step_reference(x[..., :H], mask)
        return torch.cat([last, first_step_reference(x[..., H:], mask)], dim=-1)

    _check_against_reference(last_and_first, reference, case)


@given(case=cases())
def test_last_step_with_lengths_equals_functional_last_valid(case):
    """With lengths, last_step agrees with varlen.nn.functional.last_valid."""
    x, _, kwargs = _batch(case)
    if "lengths" in kwargs:
        _assert_same(last_step(x, **kwargs), last_valid(x, **kwargs))


def _score_from_parameters(module: AttentionPooling) -> Callable[[Tensor], Tensor]:
    """Score one step ``(F,)`` straight from the module's parameters (no module code)."""
    v = module.score.weight[0]
    if module.project is None:
        return lambda step: (v * step).sum()
    W, b = module.project.weight, module.project.bias
    return lambda step: (v * torch.tanh(W @ step + (b if b is not None else 0))).sum()


@settings(max_examples=100)
@given(case=cases(), hidden=st.sampled_from([None, 3]), bias=st.booleans())
@example(case=Case((0, 0), 2, 2, "post", "mask", NAN, 0), hidden=3, bias=True).via("all empty")
@example(case=Case((), 0, 2, "post", "lengths", NAN, 0), hidden=None, bias=True).via("B = 0")
def test_attention_pooling_matches_per_sequence_reference(case, hidden, bias):
    """Pooled values, weights and gradients (inputs and parameters) equal each row alone."""
    torch.manual_seed(case.seed)
    module = AttentionPooling(case.F, hidden, bias=bias, dtype=torch.float64)
    x, mask, kwargs = _batch(case)
    x_before = x.detach().clone()
    pooled, weights = module.attend(x, **kwargs)
    score = _score_from_parameters(module)
    want_pooled, want_weights = attention_reference(x, mask, lambda b, t: score(x[b, t]))
    _assert_same(pooled, want_pooled)
    _assert_same(weights, want_weights)
    _assert_same(module(x, **kwargs), pooled)
    assert torch.equal(weights[~mask], torch.zeros_like(weights[~mask]))
    leaves = [x, *module.parameters()]
    got_grads = _grads(pooled, leaves, case.seed)
    for got, want in zip(got_grads, _grads(want_pooled, leaves, case.seed), strict=True):
        _assert_same(got, want)
    _assert_pads_get_no_gradient(got_grads[0], mask)
    _assert_same(x.detach(), x_before)


@settings(max_examples=100)
@given(case=cases())
def test_attention_pool_matches_reference_for_given_scores(case):
    """attention_pool with given scores (NaN at pads) matches the reference and masked_softmax."""
    x, mask, kwargs = _batch(case)
    generator = torch.Generator().manual_seed(case.seed + 1)
    raw = torch.randn(x.shape[:2], generator=generator, dtype=x.dtype)
    scores = raw.masked_fill(~mask, case.pad_value).requires_grad_()
    pooled, weights = attention_pool(x, scores, **kwargs)
    want_pooled, want_weights = attention_reference(x, mask, lambda b, t: scores[b, t])
    _assert_same(pooled, want_pooled)
    _assert_same(weights, want_weights)
    _assert_same(masked_softmax(scores, **kwargs), weights)
    leaves = [x, scores]
    got_grads = _grads(pooled, leaves, case.seed)
    for got, want in zip(got_grads, _grads(want_pooled, leaves, case.seed), strict=True):
        _assert_same(got, want)
    _assert_pads_get_no_gradient(got_grads[0], mask)
    _assert_pads_get_no_gradient(got_grads[1], mask)


@pytest.mark.parametrize(
    "pool",
    [
        last_step,
        first_step,
        masked_mean,
        masked_max,
        LastStepPooling(),
        MeanPooling(),
        MaxPooling(),
    ],
    ids=["last", "first", "mean", "max", "LastStepPooling", "MeanPooling", "MaxPooling"],
)
def test_pooling_gives_the_same_results_for_pre_and_post_padding(pool):
    """A batch padded before or after its real steps pools to the same per-sequence results."""
    generator = torch.Generator().manual_seed(0)
    seqs = [torch.randn(n, 3, generator=generator, dtype=torch.float64) for n in (4, 1, 0, 6)]
    lengths = torch.tensor([len(s) for s in seqs])
    post = torch.nn.utils.rnn.pad_sequence(seqs, batch_first=True, padding_value=NAN)
    pre = torch.nn.utils.rnn.pad_sequence(
        seqs, batch_first=True, padding_value=NAN, padding_side="left"
    )
    _assert_same(pool(post, lengths), pool(pre, lengths, padding="pre"))
    assert not torch.isnan(pool(post, lengths)).any()


def test_attention_pooling_gives_the_same_results_for_pre_and_post_padding():
    """AttentionPooling scores each sequence alone: pre and post padding pool alike."""
    torch.manual_seed(0)
    module = AttentionPooling(3, 5, dtype=torch.float64)
    seqs = [torch.randn(n, 3, dtype=torch.float64) for n in (4, 1, 0, 6)]
    lengths = torch.tensor([len(s) for s in seqs])
    post = torch.nn.utils.rnn.pad_sequence(seqs, batch_first=True, padding_value=NAN)
    pre = torch.nn.utils.rnn.pad_sequence(
        seqs, batch_first=True, padding_value=NAN, padding_side="left"
    )
    _assert_same(module(post, lengths), module(pre, lengths, padding="pre"))


@pytest.mark.parametrize("pool", [last_step, first_step, masked_mean, masked_max])
@pytest.mark.parametrize("trailing", [(), (2, 3)], ids=["scalar-steps", "2d-features"])
def test_pooling_accepts_any_trailing_shape(pool, trailing):
    """Inputs (B, T) and (B, T, *F) pool as their flattened (B, T, F) view does."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(3, 4, *trailing, generator=generator, dtype=torch.float64)
    mask = torch.tensor([[1, 0, 1, 1], [0, 0, 0, 0], [0, 1, 1, 0]], dtype=torch.bool)
    flat = pool(x.reshape(3, 4, -1), mask=mask)
    _assert_same(pool(x, mask=mask), flat.reshape(3, *trailing))


def test_masked_max_never_picks_a_pad_over_very_negative_real_steps():
    """Pads (0, +inf, NaN, -inf) never win, even when every real value is -1e300 or -inf."""
    x = torch.tensor(
        [
            [[-1e300], [-2e300], [0.0], [INF]],
            [[-INF], [-INF], [-INF], [NAN]],
            [[-INF], [-INF], [-5.0], [-INF]],
        ],
        dtype=torch.float64,
        requires_grad=True,
    )
    mask = torch.tensor([[1, 1, 0, 0], [0, 1, 1, 0], [1, 0, 0, 1]], dtype=torch.bool)
    out = masked_max(x, mask=mask)
    assert torch.equal(out, torch.tensor([[-1e300], [-INF], [-INF]], dtype=torch.float64))
    out.sum().backward()
    assert x.grad is not None
    # One step per row gets the gradient: the first real step holding the maximum.
    expected = torch.zeros(3, 4, 1, dtype=torch.float64)
    expected[0, 0] = expected[1, 1] = expected[2, 0] = 1
    assert torch.equal(x.grad, expected)


def test_masked_max_propagates_nan_at_a_real_step():
    """A NaN at a real step gives NaN, as torch.max does (it is data, not padding)."""
    x = torch.tensor([[1.0, NAN, 2.0]])
    assert torch.isnan(masked_max(x, torch.tensor([3]))).all()


@pytest.mark.parametrize("pool", [masked_mean, masked_max, last_step, first_step])
def test_pooling_of_empty_rows_is_zero_with_zero_gradient(pool):
    """Rows without a real step pool to exact zeros, and NaN pads give no NaN gradient."""
    x = torch.full((2, 3, 2), NAN, dtype=torch.float64, requires_grad=True)
    out = pool(x, torch.tensor([0, 0]))
    assert torch.equal(out, torch.zeros(2, 2, dtype=torch.float64))
    out.sum().backward()
    assert x.grad is not None
    assert torch.equal(x.grad, torch.zeros_like(x))


def test_attention_pooling_of_empty_rows_is_zero_with_zero_gradient():
    """A row without a real step pools to zeros with zero weights, and no NaN anywhere."""
    torch.manual_seed(0)
    module = AttentionPooling(2, 4, dtype=torch.float64)
    x = torch.full((2, 3, 2), NAN, dtype=torch.float64)
    x[0, 0] = 1.0
    x.requires_grad_()
    pooled, weights = module.attend(x, torch.tensor([1, 0]))
    torch.testing.assert_close(pooled, torch.tensor([[1.0, 1.0], [0.0, 0.0]], dtype=torch.float64))
    assert torch.equal(weights, torch.tensor([[1.0, 0, 0], [0, 0, 0]], dtype=torch.float64))
    pooled.sum().backward()
    for tensor in [x.grad, *(p.grad for p in module.parameters())]:
        assert tensor is not None
        assert torch.isfinite(tensor).all()
    assert x.grad is not None
    assert torch.equal(x.grad[0, 1:], torch.zeros(2, 2, dtype=torch.float64))


def test_masked_mean_gradient_is_one_over_length_at_real_steps():
    """The mean's gradient is 1 / T_i at each real step and 0 at pads."""
    x = torch.zeros(2, 4, 1, dtype=torch.float64, requires_grad=True)
    masked_mean(x, torch.tensor([4, 2]), padding="pre").sum().backward()
    assert x.grad is not None
    expected = torch.tensor([[0.25] * 4, [0, 0, 0.5, 0.5]], dtype=torch.float64)
    assert torch.equal(x.grad[..., 0], expected)


def test_pooling_accepts_lengths_as_numpy_or_list_and_both_lengths_and_mask():
    """Lengths may be a NumPy array or a list; agreeing lengths and mask are accepted."""
    x = torch.arange(8.0).reshape(2, 4)
    want = torch.tensor([1.0, 5.5])
    lengths = torch.tensor([3, 4])
    mask = lengths_to_mask(lengths, 4)
    _assert_same(masked_mean(x, np.array([3, 4])), want)  # type: ignore[arg-type]
    _assert_same(masked_mean(x, [3, 4]), want)  # type: ignore[arg-type]
    _assert_same(masked_mean(x, lengths, mask=mask), want)
    _assert_same(masked_mean(x), torch.tensor([1.5, 5.5]))


def test_last_step_keeps_integer_dtype():
    """last_step and first_step work on any dtype, e.g. token ids."""
    ids = torch.tensor([[5, 6, 0], [0, 0, 9]])
    assert torch.equal(last_step(ids, torch.tensor([2, 1]), padding="post"), torch.tensor([6, 0]))
    assert torch.equal(first_step(ids, mask=ids != 0), torch.tensor([5, 9]))


def test_pooling_modules_equal_their_functions():
    """The modules are thin wrappers: same results as the functions."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(3, 5, 4, generator=generator)
    lengths = torch.tensor([5, 0, 2])
    kw: dict[str, Any] = {"padding": "pre"}
    assert torch.equal(MeanPooling()(x, lengths, **kw), masked_mean(x, lengths, **kw))
    assert torch.equal(MaxPooling()(x, lengths, **kw), masked_max(x, lengths, **kw))
    assert torch.equal(LastStepPooling()(x, lengths, **kw), last_step(x, lengths, **kw))
    both = LastStepPooling(num_directions=2)
    assert torch.equal(both(x, lengths, **kw), last_and_first(x, lengths, **kw))
    assert repr(both) == "LastStepPooling(num_directions=2)"


def test_pooling_works_in_float32():
    """float32 inputs pool to float32 results close to the float64 ones."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(4, 6, 3, generator=generator, dtype=torch.float64)
    lengths = torch.tensor([6, 3, 0, 1])
    for pool in (masked_mean, masked_max, last_step):
        got = pool(x.float(), lengths)
        assert got.dtype == torch.float32
        torch.testing.assert_close(got, pool(x, lengths).float())


# ------------------------------------------------------------------ with the recurrent layers


@pytest.mark.parametrize("cls", [LSTM, GRU])
@pytest.mark.parametrize("how", ["post", "pre", "holes"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
def test_last_and_first_of_recurrent_output_equals_final_state(cls, how, bidirectional):
    """Pooling a varlen LSTM/GRU output at its last (and first) real step gives its final h."""
    torch.manual_seed(0)
    kwargs: dict[str, Any] = {"bidirectional": bidirectional, "dtype": torch.float64}
    if cls is LSTM:
        kwargs["proj_size"] = 2
    module = cls(3, 4, 2, **kwargs)
    x = torch.randn(4, 6, 3, dtype=torch.float64)
    lengths = torch.tensor([6, 3, 0, 1])
    if how == "holes":
        mask = torch.tensor(
            [[1, 0, 1, 1, 0, 1], [0, 1, 0, 0, 1, 0], [0] * 6, [0, 0, 0, 0, 0, 1]], dtype=torch.bool
        )
        out, state = module(x, mask=mask)
        call: dict[str, Any] = {"mask": mask}
    else:
        out, state = module(x, lengths, padding=how)
        call = {"lengths": lengths, "padding": how}
    h = state[0] if cls is LSTM else state
    D = 2 if bidirectional else 1
    want = torch.cat([h[-2], h[-1]], dim=-1) if bidirectional else h[-1]
    got = last_and_first(out, **call, num_directions=D)
    torch.testing.assert_close(got, want, atol=1e-12, rtol=0)
    if bidirectional:  # the naive "last step of both halves" is wrong for the backward half
        H_out = out.shape[2] // 2
        naive = last_step(out, **call)
        assert not torch.allclose(naive[:2, H_out:], want[:2, H_out:])


# ------------------------------------------------------------------ errors

X = torch.zeros(2, 4, 3)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (
            lambda: masked_mean([[1.0]]),  # type: ignore[arg-type]
            TypeError,
            r"masked_mean: x must be a Tensor \(B, T, \*F\)",
        ),
        (lambda: masked_max(torch.zeros(3)), ValueError, r"x must have shape \(B, T, \*F\), got"),
        (
            lambda: masked_mean(torch.zeros(2, 3, dtype=torch.int64)),
            TypeError,
            "x must be floating point, got torch.int64. Cast with",
        ),
        (
            lambda: last_step(X, torch.tensor([1.0, 2.0])),
            TypeError,
            "last_step: lengths must be integers, got dtype torch.float32",
        ),
        (
            lambda: first_step(X, torch.tensor([1, 2, 3])),
            ValueError,
            r"lengths must have shape \(B,\) = \(2,\), got \(3,\)",
        ),
        (
            lambda: masked_mean(X, torch.tensor([1, 5])),
            ValueError,
            r"lengths must be in \[0, T\] = \[0, 4\], got lengths\[1\] == 5",
        ),
        (
            lambda: masked_mean(X, torch.tensor([-1, 2])),
            ValueError,
            r"got lengths\[0\] == -1",
        ),
        (
            lambda: masked_max(X, mask=torch.ones(2, 4)),
            TypeError,
            "mask must be a bool tensor .True = real step., got torch.float32",
        ),
        (
            lambda: masked_max(X, mask=[[True]]),  # type: ignore[arg-type]
            TypeError,
            "mask must be a bool tensor .True = real step., got list",
        ),
        (
            lambda: masked_max(X, mask=torch.ones(2, 3, dtype=torch.bool)),
            ValueError,
            r"mask must have shape \(B, T\) = \(2, 4\), got \(2, 3\)",
        ),
        (
            lambda: masked_max(X, torch.tensor([4, 1]), mask=torch.ones(2, 4, dtype=torch.bool)),
            ValueError,
            "masked_max: mask and lengths must agree",
        ),
        (
            lambda: masked_mean(X, padding="left"),  # type: ignore[arg-type]
            ValueError,
            "masked_mean: padding must be 'pre' or 'post', got 'left'",
        ),
        (
            lambda: last_and_first(X, num_directions=3),
            ValueError,
            "last_and_first: num_directions must be 1 or 2, got 3",
        ),
        (
            lambda: last_and_first(X),
            ValueError,
            r"feature size divisible by num_directions = 2, got shape \(2, 4, 3\)",
        ),
        (
            lambda: last_and_first(torch.zeros(2, 4)),
            ValueError,
            r"last_and_first: x must have shape \(B, T, F\), got \(2, 4\)",
        ),
        (
            lambda: masked_softmax(X),
            ValueError,
            r"masked_softmax: x must have shape \(B, T\), got \(2, 4, 3\)",
        ),
        (
            lambda: attention_pool(X, [[0.0]]),  # type: ignore[arg-type]
            TypeError,
            r"attention_pool: scores must be a Tensor \(B, T\), got list",
        ),
        (
            lambda: attention_pool(X, torch.zeros(2, 3)),
            ValueError,
            r"scores must have shape \(B, T\) = \(2, 4\), got \(2, 3\)",
        ),
        (
            lambda: attention_pool(X, torch.zeros(2, 4, dtype=torch.float64)),
            TypeError,
            "scores must have the dtype of x, torch.float32, got torch.float64",
        ),
        (
            lambda: LastStepPooling(num_directions=0),
            ValueError,
            "LastStepPooling: num_directions must be 1 or 2, got 0",
        ),
        (
            lambda: AttentionPooling(3)(torch.zeros(2, 4, 5)),
            ValueError,
            r"AttentionPooling: x must have F = input_size = 3 features, got shape \(2, 4, 5\)",
        ),
        (
            lambda: AttentionPooling(3)(X.double()),
            TypeError,
            "x must have the dtype of the weights, torch.float32, got torch.float64",
        ),
        (
            lambda: AttentionPooling(3, 0),
            ValueError,
            "AttentionPooling: hidden_size must be >= 1, got 0",
        ),
        (
            lambda: AttentionPooling(3.0),  # type: ignore[arg-type]
            TypeError,
            "AttentionPooling: input_size must be an int, got 3.0",
        ),
    ],
)
def test_pooling_rejects_bad_arguments(call, error, match):
    """Bad inputs get an error naming what was expected and what was received."""
    with pytest.raises(error, match=match):
        call()
