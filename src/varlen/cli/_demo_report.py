"""The demo's presentation: its table, notes, CSV/JSON rows and plot (for ``varlen demo``).

:func:`~varlen.training.demo.run_demo` trains and measures; this module only presents its
rows, next to the command that prints them.
"""

from __future__ import annotations

import csv
import json
import math
import textwrap
from collections.abc import Sequence
from dataclasses import asdict, fields
from pathlib import Path

import numpy as np

from varlen._atomic import atomic_open, write_text
from varlen.training.demo import DATASET, DemoConfig, DemoRow

__all__ = [
    "accuracy_floor",
    "best_row",
    "format_notes",
    "format_table",
    "plot_demo",
    "write_rows",
]


def best_row(rows: Sequence[DemoRow]) -> DemoRow | None:
    """The exact row of highest test accuracy (the faster one on a tie), or ``None``.

    Args:
        rows: From :func:`run_demo`.

    Returns:
        The row, or ``None`` without an exact row.
    """
    exact = [row for row in rows if row.exact and math.isfinite(row.test_accuracy)]
    return max(exact, key=lambda row: (row.test_accuracy, row.real_steps_per_second), default=None)


def format_table(rows: Sequence[DemoRow]) -> str:
    """Return the rows as an aligned text table.

    Args:
        rows: From :func:`run_demo`.

    Returns:
        A header line and one line per row, without a trailing newline.

    Example:
        >>> row = DemoRow("mask", "padding + masking", True, 0.98, 1.0, 52000.0, 0.7, 9.5, 30, 20)
        >>> print(format_table([row]))
        technique      test acc  real steps/s  pad eff  epochs  wall s  exact
        mask              0.980        52,000     0.70      30     9.5  yes
    """
    lines = [
        f"{'technique':14} {'test acc':>8} {'real steps/s':>13} {'pad eff':>8} {'epochs':>7} "
        f"{'wall s':>7}  exact"
    ]
    for row in rows:
        lines.append(
            f"{row.technique:14} {row.test_accuracy:8.3f} {row.real_steps_per_second:13,.0f} "
            f"{row.padding_efficiency:8.2f} {row.epochs:7d} {row.seconds:7.1f}  "
            f"{'yes' if row.exact else 'no'}"
        )
    return "\n".join(lines)


_WIDTH = 92
_NOTES = {
    "pad-pre": "padded in front, no mask (the first thing people try): the model takes the zero "
    "pads for steps, the state runs through them before the real steps, so a sequence's result "
    "depends on the other sequences of its batch",
    "pad-post": "padded at the end, no mask: the model takes the pads for steps, the state runs "
    "on through them after the real steps (and a backward direction starts in them), so short "
    "sequences are blurred by their batch",
    "mask": "the padded batch plus its lengths: varlen's fused kernel; pads never reach the "
    "state or the pooling",
    "bucket": "masking on batches of similar lengths: little padding, but less random batches "
    "(here lengths follow the speaker, so a batch holds fewer classes)",
    "pack": "packed sequences on the same bucketed batches: no compute on pads, but torch's "
    "packed kernel steps one time step at a time on CPU",
    "lanes": "sequences laid end to end in a few long lanes, the state reset between them: "
    "almost no padding, one fused kernel call",
    "one-at-a-time": "each sequence alone, no padding: the exact reference, and the slowest "
    "(one kernel call per sequence)",
}


def _paragraph(text: str, indent: str = "") -> str:
    return textwrap.fill(text, width=_WIDTH, initial_indent=indent, subsequent_indent=indent)


def format_notes(rows: Sequence[DemoRow], *, config: DemoConfig | None = None) -> str:
    """Return the footnote printed under the table: what each row and column means.

    Args:
        rows: From :func:`run_demo`.
        config: The hyperparameters the rows were trained with, to state them.

    Returns:
        Lines of text at most 92 characters wide, without a trailing newline.
    """
    config = config or DemoConfig()
    kind = "bidirectional LSTM" if config.bidirectional else "LSTM"
    paragraphs = [
        _paragraph(
            f"Every row trains the same {kind} (H={config.hidden_size}, {config.pooling} "
            f"pooling, dropout {config.dropout:g}) from the same initial weights with the same "
            f"settings (Adam lr {config.lr:g}, weight decay {config.weight_decay:g}, batches of "
            f"{config.batch_size}, at most {config.epochs} epochs, early stopping after "
            f"{config.patience} epochs without a better loss on a stratified "
            f"{config.validation_fraction:.0%} validation split of the training data). test acc: "
            "the 370 test utterances (9 speakers), scored with the best validation epoch's "
            "weights. real steps/s: training throughput counting real (unpadded) steps only. "
            "pad eff: real steps / computed steps. exact: each sequence's result equals it run "
            "alone. Exact rows on the same batches (mask, lanes, one-at-a-time: random batches; "
            "bucket, pack: bucketed ones) learn the same model up to float rounding, which can "
            "still tip early stopping by an epoch or more."
        ),
        *(
            textwrap.fill(
                f"{row.technique:14} {_NOTES.get(row.technique, row.description)}.",
                width=_WIDTH,
                initial_indent="  ",
                subsequent_indent=" " * 17,
            )
            for row in rows
        ),
    ]
    return "\n".join(paragraphs)


