"""torch.compile: models holding varlen layers train compiled exactly as in eager mode."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import Tensor, nn

from varlen.nn import GRU, LSTM

torch_dynamo = pytest.importorskip("torch._dynamo")
from torch._dynamo.utils import counters  # noqa: E402

F_IN, H = 3, 6


class Classifier(nn.Module):
    """A compiled part before the recurrent layer, pooling and a head after it."""

    def __init__(self, cls: type[LSTM] | type[GRU], *, bidirectional: bool, padding: str) -> None:
        super().__init__()
        self.embed = nn.Linear(F_IN, F_IN)
        self.rnn = cls(F_IN, H, 2, bidirectional=bidirectional)
        self.head = nn.Linear((2 if bidirectional else 1) * H, 2)
        self.padding = padding

    def forward(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor, Tensor]:  # noqa: D102
        z = torch.tanh(self.embed(x))  # compiled; dynamo resumes no graph after an RNN module
        out, state = self.rnn(z, lengths, padding=self.padding)
        h = state[0] if isinstance(state, tuple) else state
        return self.head(out.sum(dim=1)), out, h


def _batch(B: int, T: int, seed: int) -> tuple[Tensor, Tensor]:
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.randint(0, T + 1, (B,), generator=generator)
    lengths[0], lengths[-1] = T, 1
    return torch.randn(B, T, F_IN, generator=generator), lengths


@pytest.mark.parametrize(
    ("cls", "bidirectional", "padding"),
    [(LSTM, True, "pre"), (GRU, False, "post")],
    ids=["lstm-bi-pre", "gru-uni-post"],
)
def test_compiled_training_matches_eager(cls, bidirectional, padding):
    """Default ``torch.compile``: forward, backward and optimizer steps match eager (fp32 1e-6).

    (1e-6 absolute and relative: inductor fuses the compiled linear layers differently.)

    With ``dynamic=True`` a new batch size or time length recompiles nothing.
    """
    torch.manual_seed(0)
    torch_dynamo.reset()
    eager = Classifier(cls, bidirectional=bidirectional, padding=padding)
    twin = copy.deepcopy(eager)
    compiled = torch.compile(twin, dynamic=True)
    optimizers = [torch.optim.SGD(m.parameters(), lr=0.1) for m in (eager, twin)]
    frames = []
    for step, (B, T) in enumerate([(4, 7), (5, 9), (3, 11)]):
        x, lengths = _batch(B, T, step)
        results = [model(x, lengths) for model in (eager, compiled)]
        for got, want in zip(results[1], results[0], strict=True):
            torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-6)
        for (scores, _, h), optimizer in zip(results, optimizers, strict=True):
            optimizer.zero_grad()
            (scores.square().sum() + h.sum()).backward()
        for p_eager, p_twin in zip(eager.parameters(), twin.parameters(), strict=True):
            assert p_eager.grad is not None
            assert p_twin.grad is not None
            torch.testing.assert_close(p_twin.grad, p_eager.grad, atol=1e-6, rtol=1e-6)
        for optimizer in optimizers:
            optimizer.step()
        for p_eager, p_twin in zip(eager.parameters(), twin.parameters(), strict=True):
            torch.testing.assert_close(p_twin, p_eager, atol=1e-6, rtol=1e-6)
        # Start the next step from the same weights: rounding must not compound across steps.
        twin.load_state_dict(eager.state_dict())
        frames.append(counters["stats"]["unique_graphs"])
    assert frames[0] >= 1  # the part before the recurrent layer is compiled
    assert frames[1] == frames[2] == frames[0]  # new B and T: no recompilation
