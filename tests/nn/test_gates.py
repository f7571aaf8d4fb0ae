"""Augmented weights reused across calls never go stale; pads are zeroed whatever they hold."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from varlen.data.step_kernels import STEP_KERNELS
from varlen.nn import GRU, LSTM, recurrent
from varlen.nn._gates import cell_of
from varlen.nn._plans import Tuning


def _batch(F: int, dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([5, 2, 0, 4])
    x = torch.randn(4, 5, F, dtype=dtype, generator=torch.Generator().manual_seed(1))
    return x, lengths


def _fresh_copy(module: LSTM | GRU) -> LSTM | GRU:
    """A new module with the same weights (nothing reused from earlier calls)."""
    copy = type(module)(module.input_size, module.hidden_size, bidirectional=module.bidirectional)
    copy.load_state_dict(module.state_dict())
    dtype = next(module.parameters()).dtype
    return copy.to(dtype)


@pytest.mark.parametrize("cls", [LSTM, GRU])
@pytest.mark.parametrize("grad_mode", ["no_grad", "inference_mode"])
def test_reused_weights_follow_every_change_of_the_weights(cls, grad_mode):
    """In-place changes, load_state_dict and a dtype change all reach the next no-grad call."""
    torch.manual_seed(0)
    module = cls(3, 4, bidirectional=True)
    x, lengths = _batch(3)
    context = torch.no_grad if grad_mode == "no_grad" else torch.inference_mode

    def run(on: LSTM | GRU = module, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        with context():
            out: torch.Tensor = on(x.to(dtype), lengths)[0]
            return out.clone()

    before = run()
    with torch.no_grad():  # an in-place change, as an optimizer step makes
        module.weight_ih_l0.mul_(0.5)
    changed = run()
    assert not torch.equal(before, changed)
    torch.testing.assert_close(changed, run(_fresh_copy(module)), rtol=0, atol=0)
    module.load_state_dict(_fresh_copy(cls(3, 4, bidirectional=True)).state_dict())
    torch.testing.assert_close(run(), run(_fresh_copy(module)), rtol=0, atol=0)
    module.double()  # new storage and dtype
    out = run(module, torch.float64)
    assert out.dtype == torch.float64
    torch.testing.assert_close(out, run(_fresh_copy(module), torch.float64), rtol=0, atol=0)


def test_training_after_inference_has_the_gradients_of_a_fresh_module():
    """A weight reused in inference never stands in for the graph of a training call."""
    torch.manual_seed(0)
    module = LSTM(3, 4)
    x, lengths = _batch(3)
    with torch.inference_mode():
        module(x, lengths)
    fresh = _fresh_copy(module)
    for m in (module, fresh):
        out, (h, _) = m(x, lengths)
        (out.sum() + h.sum()).backward()
    for ours, theirs in zip(module.parameters(), fresh.parameters(), strict=True):
        assert ours.grad is not None
        torch.testing.assert_close(ours.grad, theirs.grad, rtol=0, atol=0)


@pytest.mark.parametrize("cls", [LSTM, GRU])
@pytest.mark.parametrize("pad", [float("inf"), float("-inf"), float("nan"), 3e38])
@pytest.mark.parametrize("select_limit", [0, 16384], ids=["multiply", "select"])
def test_any_pad_value_gives_the_results_of_zero_pads(cls, pad, select_limit):
    """inf, NaN or huge pads: the outputs and states of zero pads, and zero gradient there.

    Both ways of zeroing the pads (a select for small batches, a multiplication and a
    finiteness check for large ones: a tuning parameter) are run.
    """
    torch.manual_seed(0)
    module = cls(3, 4, bidirectional=True)
    x, lengths = _batch(3)
    real = torch.arange(5)[None, :] < lengths[:, None]
    zeros = x.masked_fill(~real[..., None], 0.0)
    garbage = x.masked_fill(~real[..., None], pad).requires_grad_()
    tuning = Tuning(select_limit=select_limit)

    def run(batch: torch.Tensor) -> tuple[torch.Tensor, object]:
        return recurrent._forward(
            module, cell_of(module), batch, lengths, mask=None, padding="post", hx=None,
            method="padded", tuning=tuning,
        )  # fmt: skip

    out, state = run(garbage)
    expected, expected_state = run(zeros)
    torch.testing.assert_close(out, expected, rtol=0, atol=0)
    h = state[0] if isinstance(state, tuple) else state
    h_expected = expected_state[0] if isinstance(expected_state, tuple) else expected_state
    torch.testing.assert_close(h, h_expected, rtol=0, atol=0)
    out.sum().backward()
    assert garbage.grad is not None
    assert torch.equal(garbage.grad[~real], torch.zeros_like(garbage.grad[~real]))


def test_a_nan_at_a_real_step_stays_in_its_row():
    """A NaN in the data (not a pad) is not zeroed: it reaches its own row only."""
    module = LSTM(3, 4)
    x, lengths = _batch(3)
    x[1, 0, 0] = float("nan")
    out, (h, _) = module(x, lengths)
    assert torch.isnan(h[0, 1]).all()
    others = [0, 2, 3]
    assert torch.isfinite(h[0, others]).all()
    assert torch.isfinite(out[others]).all()


@settings(max_examples=60, deadline=None)
@given(
    lengths=st.lists(st.integers(0, 9), min_size=1, max_size=20).filter(any),
    layers=st.sampled_from([1, 2, 3]),
    cls=st.sampled_from([LSTM, GRU]),
    bidirectional=st.booleans(),
    padding=st.sampled_from(["post", "pre"]),
    proj=st.booleans(),
    train=st.booleans(),
    dropout=st.sampled_from([0.0, 0.5]),
    given_state=st.booleans(),
    full=st.booleans(),
    given_as=st.sampled_from(["lengths", "mask", "neither"]),
    compiled=st.booleans(),
    grad=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_fast_call_is_the_general_path_bit_for_bit(
    lengths, layers, cls, bidirectional, padding, proj, train, dropout, given_state, full,
    given_as, compiled, grad, seed,
):  # fmt: skip
    """The fast call gives the general path's outputs, states and gradients exactly.

    It only runs fewer Python checks around the same ops, on every route the planner takes
    (the padded route inline, layer by layer, dropout between layers included; no pads,
    with or without an initial state; row groups of 8+ rows and a given state with pads
    through the general driver); pads hold NaN (they must not leak). ``neither``: no lengths
    and no mask, torch's call (every step real). ``compiled``: with the compiled step kernels
    (``varlen.data.step_kernels.STEP_KERNELS``, where built) or torch ops only; ``grad``:
    ``x`` needs a gradient (the kernels leave such an ``x`` to the torch ops).
    """
    torch.manual_seed(seed)
    kwargs = {"proj_size": 2} if proj and cls is LSTM else {}
    dropout = dropout if layers > 1 else 0.0  # (torch warns of dropout with one layer)
    module = cls(
        3, 4, layers, bidirectional=bidirectional, batch_first=True, dropout=dropout, **kwargs
    ).double()
    module.train(train)
    if full or given_as == "neither":
        lengths = [max(lengths)] * len(lengths)
    B, T = len(lengths), max(lengths)
    lengths_t = torch.tensor(lengths)
    x = torch.randn(B, T, 3, dtype=torch.float64)
    real = torch.arange(T)[None, :] < lengths_t[:, None]
    if padding == "pre":
        real = real.flip(1)
    x = x.masked_fill(~real[..., None], float("nan")).requires_grad_(grad)
    hx = None
    if given_state:
        D = 2 if bidirectional else 1
        h0 = torch.randn(layers * D, B, 2 if kwargs else 4, dtype=torch.float64)
        states = [h0, torch.randn(layers * D, B, 4, dtype=torch.float64)]
        hx = tuple(s.requires_grad_() for s in states) if cls is LSTM else h0.requires_grad_()
    cell = cell_of(module)
    # The lengths, or the mask of the same steps (real steps contiguous on the padding side).
    given, mask = {"lengths": (lengths_t, None), "mask": (None, real), "neither": (None, None)}[
        given_as
    ]
    torch.manual_seed(seed + 1)  # the same dropout masks on both paths
    native = STEP_KERNELS if compiled else None
    fast = recurrent._fast_call(
        module, cell, x, given, padding, None, hx=hx, mask=mask, native=native
    )
    assert fast is not None  # a CPU batch with int64 lengths or a contiguous mask: it applies
    torch.manual_seed(seed + 1)
    general = recurrent._forward(
        module, cell, x, given, mask=mask, padding=padding, hx=hx, method="auto"
    )
    for got, want in zip((fast[0], *fast[1]), (general[0], *general[1]), strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=0, equal_nan=False)
    weights = torch.randn_like(fast[0].nan_to_num())
    leaves = [x, *module.parameters()] if grad else list(module.parameters())
    if hx is not None:
        leaves += list(hx) if isinstance(hx, tuple) else [hx]

    def grads(result: tuple[torch.Tensor, tuple[torch.Tensor, ...]]) -> list[torch.Tensor]:
        loss = (result[0] * weights).sum() + sum(s.sum() for s in result[1])
        return list(torch.autograd.grad(loss, leaves, allow_unused=True))

    for got, want in zip(grads(fast), grads(general), strict=True):
        if got is None or want is None:
            assert got is None
            assert want is None
            continue
        torch.testing.assert_close(got, want, rtol=0, atol=0)


@pytest.mark.parametrize("cls", [LSTM, GRU])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_a_mask_padded_on_the_other_side_runs_on_its_own_side(cls, bidirectional):
    """A pre-padded mask with ``padding="post"`` (the default) runs as pre-padded.

    Keras's ``pad_sequences`` pads before by default. The fast call gives the results of the
    general path (which gathers the real steps to the front) and of each sequence alone.
    """
    torch.manual_seed(0)
    module = cls(3, 4, 2, bidirectional=bidirectional, batch_first=True).double()
    lengths = torch.tensor([5, 2, 0, 4, 1])
    x = torch.randn(5, 5, 3, dtype=torch.float64)
    mask = (torch.arange(5)[None, :] < lengths[:, None]).flip(1)  # real steps last
    x = x.masked_fill(~mask[..., None], float("nan"))
    cell = cell_of(module)
    fast = recurrent._fast_call(module, cell, x, None, "post", None, mask=mask)
    assert fast is not None
    general = recurrent._forward(
        module, cell, x, None, mask=mask, padding="post", hx=None, method="auto"
    )
    for got, want in zip((fast[0], *fast[1]), (general[0], *general[1]), strict=True):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    for b, n in enumerate(lengths.tolist()):  # each sequence alone
        alone, final = module(x[b : b + 1, 5 - n :], torch.tensor([n]))
        torch.testing.assert_close(fast[0][b, 5 - n :], alone[0], rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(
            fast[0][b, : 5 - n], torch.zeros(5 - n, fast[0].shape[2]).double()
        )
        h = final[0] if cls is LSTM else final
        torch.testing.assert_close(fast[1][0][:, b], h[:, 0], rtol=1e-12, atol=1e-12)


def test_fast_call_leaves_other_calls_to_the_general_path():
    """Other lengths, methods, sides, dtypes, autocast: the general path (``None`` here)."""
    module = LSTM(3, 4, batch_first=True)
    x, lengths = torch.randn(4, 5, 3), torch.tensor([5, 2, 0, 4])
    fast = recurrent._fast_call
    cell = cell_of(module)
    assert fast(module, cell, x, lengths, "post", None) is not None
    assert fast(module, cell, x, lengths.int(), "post", None) is None  # int32 lengths
    assert fast(module, cell, x, lengths, "post", "packed") is None
    assert fast(module, cell, x, lengths, "middle", None) is None  # the general path's error
    assert fast(module, cell, x, torch.tensor([5, 2, 0, 6]), "post", None) is None  # too long
    assert fast(module, cell, x.double(), lengths, "post", None) is None  # dtype: its error
    many = torch.randint(0, 5, (257,))  # more rows than are read as Python ints
    assert fast(module, cell, torch.randn(257, 5, 3), many, "post", None) is None
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert fast(module, cell, x, lengths, "post", None) is None
    # A state of the wrong shape, kind or dtype: the general path says what is wrong.
    h, c = torch.zeros(1, 4, 4), torch.zeros(1, 4, 4)
    assert fast(module, cell, x, lengths, "post", None, hx=(h, c)) is not None
    assert fast(module, cell, x, lengths, "post", None, hx=(h[:, :3], c[:, :3])) is None
    assert fast(module, cell, x, lengths, "post", None, hx=h) is None  # a GRU's state
    assert fast(module, cell, x, lengths, "post", None, hx=(h, c.double())) is None
    assert fast(module, cell, x, lengths, "post", None, hx=[h, c]) is None  # not a tuple
    # A mask with a hole, with lengths too, or not bool: the general path.
    mask = torch.arange(5)[None, :] < lengths[:, None]
    assert fast(module, cell, x, None, "post", None, mask=mask) is not None
    holes = mask.clone()
    holes[0, 2] = False
    assert fast(module, cell, x, None, "post", None, mask=holes) is None
    assert fast(module, cell, x, lengths, "post", None, mask=mask) is None
    assert fast(module, cell, x, None, "post", None, mask=mask.long()) is None
    # No lengths and no mask: every step real, torch's call (torch.nn.LSTM's results).
    reference = nn.LSTM(3, 4, batch_first=True)
    reference.load_state_dict(module.state_dict())
    got, want = fast(module, cell, x, None, "post", None), reference(x)
    assert got is not None
    torch.testing.assert_close(got[0], want[0], rtol=0, atol=0)
    torch.testing.assert_close(got[1], want[1], rtol=0, atol=0)
    assert fast(module, cell, x[:0], None, "post", None) is None  # empty: the general path
    unstated = LSTM(3, 4)  # batch_first not given: ambiguous torch-style, its error
    assert fast(unstated, cell, x, None, "post", None) is None
    assert fast(unstated, cell, x, None, "post", None, batch_first=True) is not None


@pytest.mark.filterwarnings("ignore:LSTM with projections is not supported:UserWarning")
@settings(max_examples=60, deadline=None)
@given(
    lengths=st.lists(st.integers(0, 9), min_size=1, max_size=12).filter(any),
    layers=st.sampled_from([1, 2]),
    cls=st.sampled_from([LSTM, GRU]),
    bidirectional=st.booleans(),
    padding=st.sampled_from(["post", "pre"]),
    proj=st.booleans(),
    compiled=st.booleans(),
    mode=st.sampled_from([torch.no_grad, torch.inference_mode]),
    dtype=st.sampled_from([torch.float32, torch.float64, torch.float16, torch.bfloat16]),
    seed=st.integers(0, 2**16),
)
def test_fast_call_without_autograd_is_the_general_path_bit_for_bit(
    lengths, layers, cls, bidirectional, padding, proj, compiled, mode, dtype, seed
):
    """Without autograd the compiled kernels also copy the final h: still bit for bit.

    Pads hold NaN and inf; float32 and float64, and the half dtypes the kernels leave to the
    torch ops (they once failed there); the kernels or torch ops only.
    """
    torch.manual_seed(seed)
    kwargs = {"proj_size": 2} if proj and cls is LSTM else {}
    module = cls(3, 4, layers, bidirectional=bidirectional, batch_first=True, **kwargs).to(dtype)
    B, T = len(lengths), max(lengths)
    lengths_t = torch.tensor(lengths)
    real = torch.arange(T)[None, :] < lengths_t[:, None]
    if padding == "pre":
        real = real.flip(1)
    x = torch.randn(B, T, 3, dtype=dtype).masked_fill(~real[..., None], float("nan"))
    x[:, 0] = torch.where(real[:, 0, None], x[:, 0], float("inf"))
    cell = cell_of(module)
    with mode():
        fast = recurrent._fast_call(
            module, cell, x, lengths_t, padding, None, native=STEP_KERNELS if compiled else None
        )
        general = recurrent._forward(
            module, cell, x, lengths_t, mask=None, padding=padding, hx=None, method="auto"
        )
    assert fast is not None
    for got, want in zip((fast[0], *fast[1]), (general[0], *general[1]), strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=0, equal_nan=False)


@pytest.mark.parametrize("cls", [LSTM, GRU])
def test_torch_func_grad_matches_autograd(cls):
    """``torch.func.grad`` over the input or the weights: the gradients of ``backward``.

    The transforms wrap tensors without storage, which the compiled kernels cannot read: the
    fast call then takes the torch ops (it crashed there once).
    """
    torch.manual_seed(0)
    module = cls(3, 4, batch_first=True)
    x, lengths = torch.randn(3, 5, 3), torch.tensor([5, 2, 0])

    def loss_of_x(x: torch.Tensor) -> torch.Tensor:
        out, state = module(x, lengths)
        h = state[0] if isinstance(state, tuple) else state
        total: torch.Tensor = out.sum() + h.sum()
        return total

    params = dict(module.named_parameters())

    def loss_of_params(p: dict[str, torch.Tensor]) -> torch.Tensor:
        out, state = torch.func.functional_call(module, p, (x, lengths))
        h = state[0] if isinstance(state, tuple) else state
        total: torch.Tensor = out.sum() + h.sum()
        return total

    leaf = x.clone().requires_grad_()
    loss_of_x(leaf).backward()
    torch.testing.assert_close(torch.func.grad(loss_of_x)(x), leaf.grad)
    by_func = torch.func.grad(loss_of_params)(params)
    for name, p in module.named_parameters():
        torch.testing.assert_close(by_func[name], p.grad)
