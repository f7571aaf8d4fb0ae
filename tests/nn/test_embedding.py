"""MaskedEmbedding: ids -> (embeddings, mask), torch parameters, and the LSTM composition."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st
from torch import Tensor, nn

from tests.reference.recurrent import run_sequence
from varlen.nn.embedding import MaskedEmbedding
from varlen.nn.functional import mask_to_lengths
from varlen.nn.recurrent import GRU, LSTM

V, E, H = 9, 3, 4


def test_masked_embedding_masks_pad_ids_and_zeroes_their_embeddings():
    """The mask is ids != pad_id and the embeddings are weight rows, exactly 0 at pads."""
    torch.manual_seed(0)
    embed = MaskedEmbedding(V, E, pad_id=2)
    with torch.no_grad():
        embed.weight[2] = 5.0  # a pad row that is not zero must still give zero outputs
    ids = torch.tensor([[1, 2, 3, 2], [2, 2, 8, 0]])
    emb, mask = embed(ids)
    assert torch.equal(mask, ids != 2)
    assert torch.equal(emb[mask], embed.weight[ids[mask]])
    assert torch.equal(emb[~mask], torch.zeros(int((~mask).sum()), E))


def test_masked_embedding_pad_row_gets_no_gradient():
    """As torch's padding_idx: weight[pad_id] receives no gradient, used rows do."""
    torch.manual_seed(0)
    embed = MaskedEmbedding(V, E, pad_id=0)
    emb, _ = embed(torch.tensor([[4, 4, 0], [1, 0, 0]]))
    (emb * torch.randn(emb.shape)).sum().backward()
    grad = embed.weight.grad
    assert grad is not None
    assert torch.equal(grad[0], torch.zeros(E))
    assert bool((grad[[1, 4]] != 0).all())
    assert torch.equal(grad[[2, 3, 5, 6, 7, 8]], torch.zeros(6, E))


def test_masked_embedding_state_dict_is_torchs():
    """The parameters are torch.nn.Embedding's: its state dict loads unchanged, same lookups."""
    torch.manual_seed(0)
    reference = nn.Embedding(V, E, padding_idx=3)
    embed = MaskedEmbedding(V, E, pad_id=3)
    embed.load_state_dict(reference.state_dict())
    assert list(embed.state_dict()) == ["weight"]
    ids = torch.tensor([[0, 1, 2], [4, 5, 6]])
    assert torch.equal(embed(ids)[0], reference(ids))
    assert torch.equal(embed.weight[3], torch.zeros(E))  # torch zeroes the pad row at init
    assert repr(embed) == "MaskedEmbedding(9, 3, pad_id=3)"


def test_masked_embedding_from_pretrained_copies_and_freezes():
    """from_pretrained copies the given weights (never aliasing them) and freezes by default."""
    weights = torch.randn(V, E, dtype=torch.float64)
    before = weights.clone()
    frozen = MaskedEmbedding.from_pretrained(weights, pad_id=1)
    assert frozen.weight.dtype == torch.float64
    assert not frozen.weight.requires_grad
    assert torch.equal(frozen.weight, weights)
    assert frozen.weight.data_ptr() != weights.data_ptr()
    trainable = MaskedEmbedding.from_pretrained(weights, freeze=False)
    emb, mask = trainable(torch.tensor([[3, 0]]))
    assert torch.equal(mask, torch.tensor([[True, False]]))
    emb.sum().backward()
    assert trainable.weight.grad is not None
    with torch.no_grad():
        trainable.weight -= trainable.weight.grad
    assert torch.equal(weights, before)
    assert not torch.equal(trainable.weight[3], weights[3])


def test_masked_embedding_mask_gives_lengths_when_contiguous():
    """A one-run mask converts to lengths with mask_to_lengths, for either side."""
    embed = MaskedEmbedding(V, E)
    _, post = embed(torch.tensor([[5, 6, 0], [7, 0, 0]]))
    _, pre = embed(torch.tensor([[0, 5, 6], [0, 0, 0]]))
    assert torch.equal(mask_to_lengths(post), torch.tensor([2, 1]))
    assert torch.equal(mask_to_lengths(pre, padding="pre"), torch.tensor([2, 0]))


# ------------------------------------------------------------------ composition with the LSTM