def write_rows(rows: Sequence[DemoRow], path: Path, *, config: DemoConfig | None = None) -> None:
    """Write the rows as CSV (``.csv``) or as JSON with the config (any other suffix).

    Args:
        rows: From :func:`run_demo`.
        path: The file to write; its folder must exist.
        config: The configuration to record in the JSON file.
    """
    records = [asdict(row) for row in rows]
    if path.suffix == ".csv":
        with atomic_open(path, "w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=[f.name for f in fields(DemoRow)])
            writer.writeheader()
            writer.writerows(records)
        return
    payload = {"dataset": DATASET, "config": asdict(config or DemoConfig()), "rows": records}
    write_text(path, json.dumps(payload, indent=2) + "\n")


def _short_number(value: float, _position: int) -> str:
    """Tick label: ``120k`` for 120,000, ``0.5`` for 0.5."""
    if abs(value) >= 1000:
        return f"{value / 1000:g}k"
    return f"{value:g}"


def accuracy_floor(values: Sequence[float], *, step: float = 0.05, margin: float = 0.05) -> float:
    """Where the accuracy axis starts: a round value ``margin`` below the lowest accuracy.

    Accuracies of 0.95-0.99 on an axis from 0 all look alike; starting near the lowest one
    shows the differences (the title says where the axis starts).

    Args:
        values: Accuracies in ``[0, 1]`` (NaN ignored).
        step: Rounding of the start.
        margin: Room below the lowest value.

    Returns:
        A multiple of ``step`` in ``[0, 1)``.
    """
    finite = [value for value in values if math.isfinite(value)]
    if not finite:
        return 0.0
    low = math.floor((min(finite) - margin) / step + 1e-9) * step
    return float(min(max(low, 0.0), 1.0 - step))


def plot_demo(rows: Sequence[DemoRow], path: Path) -> Path:
    """Draw the rows as a PNG: test accuracy, real steps/s, padding efficiency, wall time.

    Uses matplotlib's Agg canvas directly (no pyplot, no global backend change).

    Args:
        rows: From :func:`run_demo`.
        path: The PNG to write; its folder must exist.

    Returns:
        ``path``.

    Raises:
        ImportError: If matplotlib is not installed (``pip install varlen[plot]``).
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.ticker import FuncFormatter, MaxNLocator
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(
            "plot_demo: matplotlib must be installed to draw the chart, got ImportError. "
            "Install it with: pip install 'varlen[plot]'."
        ) from error
    names = [row.technique for row in rows]
    colors = ["#2a7ab0" if row.exact else "#d9622b" for row in rows]
    panels = [  # title, values, label format, whether values are fractions
        ("test accuracy", [row.test_accuracy for row in rows], "{:.3f}", True),
        ("training real steps / s", [row.real_steps_per_second for row in rows], "{:,.0f}", False),
        ("padding efficiency", [row.padding_efficiency for row in rows], "{:.2f}", True),
        ("wall time (s)", [row.seconds for row in rows], "{:.1f}", False),
    ]
    figure = Figure(figsize=(16, 0.45 * len(rows) + 1.8), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, len(panels), sharey=True)
    positions = np.arange(len(rows))
    for ax, (title, values, fmt, fraction) in zip(axes, panels, strict=True):
        low = accuracy_floor(values) if title == "test accuracy" else 0.0
        ax.barh(positions, [value - low for value in values], left=low, color=colors)
        ax.set_title(title if low == 0 else f"{title} (axis from {low:g})")
        top = 1.0 + 0.18 * (1.0 - low) if fraction else max(max(values, default=1.0), 1e-9) * 1.3
        ax.set_xlim(low, top)
        ax.xaxis.set_major_locator(MaxNLocator(nbins=4, steps=[1, 2, 2.5, 5, 10]))  # few, round
        ax.xaxis.set_major_formatter(FuncFormatter(_short_number))
        for y, value in zip(positions, values, strict=True):
            ax.text(value, y, " " + fmt.format(value), va="center", fontsize=8)
    axes[0].set_yticks(positions, names)
    axes[0].invert_yaxis()
    figure.suptitle(
        "varlen demo: the same LSTM on JapaneseVowels, once per technique "
        "(blue = exact, orange = inexact)"
    )
    with atomic_open(path, "wb") as file:
        figure.savefig(file, format="png", dpi=110)
    return path
