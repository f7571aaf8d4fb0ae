"""Generation from prompts of different lengths: a batch gives each prompt's tokens alone."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch
from torch import Tensor

from varlen.data.ragged import Ragged
from varlen.nn import Generation, RecurrentLM, generate, masked_cross_entropy
from varlen.nn.functional import repad

TEXT = "the cat sat on the mat. the dog ran to the log. a cat and a dog sat. "
CHARS = sorted(set(TEXT))
BEGIN, END = len(CHARS), len(CHARS) + 1  # extra ids: begin of a line, end of a sentence
VOCAB = len(CHARS) + 2
PROMPTS = ["the c", "a", "the dog ran t", "th", "a cat and a d", "the m"]


def encode(text: str) -> list[int]:
    """Token ids of ``text`` (after a begin token)."""
    return [BEGIN] + [CHARS.index(ch) for ch in text]


def decode(ids: list[int]) -> str:
    """Text of generated ids (the end token as '|')."""
    return "".join(CHARS[i] if i < len(CHARS) else "|" for i in ids)


def train_char_model(steps: int = 300, seed: int = 0) -> RecurrentLM:
    """Train a small character model on the sentences of TEXT (each ends with END)."""
    torch.manual_seed(seed)
    sentences = [s.strip() + "." for s in TEXT.split(".") if s.strip()]
    rows = [[*encode(s), END] for s in sentences]
    lengths = torch.tensor([len(r) - 1 for r in rows])
    ids = torch.zeros(len(rows), int(lengths.max()) + 1, dtype=torch.int64)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r)
    model = RecurrentLM(VOCAB, 16, 64)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(steps):
        optimizer.zero_grad()
        logits, _ = model(ids[:, :-1], lengths)
        masked_cross_entropy(logits, ids[:, 1:], lengths).backward()
        optimizer.step()
    return model.eval()


@pytest.fixture(scope="module")
def model() -> RecurrentLM:
    """One trained character model for the whole module."""
    return train_char_model()


def _alone(
    model: RecurrentLM, prompts: list[list[int]], limits: list[int], **options: Any
) -> list[list[int]]:
    seeds = options.pop("seeds", None)
    result = []
    for i, prompt in enumerate(prompts):
        one = generate(
            model,
            [prompt],
            max_new_tokens=limits[i],
            seeds=None if seeds is None else [seeds[i]],
            **options,
        )
        result.append(one.to_lists()[0])
    return result


def test_char_model_learns_to_continue(model):
    """The trained model completes a seen sentence greedily and stops at the end token."""
    out = generate(model, [encode("the dog ran t")], max_new_tokens=20, end_token=END)
    assert decode(out.to_lists()[0]) == "o the log.|"
    assert bool(out.ended[0])


@pytest.mark.parametrize("form", ["ragged-list", "post", "pre", "Ragged"])
@pytest.mark.parametrize(
    "options",
    [
        {"strategy": "greedy"},
        {"strategy": "sample", "temperature": 1.0},
        {"strategy": "sample", "temperature": 1.7, "top_k": 3},
    ],
    ids=["greedy", "sample", "sample-top3"],
)
def test_generate_batched_equals_each_prompt_alone(model, form, options):
    """Every row of a batch gets the tokens of its prompt generated alone (same seed)."""
    prompts = [encode(p) for p in PROMPTS]
    limits = [30, 1, 12, 0, 25, 40]
    seeds = [11, 12, 13, 14, 15, 16] if options["strategy"] == "sample" else None
    expected = _alone(model, prompts, limits, end_token=END, seeds=seeds, **options)
    lengths = torch.tensor([len(p) for p in prompts])
    if form == "ragged-list":
        given: Any = prompts
        extra: dict[str, Any] = {}
    elif form == "Ragged":
        given = Ragged.from_sequences([np.array(p) for p in prompts])
        extra = {}
    else:
        post = torch.full((len(prompts), int(lengths.max())), -5, dtype=torch.int64)  # pads: junk
        for i, p in enumerate(prompts):
            post[i, : len(p)] = torch.tensor(p)
        given = post if form == "post" else repad(post, lengths, padding="post", to="pre")
        extra = {"lengths": lengths, "padding": form}
    out = generate(
        model, given, max_new_tokens=limits, end_token=END, seeds=seeds, **options, **extra
    )
    assert out.to_lists() == expected
    assert out.lengths.tolist() == [len(e) for e in expected]
    assert all(n <= limit for n, limit in zip(out.lengths.tolist(), limits, strict=True))
    assert out.ended.tolist() == [bool(e) and e[-1] == END for e in expected]


def test_generate_rows_do_not_depend_on_batch_order(model):
    """Reversing the batch (and its seeds) reverses the results, row for row."""
    prompts = [encode(p) for p in PROMPTS]
    seeds = list(range(len(prompts)))
    kwargs: dict[str, Any] = {"max_new_tokens": 15, "strategy": "sample", "temperature": 1.3}
    forward = generate(model, prompts, seeds=seeds, **kwargs).to_lists()
    backward = generate(model, prompts[::-1], seeds=seeds[::-1], **kwargs).to_lists()
    assert backward[::-1] == forward


def test_generate_same_seed_same_tokens_and_seeds_matter(model):
    """A seed fixes a row's sample; other seeds give other samples."""
    prompt = [encode("a")]
    kwargs: dict[str, Any] = {"max_new_tokens": 40, "strategy": "sample", "temperature": 2.0}
    runs = [generate(model, prompt, seeds=[seed], **kwargs).to_lists()[0] for seed in range(6)]
    assert generate(model, prompt, seeds=[0], **kwargs).to_lists()[0] == runs[0]
    assert len({tuple(r) for r in runs}) > 1