@dataclass(frozen=True)
class Case:
    """Random token sequences and where their pad ids go."""

    tokens: tuple[tuple[int, ...], ...]
    layout: str  # "post", "pre" or "holes" (pad ids inside sequences too)
    T: int
    kind: str
    bidirectional: bool
    pad_id: int
    seed: int


@st.composite
def cases(draw: st.DrawFn) -> Case:
    """Random lengths (0 included), layouts, cells, directions and pad ids."""
    pad_id = draw(st.sampled_from([0, 4]))
    token = st.integers(0, V - 1).filter(lambda i: i != pad_id)
    tokens = draw(st.lists(st.lists(token, max_size=6).map(tuple), min_size=1, max_size=4))
    layout = draw(st.sampled_from(["post", "pre", "holes"]))
    extra = draw(st.integers(0, 3 if layout == "holes" else 1))
    return Case(
        tokens=tuple(tokens),
        layout=layout,
        T=max(len(t) for t in tokens) + extra,
        kind=draw(st.sampled_from(["LSTM", "GRU"])),
        bidirectional=draw(st.booleans()),
        pad_id=pad_id,
        seed=draw(st.integers(0, 2**16)),
    )


def _ids(case: Case) -> Tensor:
    """Lay the tokens out in a (B, T) id tensor with pad ids per the case's layout."""
    generator = torch.Generator().manual_seed(case.seed)
    rows = []
    for tokens in case.tokens:
        pads = case.T - len(tokens)
        if case.layout == "post":
            row = [*tokens, *[case.pad_id] * pads]
        elif case.layout == "pre":
            row = [*[case.pad_id] * pads, *tokens]
        else:  # scatter the pads among the tokens at random
            order = torch.randperm(case.T, generator=generator).tolist()
            is_pad = [k >= len(tokens) for k in order]
            stream = iter(tokens)
            row = [case.pad_id if pad else next(stream) for pad in is_pad]
        rows.append(row)
    return torch.tensor(rows, dtype=torch.int64)


@settings(max_examples=100)
@given(case=cases())
@example(
    case=Case(((), (1,)), "pre", 2, "LSTM", True, 0, 0)  # an empty sequence, pre-padded
).via("length 0 and 1, pre")
@example(case=Case(((3, 5, 6),), "holes", 6, "GRU", True, 4, 1)).via("holes, pad id 4")
def test_masked_embedding_feeds_lstm_like_each_sequence_alone(case):
    """emb, mask = embed(ids); lstm(emb, mask=mask) equals each token sequence run alone."""
    torch.manual_seed(case.seed)
    embed = MaskedEmbedding(V, E, pad_id=case.pad_id, dtype=torch.float64)
    cls = LSTM if case.kind == "LSTM" else GRU
    rnn = cls(E, H, bidirectional=case.bidirectional, dtype=torch.float64)
    ids = _ids(case)
    ids_before = ids.clone()
    emb, mask = embed(ids)
    padding = "pre" if case.layout == "pre" else "post"
    out, state = rnn(emb, mask=mask, padding=padding)
    h = state[0] if case.kind == "LSTM" else state
    assert torch.equal(ids, ids_before)
    assert torch.equal(out[~mask], torch.zeros_like(out[~mask]))
    ours, theirs = [], []
    for b, tokens in enumerate(case.tokens):
        assert torch.equal(ids[b][mask[b]], torch.tensor(tokens, dtype=torch.int64))
        want_out, want_state = run_sequence(rnn, embed.weight[list(tokens)])
        torch.testing.assert_close(out[b][mask[b]], want_out, atol=1e-10, rtol=0)
        torch.testing.assert_close(h[:, b], want_state[0], atol=1e-10, rtol=0)
        ours.append(out[b][mask[b]].sum() + h[:, b].sum())
        theirs.append(want_out.sum() + want_state[0].sum())
    # Gradients reach the same embedding rows and weights as the per-sequence runs.
    leaves = [embed.weight, *rnn.parameters()]
    got = _grads(torch.stack(ours).sum(), leaves)
    for g, w in zip(got, _grads(torch.stack(theirs).sum(), leaves), strict=True):
        torch.testing.assert_close(g, w, atol=1e-9, rtol=0)


