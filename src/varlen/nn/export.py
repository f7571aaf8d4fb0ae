"""Export a model holding varlen layers to ONNX, verified against the per-sequence oracle.

:func:`export_onnx` exports with ``torch.onnx.export(..., dynamo=True)`` (dynamic batch and
time), runs the result in onnxruntime on random ragged batches (lengths 0 and 1 included, other
``T`` than the example) and writes the file only if every sequence's outputs equal that
sequence run alone through the eager model. Needs the ``onnx`` extra (``pip install
'varlen[onnx]'``: onnx, onnxscript, onnxruntime).

While a graph is captured, varlen layers take their general route (see
:mod:`varlen.nn._plans`), so the example batch never shapes the graph. Legacy TorchScript
capture (``torch.jit.trace``, ``torch.onnx.export(..., dynamo=False)``) records the example's
sizes as constants; varlen layers refuse it with an error instead of exporting a graph that
would be silently wrong for other batches.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

from varlen._atomic import write_bytes
from varlen._checks import check_side
from varlen._types import Padding

__all__ = ["ExportError", "OnnxExport", "export_onnx"]

INPUT_NAMES = ("x", "lengths")


# torch's exporter logs at WARNING about optional packages it does not need here (for example
# "torchvision is not installed. Skipping torchvision::nms"): not the user's concern.
_TORCH_EXPORT_LOGGERS = ("torch.onnx._internal.exporter._registration",)


@contextlib.contextmanager
def _quiet_loggers(names: Sequence[str]) -> Iterator[None]:
    """Raise the named loggers' level to ERROR inside the block, then restore them."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


class ExportError(RuntimeError):
    """The exported graph does not reproduce the model (nothing was written)."""


@dataclass(frozen=True)
class OnnxExport:
    """What :func:`export_onnx` wrote and checked.

    Attributes:
        path: The ONNX file.
        input_names: Graph inputs: ``x (B, T, F)`` float32 padded batch and ``lengths (B,)``
            int64.
        output_names: Graph outputs, in the model's order.
        batches: Ragged batches checked against the per-sequence oracle.
        max_error: Largest absolute difference found, over every output and sequence.
    """

    path: Path
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    batches: int
    max_error: float


def _onnx_modules() -> tuple[Any, Any]:
    try:
        import onnx
        import onnxruntime
    except ImportError as error:
        raise ImportError(
            "export_onnx needs onnx, onnxscript and onnxruntime: pip install 'varlen[onnx]'."
        ) from error
    return onnx, onnxruntime


def _as_tuple(result: Any) -> tuple[Tensor, ...]:
    outputs = result if isinstance(result, tuple) else (result,)
    if not outputs or not all(isinstance(t, Tensor) for t in outputs):
        raise TypeError(
            "export_onnx: the model must return a Tensor or a tuple of Tensors, "
            f"got {type(result).__name__}."
        )
    return tuple(outputs)


def _check_batches(lengths_list: Sequence[Sequence[int]] | None) -> list[list[int]]:
    if lengths_list is None:
        # Lengths 0 and 1, one batch without pads, one of a single row, varied T.
        return [[0, 1, 7, 3, 5], [1], [4, 4, 4], [0, 2], [9, 1, 0, 6, 2, 8, 3]]
    batches = [list(map(int, lengths)) for lengths in lengths_list]
    if not batches or any(not b or min(b) < 0 or max(b) == 0 for b in batches):
        raise ValueError(
            "export_onnx: check_lengths must be non-empty lists of lengths >= 0 with a "
            f"positive one each, got {lengths_list!r}."
        )
    return batches


def _fix_output_shapes(model: Any, output_names: Sequence[str]) -> None:
    """Name the batch (and time) dims of the outputs; drop inferred intermediate shapes.

    Shape inference may record the example's ``T`` in outputs through torch's LSTM (which
    torch.export specializes, see the README); the graph itself is dynamic.
    """
    del model.graph.value_info[:]
    for output in model.graph.output:
        dims = output.type.tensor_type.shape.dim
        for index, dim in enumerate(dims):
            if index == 0:
                dim.dim_param = "B"
            elif index == 1 and len(dims) == 3:
                dim.dim_param = "T"
    del output_names


