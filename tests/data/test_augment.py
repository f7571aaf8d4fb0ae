"""augment: crops, warps, shifts and gains of real steps only, each from its own stream."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from varlen.data import Augmentation, Ragged, augment, pad
from varlen.data.augment import augment_sequence


def ragged(lengths, features=2, seed=0):
    """Random float32 sequences of the given lengths."""
    rng = np.random.default_rng(seed)
    return Ragged.from_sequences(
        [rng.normal(size=(T, features)).astype(np.float32) for T in lengths], dtype=np.float32
    )


lengths_strategy = st.lists(
    st.one_of(st.integers(0, 3), st.integers(0, 40), st.just(200)), min_size=1, max_size=6
)


@settings(max_examples=40, deadline=None)
@given(
    lengths=lengths_strategy,
    crop=st.floats(0.05, 1.0),
    warp=st.floats(0.0, 1.5),
    scale=st.floats(0.0, 1.0),
    shift=st.sampled_from([0.0, 0.3, 1.0]),
    key=st.integers(0, 2**62),
)
def test_each_sequence_depends_on_its_steps_key_and_id_only(lengths, crop, warp, scale, shift, key):
    """A sequence augmented in a batch equals it augmented alone (no batch-mates, no pads)."""
    x = ragged(lengths)
    augmentation = Augmentation(crop=crop, warp=warp, scale=scale, shift=shift)
    ids = np.arange(10, 10 + len(x))
    out = augment(x, augmentation, key=key, ids=ids)
    assert out.values.dtype == np.float32
    for i, T in enumerate(lengths):
        alone = augment([x[i]], augmentation, key=key, ids=[ids[i]])
        np.testing.assert_array_equal(out[i], alone[0])
        # a padded batch's real steps are the same sequences: pads never reach augment
        padded, got = pad([x[i]], maxlen=T + 3, value=np.nan, padding="pre")
        again = augment([padded[0][3:]], augmentation, key=key, ids=[ids[i]])
        np.testing.assert_array_equal(again[0], alone[0])
        assert int(got[0]) == T
        if T == 0:
            assert len(out[i]) == 0
            continue
        kept_low = max(1, round(T * crop)) - 1
        assert len(out[i]) >= max(1, int(np.floor(kept_low / (1 + warp))))
        assert len(out[i]) <= int(np.ceil(T * (1 + warp))) + 1
        assert np.isfinite(out[i]).all()


@settings(max_examples=30, deadline=None)
@given(lengths=lengths_strategy, crop=st.floats(0.05, 1.0), key=st.integers(0, 2**62))
def test_a_crop_alone_is_a_window_of_real_steps(lengths, crop, key):
    """Without warp or gain the result is consecutive real steps, at least a ``crop`` share."""
    x = ragged(lengths, features=1)
    out = augment(x, Augmentation(crop=crop, warp=0.0, scale=0.0), key=key, ids=range(len(x)))
    for i, T in enumerate(lengths):
        window = out[i][:, 0]
        if T == 0:
            assert len(window) == 0
            continue
        assert max(1, round(T * crop)) - 1 <= len(window) <= T
        series = x[i][:, 0]
        starts = [
            s for s in range(T - len(window) + 1) if (series[s : s + len(window)] == window).all()
        ]
        assert starts, "the crop is not a window of the sequence"


@settings(max_examples=30, deadline=None)
@given(lengths=lengths_strategy, shift=st.floats(0.0, 1.0), key=st.integers(0, 2**62))
def test_a_shift_alone_rotates_the_real_steps(lengths, shift, key):
    """Without crop, warp or gain a sequence is its real steps rotated by < ``shift`` of them."""
    x = ragged(lengths)
    out = augment(
        x, Augmentation(crop=1.0, warp=0.0, scale=0.0, shift=shift), key=key, ids=[7] * len(x)
    )
    for i, T in enumerate(lengths):
        offsets = [k for k in range(max(T, 1)) if np.array_equal(out[i], np.roll(x[i], k, axis=0))]
        assert offsets, "the shift is not a rotation of the real steps"
        assert min(offsets) <= max(shift * T, 0)


def test_shifts_draw_after_the_other_transforms():
    """Adding a shift leaves the crop, warp and gain drawn as before shifts existed.

    (Runs recorded before ``shift`` resume with the same augmentation.)
    """
    x = ragged([50, 13, 1], features=1)
    plain = augment(x, Augmentation(), key=11, ids=[0, 1, 2])
    shifted = augment(x, Augmentation(shift=1.0), key=11, ids=[0, 1, 2])
    moved = 0
    for i in range(3):
        rotations = [np.roll(plain[i], k, axis=0) for k in range(len(plain[i]))]
        assert any(np.array_equal(shifted[i], r) for r in rotations)
        moved += not np.array_equal(shifted[i], plain[i])
    assert moved


def test_a_gain_alone_scales_every_value_by_one_factor():
    """Without crop or warp, each sequence is its values times one positive gain."""
    x = ragged([5, 9, 1], features=3)
    out = augment(x, Augmentation(crop=1.0, warp=0.0, scale=0.5), key=7, ids=[0, 1, 2])
    for i in range(3):
        gains = out[i] / x[i]
        np.testing.assert_allclose(gains, gains.flat[0], rtol=1e-6)
        assert gains.flat[0] > 0


def test_warp_resamples_linearly_between_the_ends():
    """A warp keeps the first and last kept steps and interpolates a ramp exactly."""
    ramp = np.arange(20, dtype=np.float32)[:, None]
    for key in range(20):
        out = augment_sequence(
            ramp, Augmentation(crop=1.0, warp=0.5, scale=0.0), np.random.default_rng(key)
        )
        assert out[0, 0] == 0
        assert out[-1, 0] == pytest.approx(19)
        np.testing.assert_allclose(np.diff(out[:, 0]), 19 / (len(out) - 1), rtol=1e-5)


def test_identity_and_seeded():
    """Crop 1, warp 0, scale 0 leaves sequences as they are; the same key gives the same."""
    x = ragged([4, 0, 7])
    same = augment(x, Augmentation(crop=1.0, warp=0.0, scale=0.0), key=3, ids=[0, 1, 2])
    np.testing.assert_array_equal(same.values, x.values)
    assert Augmentation(crop=1.0, warp=0.0, scale=0.0).is_identity
    assert not Augmentation(crop=1.0, warp=0.0, scale=0.0, shift=0.1).is_identity
    a = augment(x, Augmentation(), key=3, ids=[0, 1, 2])
    b = augment(x, Augmentation(), key=3, ids=[0, 1, 2])
    c = augment(x, Augmentation(), key=4, ids=[0, 1, 2])
    np.testing.assert_array_equal(a.values, b.values)
    assert not (len(a.values) == len(c.values) and np.array_equal(a.values, c.values))


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"crop": 0.0}, r"crop must be in \(0, 1\]"),
        ({"crop": 1.5}, r"crop must be in \(0, 1\]"),
        ({"warp": -0.1}, "warp must be finite and >= 0"),
        ({"scale": float("inf")}, "scale must be finite and >= 0"),
        ({"shift": -0.5}, r"shift must be in \[0, 1\]"),
        ({"shift": 1.5}, r"shift must be in \[0, 1\]"),
    ],
)
def test_augmentation_refuses_bad_values(options, match):
    """Bad settings are one clear error naming the field."""
    with pytest.raises(ValueError, match=match):
        Augmentation(**options)


def test_augment_needs_one_id_per_sequence():
    """The ids must match the sequences."""
    with pytest.raises(ValueError, match=r"one id per sequence, shape \(2,\), got \(3,\)"):
        augment(ragged([3, 4]), Augmentation(), key=0, ids=[0, 1, 2])
