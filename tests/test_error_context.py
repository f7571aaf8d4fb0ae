"""Error context once: the public boundary names the operation; private helpers take no `where`.

Private helpers raise their errors unnamed (``unplaced``); the public function or class runs its
validation inside ``error_context(name)``, which prefixes ``"<name>: "`` once. These tests check
both halves: the messages users read, and that no private helper of the converted floors threads
a ``where`` argument again.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from varlen import BucketBatchSampler
from varlen.nn import (
    GRU,
    LSTM,
    AttentionPooling,
    ConvFrontEnd,
    MaskedAccuracy,
    MaskedEmbedding,
    StreamingRNN,
    StreamPool,
    attention_pool,
    generate,
    last_and_first,
    masked_accuracy,
    masked_cross_entropy,
    masked_mae,
    masked_max_pool,
    masked_mean,
    masked_mse,
)
from varlen.nn.functional import lengths_to_mask, pad, unpad

SRC = Path(__file__).resolve().parents[1] / "src" / "varlen"
# Floors whose private helpers no longer take `where` (the `_checks` modules hold the shared
# validators, which public code calls with its name and private code with None).
CONVERTED = [
    *sorted((SRC / "data").rglob("*.py")),
    *sorted((SRC / "batching").rglob("*.py")),
    SRC / "nn" / "losses.py",
    SRC / "nn" / "embedding.py",
    SRC / "nn" / "generation.py",
    SRC / "nn" / "pooling.py",
    SRC / "nn" / "functional.py",
    SRC / "nn" / "export.py",
    SRC / "nn" / "recurrent.py",
    SRC / "nn" / "_inputs.py",
    SRC / "nn" / "streaming.py",
    SRC / "nn" / "conv.py",
    *sorted((SRC / "training").rglob("*.py")),
]
VALIDATORS = {SRC / "_checks.py", SRC / "nn" / "_checks.py", SRC / "batching" / "_validate.py"}


class _TinyLM(torch.nn.Module):
    """Embedding + varlen LSTM + head: the model protocol `generate` expects."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(5, 3)
        self.rnn = LSTM(3, 4, batch_first=True)
        self.head = torch.nn.Linear(4, 5)

    def forward(self, ids, lengths, *, padding="post", state=None):
        out, new_state = self.rnn(self.embed(ids), lengths, padding=padding, hx=state)
        return self.head(out), new_state


def _lstm() -> LSTM:
    return LSTM(4, 2, batch_first=True)


LOGITS = torch.zeros(2, 3, 4)
IDS = torch.zeros(2, 3, dtype=torch.long)

CASES: list[tuple[str, Callable[[], object], type[Exception]]] = [
    ("masked_mse", lambda: masked_mse(torch.zeros(2, 3), torch.zeros(2, 4)), ValueError),
    ("masked_mse", lambda: masked_mse(LOGITS, LOGITS, torch.tensor([1, 9])), ValueError),
    ("masked_mae", lambda: masked_mae(LOGITS, LOGITS, padding="left"), ValueError),  # type: ignore[arg-type]
    ("masked_cross_entropy", lambda: masked_cross_entropy(LOGITS, IDS, mask=1), TypeError),  # type: ignore[arg-type]
    ("masked_cross_entropy", lambda: masked_cross_entropy(LOGITS, IDS + 7), ValueError),
    ("masked_accuracy", lambda: masked_accuracy(LOGITS, IDS.float()), TypeError),
    (
        "MaskedAccuracy",
        lambda: MaskedAccuracy().update(LOGITS, IDS, torch.tensor([1.5])),
        TypeError,
    ),
    ("MaskedEmbedding", lambda: MaskedEmbedding(5, 2, pad_id=9), ValueError),
    ("MaskedEmbedding", lambda: MaskedEmbedding(5, 2)(IDS.float()), TypeError),
    (
        "MaskedEmbedding.from_pretrained",
        lambda: MaskedEmbedding.from_pretrained(torch.zeros(3)),
        ValueError,
    ),
    ("generate", lambda: generate(_TinyLM(), [[1], []], max_new_tokens=2), ValueError),
    ("generate", lambda: generate(_TinyLM(), [[1]], max_new_tokens=-1), ValueError),
    ("generate", lambda: generate(_TinyLM(), [[1]], max_new_tokens=1, temperature=0), ValueError),
    ("masked_mean", lambda: masked_mean(LOGITS, torch.tensor([4, 1])), ValueError),
    (
        "varlen.nn.LSTM",
        lambda: LSTM(4, 2, batch_first=True)(LOGITS, torch.tensor([4, 1])),
        ValueError,
    ),
    ("varlen.nn.LSTM", lambda: _lstm()(LOGITS, hx=torch.zeros(1)), TypeError),
    (
        "varlen.nn.GRU",
        lambda: GRU(4, 2, batch_first=True)(LOGITS[0], offsets=torch.tensor([0, 5])),
        ValueError,
    ),
    ("StreamingRNN", lambda: StreamingRNN(torch.nn.Linear(2, 2)), TypeError),  # type: ignore[arg-type]
    (
        "StreamPool.finish",
        lambda: StreamPool(StreamingRNN(_lstm())).finish(["a"]),
        ValueError,
    ),
    (
        "masked_max_pool",
        lambda: masked_max_pool(LOGITS, torch.tensor([1, 2]), factor=0),
        ValueError,
    ),
    ("ConvFrontEnd", lambda: ConvFrontEnd(4, [4], [3], pools=(0,)), ValueError),
    ("last_and_first", lambda: last_and_first(LOGITS[..., :3], num_directions=2), ValueError),
    ("attention_pool", lambda: attention_pool(LOGITS, torch.zeros(2, 2)), ValueError),
    ("AttentionPooling", lambda: AttentionPooling(0), ValueError),
    ("AttentionPooling", lambda: AttentionPooling(3)(LOGITS), ValueError),
    ("lengths_to_mask", lambda: lengths_to_mask(torch.tensor([1.0])), TypeError),
    ("varlen.nn.functional.pad", lambda: pad([torch.zeros(2, 3), torch.zeros(1, 2)]), ValueError),
    ("varlen.nn.functional.unpad", lambda: unpad(torch.zeros(3), torch.tensor([1])), ValueError),
    ("BucketBatchSampler", lambda: BucketBatchSampler([3, -1], batch_size=2), ValueError),
    ("BucketBatchSampler", lambda: BucketBatchSampler([3, 1], batch_size=2, rank=4), ValueError),
    ("BucketBatchSampler", lambda: BucketBatchSampler([3, 1]), ValueError),
    (
        "BucketBatchSampler.load_state_dict",
        lambda: BucketBatchSampler([3, 1], batch_size=1).load_state_dict({"epoch": 0}),
        ValueError,
    ),
]