def _oracle(model: nn.Module, x: Tensor, lengths: list[int], padding: Padding) -> list[Any]:
    """Each row's outputs from the row's real steps alone, through the eager model."""
    T = x.shape[1]
    rows = []
    with torch.no_grad():
        for b, n in enumerate(lengths):
            steps = slice(0, n) if padding == "post" else slice(T - n, T)
            alone = x[b : b + 1, steps]
            result = _as_tuple(model(alone, torch.tensor([n])))
            rows.append([r[0].numpy() for r in result])
    return rows


class _Mismatch(NamedTuple):
    """How far one output row of the graph is from the sequence alone, and where."""

    error: float  # largest absolute difference
    allowed: float  # atol + rtol * scale
    scale: float  # the largest magnitude of the oracle's output
    where: str  # the positions over the allowance, e.g. "pad steps 3, 4 (of T = 5)"


def _steps_text(kind: str, steps: np.ndarray, T: int) -> str:
    shown = ", ".join(str(int(t)) for t in steps[:5]) + (", ..." if len(steps) > 5 else "")
    return f"{kind} step{'s' if len(steps) > 1 else ''} {shown} (of T = {T})"


def _row_mismatch(
    got: np.ndarray,
    want: np.ndarray,
    n: int,
    T: int,
    padding: Padding,
    *,
    atol: float,
    rtol: float,
) -> _Mismatch:
    """Compare one row: per-sequence outputs whole; per-step at real steps, zeros at pads.

    The allowance is ``atol + rtol * scale``, ``scale`` the largest magnitude of the oracle's
    output: a float32 graph rounds a value near 1e6 by 0.0625, and that is no mismatch.
    """
    scale = float(np.abs(want).max(initial=0.0))
    allowed = atol + rtol * scale
    if got.shape == want.shape:
        error = float(np.abs(got - want).max(initial=0.0))
        return _Mismatch(error, allowed, scale, "the per-sequence output")
    if got.shape[0] == T and want.shape[0] == n and got.shape[1:] == want.shape[1:]:
        first = 0 if padding == "post" else T - n
        differences = np.zeros(T)
        axes = tuple(range(1, got.ndim))
        differences[first : first + n] = np.abs(got[first : first + n] - want).max(
            axis=axes, initial=0.0
        )
        is_pad = np.ones(T, dtype=bool)
        is_pad[first : first + n] = False
        differences[is_pad] = np.abs(got[is_pad]).max(axis=axes, initial=0.0)
        over = differences > allowed
        where = "; ".join(
            _steps_text(kind, np.flatnonzero(over & chosen), T)
            for kind, chosen in (("real", ~is_pad), ("pad", is_pad))
            if (over & chosen).any()
        )
        return _Mismatch(float(differences.max(initial=0.0)), allowed, scale, where)
    raise ExportError(
        f"export_onnx: cannot compare an output row of shape {got.shape} with the sequence "
        f"alone ({want.shape}); outputs must be batch-first, (B, ...) or (B, T, ...)."
    )