def _grads(loss: Tensor, leaves: list[Tensor]) -> list[Tensor]:
    """Gradients of ``loss`` for each leaf, zeros where it does not depend on the leaf."""
    if not loss.requires_grad:  # e.g. T = 0: nothing was computed
        return [torch.zeros_like(leaf) for leaf in leaves]
    grads = torch.autograd.grad(loss, leaves, allow_unused=True)
    return [
        torch.zeros_like(leaf) if g is None else g for g, leaf in zip(grads, leaves, strict=True)
    ]


def test_masked_embedding_pre_padded_ids_match_post_padded_ids():
    """Pre-padded and post-padded ids give the same LSTM results per sequence."""
    torch.manual_seed(0)
    embed = MaskedEmbedding(V, E)
    lstm = LSTM(E, H, bidirectional=True)
    post_ids = torch.tensor([[5, 6, 7, 0], [8, 0, 0, 0], [0, 0, 0, 0]])
    pre_ids = torch.tensor([[0, 5, 6, 7], [0, 0, 0, 8], [0, 0, 0, 0]])
    emb_post, mask_post = embed(post_ids)
    emb_pre, mask_pre = embed(pre_ids)
    out_post, state_post = lstm(emb_post, mask=mask_post)
    out_pre, state_pre = lstm(emb_pre, mask=mask_pre, padding="pre")
    torch.testing.assert_close(state_post, state_pre)
    torch.testing.assert_close(out_post[mask_post], out_pre[mask_pre])


# ------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    ("ids", "error", "match"),
    [
        ([[1, 2]], TypeError, r"MaskedEmbedding: ids must be a Tensor \(B, T\), got list"),
        (torch.tensor([[1.0]]), TypeError, "ids must be int64 or int32, got torch.float32"),
        (torch.tensor([[True]]), TypeError, "ids must be int64 or int32, got torch.bool"),
        (torch.tensor([1, 2]), ValueError, r"ids must have shape \(B, T\), got \(2,\)"),
        (
            torch.tensor([[1, 2], [3, 9]]),
            ValueError,
            r"ids must be in \[0, num_embeddings\) = \[0, 9\), got ids\[1, 1\] == 9",
        ),
        (torch.tensor([[-1]]), ValueError, r"got ids\[0, 0\] == -1"),
    ],
)
def test_masked_embedding_rejects_bad_ids(ids, error, match):
    """Ids of the wrong type, rank or range get an error naming the offending element."""
    with pytest.raises(error, match=match):
        MaskedEmbedding(V, E)(ids)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"pad_id": 9}, ValueError, r"pad_id must be in \[0, num_embeddings\) = \[0, 9\), got 9"),
        ({"pad_id": -1}, ValueError, "got -1"),
        ({"pad_id": True}, TypeError, "MaskedEmbedding: pad_id must be an int, got True"),
        ({"pad_id": None}, TypeError, "pad_id must be an int, got None"),
        ({"num_embeddings": 9.0}, TypeError, "num_embeddings must be an int, got 9.0"),
    ],
)
def test_masked_embedding_rejects_bad_constructor_arguments(kwargs, error, match):
    """The pad id must be a real id of the vocabulary."""
    arguments = {"num_embeddings": V, "embedding_dim": E, **kwargs}
    with pytest.raises(error, match=match):
        MaskedEmbedding(**arguments)


@pytest.mark.parametrize(
    ("embeddings", "kwargs", "error", "match"),
    [
        (torch.zeros(4, 2, dtype=torch.int64), {}, TypeError, "floating tensor .V, E., got torch"),
        ([[0.0]], {}, TypeError, "embeddings must be a floating tensor .V, E., got list"),
        (torch.zeros(4), {}, ValueError, r"embeddings must have shape \(V, E\), got \(4,\)"),
        (
            torch.zeros(4, 2),
            {"pad_id": 4},
            ValueError,
            r"from_pretrained: pad_id must be in \[0, num_embeddings\) = \[0, 4\)",
        ),
    ],
)
def test_masked_embedding_from_pretrained_rejects_bad_arguments(embeddings, kwargs, error, match):
    """from_pretrained checks the weights and the pad id before building anything."""
    with pytest.raises(error, match=match):
        MaskedEmbedding.from_pretrained(embeddings, **kwargs)
