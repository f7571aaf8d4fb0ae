"""``varlen inspect DATA``: what the lengths of a dataset mean for batching.

DATA may also be a store (``varlen convert``): inspect then reads only its schema, offsets,
ids and targets (never the steps) and first prints what the store holds: its format version,
sizes on disk, the steps' dtype, the features, the targets, the standardizer saved with it (if
any) and the source it was converted from.

Prints the length statistics (count, min, median, mean, p90, max), the padding efficiency of
random vs length-bucketed batching at ``--batch-size`` (from the lengths alone, see
:func:`varlen.batching.compare_policies`) and the technique that ``auto``'s padding rule picks,
with its reason. ``varlen train --technique auto`` also weighs the speed of mask and bucket
(estimated from the lengths by its cost model, or timed with ``--planner timed``), so it may
pick the other, and the report says so.
``--plot FILE.png`` also draws a length histogram (matplotlib, imported only then).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from varlen._atomic import atomic_open
from varlen.cli._common import (
    CommandError,
    add_table_options,
    build_config,
    count,
    is_store,
    load_data,
    load_store,
    say,
    table_options,
)
from varlen.data.io.store import StoredRagged

__all__ = [
    "InspectOptions",
    "add_arguments",
    "length_summary",
    "plot_lengths",
    "run",
    "step_target_summary",
    "store_summary",
    "target_summary",
]


_PLOT_SUFFIXES = (".png", ".svg", ".pdf")


@dataclass(frozen=True)
class InspectOptions:
    """Everything ``varlen inspect`` takes.

    Args:
        data: The file.
        batch_size: Sequences per batch for the padding comparison.
        plot: Where to write the length histogram (PNG), or ``None``.
        id: Table column naming the sequence of each row.
        order: Table column ordering the steps.
        features: Table feature columns.
        target: Table column holding a target (left out of the features).
    """

    data: Path
    batch_size: int = 32
    plot: Path | None = None
    id: str | None = None
    order: str | None = None
    features: tuple[str, ...] | None = None
    target: str | None = None

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"inspect: batch_size must be >= 1, got {self.batch_size!r}.")
        if self.plot is not None and self.plot.suffix.lower() not in _PLOT_SUFFIXES:
            raise ValueError(
                f"inspect: --plot must end in {', '.join(_PLOT_SUFFIXES)}, "
                f"got {os.fspath(self.plot)!r}."
            )
        if self.plot is not None and not self.plot.parent.is_dir():
            raise ValueError(
                f"inspect: --plot must be in an existing folder, got {os.fspath(self.plot)!r} "
                f"({os.fspath(self.plot.parent)!r} does not exist)."
            )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``varlen inspect``'s arguments.

    Args:
        parser: The command's parser.
    """
    parser.add_argument(
        "data", type=Path, metavar="DATA", help=".ts, .csv or .parquet file, or a store"
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=argparse.SUPPRESS,
        help="sequences per batch for the padding comparison (default 32)",
    )
    parser.add_argument(
        "--plot",
        type=Path,
        default=argparse.SUPPRESS,
        metavar="FILE.png",
        help="write a length histogram (needs matplotlib)",
    )
    add_table_options(parser, target=True)


def length_summary(lengths: np.ndarray) -> str:
    """Return one line of length statistics.

    Args:
        lengths: ``(B,)`` sequence lengths, ``B >= 0``.

    Returns:
        ``"sequences B, length min .. median .. mean .. p90 .. max .."``.

    Example:
        >>> length_summary(np.array([1, 2, 3, 10]))
        'sequences 4, length min 1, median 2.5, mean 4.0, p90 7.9, max 10, steps 16'
    """
    if lengths.size == 0:
        return "sequences 0"
    return (
        f"sequences {lengths.size}, length min {lengths.min()}, "
        f"median {np.median(lengths):.1f}, mean {lengths.mean():.1f}, "
        f"p90 {np.percentile(lengths, 90):.1f}, max {lengths.max()}, steps {lengths.sum()}"
    )