def export_onnx(
    model: nn.Module,
    path: str | os.PathLike[str],
    *,
    input_size: int,
    padding: Padding = "post",
    output_names: Sequence[str] | None = None,
    check_lengths: Sequence[Sequence[int]] | None = None,
    atol: float = 1e-5,
    rtol: float = 1e-5,
    seed: int = 0,
) -> OnnxExport:
    """Export ``model(x, lengths)`` to ONNX and write it only if it matches the oracle.

    The graph has dynamic batch ``B`` and time ``T``. It is checked in onnxruntime on ragged
    batches (by default lengths 0 and 1 included, ``T`` from 1 to 9): every sequence's outputs
    must equal the sequence run alone through the eager model (``model(x_b[None, real],
    [n])``) within ``atol + rtol * scale`` (``scale``: the largest magnitude of that
    output of that sequence, so that outputs near 1e6 may differ by float32's rounding), and
    per-step outputs must be zero at pads. On failure nothing is written (an existing file at
    ``path`` is kept) and the error names the output, the batch, the row and the positions
    that differ (real steps or pad steps).

    Args:
        model: A module whose ``forward(x (B, T, F), lengths (B,))`` returns a Tensor or a tuple
            of Tensors, batch-first: ``(B, ...)`` per sequence or ``(B, T, ...)`` per step.
            Exported in eval mode, on the CPU, in float32.
        path: Where to write the ``.onnx`` file.
        input_size: ``F``, features per step.
        padding: Where the model expects the pads (its forward's own setting): ``"post"`` or
            ``"pre"``; the check batches are padded that way.
        output_names: Names of the graph outputs (default ``out0``, ``out1``, ...).
        check_lengths: The batches to check, as lists of lengths (default: see above).
        atol: Absolute part of the difference allowed.
        rtol: Part of the difference allowed relative to the output's scale.
        seed: Seed of the random check batches.

    Returns:
        :class:`OnnxExport`.

    Raises:
        ImportError: If onnx, onnxscript or onnxruntime is missing.
        ExportError: If the exported graph does not match (nothing written).
        ValueError: For bad arguments.

    Example:
        >>> from varlen.nn import LSTM
        >>> class Last(torch.nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.rnn = LSTM(3, 8)
        ...     def forward(self, x, lengths):
        ...         return self.rnn(x, lengths)[1].h[-1]  # (B, H)
        >>> import tempfile, pathlib
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> report = export_onnx(Last(), folder / "last.onnx", input_size=3)  # doctest: +SKIP
    """
    padding = check_side("export_onnx", "padding", padding)
    if not isinstance(model, nn.Module):
        raise TypeError(f"export_onnx: model must be a torch.nn.Module, got {type(model)}.")
    batches = _check_batches(check_lengths)
    for name, value in (("atol", atol), ("rtol", rtol)):
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < np.inf:
            raise ValueError(f"export_onnx: {name} must be a finite number >= 0, got {value!r}.")
    onnx, onnxruntime = _onnx_modules()
    target = Path(path)
    model = model.eval().float().cpu()
    generator = torch.Generator().manual_seed(seed)
    example = torch.randn(2, 3, input_size, generator=generator)
    example_lengths = torch.tensor([3, 3])  # no pads: the graph must not care
    with torch.no_grad():
        first = _as_tuple(model(example, example_lengths))
    names = tuple(output_names or [f"out{i}" for i in range(len(first))])
    if len(names) != len(first):
        raise ValueError(
            f"export_onnx: output_names must name the model's {len(first)} outputs, "
            f"got {len(names)}."
        )
    B, T = torch.export.Dim("B", min=1), torch.export.Dim("T", min=1)
    with warnings.catch_warnings(), _quiet_loggers(_TORCH_EXPORT_LOGGERS):
        # torch's exporter warns about its own internals (deprecations, the shared axis B,
        # non-leaf .grad reads while it traces): not the user's concern, and fatal under
        # warnings-as-errors.
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            model,
            (example, example_lengths),
            dynamo=True,
            input_names=list(INPUT_NAMES),
            output_names=list(names),
            dynamic_shapes={"x": {0: B, 1: T}, "lengths": {0: B}},
            verbose=False,
        )
    if program is None:
        raise ExportError("export_onnx: torch.onnx.export returned no program.")
    proto = program.model_proto
    _fix_output_shapes(proto, names)
    session = onnxruntime.InferenceSession(
        proto.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    worst = 0.0
    for lengths in batches:
        T_b = max(lengths)
        x = torch.randn(len(lengths), T_b, input_size, generator=generator)
        steps = torch.arange(T_b)[None, :]
        lengths_t = torch.tensor(lengths)
        first_real = (T_b - lengths_t)[:, None] if padding == "pre" else 0
        real = (steps >= first_real) & (steps < first_real + lengths_t[:, None])
        x = x.masked_fill(~real[:, :, None], 7.0)  # pads hold garbage: it must not matter
        got = session.run(None, {"x": x.numpy(), "lengths": lengths_t.numpy()})
        oracle = _oracle(model, x, lengths, padding)
        for b, n in enumerate(lengths):
            for index, want in enumerate(oracle[b]):
                found = _row_mismatch(got[index][b], want, n, T_b, padding, atol=atol, rtol=rtol)
                worst = max(worst, found.error)
                if not found.error <= found.allowed:
                    raise ExportError(
                        f"export_onnx: the exported graph differs from the sequence run alone "
                        f"by {found.error:.3g} > {found.allowed:.3g} (atol={atol} + rtol={rtol} "
                        f"x the output's scale {found.scale:.3g}) at {found.where} (output "
                        f"{names[index]!r}, lengths {lengths}, row {b}); nothing was written "
                        f"to {os.fspath(target)}."
                    )
    onnx.checker.check_model(proto)  # before writing: a file that lands is a valid model
    target.parent.mkdir(parents=True, exist_ok=True)
    write_bytes(target, proto.SerializeToString())
    return OnnxExport(target, INPUT_NAMES, names, len(batches), worst)
