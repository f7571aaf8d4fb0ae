"""``varlen demo``: the same LSTM trained once per technique on JapaneseVowels, side by side.

Prints one table to stdout (technique, test accuracy, training real steps/s, padding efficiency,
wall time, exact) with a footnote saying what each row is, and writes ``varlen-demo.png`` (the
chart, needs matplotlib), ``varlen-demo.csv`` and ``varlen-demo.json`` (the rows; the JSON also
holds the hyperparameters) into ``--out-dir`` (default: the folder ``varlen-demo``, so the
current folder stays clean), and prints the ``varlen train`` command that trains the best exact
row the same way. The work is :func:`varlen.training.demo.run_demo`.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shlex
from dataclasses import dataclass, replace
from pathlib import Path

from varlen.cli._common import CommandError, build_config, progress_enabled, say
from varlen.cli._demo_report import best_row, format_notes, format_table, plot_demo, write_rows
from varlen.training.demo import DemoConfig, run_demo
from varlen.training.techniques import TECHNIQUES

__all__ = ["QUICK_EPOCHS", "STEM", "DemoOptions", "add_arguments", "run"]

STEM = "varlen-demo"
"""Name of the output files, without suffix."""
QUICK_EPOCHS = 2
"""Epochs of ``--quick``."""


@dataclass(frozen=True)
class DemoOptions:
    """Everything ``varlen demo`` takes (flags, or keys of ``--config file.toml``).

    Args:
        techniques: Names from :data:`varlen.training.techniques.TECHNIQUES`, in run order.
        epochs: Maximum epochs; ``None`` keeps the demo's default (or ``--quick``'s).
        seed: Seed of the initial weights, validation split, batches and dropout.
        out_dir: Folder of the chart and the rows (created if missing).
        quick: Train only a couple of epochs (a smoke test, not a result).
    """

    techniques: tuple[str, ...] = tuple(TECHNIQUES)
    epochs: int | None = None
    seed: int = 0
    out_dir: Path = Path("varlen-demo")
    quick: bool = False


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``varlen demo``'s arguments.

    Args:
        parser: The command's parser.
    """
    parser.add_argument(
        "--techniques",
        nargs="+",
        choices=tuple(TECHNIQUES),
        type=str,
        default=argparse.SUPPRESS,
        metavar="NAME",
        help=f"techniques to run, in order (default: all of {', '.join(TECHNIQUES)})",
    )
    parser.add_argument(
        "--epochs",
        type=int,
        default=argparse.SUPPRESS,
        help=f"maximum epochs (default {DemoConfig().epochs}, early stopping on validation)",
    )
    parser.add_argument(
        "--seed", type=int, default=argparse.SUPPRESS, help="seed of everything (default 0)"
    )
    parser.add_argument(
        "--out-dir",
        type=Path,
        default=argparse.SUPPRESS,
        metavar="DIR",
        help=f"folder for {STEM}.png/.csv/.json (default: varlen-demo)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        default=argparse.SUPPRESS,
        help=f"{QUICK_EPOCHS} epochs only: checks the pipeline, not a result",
    )


def demo_config(options: DemoOptions) -> DemoConfig:
    """Return the :class:`~varlen.training.demo.DemoConfig` the options ask for.

    Args:
        options: The parsed options.

    Returns:
        The defaults with ``seed`` and, if given (or ``--quick``), ``epochs`` replaced.
    """
    epochs = options.epochs
    if epochs is None and options.quick:
        epochs = QUICK_EPOCHS
    config = replace(DemoConfig(), seed=options.seed)
    return config if epochs is None else replace(config, epochs=epochs)


def _check_options(options: DemoOptions) -> None:
    if not options.techniques:
        raise CommandError("--techniques must name at least one technique, got none.")
    unknown = [name for name in options.techniques if name not in TECHNIQUES]
    if unknown:
        raise CommandError(
            f"--techniques must be among {', '.join(TECHNIQUES)}, got {', '.join(unknown)}."
        )
    if options.out_dir.exists() and not options.out_dir.is_dir():
        raise CommandError(
            f"--out-dir must be a folder, got the file {os.fspath(options.out_dir)!r}."
        )


def run(args: argparse.Namespace) -> int:
    """Run ``varlen demo``.

    Args:
        args: The parsed arguments.

    Returns:
        The exit code, 0.
    """
    options = build_config(DemoOptions, args, command="demo")
    _check_options(options)
    config = demo_config(options)  # validates the hyperparameters before any work
    options.out_dir.mkdir(parents=True, exist_ok=True)  # fail before the work, not after
    can_plot = importlib.util.find_spec("matplotlib") is not None
    if not can_plot:
        say(args, "matplotlib is not installed: no chart (pip install 'varlen[plot]').")
    progress = progress_enabled(args)
    rows = run_demo(
        techniques=options.techniques,
        config=config,
        progress=progress,
        log=None if progress else lambda line: say(args, f"demo: {line}"),  # not a terminal
    )
    print(format_table(rows))
    print()
    print(format_notes(rows, config=config))
    best = best_row(rows)
    if best is not None:
        command = config.train_command(best.technique, batches_per_epoch=best.steps_per_epoch)
        print()
        print(f"The best exact row ({best.technique}) again with `varlen train`:")
        print("varlen " + shlex.join(command))
    written = [options.out_dir / f"{STEM}.csv", options.out_dir / f"{STEM}.json"]
    for path in written:
        write_rows(rows, path, config=config)
    if can_plot:
        written.insert(0, plot_demo(rows, options.out_dir / f"{STEM}.png"))
    say(args, "wrote " + ", ".join(os.fspath(path) for path in written))
    return 0
