"""``varlen export MODEL_DIR --out model.onnx``: the whole predictor as a verified ONNX graph.

The graph's inputs are ``x`` ``(B, T, F)`` float32, the raw features post-padded (features in
the training order; pad values do not matter) and ``lengths`` ``(B,)`` int64; its output is
``scores`` ``(B, K)``: class logits (softmax for probabilities; the labels are in the model
directory) or regression values in the target's units. The fitted standardizer is inside the
graph. The file is written only if onnxruntime reproduces each sequence run alone. Needs the
``onnx`` extra: ``pip install 'varlen[onnx]'``.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

from varlen.cli._common import CommandError, build_config, say

__all__ = ["ExportOptions", "add_arguments", "run"]


@dataclass(frozen=True)
class ExportOptions:
    """Everything ``varlen export`` takes.

    Args:
        model: The model directory written by ``varlen train``.
        out: The ``.onnx`` file to write.
    """

    model: Path
    out: Path

    def __post_init__(self) -> None:
        if self.out.suffix.lower() != ".onnx":
            raise ValueError(f"export: --out must end in .onnx, got {os.fspath(self.out)!r}.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``varlen export``'s arguments.

    Args:
        parser: The command's parser.
    """
    parser.add_argument("model", type=Path, metavar="MODEL_DIR", help="from `varlen train`")
    parser.add_argument("--out", type=Path, required=True, metavar="FILE", help="model.onnx")


def run(args: argparse.Namespace) -> int:
    """Run ``varlen export``.

    Args:
        args: The parsed arguments.

    Returns:
        The exit code, 0.

    Raises:
        CommandError: If the onnx extra is missing, the technique is inexact, or the graph
            does not match (nothing written).
    """
    options = build_config(ExportOptions, args, command="export")
    from varlen.nn.export import ExportError
    from varlen.training.export import export_predictor

    say(args, f"exporting {os.fspath(options.model)} (and checking it in onnxruntime)...")
    try:
        report = export_predictor(options.model, options.out)
    except ImportError as error:
        raise CommandError(str(error)) from None
    except ExportError as error:
        raise CommandError(str(error)) from None
    say(
        args,
        f"wrote {os.fspath(report.path)}: inputs x (B, T, F) float32 post-padded raw features, "
        f"lengths (B,) int64; output scores (B, K); max difference from each sequence run "
        f"alone {report.max_error:.2g} on {report.batches} ragged batches",
    )
    return 0
