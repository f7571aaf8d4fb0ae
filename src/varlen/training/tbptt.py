"""Truncated back-propagation through time: train on long sequences in windows of ``k`` steps.

A sequence too long for one autograd graph is cut into windows of ``k`` steps. Each window
runs from the state the previous window of the *same* sequence ended in, detached, so the
forward values are exactly those of one pass over the whole sequence, while gradients stop
at the window start (the "truncated" gradient) and memory holds one window's graph only.
Every call starts from a zero state: state is never carried from one batch of independent
sequences to the next (see :func:`varlen.nn.streaming.run_one_at_a_time` for why).

Sequences of different lengths share a batch: a sequence that has ended drops out of all
later windows (its row is not computed at all, and its final state is kept), so the last
windows run only the long sequences.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor

from varlen._checks import check_lengths_array, check_side, error_context, unplaced
from varlen._types import Padding
from varlen.nn.functional import repad
from varlen.nn.recurrent import GRU, LSTM
from varlen.nn.streaming import StreamingRNN, StreamState

__all__ = ["TBPTTResult", "TBPTTWindow", "tbptt_windows", "train_tbptt"]


class TBPTTWindow(NamedTuple):
    """One window of ``k`` (or fewer) steps of the sequences still running.

    Attributes:
        x: ``(B_w, T_w, F)`` the window's steps, post-padded (pads NOT zeroed).
        lengths: ``(B_w,)`` int64 real steps of each row in this window, ``1 <= . <= T_w``.
        rows: ``(B_w,)`` int64 rows of the full batch that this window holds, ascending.
        start: Time step of the window's first column within the sequences.
        targets: ``(B_w, T_w, *K)`` the matching slice of the per-step targets, or ``None``.
    """

    x: Tensor
    lengths: Tensor
    rows: Tensor
    start: int
    targets: Tensor | None


class TBPTTResult(NamedTuple):
    """What :func:`train_tbptt` returns.

    Attributes:
        losses: ``(W,)`` the detached loss of each window, in order (no host sync).
        state: The final state of all ``B`` sequences (zeros for length-0 sequences).
    """

    losses: Tensor
    state: StreamState


def _check_k(k: Any) -> int:
    if isinstance(k, bool) or not isinstance(k, int | np.integer):
        raise unplaced(TypeError(f"k must be an int, got {k!r}."))
    if k < 1:
        raise unplaced(ValueError(f"k must be >= 1 (steps per window), got {k}."))
    return int(k)


def _check_batch(x: Any, lengths: Any, targets: Any) -> Tensor:
    """Validate ``x (B, T, F)``, ``lengths (B,)`` and ``targets``; return lengths on the host."""
    if not isinstance(x, Tensor) or x.ndim != 3:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise unplaced(ValueError(f"x must be a Tensor of shape (B, T, F), got {shape}."))
    B, T, _ = x.shape
    host = lengths.cpu() if isinstance(lengths, Tensor) else lengths  # one host copy
    checked = check_lengths_array(None, host, maxlen=T)
    if checked.shape != (B,):
        raise unplaced(ValueError(f"lengths must have shape (B,) = ({B},), got {checked.shape}."))
    if targets is not None and (
        not isinstance(targets, Tensor) or tuple(targets.shape[:2]) != (B, T)
    ):
        shape = tuple(targets.shape) if isinstance(targets, Tensor) else type(targets).__name__
        raise unplaced(
            ValueError(
                f"targets must be a Tensor of shape (B, T, *K) = ({B}, {T}, ...) "
                f"aligned with x, got {shape}."
            )
        )
    return torch.from_numpy(checked)


def tbptt_windows(
    x: Tensor,
    lengths: Tensor,
    k: int,
    *,
    targets: Tensor | None = None,
    padding: Padding = "post",
) -> Iterator[TBPTTWindow]:
    """Cut a padded batch into consecutive windows of ``k`` steps, dropping ended sequences.

    Window ``w`` covers steps ``[w * k, w * k + k)`` of every sequence longer than ``w * k``;
    sequences that have ended are left out (they would have length 0). Every real step lands
    in exactly one window, in order; windows are ``k`` wide except the last, which stops at
    ``max(lengths)``. ``B = 0`` or all lengths 0 give no window. Arguments are validated
    here, before the first window. Reads ``lengths`` on the host once.

    Args:
        x: ``(B, T, F)`` padded batch.
        lengths: ``(B,)`` int, ``0 <= lengths <= T``.
        k: Steps per window, ``>= 1``.
        targets: ``(B, T, *K)`` per-step targets aligned with ``x``, sliced with it.
        padding: Side of the padding of ``x`` (and ``targets``); windows are always post.

    Returns:
        An iterator of :class:`TBPTTWindow`.

    Raises:
        TypeError: If ``k`` is not an int or ``lengths`` not integer.
        ValueError: If ``k < 1``, shapes disagree, lengths are out of ``[0, T]``, or
            ``padding`` is not ``"pre"``/``"post"``.

    Example:
        >>> x = torch.arange(10.0).reshape(2, 5, 1)  # (B, T, F) = (2, 5, 1)
        >>> for w in tbptt_windows(x, torch.tensor([5, 2]), 2):
        ...     print(w.start, w.rows.tolist(), w.lengths.tolist())
        0 [0, 1] [2, 2]
        2 [0] [2]
        4 [0] [1]
    """
    with error_context("tbptt_windows"):
        k = _check_k(k)
        padding = check_side(None, "padding", padding)
        host = _check_batch(x, lengths, targets)
        if padding == "pre":
            device_lengths = host.to(x.device)
            x = repad(x, device_lengths, padding="pre", to="post")
            if targets is not None:
                targets = repad(targets, device_lengths, padding="pre", to="post")
        return _windows(x, host, k, targets)


def _windows(x: Tensor, lengths: Tensor, k: int, targets: Tensor | None) -> Iterator[TBPTTWindow]:
    """Yield the windows of a validated post-padded batch (``lengths`` on the host)."""
    T_max = int(lengths.max()) if lengths.numel() else 0
    for start in range(0, T_max, k):
        stop = min(start + k, T_max)
        rows_host = (lengths > start).nonzero()[:, 0]  # (B_w,) sequences still running
        window_lengths = (lengths[rows_host] - start).clamp(max=stop - start)
        rows = rows_host.to(x.device)
        yield TBPTTWindow(
            x=x[rows, start:stop],
            lengths=window_lengths.to(x.device),
            rows=rows,
            start=start,
            targets=None if targets is None else targets[rows, start:stop],
        )


LossFunction = Callable[[Tensor, TBPTTWindow], Tensor]


def train_tbptt(
    model: StreamingRNN | LSTM | GRU,
    x: Tensor,
    lengths: Tensor,
    *,
    k: int,
    loss_fn: LossFunction,
    optimizer: torch.optim.Optimizer,
    targets: Tensor | None = None,
    padding: Padding = "post",
) -> TBPTTResult:
    """Train on one batch of long sequences with truncated BPTT, one optimizer step per window.

    For each window of :func:`tbptt_windows`: zero the gradients, run ``model`` on the
    window's rows from their carried state (zeros at the batch start), call
    ``loss_fn(output, window)``, back-propagate (gradients stop at the window start),
    step the optimizer and carry the final state, detached, to the next window. The rows of
    sequences that have ended are not computed; their final state is kept. Memory holds one
    window's graph, whatever the sequence length. Each call starts from zeros: pass one batch
    of independent sequences per call.

    For a model with layers *before* the recurrent one, write the same loop around
    :func:`tbptt_windows` and a :class:`~varlen.nn.streaming.StreamingRNN`; layers *after*
    it (a head) belong in ``loss_fn``, with their parameters in ``optimizer``.

    Args:
        model: A :class:`~varlen.nn.streaming.StreamingRNN` or a unidirectional
            ``varlen.nn.LSTM``/``GRU`` (wrapped).
        x: ``(B, T, F)`` padded batch with the weights' dtype and device.
        lengths: ``(B,)`` int, ``0 <= lengths <= T``.
        k: Steps per window, ``>= 1``.
        loss_fn: ``loss_fn(output, window) -> scalar``; ``output (B_w, T_w, H_out)`` is zero
            at pads, ``window`` a :class:`TBPTTWindow` (with ``window.targets``).
        optimizer: Optimizer over the parameters to train; stepped once per window.
        targets: ``(B, T, *K)`` per-step targets, windowed with ``x``.
        padding: Side of the padding of ``x`` and ``targets``.

    Returns:
        A :class:`TBPTTResult`: each window's loss and the final state of all ``B`` rows.

    Raises:
        TypeError: If ``model`` is not a streaming-capable varlen module, or ``k`` is not an int.
        ValueError: If ``model`` is bidirectional, ``k < 1``, or the batch is malformed.

    Example:
        >>> lstm = LSTM(2, 3)
        >>> head = torch.nn.Linear(3, 1)
        >>> def loss_fn(out, window):  # mean squared error over real steps
        ...     mask = torch.arange(out.shape[1]) < window.lengths[:, None]  # (B_w, T_w)
        ...     return ((head(out)[..., 0] - window.targets) ** 2)[mask].mean()
        >>> x, y = torch.randn(4, 100, 2), torch.randn(4, 100)  # (B, T, F), (B, T)
        >>> optimizer = torch.optim.SGD([*lstm.parameters(), *head.parameters()], lr=0.1)
        >>> result = train_tbptt(lstm, x, torch.tensor([100, 7, 60, 0]), k=25,
        ...                      loss_fn=loss_fn, optimizer=optimizer, targets=y)
        >>> result.losses.shape, result.state.h.shape  # 4 windows; (L, B, H)
        (torch.Size([4]), torch.Size([1, 4, 3]))
    """
    rnn = model if isinstance(model, StreamingRNN) else StreamingRNN(model)
    windows = tbptt_windows(x, lengths, k, targets=targets, padding=padding)
    T_max = int(torch.as_tensor(lengths).max()) if x.shape[0] else 0
    # One preallocated tensor: a new small tensor kept per window would pin freed window
    # buffers in the heap (glibc), and resident memory would grow with the sequence length.
    losses = x.new_zeros(-(-T_max // k))  # (W,)
    state = rnn.initial_state(x.shape[0])
    for w, window in enumerate(windows):
        optimizer.zero_grad(set_to_none=True)
        output, final = rnn(window.x, window.lengths, state.select(window.rows))
        loss = loss_fn(output, window)
        torch.autograd.backward(loss)
        optimizer.step()
        state = state.assign(window.rows, final.detach())
        losses[w] = loss.detach()
    return TBPTTResult(losses, state)
