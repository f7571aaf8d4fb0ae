"""Torch-side padding: varlen.nn.functional.pad/unpad, parity with NumPy, varlen.pad dispatch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import varlen
from varlen.data import padding as np_padding
from varlen.nn.functional import pad, unpad

sides = st.sampled_from(("pre", "post"))


@given(
    lengths=st.lists(st.integers(0, 6), min_size=1, max_size=5),
    maxlen=st.none() | st.integers(0, 7),
    padding=sides,
    truncating=sides,
    value=st.sampled_from([0.0, -1.5, float("nan")]),
)
def test_pad_and_unpad_match_numpy(lengths, maxlen, padding, truncating, value):
    """Same values and lengths as varlen.data.pad/unpad, on every side, maxlen and value."""
    rng = np.random.default_rng(len(lengths))
    arrays = [rng.normal(size=(n, 2)).astype(np.float32) for n in lengths]
    options = {"maxlen": maxlen, "padding": padding, "truncating": truncating, "value": value}
    padded, kept = pad([torch.from_numpy(a) for a in arrays], **options)
    expected, expected_lengths = np_padding.pad(arrays, **options)
    np.testing.assert_array_equal(padded.numpy(), expected)
    assert kept.dtype == torch.int64
    np.testing.assert_array_equal(kept.numpy(), expected_lengths)
    back = unpad(padded, kept, padding=padding)
    for got, want in zip(
        back, np_padding.unpad(expected, expected_lengths, padding=padding), strict=True
    ):
        np.testing.assert_array_equal(got.numpy(), want)


def test_pad_keeps_dtype_and_graph_and_promotes():
    """float16 stays float16; gradients reach each sequence; mixed dtypes promote like torch."""
    xs = [torch.randn(n, 3, dtype=torch.float64, requires_grad=True) for n in (2, 0, 4)]
    padded, lengths = pad(xs, padding="pre")
    assert padded.dtype == torch.float64
    assert lengths.tolist() == [2, 0, 4]
    (padded * torch.arange(4.0, dtype=torch.float64)[None, :, None]).sum().backward()
    assert xs[0].grad is not None
    torch.testing.assert_close(xs[0].grad, torch.tensor([2.0, 3.0])[:, None].expand(2, 3).double())
    halves = pad([torch.ones(1, dtype=torch.float16)] * 2)[0]
    assert halves.dtype == torch.float16
    assert pad([torch.ones(1, dtype=torch.int32), torch.ones(2)])[0].dtype == torch.float32
    grads = unpad(*pad(xs))
    assert [tuple(g.shape) for g in grads] == [(2, 3), (0, 3), (4, 3)]


@pytest.mark.parametrize(
    ("sequences", "error", "match"),
    [
        ([], ValueError, "at least one"),
        ([torch.ones(2, 3), torch.ones(2, 4)], ValueError, "trailing shape"),
        ([torch.ones(2), np.ones(2)], TypeError, "must be a torch.Tensor"),
        ([torch.tensor(1.0)], ValueError, "0-D"),
    ],
)
def test_pad_rejects_bad_sequences(sequences, error, match):
    """Clear errors naming the bad sequence."""
    with pytest.raises(error, match=match):
        pad(sequences)


def test_varlen_pad_returns_the_inputs_kind():
    """varlen.pad gives tensors for tensors, arrays for arrays; varlen.data.pad refuses tensors."""
    padded, lengths = varlen.pad(
        [torch.ones(2, dtype=torch.float16), torch.ones(1, dtype=torch.float16)]
    )
    assert isinstance(padded, torch.Tensor)
    assert padded.dtype == torch.float16
    assert isinstance(lengths, torch.Tensor)
    assert lengths.dtype == torch.int64
    assert all(isinstance(s, torch.Tensor) for s in varlen.unpad(padded, lengths))
    array, _ = varlen.pad([np.ones(2), np.ones(1)])
    assert isinstance(array, np.ndarray)
    with pytest.raises(TypeError, match=r"varlen\.nn\.functional\.pad"):
        varlen.data.pad([torch.ones(2)])
    with pytest.raises(TypeError, match="all tensors or all arrays"):
        varlen.pad([torch.ones(2), np.ones(1)])


LOSSY = [
    ([[300, 1]], "int8", {}),  # wraps to 44 without the rule
    ([[1.0, float("nan")]], "int32", {}),  # float into int: across kinds
    ([[1e6, 1.0]], "float16", {}),  # a finite value overflows to inf
    ([[1, 2], [5, 6, 7, 300]], "int8", {"maxlen": 3, "truncating": "pre"}),  # a kept step
    ([[True, False]], "int8", {}),  # bool into int: safe, no error
    ([[1, 2], [5, 6, 7, 300]], "int8", {"maxlen": 3, "truncating": "post"}),  # 300 is cut
    ([[1.5, -2.25]], "float16", {}),  # rounds at most: allowed
]


@pytest.mark.parametrize(("sequences", "dtype", "options"), LOSSY)
def test_pad_tensors_refuses_lossy_casts_like_numpy(sequences, dtype, options):
    """varlen.pad on tensors refuses the casts the NumPy pad refuses, with its error.

    Issue #20: int8 turned 300 into 44, NaN became -2147483648 in int32, 1e6 became inf in
    float16. Casts that keep every value still pass, with the NumPy pad's result.
    """
    arrays = [np.asarray(s) for s in sequences]
    tensors = [torch.from_numpy(a) for a in arrays]
    try:
        expected = np_padding.pad(arrays, dtype=dtype, **options)
    except (TypeError, ValueError) as error:
        body = str(error).removeprefix("pad: ")
        with pytest.raises(type(error)) as caught:
            varlen.pad(tensors, dtype=getattr(torch, dtype), **options)
        assert str(caught.value) == f"varlen.nn.functional.pad: {body}"
        return
    padded, kept = varlen.pad(tensors, dtype=getattr(torch, dtype), **options)
    np.testing.assert_array_equal(padded.numpy(), expected[0])
    np.testing.assert_array_equal(kept.numpy(), expected[1])


def test_pad_tensors_refuses_overflow_into_bfloat16():
    """NumPy has no bfloat16; the same rule holds in torch: a finite value stays finite."""
    with pytest.raises(ValueError, match=r"dtype bfloat16 can hold, got 1e\+300 at step 1"):
        pad([torch.tensor([1.0, 1e300], dtype=torch.float64)], dtype=torch.bfloat16)
    padded, _ = pad([torch.tensor([1.0, 3e38])], dtype=torch.bfloat16)
    assert torch.isfinite(padded).all()
