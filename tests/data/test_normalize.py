"""Tests for varlen.data.normalize: statistics over real steps only."""

from __future__ import annotations

import itertools
import json
import warnings
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from tests.reference.normalize import (
    mean_std_reference,
    real_steps_reference,
    transform_reference,
)
from varlen._types import SIDES
from varlen.data.masks import lengths_to_mask
from varlen.data.normalize import MeanStd, Standardizer, masked_mean_std
from varlen.data.ragged import Ragged

PAD_VALUES = [np.nan, np.inf, -np.inf, -3e38, 12345.0]  # -3e38 fits float32


@st.composite
def padded_batches(draw, *, dtype=np.float64, min_B=0):
    """Draw ``(x, lengths, padding)``: a padded ``(B, T, F)`` batch.

    Some real steps hold NaN; padded steps hold garbage (NaN, inf or a huge value).
    """
    B = draw(st.integers(min_B, 5))
    T = draw(st.integers(0, 6))
    F = draw(st.integers(1, 3))
    lengths = np.array(draw(st.lists(st.integers(0, T), min_size=B, max_size=B)), dtype=np.int64)
    finite = st.floats(-1e3, 1e3, allow_nan=False, width=32 if dtype == np.float32 else 64)
    elements = st.one_of(finite, finite, finite, st.just(np.nan))
    x = draw(arrays(dtype, (B, T, F), elements=elements))
    padding = draw(st.sampled_from(SIDES))
    real = lengths_to_mask(lengths, T, padding=padding)
    x[~real] = draw(st.sampled_from(PAD_VALUES))
    return x, lengths, padding


