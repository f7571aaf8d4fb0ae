"""Tests for varlen.data.features: aligning sources with different channel sets."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from tests.reference.features import (
    align_reference,
    concat_presence_reference,
    union_reference,
)
from varlen.data.features import (
    AlignedFeatures,
    FeatureSchema,
    align_features,
    concat_presence,
)
from varlen.data.masks import lengths_to_mask
from varlen.data.normalize import Standardizer
from varlen.data.ragged import Ragged

POOL = ["a", "b", "c", "d", "e"]


@st.composite
def sources_with_names(draw):
    """Draw ``(sources, names_per_source)``: lists of ``(T_i, F_s)`` arrays, some NaN."""
    S = draw(st.integers(0, 4))
    sources, names = [], []
    for _ in range(S):
        source_names = draw(st.lists(st.sampled_from(POOL), unique=True, max_size=4))
        B_s = draw(st.integers(0, 3))
        finite = st.floats(-100, 100, allow_nan=False)
        elements = st.one_of(finite, finite, st.just(np.nan))
        sequences = [
            draw(
                arrays(np.float64, (draw(st.integers(0, 4)), len(source_names)), elements=elements)
            )
            for _ in range(B_s)
        ]
        sources.append(sequences)
        names.append(source_names)
    return sources, names


def _check_against_reference(aligned, sources, names, schema, *, fill_value, nan_as_missing):
    """Compare every output of align_features with the loop reference."""
    sequences, presence, step_presence, source = align_reference(
        sources, names, schema, fill_value=fill_value, nan_as_missing=nan_as_missing
    )
    assert aligned.schema.names == tuple(schema)
    assert len(aligned.values) == len(sequences)
    assert aligned.values.values.shape == (sum(len(s) for s in sequences), len(schema))
    for row, expected in enumerate(sequences):
        got = aligned.values[row]
        np.testing.assert_array_equal(got, np.array(expected, dtype=got.dtype).reshape(got.shape))
        np.testing.assert_array_equal(
            aligned.step_presence[row],
            np.array(step_presence[row], dtype=bool).reshape(got.shape),
        )
    np.testing.assert_array_equal(
        aligned.presence, np.array(presence, dtype=bool).reshape(len(sequences), len(schema))
    )
    np.testing.assert_array_equal(aligned.source, np.array(source, dtype=np.int64))
    assert aligned.source.dtype == np.int64
    assert aligned.presence.dtype == aligned.step_presence.dtype == np.bool_
    np.testing.assert_array_equal(aligned.step_presence.offsets, aligned.values.offsets)


# ---------------------------------------------------------------------- alignment


@given(
    data=sources_with_names(),
    fill_value=st.sampled_from([0.0, -1.0, np.nan]),
    nan_as_missing=st.booleans(),
)
@example(data=([], []), fill_value=0.0, nan_as_missing=False)
@example(data=([[], [np.zeros((0, 1))]], [["a"], ["b"]]), fill_value=0.0, nan_as_missing=True)
@example(data=([[np.array([[np.nan, 1.0]])]], [["b", "a"]]), fill_value=-1.0, nan_as_missing=True)
def test_align_features_matches_reference(data, fill_value, nan_as_missing):
    """align_features agrees with the loop reference on values, both presences and source."""
    sources, names = data
    aligned = align_features(sources, names, fill_value=fill_value, nan_as_missing=nan_as_missing)
    _check_against_reference(
        aligned,
        sources,
        names,
        union_reference(names),
        fill_value=fill_value,
        nan_as_missing=nan_as_missing,
    )


@given(data=sources_with_names(), order=st.permutations(POOL))
@settings(max_examples=100)
def test_align_features_follows_a_given_schema(data, order):
    """With a schema, columns follow its order and its extra channels are all absent."""
    sources, names = data
    aligned = align_features(sources, names, schema=order, fill_value=np.nan)
    _check_against_reference(
        aligned, sources, names, list(order), fill_value=np.nan, nan_as_missing=False
    )


@given(data=sources_with_names())
@settings(max_examples=100)
def test_align_features_ragged_and_list_sources_agree(data):
    """A source given as a Ragged aligns exactly like the same source given as a list."""
    sources, names = data
    raggeds = [
        Ragged.from_sequences(seqs) if seqs else Ragged(np.zeros((0, len(n))), np.zeros(1, int))
        for seqs, n in zip(sources, names, strict=True)
    ]
    from_lists = align_features(sources, names)
    from_raggeds = align_features(raggeds, names)
    assert from_lists.values == from_raggeds.values
    assert from_lists.step_presence == from_raggeds.step_presence
    np.testing.assert_array_equal(from_lists.presence, from_raggeds.presence)
    np.testing.assert_array_equal(from_lists.source, from_raggeds.source)


def test_align_features_union_order_is_first_appearance():
    """The default schema lists channels in order of first appearance across sources."""
    a = [np.array([[1.0, 2.0]])]
    b = [np.array([[3.0, 4.0, 5.0]]), np.zeros((0, 3))]
    aligned = align_features([a, b], [["y", "x"], ["z", "x", "w"]], fill_value=-1.0)
    assert aligned.schema == FeatureSchema(("y", "x", "z", "w"))
    np.testing.assert_array_equal(
        aligned.values.values, [[1.0, 2.0, -1.0, -1.0], [-1.0, 4.0, 3.0, 5.0]]
    )
    np.testing.assert_array_equal(
        aligned.presence,
        [[True, True, False, False], [False, True, True, True], [False, True, True, True]],
    )
    np.testing.assert_array_equal(aligned.source, [0, 1, 1])
    np.testing.assert_array_equal(aligned.values.lengths, [1, 1, 0])
    assert isinstance(aligned, AlignedFeatures)


def test_align_features_nan_as_missing_folds_nan_into_step_presence():
    """With nan_as_missing, NaN in a present channel becomes fill_value and absent at that step."""
    source = [np.array([[1.0, np.nan], [np.nan, 4.0]])]
    kept = align_features([source], [["a", "b"]], fill_value=0.0)
    folded = align_features([source], [["a", "b"]], fill_value=0.0, nan_as_missing=True)
    np.testing.assert_array_equal(kept.values.values, [[1.0, np.nan], [np.nan, 4.0]])
    assert kept.step_presence.values.all()
    np.testing.assert_array_equal(folded.values.values, [[1.0, 0.0], [0.0, 4.0]])
    np.testing.assert_array_equal(folded.step_presence.values, [[True, False], [False, True]])
    np.testing.assert_array_equal(folded.presence, [[True, True]])


def test_align_features_promotes_dtypes():
    """The output dtype promotes the sources with the fill value, unless dtype is given."""
    ints = [np.array([[1, 2]], dtype=np.int32)]
    floats32 = [np.array([[1.5]], dtype=np.float32)]
    assert align_features([ints], [["a", "b"]], fill_value=0).values.dtype == np.int32
    assert align_features([ints], [["a", "b"]], fill_value=np.nan).values.dtype == np.float64
    assert align_features([floats32], [["a"]]).values.dtype == np.float32
    assert align_features([ints, floats32], [["a", "b"], ["c"]]).values.dtype == np.float64
    out = align_features([ints], [["a", "b"]], dtype=np.float32)
    assert out.values.dtype == np.float32
    np.testing.assert_array_equal(out.values.values, [[1.0, 2.0]])


def test_align_features_handles_empty_inputs():
    """No sources, sources without sequences and zero-length sequences are all allowed."""
    nothing = align_features([], [])
    assert len(nothing.values) == 0
    assert nothing.values.values.shape == (0, 0)
    assert nothing.presence.shape == (0, 0)
    with_schema = align_features([[], [np.zeros((0, 1))]], [["a"], ["b"]], schema=["b", "a"])
    assert with_schema.values.values.shape == (0, 2)
    np.testing.assert_array_equal(with_schema.presence, [[True, False]])
    np.testing.assert_array_equal(with_schema.source, [1])
    empty_ragged = Ragged.from_sequences([[], []])  # values (0,): no steps, any width
    out = align_features([empty_ragged], [["a", "b"]])
    np.testing.assert_array_equal(out.values.lengths, [0, 0])


def test_align_features_does_not_mutate_inputs():
    """Sources and name lists are unchanged after alignment."""
    first = np.array([[1.0, np.nan]])
    names = [["a", "b"], ["b"]]
    ragged = Ragged.from_sequences([np.array([[3.0]])])
    align_features([[first], ragged], names, fill_value=7.0, nan_as_missing=True)
    np.testing.assert_array_equal(first, [[1.0, np.nan]])
    assert names == [["a", "b"], ["b"]]
    np.testing.assert_array_equal(ragged.values, [[3.0]])


# ------------------------------------------------------------------ concat_presence


@st.composite
def ragged_with_presence(draw):
    """Draw ``(ragged, presence, per_step)``: a float Ragged ``(N, F)`` and a bool presence."""
    B = draw(st.integers(0, 4))
    F = draw(st.integers(1, 3))
    lengths = draw(st.lists(st.integers(0, 4), min_size=B, max_size=B))
    sequences = [np.arange(n * F, dtype=np.float64).reshape(n, F) + 0.5 for n in lengths]
    ragged = Ragged.from_sequences(sequences) if B else Ragged(np.zeros((0, F)), np.zeros(1, int))
    per_step = draw(st.booleans())
    shape = (ragged.num_steps, F) if per_step else (B, F)
    flags = draw(arrays(np.bool_, shape))
    return ragged, ragged.with_values(flags) if per_step else flags, per_step


@given(case=ragged_with_presence(), fill_value=st.sampled_from([None, 0.0, -9.0]))
@example(
    case=(Ragged(np.zeros((0, 2)), np.zeros(1, int)), np.zeros((0, 2), bool), False), fill_value=0.0
)
def test_concat_presence_matches_reference(case, fill_value):
    """concat_presence on a Ragged agrees with the per-step loop reference."""
    ragged, presence, per_step = case
    out = concat_presence(ragged, presence, fill_value=fill_value)
    flags = (
        presence.to_sequences()
        if per_step
        else [np.repeat(presence[i][None], n, axis=0) for i, n in enumerate(ragged.lengths)]
    )
    expected = concat_presence_reference(ragged.to_sequences(), flags, fill_value)
    F = ragged.values.shape[1]
    assert out.values.shape == (ragged.num_steps, 2 * F)
    np.testing.assert_array_equal(out.offsets, ragged.offsets)
    for row, rows in enumerate(expected):
        np.testing.assert_array_equal(out[row], np.array(rows).reshape(-1, 2 * F))


def test_concat_presence_reads_an_array_as_per_sequence_even_when_b_equals_n():
    """With B == N, an array presence is still per sequence; per-step flags come as a Ragged."""
    ragged = Ragged.from_sequences([np.array([[1.0, 2.0]]), np.array([[3.0, 4.0]])])  # B = N = 2
    per_sequence = np.array([[True, False], [False, True]])
    out = concat_presence(ragged, per_sequence, fill_value=0.0)
    np.testing.assert_array_equal(out.values, [[1.0, 0.0, 1.0, 0.0], [0.0, 4.0, 0.0, 1.0]])
    per_step = ragged.with_values(np.array([[False, True], [True, True]]))
    out = concat_presence(ragged, per_step, fill_value=0.0)
    np.testing.assert_array_equal(out.values, [[0.0, 2.0, 0.0, 1.0], [3.0, 4.0, 1.0, 1.0]])


def test_concat_presence_accepts_ragged_step_presence_and_padded_arrays():
    """A Ragged step presence and padded (B, T, F) arrays with (B, F) or (B, T, F) work too."""
    x = np.array([[[1.0, 2.0], [3.0, 4.0]]])  # (B, T, F) = (1, 2, 2)
    per_sequence = np.array([[True, False]])
    per_step = np.array([[[True, False], [False, True]]])
    np.testing.assert_array_equal(
        concat_presence(x, per_sequence), [[[1.0, 2.0, 1.0, 0.0], [3.0, 4.0, 1.0, 0.0]]]
    )
    np.testing.assert_array_equal(
        concat_presence(x, per_step, fill_value=0.0),
        [[[1.0, 0.0, 1.0, 0.0], [0.0, 4.0, 0.0, 1.0]]],
    )
    ragged = Ragged.from_padded(x, [2])
    out = concat_presence(ragged, ragged.with_values(per_step[0]), fill_value=0.0)
    np.testing.assert_array_equal(out.values, [[1.0, 0.0, 1.0, 0.0], [0.0, 4.0, 0.0, 1.0]])
    ints = concat_presence(
        np.ones((1, 1, 1), dtype=np.int64), np.zeros((1, 1), bool), fill_value=np.nan
    )
    assert ints.dtype == np.float64
    np.testing.assert_array_equal(ints, [[[np.nan, 0.0]]])


def test_align_standardize_concat_pipeline_feeds_one_width():
    """Aligned NaN-filled sources standardize over observed entries and give finite 2F inputs."""
    a = [np.array([[1.0, 10.0], [3.0, 30.0]])]  # channels hr, temp
    b = [np.array([[5.0]]), np.array([[7.0], [np.nan]])]  # channel hr only, one NaN
    aligned = align_features(
        [a, b], [["hr", "temp"], ["hr"]], fill_value=np.nan, nan_as_missing=True
    )
    scaler = Standardizer.fit(aligned.values)
    np.testing.assert_array_equal(scaler.count, [4.0, 2.0])
    np.testing.assert_array_equal(scaler.mean, [4.0, 20.0])
    x = concat_presence(scaler.transform(aligned.values), aligned.step_presence, fill_value=0.0)
    assert x.values.shape == (5, 4)
    assert np.isfinite(x.values).all()
    padded, lengths = x.to_padded(padding="post")
    assert padded.shape == (3, 2, 4)
    np.testing.assert_array_equal(lengths_to_mask(lengths, 2).sum(), 5)
    np.testing.assert_array_equal(x.values[:, 2:], aligned.step_presence.values.astype(float))


# ------------------------------------------------------------------- FeatureSchema


def test_feature_schema_is_an_ordered_hashable_value():
    """FeatureSchema keeps order, supports len/iter/in/index/columns and compares by value."""
    schema = FeatureSchema(["x", "y", "z"])  # type: ignore[arg-type]
    assert schema.names == ("x", "y", "z")
    assert len(schema) == 3
    assert list(schema) == ["x", "y", "z"]
    assert "y" in schema
    assert "w" not in schema
    assert schema.index("z") == 2
    np.testing.assert_array_equal(schema.columns(["z", "x"]), [2, 0])
    assert schema == FeatureSchema(("x", "y", "z"))
    assert hash(schema) == hash(FeatureSchema(("x", "y", "z")))
    assert FeatureSchema.union([["b"], ["a", "b"], []]).names == ("b", "a")
    assert len(FeatureSchema(())) == 0


# -------------------------------------------------------------------------- errors


def test_feature_schema_rejects_bad_names():
    """Names must be a sequence of unique str."""
    with pytest.raises(TypeError, match=r"FeatureSchema: names must be a sequence of str, got str"):
        FeatureSchema("abc")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"FeatureSchema: names\[1\] must be a str, got 3"):
        FeatureSchema(("a", 3))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"unique names, got 'a' at names\[0\] and names\[2\]"):
        FeatureSchema(("a", "b", "a"))
    with pytest.raises(
        TypeError, match=r"FeatureSchema.union: names_per_source must be a sequence"
    ):
        FeatureSchema.union("ab")


def test_feature_schema_lookups_reject_unknown_names():
    """Looking up a name outside the schema: index raises KeyError, columns ValueError."""
    schema = FeatureSchema(("a",))
    with pytest.raises(KeyError, match=r"name must be one of the 1 schema names, got 'q'"):
        schema.index("q")
    with pytest.raises(ValueError, match=r"names\[0\] must be a schema channel, got 'q'"):
        schema.columns(["q"])


def test_align_features_rejects_unknown_channel_against_schema():
    """A source channel missing from the given schema raises, naming the channel."""
    with pytest.raises(ValueError, match=r"names_per_source\[1\]\[0\] must be a schema .* 'z'"):
        align_features([[], []], [["a"], ["z"]], schema=FeatureSchema(("a",)))


def test_align_features_rejects_duplicate_channels_within_a_source():
    """A source that repeats a channel name raises, naming both positions."""
    with pytest.raises(ValueError, match=r"names_per_source\[0\] must have unique names, got 'a'"):
        align_features([[np.zeros((1, 2))]], [["a", "a"]])


def test_align_features_rejects_mismatched_arguments():
    """Sources and names must pair up and each source must match its names' width."""
    with pytest.raises(ValueError, match=r"one entry per names_per_source entry \(2\), got 1"):
        align_features([[]], [["a"], ["b"]])
    with pytest.raises(TypeError, match=r"sources must be a sequence of sources .* got Ragged"):
        align_features(Ragged.from_sequences([[1.0]]), [["a"]])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"names_per_source must be a sequence of name lists"):
        align_features([[]], None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"names_per_source\[0\] must be a sequence of str"):
        align_features([[]], ["a"])
    with pytest.raises(TypeError, match=r"sources\[0\] must be a Ragged or a sequence"):
        align_features([3], [["a"]])  # type: ignore[list-item]


