"""The compiled time-major step kernels of a recurrent layer's padded route (optional).

The public home of ``varlen.data._native``'s two step kernels, for :mod:`varlen.nn` (which
passes :data:`STEP_KERNELS` to its fast call, or ``None`` for torch ops only) and for
benchmarks and tests that compare the two routes.

``varlen.nn``'s fast call builds a layer's first input ``(T, B, F + 1)`` from a batch-first
``(B, T, F)`` batch: each real step is the step's features and a 0, each padded step the
constant row ``(0, ..., 0, 1)`` whatever the batch holds there (the pad indicator that makes
the step a no-op). With torch ops that is a comparison for the pad mask, a padded copy and a
select (four dispatches and three passes); the compiled kernel writes it in one pass from
the lengths. In inference it also copies each row's final output (the last real step of the
direction that ends on the pads) instead of an index, its expansion and a gather.

Both kernels only copy values (never compute them): their results are bit for bit those of
the torch ops, which remain the route wherever :data:`STEP_KERNELS` is ``None`` (an install without
a C compiler, or a build that predates the kernels) and for inputs they do not take.
"""

from __future__ import annotations

from typing import Any

try:
    from varlen.data import _native
except ImportError:  # installed without a C compiler
    _native = None  # type: ignore[assignment]

__all__ = ["STEP_KERNELS"]

STEP_KERNELS: Any = _native if _native is not None and hasattr(_native, "last_steps") else None
"""The compiled module with ``time_major_steps`` and ``last_steps``, or ``None``.

``time_major_steps(x, lengths, out, pre)``: ``out (T, B, F + 1)`` from ``x (B, T, F)``
(C-contiguous NumPy arrays of one float dtype, ``lengths`` int64 ``(B,)`` in ``[0, T]``;
``pre``: real steps last). ``last_steps(out, lengths, pre, column, dest)``: ``dest[b] =
out[t_b, b, column:column + H]`` with ``t_b = lengths[b] - 1`` (or ``T - lengths[b]`` with
``pre``), clamped to ``[0, T - 1]``. Both raise on arrays of other shapes or dtypes.
"""
