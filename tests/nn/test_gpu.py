"""On CUDA: the central promise, autocast, lanes, streaming and compile (``scripts/gpu-check``).

Every test here is marked ``gpu`` and skipped where CUDA is not available.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import Tensor

from tests.reference.recurrent import run_sequence
from varlen.nn import GRU, LSTM, StreamingRNN, run_lanes

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.filterwarnings("ignore:LSTM with projections is not supported:UserWarning"),
]

F_IN, H = 4, 8
LENGTHS = [7, 0, 1, 12, 3, 12, 5]
T = 12


def _batch(padding: str, device: str) -> tuple[Tensor, Tensor]:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(len(LENGTHS), T, F_IN, generator=generator)
    steps = torch.arange(T)[None, :]
    lengths = torch.tensor(LENGTHS)
    first = (T - lengths)[:, None] if padding == "pre" else 0
    real = (steps >= first) & (steps < first + lengths[:, None])
    return x.masked_fill(~real[:, :, None], float("nan")).to(device), lengths


def _real(x: Tensor, b: int, padding: str) -> slice:
    n = LENGTHS[b]
    return slice(0, n) if padding == "post" else slice(x.shape[1] - n, x.shape[1])


@pytest.mark.parametrize("cls", [LSTM, GRU])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("padding", ["pre", "post"])
@pytest.mark.parametrize("method", ["padded", "packed", "auto"])
@pytest.mark.parametrize("lengths_on", ["cpu", "cuda"])
def test_cuda_matches_the_oracle(cls, bidirectional, padding, method, lengths_on):
    """On CUDA, results equal each sequence run alone (float64 textbook oracle on the CPU)."""
    torch.manual_seed(0)
    module = cls(F_IN, H, 2, bidirectional=bidirectional, method=method).cuda()
    x, lengths = _batch(padding, "cuda")
    out, state = module(x, lengths.to(lengths_on), padding=padding)
    h = state[0] if isinstance(state, tuple) else state
    reference = copy.deepcopy(module).double().cpu()
    for b in range(len(LENGTHS)):
        steps = _real(x, b, padding)
        want_out, want_state = run_sequence(reference, x[b, steps].double().cpu())
        torch.testing.assert_close(out[b, steps].double().cpu(), want_out, atol=1e-5, rtol=0)
        torch.testing.assert_close(h[:, b].double().cpu(), want_state[0], atol=1e-5, rtol=0)
    mask = torch.ones(len(LENGTHS), T, dtype=torch.bool)
    for b in range(len(LENGTHS)):
        mask[b, _real(x, b, padding)] = False
    assert not out[mask.cuda()].any()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("cls", [LSTM, GRU])
@pytest.mark.parametrize("method", ["padded", "packed"])
def test_cuda_autocast_is_finite_and_matches_each_sequence_alone(dtype, cls, method):
    """Under CUDA autocast: no NaN/inf, and each row equals the row alone under autocast."""
    torch.manual_seed(0)
    module = cls(F_IN, H, 2, bidirectional=True, method=method).cuda()
    x, lengths = _batch("post", "cuda")
    x = x.nan_to_num(0.0).requires_grad_()
    with torch.autocast("cuda", dtype=dtype):
        out, state = module(x, lengths, padding="post")
    h = state[0] if isinstance(state, tuple) else state
    assert torch.isfinite(out.float()).all()
    (out.float().sum() + h.float().sum()).backward()
    assert x.grad is not None
    assert torch.isfinite(x.grad).all()
    for b, n in enumerate(LENGTHS):
        if n == 0:
            continue
        with torch.autocast("cuda", dtype=dtype):
            alone, _ = module(x.detach()[b : b + 1, :n])
        torch.testing.assert_close(out[b, :n].float(), alone[0].float(), atol=2e-2, rtol=2e-2)


def test_cuda_half_module_trains_without_nan():
    """A ``.half()`` module on CUDA (padded method: the control column in float16)."""
    torch.manual_seed(0)
    module = LSTM(F_IN, H, bidirectional=True, method="padded").cuda().half()
    x, lengths = _batch("pre", "cuda")
    out, state = module(x.nan_to_num(0.0).half(), lengths, padding="pre")
    (out.float().sum() + state.h.float().sum()).backward()
    assert torch.isfinite(out).all()
    assert all(torch.isfinite(p.grad).all() for p in module.parameters() if p.grad is not None)


@pytest.mark.parametrize("cls", [LSTM, GRU])
def test_cuda_lanes_match_the_oracle(cls):
    """run_lanes on CUDA equals each sequence alone."""
    torch.manual_seed(0)
    module = cls(F_IN, H).cuda()
    lengths = torch.tensor([5, 0, 1, 9, 3])
    values = torch.randn(int(lengths.sum()), F_IN, device="cuda")
    result = run_lanes(module, values, lengths, num_lanes=2)
    reference = copy.deepcopy(module).double().cpu()
    start = 0
    for b, n in enumerate(lengths.tolist()):
        want, state = run_sequence(reference, values[start : start + n].double().cpu())
        torch.testing.assert_close(
            result.values[start : start + n].double().cpu(), want, atol=1e-5, rtol=0
        )
        torch.testing.assert_close(result.h[:, b].double().cpu(), state[0], atol=1e-5, rtol=0)
        start += n


def test_cuda_streaming_chunks_match_the_whole_sequence():
    """StreamingRNN on CUDA: chunk by chunk equals the whole sequences at once."""
    torch.manual_seed(0)
    module = LSTM(F_IN, H).cuda()
    stream = StreamingRNN(module)
    x, lengths = _batch("post", "cuda")
    x = x.nan_to_num(0.0)
    whole, _ = module(x, lengths)
    state = None
    outs = []
    for start in range(0, T, 5):
        chunk = (lengths - start).clamp(0, 5)
        out, state = stream(x[:, start : start + 5], chunk, state)
        outs.append(out)
    torch.testing.assert_close(torch.cat(outs, dim=1), whole, atol=1e-5, rtol=0)


def test_cuda_compile_trains_like_eager():
    """torch.compile on CUDA: a training step equals eager."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(F_IN, F_IN)).cuda()
    rnn = GRU(F_IN, H, bidirectional=True).cuda()
    twin_model, twin_rnn = copy.deepcopy(model), copy.deepcopy(rnn)
    compiled = torch.compile(lambda x, n: twin_rnn(twin_model(x), n)[0], dynamic=True)
    for B in (4, 6):
        x = torch.randn(B, T, F_IN, device="cuda")
        lengths = torch.randint(0, T + 1, (B,))
        want = rnn(model(x), lengths)[0]
        got = compiled(x, lengths)
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
        want.sum().backward()
        got.sum().backward()
        for p, q in zip(rnn.parameters(), twin_rnn.parameters(), strict=True):
            torch.testing.assert_close(q.grad, p.grad, atol=1e-5, rtol=1e-5)