def test_generate_accepts_generators_and_advances_them(model):
    """Generators instead of seeds give the same tokens as seeds of the same value."""
    prompts = [encode("the c"), encode("a")]
    kwargs: dict[str, Any] = {"max_new_tokens": 8, "strategy": "sample"}
    by_seed = generate(model, prompts, seeds=[3, 4], **kwargs)
    generators = [torch.Generator().manual_seed(3), torch.Generator().manual_seed(4)]
    by_generator = generate(model, prompts, generators=generators, **kwargs)
    assert by_generator.to_lists() == by_seed.to_lists()
    assert generators[0].get_state().ne(torch.Generator().manual_seed(3).get_state()).any()


class FixedLogits(torch.nn.Module):
    """A stub model whose next-token logits are always the same (state: a step counter)."""

    def __init__(self, logits: Tensor) -> None:
        super().__init__()
        self.logits = logits

    def forward(self, ids, lengths, *, padding, state):
        """Return the fixed logits at every step; the state counts real steps."""
        B, T = ids.shape
        count = torch.zeros(1, B) if state is None else state
        return self.logits.expand(B, T, -1), count + lengths[None]


def test_generate_samples_follow_the_softmax():
    """Sampled frequencies match softmax(logits / temperature) restricted to the top k."""
    logits = torch.tensor([2.0, 1.0, 0.0, -1.0, -8.0])
    model = FixedLogits(logits)
    out = generate(
        model,
        [[0]] * 4000,
        max_new_tokens=1,
        strategy="sample",
        temperature=0.7,
        top_k=3,
        seeds=range(4000),
    )
    counts = np.bincount(out.tokens[:, 0].numpy(), minlength=5) / 4000
    expected = torch.softmax(logits[:3] / 0.7, dim=0).numpy()
    np.testing.assert_allclose(counts[:3], expected, atol=0.03)
    assert counts[3:].sum() == 0
    greedy = generate(model, [[0], [1, 2]], max_new_tokens=3)
    assert greedy.to_lists() == [[0, 0, 0], [0, 0, 0]]