def _listed(values: list[str], most: int = 12) -> str:
    shown = ", ".join(values[:most])
    return shown + (f", ... ({len(values) - most} more)" if len(values) > most else "")


def target_summary(y: np.ndarray | None, *, most: int = 12) -> str:
    """Return one line describing per-sequence targets.

    Floating targets are values (a regression target); anything else (labels, integers,
    bools) are classes, counted.

    Args:
        y: ``(B,)`` targets as stored, or ``None``.
        most: The most classes to list.

    Returns:
        ``"targets: none"``, ``"targets: C classes: a 3, b 2"`` or
        ``"targets: values min .., mean .., max .."``.

    Example:
        >>> target_summary(np.array(["a", "b", "a"]))
        'targets: 2 classes: a 2, b 1'
    """
    if y is None:
        return "targets: none"
    if y.dtype.kind == "f":
        known = y[~np.isnan(y)]
        missing = f" ({y.size - known.size} missing)" if known.size < y.size else ""
        if known.size == 0:
            return f"targets: values, all {y.size} missing"
        return (
            f"targets: values min {known.min():.4g}, mean {known.mean():.4g}, "
            f"max {known.max():.4g}{missing}"
        )
    labels, counts = np.unique(y.astype(str) if y.dtype.kind == "O" else y, return_counts=True)
    pairs = zip(labels.tolist(), counts.tolist(), strict=True)
    listed = _listed([f"{label} {n}" for label, n in pairs], most)
    classes = "1 class" if labels.size == 1 else f"{labels.size} classes"
    return f"targets: {classes}: {listed}"


def step_target_summary(y: StoredRagged, *, most: int = 12, block_steps: int = 1 << 20) -> str:
    """Return one line describing a store's per-step targets, read block by block.

    Floating targets are values (NaN: a step without a target); integers are classes, counted.

    Args:
        y: Per-step targets ``(T_i,)`` as stored.
        most: The most classes to list.
        block_steps: Targets read at a time.

    Returns:
        ``"targets: per step, C classes: 0 30, 1 12 (N steps)"`` or
        ``"targets: per step, values min .., mean .., max .. (k of N steps missing)"``.
    """
    N = y.num_steps
    if y.dtype.kind != "f":
        counts: dict[int, int] = {}
        for _, block in y.blocks(block_steps=block_steps):
            labels, found = np.unique(block.values, return_counts=True)
            for label, n in zip(labels.tolist(), found.tolist(), strict=True):
                counts[label] = counts.get(label, 0) + n
        listed = _listed([f"{label} {counts[label]}" for label in sorted(counts)], most)
        classes = "1 class" if len(counts) == 1 else f"{len(counts)} classes"
        return f"targets: per step, {classes}: {listed} ({N} steps)"
    low, high, total, known = np.inf, -np.inf, 0.0, 0
    for _, block in y.blocks(block_steps=block_steps):
        values = block.values[~np.isnan(block.values)]
        if values.size:
            low, high = min(low, float(values.min())), max(high, float(values.max()))
            total, known = total + float(values.sum()), known + int(values.size)
    if known == 0:
        return f"targets: per step, values, all {N} missing"
    missing = f", {N - known} of {N} steps missing" if known < N else f", {N} steps"
    return (
        f"targets: per step, values min {low:.4g}, mean {total / known:.4g}, "
        f"max {high:.4g}{missing}"
    )


def _size(nbytes: int) -> str:
    return f"{nbytes / 1e6:.1f} MB" if nbytes >= 100_000 else f"{nbytes / 1e3:.1f} kB"