def _fit_quietly(x, **kwargs):
    """Fit, returning the standardizer and the warnings raised."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scaler = Standardizer.fit(x, **kwargs)
    return scaler, caught


def _same_bits(a, b):
    """Equal dtype, shape and bit patterns (so NaN pads and -0.0 must match exactly)."""
    assert a.dtype == b.dtype
    assert a.shape == b.shape
    np.testing.assert_array_equal(a.view(np.uint8), b.view(np.uint8))


EMPTY_CASE = (np.zeros((0, 3, 2)), np.zeros(0, dtype=np.int64), "post")
ZERO_T_CASE = (np.zeros((2, 0, 1)), np.zeros(2, dtype=np.int64), "pre")
FULL_CASE = (np.arange(6.0).reshape(2, 3, 1), np.array([3, 3]), "post")
ONE_REAL_CASE = (np.array([[[np.inf], [np.nan], [4.0]]]), np.array([1]), "pre")


# ----------------------------------------------------------------- masked_mean_std


@given(batch=padded_batches())
@example(batch=EMPTY_CASE)
@example(batch=ZERO_T_CASE)
@example(batch=FULL_CASE)
@example(batch=ONE_REAL_CASE)
def test_masked_mean_std_matches_reference(batch):
    """masked_mean_std equals per-feature nanmean/nanstd over the real steps only."""
    x, lengths, padding = batch
    mask = lengths_to_mask(lengths, x.shape[1], padding=padding)
    result = masked_mean_std(x, mask)
    mean, std, count = mean_std_reference(real_steps_reference(x, lengths, padding), x.shape[2])
    np.testing.assert_array_equal(result.count, count)
    np.testing.assert_allclose(result.mean, mean, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(result.std, std, rtol=1e-9, atol=1e-9)
    assert result.mean.dtype == result.std.dtype == result.count.dtype == np.float64


def test_masked_mean_std_accepts_ragged_and_flat_arrays():
    """A Ragged, a flat (N, F) array and no mask give the statistics of every step."""
    values = np.array([[1.0, 10.0], [3.0, np.nan], [5.0, 30.0]])
    ragged = Ragged(values, np.array([0, 2, 3]))
    for result in (masked_mean_std(ragged), masked_mean_std(values)):
        np.testing.assert_array_equal(result.mean, [3.0, 20.0])
        np.testing.assert_allclose(result.std, [np.sqrt(8 / 3), 10.0])
        np.testing.assert_array_equal(result.count, [3.0, 2.0])
    assert isinstance(masked_mean_std(values), MeanStd)


def test_masked_mean_std_gives_nan_for_features_without_steps():
    """A feature with no real non-NaN step has NaN mean and std and count 0, silently."""
    x = np.array([[[1.0, np.nan], [2.0, np.nan], [7.0, 7.0]]])  # (1, 3, 2)
    result = masked_mean_std(x, np.array([[True, True, False]]))
    np.testing.assert_array_equal(result.mean, [1.5, np.nan])
    np.testing.assert_array_equal(result.std, [0.5, np.nan])
    np.testing.assert_array_equal(result.count, [2.0, 0.0])


# ----------------------------------------------------------------------------- fit


@given(batch=padded_batches())
@example(batch=EMPTY_CASE)
@example(batch=ZERO_T_CASE)
@example(batch=FULL_CASE)
@example(batch=ONE_REAL_CASE)
def test_standardizer_fit_matches_reference(batch):
    """Standardizer.fit learns the reference statistics; empty features get 0 / 1 and a warning."""
    x, lengths, padding = batch
    scaler, caught = _fit_quietly(x, lengths=lengths, padding=padding)
    mean, std, count = mean_std_reference(real_steps_reference(x, lengths, padding), x.shape[2])
    empty = count == 0
    np.testing.assert_array_equal(scaler.count, count)
    np.testing.assert_allclose(scaler.mean, np.where(empty, 0.0, mean), rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(scaler.std, np.where(empty, 1.0, std), rtol=1e-9, atol=1e-9)
    assert len(caught) == int(empty.any())
    if empty.any():
        assert str(np.flatnonzero(empty).tolist()) in str(caught[0].message)


@given(batch=padded_batches())
@example(batch=EMPTY_CASE)
@example(batch=FULL_CASE)
def test_standardizer_ragged_mask_and_lengths_give_identical_statistics(batch):
    """Ragged, padded + mask and padded + lengths give bit-identical statistics and outputs."""
    x, lengths, padding = batch
    mask = lengths_to_mask(lengths, x.shape[1], padding=padding)
    ragged = Ragged.from_padded(x, lengths, padding=padding)
    by_ragged, _ = _fit_quietly(ragged)
    by_mask, _ = _fit_quietly(x, mask=mask)
    by_lengths, _ = _fit_quietly(x, lengths=lengths, padding=padding)
    for other in (by_mask, by_lengths):
        for name in ("mean", "std", "count"):
            np.testing.assert_array_equal(getattr(by_ragged, name), getattr(other, name))
    padded_out = by_mask.transform(x, mask=mask)
    ragged_out = by_ragged.transform(ragged)
    np.testing.assert_array_equal(ragged_out.offsets, ragged.offsets)
    _same_bits(padded_out[mask], ragged_out.values)


@given(batch=padded_batches())
@example(batch=FULL_CASE)
def test_standardizer_pre_and_post_padding_give_identical_results(batch):
    """The same sequences padded pre or post give identical statistics and real outputs."""
    x, lengths, padding = batch
    ragged = Ragged.from_padded(x, lengths, padding=padding)
    results = []
    for side in SIDES:
        padded, kept = ragged.to_padded(padding=side, value=np.nan)
        scaler, _ = _fit_quietly(padded, lengths=kept, padding=side)
        out = scaler.transform(padded, lengths=kept, padding=side)
        results.append((scaler, Ragged.from_padded(out, kept, padding=side)))
    (pre, pre_out), (post, post_out) = results
    for name in ("mean", "std", "count"):
        np.testing.assert_array_equal(getattr(pre, name), getattr(post, name))
    assert pre_out == post_out


# ----------------------------------------------------------------------- transform


@given(batch=padded_batches())
@example(batch=EMPTY_CASE)
@example(batch=ZERO_T_CASE)
@example(batch=ONE_REAL_CASE)
def test_standardizer_transform_matches_reference_and_keeps_pads(batch):
    """Standardizer.transform matches the loop reference and copies every pad bit."""
    x, lengths, padding = batch
    scaler, _ = _fit_quietly(x, lengths=lengths, padding=padding)
    out = scaler.transform(x, lengths=lengths, padding=padding)
    expected = transform_reference(x, lengths, padding, mean=scaler.mean, scale=scaler.scale)
    mask = lengths_to_mask(lengths, x.shape[1], padding=padding)
    np.testing.assert_allclose(out[mask], expected[mask], rtol=1e-12, atol=1e-12)
    _same_bits(out[~mask], x[~mask])
    assert out.dtype == x.dtype


def test_standardizer_transform_leaves_nan_and_garbage_pads_bit_for_bit():
    """Pads holding NaN, inf and a huge value come back exactly; real NaN stays NaN."""
    x = np.array([[[1.0], [3.0], [np.nan]], [[np.nan], [-1e300], [np.inf]]])  # (2, 3, 1)
    mask = np.array([[True, True, False], [True, False, False]])
    out = Standardizer.fit(x, mask=mask).transform(x, mask=mask)
    np.testing.assert_array_equal(out[..., 0], [[-1.0, 1.0, np.nan], [np.nan, -1e300, np.inf]])
    _same_bits(out[~mask], x[~mask])


@given(batch=padded_batches())
@example(batch=FULL_CASE)
def test_standardizer_inverse_transform_round_trips(batch):
    """inverse_transform(transform(x)) gives back the real steps; pads stay untouched."""
    x, lengths, padding = batch
    scaler, _ = _fit_quietly(x, lengths=lengths, padding=padding)
    kwargs = {"lengths": lengths, "padding": padding}
    back = scaler.inverse_transform(scaler.transform(x, **kwargs), **kwargs)
    mask = lengths_to_mask(lengths, x.shape[1], padding=padding)
    np.testing.assert_allclose(back[mask], x[mask], rtol=1e-12, atol=1e-9)
    _same_bits(back[~mask], x[~mask])


def test_standardizer_transforms_ragged_into_new_ragged():
    """Transforming a Ragged (both ways) return new Raggeds with the same offsets."""
    ragged = Ragged.from_sequences([np.array([[1.0], [2.0]]), np.zeros((0, 1)), np.array([[6.0]])])
    scaler = Standardizer.fit(ragged)
    out = scaler.transform(ragged)
    assert isinstance(out, Ragged)
    np.testing.assert_array_equal(out.offsets, ragged.offsets)
    np.testing.assert_allclose(
        out.values[:, 0], (np.array([1.0, 2.0, 6.0]) - 3.0) / np.sqrt(14 / 3)
    )
    np.testing.assert_allclose(scaler.inverse_transform(out).values, ragged.values)


def test_standardizer_fit_transform_equals_fit_then_transform():
    """fit_transform returns the fitted standardizer and its transform of the same data."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 4, 2))
    lengths = np.array([4, 1, 3])
    scaler, out = Standardizer.fit_transform(x, lengths=lengths, padding="pre")
    expected = Standardizer.fit(x, lengths=lengths, padding="pre")
    np.testing.assert_array_equal(scaler.mean, expected.mean)
    _same_bits(out, expected.transform(x, lengths=lengths, padding="pre"))


