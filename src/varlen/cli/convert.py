"""``varlen convert SRC --out STORE``: a ``.ts`` file or a long table into a store, streaming.

The store is one Arrow IPC (Feather v2) file, memory-mapped when read (see
:mod:`varlen.data.io.store`); pandas, polars, pyarrow and DuckDB read it too. Conversion
holds a few MiB of the source at a time, whatever its size, and writes the store
atomically: a malformed row is one line naming the file and the row (exit 2), and nothing is
left at ``--out``. A target that varies within an id is stored per step (said in the summary
line). ``--sort`` sorts a table whose rows are not grouped by id with DuckDB,
out of core (``pip install "varlen[sort]"``).
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from varlen.cli._common import CommandError, add_table_options, build_config, say

__all__ = ["ConvertOptions", "add_arguments", "run"]


@dataclass(frozen=True)
class ConvertOptions:
    """Everything ``varlen convert`` takes.

    Args:
        source: The ``.ts``, CSV or Parquet file.
        out: The store file to write.
        id: Table column naming the sequence of each row.
        order: Table column ordering the steps within a sequence.
        features: Table feature columns; ``None`` means every other column.
        target: Table column holding the target (per step if it varies within an id).
        dtype: The steps' dtype in the store.
        sort: Sort a table not grouped by id (DuckDB, out of core).
        memory_limit: DuckDB's memory limit when sorting.
    """

    source: Path
    out: Path
    id: str | None = None
    order: str | None = None
    features: tuple[str, ...] | None = None
    target: str | None = None
    dtype: Literal["float32", "float64"] = "float32"
    sort: bool = False
    memory_limit: str = "1GB"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``varlen convert``'s arguments.

    Args:
        parser: The command's parser.
    """
    parser.add_argument("source", type=Path, metavar="SRC", help=".ts, .csv or .parquet file")
    parser.add_argument(
        "--out", type=Path, required=True, metavar="STORE", help="store file, e.g. data.arrow"
    )
    parser.add_argument(
        "--dtype",
        choices=("float32", "float64"),
        default=argparse.SUPPRESS,
        help="dtype of the stored steps (default float32)",
    )
    parser.add_argument(
        "--sort",
        action="store_true",
        default=argparse.SUPPRESS,
        help="sort a table whose rows are not grouped by id (DuckDB, out of core; needs --order)",
    )
    parser.add_argument(
        "--memory-limit",
        default=argparse.SUPPRESS,
        metavar="SIZE",
        help="DuckDB's memory limit for --sort, e.g. 2GB (default 1GB)",
    )
    add_table_options(parser, target=True)


def run(args: argparse.Namespace) -> int:
    """Run ``varlen convert``.

    Args:
        args: The parsed arguments.

    Returns:
        The exit code, 0.

    Raises:
        CommandError: If an optional dependency is missing.
    """
    options = build_config(ConvertOptions, args, command="convert")
    from varlen.data.io.convert import convert

    say(args, f"converting {os.fspath(options.source)} to {os.fspath(options.out)}...")
    try:
        summary = convert(
            options.source,
            options.out,
            id=options.id,
            order=options.order,
            features=options.features,
            target=options.target,
            dtype=options.dtype,
            sort=options.sort,
            memory_limit=options.memory_limit,
        )
    except ImportError as error:
        raise CommandError(str(error)) from None
    from varlen.data.io.store import open_store

    targets = open_store(summary.path).targets  # the metadata: says whether they are per step
    per_step = " (targets per step: the target varies within ids)" if targets == "step" else ""
    print(
        f"wrote {os.fspath(summary.path)}: {summary.num_sequences} sequences, "
        f"{summary.num_steps} steps, {summary.num_batches} record batches, "
        f"{summary.nbytes / 2**20:.1f} MiB{per_step}"
    )
    return 0