@pytest.mark.parametrize(
    ("name", "call", "error"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)]
)
def test_the_public_boundary_names_the_operation_once(name, call, error):
    """Every error starts with the public name, exactly once, then the standard message."""
    with pytest.raises(error) as caught:
        call()
    message = str(caught.value)
    assert message.startswith(f"{name}: "), message
    rest = message[len(name) + 2 :]
    assert not rest.startswith(f"{name}: "), message  # named once, not by every layer


def _private_functions_with_where(path: Path) -> list[str]:
    """``"LINE NAME"`` for each private function or method of ``path`` with a ``where`` argument."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        if not node.name.startswith("_") or node.name.endswith("__"):
            continue  # public, or a dunder (constructors are public entry points)
        arguments = node.args.posonlyargs + node.args.args + node.args.kwonlyargs
        if any(argument.arg == "where" for argument in arguments):
            found.append(f"{node.lineno} {node.name}")
    return found


def test_no_private_helper_of_the_converted_floors_takes_where():
    """`where` is attached at the boundary (error_context), never threaded through helpers."""
    offenders = [
        f"{path.relative_to(SRC)}:{hit}"
        for path in CONVERTED
        if path not in VALIDATORS
        for hit in _private_functions_with_where(path)
    ]
    assert offenders == []


def test_the_where_rule_sees_one(tmp_path):
    """The rule above is not vacuous: a helper taking `where` is found, public code is not."""
    module = tmp_path / "m.py"
    module.write_text(
        "def _check(where, x):\n    return x\n\n\ndef public(where):\n    pass\n\n\n"
        "class A:\n    def __init__(self, where):\n        pass\n\n"
        "    def _m(self, *, where):\n        pass\n"
    )
    assert _private_functions_with_where(module) == ["1 _check", "13 _m"]


def test_numpy_lengths_still_name_the_sampler():
    """A shared validator called with None inside the context is named by the context."""
    with pytest.raises(TypeError, match=r"^BucketBatchSampler: lengths must"):
        BucketBatchSampler(np.array([1.5, 2.0]), batch_size=1)


def test_the_training_engine_names_its_task_once(tmp_path):
    """Errors from inside the one engine start with the task's public name (fit), once."""
    from tests.cli._data import sequences
    from varlen.training import SequenceClassifier, TrainConfig, fit

    x, labels, _ = sequences(12, seed=0)
    x = x.with_values(x.values.astype(np.float32))
    y = (labels == "up").astype(np.int64)
    checkpoint = tmp_path / "checkpoint.pt"
    checkpoint.write_bytes(b"not a checkpoint")
    torch.manual_seed(0)
    model = SequenceClassifier(2, 2, hidden_size=4)
    config = TrainConfig(epochs=1, batch_size=4)
    named = re.escape(f"fit: {str(checkpoint)!r} ")
    with pytest.raises(ValueError, match=f"^{named}") as caught:
        fit(model, x, y, config=config, checkpoint=checkpoint, resume=True, progress=False)
    assert "fit: fit:" not in str(caught.value)


def test_the_store_names_its_public_operations(tmp_path):
    """open_store and write_store name themselves once; their private readers do not."""
    from varlen.data import Ragged
    from varlen.data.io.store import open_store, write_store

    empty = tmp_path / "empty.arrow"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match=r"^open_store: .* got an empty file\.$"):
        open_store(empty)
    x = Ragged.from_sequences([np.ones((2, 1))])
    with pytest.raises(ValueError, match=r"^write_store: chunk_bytes must be >= 1, got 0\.$"):
        write_store(tmp_path / "s.arrow", x, chunk_bytes=0)
    with pytest.raises(ValueError, match=r"^write_store: features must be F = 1 distinct names"):
        write_store(tmp_path / "s.arrow", x, features=["a", "b"])