def test_standardizer_does_not_mutate_inputs():
    """fit, transform, inverse_transform and partial_fit leave x, mask and lengths unchanged."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 4, 2))
    x[0, 3] = np.nan
    mask = lengths_to_mask(np.array([3, 4, 0]), 4)
    lengths = np.array([3, 4, 0])
    ragged = Ragged.from_padded(x, lengths)
    copies = (x.copy(), mask.copy(), lengths.copy(), ragged.values.copy())
    scaler = Standardizer.fit(x, mask=mask)
    scaler.transform(x, mask=mask)
    scaler.inverse_transform(x, lengths=lengths)
    scaler.partial_fit(x, lengths=lengths)
    scaler.transform(ragged)
    _same_bits(x, copies[0])
    np.testing.assert_array_equal(mask, copies[1])
    np.testing.assert_array_equal(lengths, copies[2])
    _same_bits(ragged.values, copies[3])


# -------------------------------------------------------------------------- dtypes


@given(batch=padded_batches(dtype=np.float32))
@example(batch=(np.full((1, 2, 1), 3.5, np.float32), np.array([2]), "post"))
def test_standardizer_float32_input_gives_float64_statistics_and_float32_output(batch):
    """float32 data are reduced in float64 (as if cast first) and transformed back to float32."""
    x, lengths, padding = batch
    scaler, _ = _fit_quietly(x, lengths=lengths, padding=padding)
    wide, _ = _fit_quietly(x.astype(np.float64), lengths=lengths, padding=padding)
    assert scaler.mean.dtype == scaler.std.dtype == scaler.count.dtype == np.float64
    for name in ("mean", "std", "count"):
        np.testing.assert_array_equal(getattr(scaler, name), getattr(wide, name))
    out = scaler.transform(x, lengths=lengths, padding=padding)
    assert out.dtype == np.float32
    expected = wide.transform(x.astype(np.float64), lengths=lengths, padding=padding)
    mask = lengths_to_mask(lengths, x.shape[1], padding=padding)
    np.testing.assert_array_equal(out[mask], expected[mask].astype(np.float32))
    _same_bits(out[~mask], x[~mask])


def test_standardizer_integer_input_gives_float64_output():
    """Integer data are standardized into float64; integer pads are copied as floats."""
    x = np.array([[[1], [3], [99]]], dtype=np.int32)
    out = Standardizer.fit(x, lengths=[2]).transform(x, lengths=[2])
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out[..., 0], [[-1.0, 1.0, 99.0]])


# ----------------------------------------------------------------------- edge cases


@pytest.mark.parametrize("value", [0.0, 7.0, -3.25, 1e9, 1e-12], ids=str)
def test_standardizer_constant_feature_gets_unit_scale(value):
    """A constant feature has std 0 (up to rounding), scale 1 and transforms to finite zeros."""
    x = np.full((2, 5, 1), value)
    scaler = Standardizer.fit(x, lengths=[5, 3])
    assert scaler.std[0] <= 1e-10 * max(abs(value), 1e-300)
    np.testing.assert_array_equal(scaler.scale, [1.0])
    out = scaler.transform(x, lengths=[5, 3])
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out[0], 0.0, atol=1e-6)


def test_standardizer_eps_sets_the_constant_threshold():
    """A feature counts as constant when std <= eps * |mean|, so eps=0 keeps any nonzero std."""
    x = np.array([[[128.0], [128.0 + 2.0**-30]]])  # std 2**-31 <= 1e-10 * 128
    mask = np.ones((1, 2), dtype=bool)
    assert Standardizer.fit(x, mask=mask).scale[0] == 1.0
    assert Standardizer.fit(x, mask=mask, eps=0.0).scale[0] == 2.0**-31
    assert Standardizer.fit(x, mask=mask, eps=1e-12).scale[0] == 2.0**-31


def test_standardizer_all_nan_feature_warns_and_uses_zero_mean_unit_std():
    """A feature with only NaN (or only pads) warns naming it and gets mean 0, std 1."""
    x = np.array([[[1.0, np.nan], [2.0, np.nan]]])
    with pytest.warns(RuntimeWarning, match=r"features \[1\] have no real non-NaN step"):
        scaler = Standardizer.fit(x, mask=np.ones((1, 2), dtype=bool))
    np.testing.assert_array_equal(scaler.mean, [1.5, 0.0])
    np.testing.assert_array_equal(scaler.std, [0.5, 1.0])
    np.testing.assert_array_equal(scaler.count, [2.0, 0.0])
    out = scaler.transform(x, mask=np.ones((1, 2), dtype=bool))
    np.testing.assert_array_equal(out[0], [[-1.0, np.nan], [1.0, np.nan]])


def test_standardizer_is_numerically_stable_with_a_large_offset():
    """Data at 1e9 with unit spread get the exact std within 1e-9 (no E[x^2] - E[x]^2)."""
    rng = np.random.default_rng(2)
    x = 1e9 + rng.normal(size=(4, 50, 1))
    scaler = Standardizer.fit(x, lengths=[50, 20, 0, 31])
    steps = [Fraction(float(v)) for v in np.concatenate([x[0], x[1, :20], x[3, :31]])[:, 0]]
    mean = sum(steps, Fraction(0)) / len(steps)
    variance = sum(((s - mean) ** 2 for s in steps), Fraction(0)) / len(steps)
    assert scaler.mean[0] == pytest.approx(float(mean), rel=1e-15)
    assert scaler.std[0] == pytest.approx(float(variance) ** 0.5, rel=1e-9)


# ------------------------------------------------------------- streaming and merge


@given(batch=padded_batches(), cuts=st.lists(st.integers(0, 5), max_size=3))
@example(batch=FULL_CASE, cuts=[1])
@example(batch=ONE_REAL_CASE, cuts=[0, 1])
def test_standardizer_partial_fit_matches_single_fit(batch, cuts):
    """Chained partial_fit over row chunks equals one fit over the whole batch."""
    x, lengths, padding = batch
    whole, _ = _fit_quietly(x, lengths=lengths, padding=padding)
    bounds = [0, *sorted(min(c, x.shape[0]) for c in cuts), x.shape[0]]
    streamed = Standardizer.empty(x.shape[2])
    for start, stop in itertools.pairwise(bounds):
        streamed = streamed.partial_fit(x[start:stop], lengths=lengths[start:stop], padding=padding)
    np.testing.assert_array_equal(streamed.count, whole.count)
    np.testing.assert_allclose(streamed.mean, whole.mean, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(streamed.std, whole.std, rtol=1e-9, atol=1e-9)


def test_standardizer_merge_matches_fit_on_the_union():
    """Merging standardizers fitted on two shards equals fitting on both shards at once."""
    rng = np.random.default_rng(3)
    first = Ragged.from_sequences([rng.normal(5, 2, size=(n, 3)) for n in (4, 0, 7)])
    second = Ragged.from_sequences([rng.normal(-1, 9, size=(n, 3)) for n in (2, 9)])
    merged = Standardizer.fit(first).merge(Standardizer.fit(second))
    whole = Standardizer.fit(Ragged.concatenate([first, second]))
    np.testing.assert_array_equal(merged.count, whole.count)
    np.testing.assert_allclose(merged.mean, whole.mean, rtol=1e-13)
    np.testing.assert_allclose(merged.std, whole.std, rtol=1e-12)


def test_standardizer_partial_fit_does_not_warn_for_features_still_empty():
    """partial_fit leaves count 0 features at mean 0, std 1 without a warning."""
    x = np.array([[[np.nan, 1.0], [np.nan, 3.0]]])
    scaler = Standardizer.empty(2).partial_fit(x, lengths=[2])
    np.testing.assert_array_equal(scaler.count, [0.0, 2.0])
    np.testing.assert_array_equal(scaler.mean, [0.0, 2.0])
    np.testing.assert_array_equal(scaler.std, [1.0, 1.0])


# --------------------------------------------------------------- value semantics


def test_standardizer_state_dict_round_trips_through_json():
    """state_dict is plain JSON, and from_state_dict rebuilds identical statistics."""
    rng = np.random.default_rng(4)
    x = rng.normal(size=(2, 3, 4))
    scaler = Standardizer.fit(x, lengths=[3, 2], eps=1e-6)
    text = json.dumps(scaler.state_dict(), allow_nan=False)
    restored = Standardizer.from_state_dict(json.loads(text))
    for name in ("mean", "std", "count"):
        _same_bits(getattr(restored, name), getattr(scaler, name))
    assert restored.eps == 1e-6
    _same_bits(restored.transform(x, lengths=[3, 2]), scaler.transform(x, lengths=[3, 2]))


def test_standardizer_is_immutable():
    """Fields cannot be reassigned and the arrays are read-only copies of the inputs."""
    mean = np.array([1.0, 2.0])
    scaler = Standardizer(mean, np.array([1.0, 1.0]), np.array([3.0, 3.0]))
    mean[0] = 99.0
    assert scaler.mean[0] == 1.0
    with pytest.raises(ValueError, match="read-only"):
        scaler.mean[0] = 5.0
    with pytest.raises(AttributeError):
        scaler.eps = 1.0  # type: ignore[misc]
    assert repr(scaler) == "Standardizer(F=2, eps=1e-10)"
    assert scaler.num_features == 2


# -------------------------------------------------------------------------- errors


def test_standardizer_fit_rejects_non_numeric_x():
    """Bool and string data raise TypeError."""
    with pytest.raises(
        TypeError, match=r"x must have an integer or floating dtype, got dtype bool"
    ):
        Standardizer.fit(np.ones((1, 2, 1), dtype=bool), lengths=[1])
    with pytest.raises(TypeError, match=r"x must have an integer or floating dtype"):
        Standardizer.fit(Ragged(np.array([["a"]]), np.array([0, 1])))


def test_standardizer_fit_rejects_infinity_at_real_steps():
    """An infinite real step raises ValueError naming the feature (pads may hold inf)."""
    x = np.array([[[1.0, 2.0], [3.0, np.inf], [np.inf, np.inf]]])
    with pytest.raises(ValueError, match=r"finite or NaN at real steps, .* in feature 1\."):
        Standardizer.fit(x, lengths=[2])
    Standardizer.fit(x, lengths=[1])


def test_masked_mean_std_rejects_infinity_at_real_steps():
    """masked_mean_std raises on an infinite real step too."""
    with pytest.raises(ValueError, match=r"masked_mean_std: x must be finite or NaN"):
        masked_mean_std(np.array([[-np.inf]]))


def test_standardizer_fit_needs_exactly_one_of_mask_and_lengths():
    """A padded x needs mask or lengths, not both and not neither."""
    x = np.zeros((1, 2, 1))
    with pytest.raises(ValueError, match=r"exactly one of mask or lengths .* got neither"):
        Standardizer.fit(x)
    with pytest.raises(ValueError, match=r"exactly one of mask or lengths .* got both"):
        Standardizer.fit(x, mask=np.ones((1, 2), dtype=bool), lengths=[2])


def test_standardizer_fit_rejects_bad_lengths():
    """Lengths of the wrong shape, dtype or range raise with the shared messages."""
    x = np.zeros((2, 3, 1))
    with pytest.raises(ValueError, match=r"lengths must have shape \(B,\) = \(2,\), got \(3,\)"):
        Standardizer.fit(x, lengths=[1, 1, 1])
    with pytest.raises(ValueError, match=r"lengths must be <= T = 3"):
        Standardizer.fit(x, lengths=[4, 1])
    with pytest.raises(TypeError, match=r"lengths must be integers"):
        Standardizer.fit(x, lengths=[1.0, 1.0])
    with pytest.raises(ValueError, match=r"padding must be 'pre' or 'post', got 'left'"):
        Standardizer.fit(x, lengths=[1, 1], padding="left")  # type: ignore[arg-type]


def test_standardizer_fit_rejects_bad_masks():
    """A non-bool mask raises TypeError; a mask of the wrong shape raises ValueError."""
    x = np.zeros((2, 3, 1))
    with pytest.raises(TypeError, match=r"mask must have dtype bool .* got dtype int64"):
        Standardizer.fit(x, mask=np.ones((2, 3), dtype=np.int64))
    with pytest.raises(ValueError, match=r"mask must have shape \(B, T\) = \(2, 3\), got \(3, 2\)"):
        Standardizer.fit(x, mask=np.ones((3, 2), dtype=bool))


def test_standardizer_fit_rejects_bad_layouts():
    """The data must be (B, T, F) or a Ragged with (N, F) values, and a Ragged takes no mask."""
    with pytest.raises(ValueError, match=r"x must be a Ragged or an array of shape \(B, T, F\)"):
        Standardizer.fit(np.zeros((2, 3)), lengths=[1, 1])
    with pytest.raises(ValueError, match=r"x.values must have shape \(N, F\), got \(3,\)"):
        Standardizer.fit(Ragged(np.zeros(3), np.array([0, 3])))
    ragged = Ragged(np.zeros((3, 1)), np.array([0, 3]))
    with pytest.raises(ValueError, match=r"mask and lengths must be None for a Ragged x, got mask"):
        Standardizer.fit(ragged, mask=np.ones((1, 3), dtype=bool))
    with pytest.raises(ValueError, match=r"must be None for a Ragged x, got lengths"):
        Standardizer.fit(ragged, lengths=[3])


@pytest.mark.parametrize("eps", [-1.0, np.inf, np.nan], ids=repr)
def test_standardizer_fit_rejects_negative_or_non_finite_eps(eps):
    """A negative or non-finite eps raises ValueError."""
    with pytest.raises(ValueError, match=r"eps must be finite and >= 0"):
        Standardizer.fit(np.zeros((1, 1, 1)), lengths=[1], eps=eps)


@pytest.mark.parametrize("eps", ["small", True, None], ids=repr)
def test_standardizer_fit_rejects_non_float_eps(eps):
    """An eps that is not a real number (or is a bool) raises TypeError."""
    with pytest.raises(TypeError, match=r"Standardizer.fit: eps must be a float"):
        Standardizer.fit(np.zeros((1, 1, 1)), lengths=[1], eps=eps)


def test_masked_mean_std_rejects_bad_arguments():
    """Scalars, non-bool masks and masks of the wrong shape raise."""
    with pytest.raises(ValueError, match=r"x must have shape \(\*S, F\), got a scalar"):
        masked_mean_std(np.float64(1.0))
    with pytest.raises(TypeError, match=r"masked_mean_std: mask must have dtype bool"):
        masked_mean_std(np.zeros((2, 1)), np.array([1, 0]))
    with pytest.raises(ValueError, match=r"mask must have shape x.shape\[:-1\] = \(2,\)"):
        masked_mean_std(np.zeros((2, 1)), np.array([True]))
    with pytest.raises(TypeError, match=r"masked_mean_std: x must have an integer or floating"):
        masked_mean_std(np.array([["a"]]))


def test_standardizer_transform_rejects_a_different_feature_count():
    """transform, inverse_transform and partial_fit need the fitted number of features."""
    scaler = Standardizer.fit(np.zeros((1, 2, 3)), lengths=[2])
    x = np.zeros((1, 2, 4))
    with pytest.raises(ValueError, match=r"transform: x must have F = 3 features .* got 4"):
        scaler.transform(x, lengths=[2])
    with pytest.raises(ValueError, match=r"inverse_transform: x must have F = 3"):
        scaler.inverse_transform(x, lengths=[2])
    with pytest.raises(ValueError, match=r"partial_fit: x must have F = 3"):
        scaler.partial_fit(x, lengths=[2])


def test_standardizer_merge_rejects_bad_others():
    """Standardizer.merge needs a Standardizer with the same number of features."""
    scaler = Standardizer.empty(2)
    with pytest.raises(TypeError, match=r"other must be a Standardizer, got dict"):
        scaler.merge({})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"merge: other must have F = 2 .* got 3"):
        scaler.merge(Standardizer.empty(3))


def test_standardizer_empty_rejects_bad_num_features():
    """num_features must be an int (not a bool or float) and >= 0."""
    for bad in (1.5, True):
        with pytest.raises(TypeError, match=r"Standardizer.empty: num_features must be an int"):
            Standardizer.empty(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"num_features must be >= 0, got -1"):
        Standardizer.empty(-1)


def test_standardizer_constructor_validates_statistics():
    """The constructor rejects non-1-D, non-finite, mismatched or negative statistics."""
    one = np.ones(2)
    with pytest.raises(
        ValueError, match=r"Standardizer: mean must have shape \(F,\), got \(1, 2\)"
    ):
        Standardizer(one[None], one, one)
    with pytest.raises(ValueError, match=r"Standardizer: std must be finite"):
        Standardizer(one, np.array([1.0, np.nan]), one)
    with pytest.raises(ValueError, match=r"count must have shape \(F,\) = \(2,\) like mean"):
        Standardizer(one, one, np.ones(3))
    with pytest.raises(ValueError, match=r"Standardizer: std must be >= 0"):
        Standardizer(one, -one, one)
    with pytest.raises(ValueError, match=r"Standardizer: eps must be finite and >= 0"):
        Standardizer(one, one, one, eps=-1.0)


def test_standardizer_from_state_dict_rejects_bad_states():
    """A non-mapping, missing or extra keys and an unknown version raise."""
    state = Standardizer.empty(1).state_dict()
    with pytest.raises(TypeError, match=r"state must be a mapping, got list"):
        Standardizer.from_state_dict([])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"state must have keys \['count', 'eps', 'mean'"):
        Standardizer.from_state_dict({k: v for k, v in state.items() if k != "std"})
    with pytest.raises(ValueError, match=r"state\['version'\] must be 1, got 2"):
        Standardizer.from_state_dict({**state, "version": 2})
    with pytest.raises(ValueError, match=r"std must be >= 0"):
        Standardizer.from_state_dict({**state, "std": [-1.0]})