def store_summary(path: Path) -> list[str]:
    """Return the lines describing what a store holds (its metadata, not its steps).

    Args:
        path: A store file (``varlen convert``, ``write_store``).

    Returns:
        Lines: format and sizes, features, targets, standardizer, source.
    """
    from varlen.data.io.store import open_store

    store = open_store(path)
    x, batches = store.x, store.num_record_batches
    lines = [
        f"store: format version {store.version}, {_size(store.file_bytes)} on disk in "
        f"{batches} record batch{'' if batches == 1 else 'es'}, steps {x.dtype} "
        f"({_size(x.nbytes)})",
        f"features: {_listed(list(store.features))}",
        (
            target_summary(store.y)
            if store.step_targets is None
            else step_target_summary(store.step_targets)
        ),
    ]
    scaler = store.standardizer
    if scaler is None:
        lines.append("standardizer: none saved (varlen train fits one on its training split)")
    else:
        mean = _listed([f"{value:.4g}" for value in scaler.mean.tolist()], 6)
        scale = _listed([f"{value:.4g}" for value in scaler.scale.tolist()], 6)
        lines.append(f"standardizer: saved, mean [{mean}], scale [{scale}]")
    columns = store.columns
    roles = [f"{role} {columns[role]!r}" for role in ("id", "order", "target") if columns.get(role)]
    source = str(columns.get("source") or "unknown")
    lines.append(f"source: {source}" + (f" ({', '.join(roles)})" if roles else ""))
    return lines


def plot_lengths(lengths: np.ndarray, path: Path, *, title: str) -> None:
    """Write a histogram of ``lengths`` to a PNG file (matplotlib, Agg backend).

    Args:
        lengths: ``(B,)`` sequence lengths.
        path: The PNG file.
        title: The chart title.

    Raises:
        ImportError: If matplotlib is not installed.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import pyplot as plt
    except ImportError:
        raise ImportError('inspect --plot needs matplotlib: pip install "varlen[plot]".') from None
    figure, axes = plt.subplots(figsize=(6, 3.5))
    low, high = (int(lengths.min()), int(lengths.max())) if lengths.size else (0, 0)
    edges = np.arange(low, high + 2) - 0.5  # one bar per length ...
    if edges.size > 61:
        edges = np.linspace(edges[0], edges[-1], 61)  # ... or 60 bars at most
    axes.hist(lengths, bins=edges.tolist(), color="#4c72b0")
    axes.set_xlabel("sequence length (steps)")
    axes.set_ylabel("sequences")
    axes.set_title(title)
    figure.tight_layout()
    try:
        with atomic_open(path, "wb") as file:
            figure.savefig(file, format=path.suffix.lstrip(".").lower() or "png", dpi=100)
    finally:
        plt.close(figure)


def run(args: argparse.Namespace) -> int:
    """Run ``varlen inspect``.

    Args:
        args: The parsed arguments.

    Returns:
        The exit code, 0.
    """
    options = build_config(InspectOptions, args, command="inspect")
    if options.plot is not None and importlib.util.find_spec("matplotlib") is None:
        raise CommandError(  # before reading or printing anything, as --plot's other checks
            'inspect --plot needs matplotlib: pip install "varlen[plot]", or drop --plot.'
        )
    stored = is_store(options.data)
    load = load_store if stored else load_data
    data = load(options.data, **table_options(options))
    lengths = data.x.lengths
    from varlen.batching.report import choose_technique, compare_policies, format_reports

    print(f"{options.data.name}: {count(len(data.features), 'feature')}")
    if stored:
        print("\n".join(store_summary(options.data)))
    print(length_summary(lengths))
    if lengths.size:
        print(f"\npadding at batch size {options.batch_size}:")
        print(format_reports(compare_policies(lengths, batch_size=options.batch_size)))
        name, reason = choose_technique(lengths, batch_size=options.batch_size)
        print(f"\ntechnique auto would pick: {name} ({reason})")
        print(
            "(by padding alone; `varlen train --technique auto` also weighs the speed of mask "
            "and bucket, estimated from the lengths by its cost model (or timed on the data "
            "with --planner timed), so it may pick the other)"
        )
    if options.plot is not None:
        plot_lengths(lengths, options.plot, title=f"{options.data.name}: sequence lengths")
        say(args, f"wrote the length histogram to {os.fspath(options.plot)}")
    return 0