def test_generate_stops_rows_at_their_own_end():
    """Rows stop at their own limits; zero limits give empty rows padded with pad_id."""
    model = FixedLogits(torch.tensor([0.0, 5.0]))
    out = generate(model, [[0], [0, 0], [1]], max_new_tokens=[3, 0, 1], pad_id=-1)
    assert out.tokens.tolist() == [[1, 1, 1], [-1, -1, -1], [1, -1, -1]]
    assert out.lengths.tolist() == [3, 0, 1]
    ended = generate(model, [[0], [1]], max_new_tokens=4, end_token=1)
    assert ended.lengths.tolist() == [1, 1]
    assert ended.ended.tolist() == [True, True]
    none = generate(model, [[0]], max_new_tokens=0)
    assert none.tokens.shape == (1, 0)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"prompts": [[1], []]}, ValueError, r"at least one token, got prompts\[1\]"),
        ({"prompts": []}, ValueError, "at least one prompt"),
        ({"prompts": "abc"}, TypeError, "prompts must be"),
        ({"prompts": [[[1]]]}, ValueError, r"prompts\[0\] must be 1-D"),
        ({"prompts": torch.zeros(2, 3)}, TypeError, "integer token ids"),
        ({"prompts": torch.zeros(3, dtype=torch.long)}, ValueError, r"shape \(B, T\)"),
        ({"prompts": [[1]], "lengths": torch.tensor([1])}, ValueError, "lengths go with"),
        ({"prompts": [[1, -2]]}, ValueError, r"must be >= 0, got prompts\[0, 1\] == -2"),
        ({"max_new_tokens": -1}, ValueError, "max_new_tokens must be >= 0"),
        ({"max_new_tokens": [1, 2, 3]}, ValueError, r"shape \(B,\) = \(2,\)"),
        ({"max_new_tokens": 1.5}, TypeError, "max_new_tokens must be integers"),
        ({"strategy": "sample"}, ValueError, "needs seeds"),
        ({"strategy": "sample", "seeds": [1]}, ValueError, "seeds must be a sequence of 2"),
        ({"strategy": "sample", "seeds": 3}, ValueError, "seeds must be a sequence"),
        ({"seeds": [1, 2], "generators": [1, 2]}, ValueError, "not both"),
        ({"strategy": "sample", "generators": [1, 2]}, ValueError, "torch.Generator"),
        ({"strategy": "beam"}, ValueError, "strategy must be"),
        ({"temperature": 0.0}, ValueError, "temperature must be"),
        ({"temperature": math.inf}, ValueError, "temperature must be"),
        ({"top_k": 0}, ValueError, "top_k must be"),
        ({"padding": "left"}, ValueError, "padding must be"),
    ],
)
def test_generate_rejects_bad_input(kwargs, error, match):
    """Bad prompts and options raise with a message that names them."""
    model = FixedLogits(torch.zeros(3))
    arguments = {"prompts": [[1], [2, 0]], "max_new_tokens": 2, **kwargs}
    with pytest.raises(error, match=match):
        generate(model, arguments.pop("prompts"), **arguments)


@pytest.mark.parametrize(
    ("prompts", "error", "match"),
    [
        ([[1.9, 2.7]], TypeError, r"integer token ids, got dtype torch.float64 in prompts\[0\]"),
        ([[1], [2.0]], TypeError, r"integer token ids, got dtype torch.float64 in prompts\[1\]"),
        ([[True]], TypeError, "integer token ids"),
        ([[1, 5]], ValueError, r"vocabulary size 5, got prompts\[0, 1\] == 5"),
        (torch.tensor([[0, 9]]), ValueError, r"vocabulary size 5, got prompts\[0, 1\] == 9"),
    ],
)
def test_generate_refuses_float_lists_and_ids_beyond_the_vocabulary(prompts, error, match):
    """A list of floats is refused like a float tensor (it ran truncated); ids >= V clearly."""
    model = RecurrentLM(5, 4, 8).eval()
    with pytest.raises(error, match=match):
        generate(model, prompts, max_new_tokens=1)
    embedded = torch.nn.Sequential()  # no vocab_size: the one embedding's size is used
    embedded.add_module("embedding", torch.nn.Embedding(3, 2))
    with pytest.raises(ValueError, match="vocabulary size 3"):
        generate(embedded, [[3]], max_new_tokens=1)


def test_recurrent_lm_rejects_bad_config():
    """RecurrentLM checks its sizes and cell."""
    with pytest.raises(ValueError, match="vocab_size must be an int >= 1"):
        RecurrentLM(0)
    with pytest.raises(ValueError, match="cell must be"):
        RecurrentLM(5, cell="rnn")  # type: ignore[arg-type]


def test_recurrent_lm_ignores_pads_and_gru_works():
    """A pre-padded batch with junk pad ids gives each row's alone logits (GRU cell)."""
    torch.manual_seed(0)
    model = RecurrentLM(7, 4, 8, cell="gru").eval()
    ids = torch.tensor([[99, 1, 2], [3, 4, 5]])
    logits, _ = model(ids, torch.tensor([2, 3]), padding="pre")
    alone, _ = model(torch.tensor([[1, 2]]))
    torch.testing.assert_close(logits[0, 1:], alone[0])
    assert isinstance(generate(model, ids[1:], max_new_tokens=2), Generation)