def test_align_features_rejects_bad_source_shapes_and_dtypes():
    """A sequence or Ragged of the wrong width, and non-numeric data, raise naming the source."""
    with pytest.raises(
        ValueError, match=r"sources\[0\]\[1\] must have shape \(T_i, 2\) .* \(3, 1\)"
    ):
        align_features([[np.zeros((1, 2)), np.zeros((3, 1))]], [["a", "b"]])
    with pytest.raises(ValueError, match=r"sources\[1\].values must have shape \(N_s, 1\)"):
        align_features([[], Ragged.from_sequences([np.zeros((2, 2))])], [["a"], ["b"]])
    with pytest.raises(TypeError, match=r"sources\[0\]\[0\] must have a bool, integer or floating"):
        align_features([[np.array([["x"]])]], [["a"]])
    with pytest.raises(TypeError, match=r"sources\[0\] must have a bool, integer or floating"):
        align_features([Ragged.from_sequences([np.array([[1j]])])], [["a"]])


def test_align_features_rejects_non_numeric_fill_value():
    """fill_value must be a real number."""
    with pytest.raises(
        TypeError, match=r"align_features: fill_value must be a real number, got 'x'"
    ):
        align_features([], [], fill_value="x")  # type: ignore[arg-type]


def test_concat_presence_rejects_bad_arguments():
    """Wrong layouts, non-bool or mis-shaped presence and mismatched offsets raise."""
    ragged = Ragged.from_sequences([np.zeros((2, 2)), np.zeros((1, 2))])
    with pytest.raises(ValueError, match=r"values must have shape \(B, T, F\), got \(2, 2\)"):
        concat_presence(np.zeros((2, 2)), np.zeros((2, 2), bool))
    with pytest.raises(TypeError, match=r"concat_presence: values must have a bool, integer"):
        concat_presence(np.array([[["x"]]]), np.zeros((1, 1), bool))
    with pytest.raises(TypeError, match=r"presence must have dtype bool, got dtype int64"):
        concat_presence(ragged, np.zeros((2, 2), dtype=np.int64))
    with pytest.raises(ValueError, match=r"presence must have shape \(2, 2\), got \(3, 2\)\. Pass"):
        concat_presence(ragged, np.zeros((3, 2), bool))  # per-step flags must come as a Ragged
    with pytest.raises(ValueError, match=r"presence must have shape \(1, 2, 2\), got \(1, 1, 2\)"):
        concat_presence(np.zeros((1, 2, 2)), np.zeros((1, 1, 2), bool))
    with pytest.raises(TypeError, match=r"presence must be an array \(B, F\) or \(B, T, F\)"):
        concat_presence(np.zeros((2, 1, 2)), ragged.with_values(np.zeros((3, 2), bool)))
    other = Ragged.from_sequences([np.zeros((1, 2), bool), np.zeros((2, 2), bool)])
    with pytest.raises(ValueError, match=r"presence must have the same offsets as values"):
        concat_presence(ragged, other)
    with pytest.raises(TypeError, match=r"concat_presence: fill_value must be a real number"):
        concat_presence(ragged, np.ones((2, 2), bool), fill_value="0")  # type: ignore[arg-type]
