"""The ``varlen`` command line: ``varlen demo | train | predict | inspect | bench``.

Each command is a module of this package exposing ``add_arguments(parser)`` and
``run(args) -> int``. Modules are imported lazily: only the chosen command's module loads,
so ``varlen --help`` is fast and a command whose optional dependency is missing fails alone.

Exit codes: 0 success, 1 failure, 2 bad input (usage errors and invalid data), reported as
one line ``varlen <command>: error: <message>`` on stderr. ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import MutableMapping, Sequence
from types import ModuleType
from typing import NoReturn, Protocol, cast

from varlen import __version__
from varlen.cli._common import add_common_options, process_group_left, run_guarded

__all__ = ["COMMANDS", "KERNEL_CACHE_CAPACITY", "entry", "limit_kernel_cache", "main"]

KERNEL_CACHE_CAPACITY = 8
"""Kernels oneDNN keeps compiled in a ``varlen predict`` process (a tuning knob; default 1024).

oneDNN caches one compiled kernel per distinct batch shape, about 0.35 MB each for an LSTM and
far more for long batches. Scoring a large dataset length-sorted meets a new ``T`` nearly every
batch and never reuses one, so the default cache added hundreds of MB to ``varlen predict`` on
large stores (issue #22; 64 still grew). Results do not depend on the cache (measured: the same
predictions, bit for bit, with capacities 0, 8, 64 and 1024) and predict's speed did not
change. Training reuses its shapes every epoch: capped at 8, bucketed JapaneseVowels trained
25-35% slower, so ``varlen train`` keeps oneDNN's default (its memory still grows with the
number of distinct batch shapes, up to oneDNN's 1024 kernels).
"""

# Commands that meet each batch shape about once: a kernel cache buys nothing there.
_CAPPED_COMMANDS = frozenset({"predict"})

COMMANDS: dict[str, tuple[str, str]] = {
    "demo": (
        "varlen.cli.demo",
        "train one LSTM per technique on JapaneseVowels and compare them in one table",
    ),
    "train": ("varlen.cli.train", "train a classifier or regressor on your .ts, CSV or Parquet"),
    "predict": ("varlen.cli.predict", "predict new series of any lengths with a trained model"),
    "inspect": (
        "varlen.cli.inspect",
        "length statistics, histogram, padding efficiency and the technique 'auto' picks",
    ),
    "bench": ("varlen.cli.bench", "run the benchmarks and print their tables"),
    "convert": (
        "varlen.cli.convert",
        "convert a .ts file or a long CSV/Parquet table into an on-disk store, streaming",
    ),
    "export": ("varlen.cli.export", "export a trained model to ONNX, verified in onnxruntime"),
}
"""Command name -> ``(module, one-line help)``."""


class _Command(Protocol):
    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...
    def run(self, args: argparse.Namespace) -> int: ...


def limit_kernel_cache(
    environ: MutableMapping[str, str], capacity: int = KERNEL_CACHE_CAPACITY
) -> None:
    """Cap oneDNN's kernel cache at ``capacity`` unless the user set it.

    Sets ``ONEDNN_PRIMITIVE_CACHE_CAPACITY`` in ``environ`` when neither it nor the older
    ``DNNL_PRIMITIVE_CACHE_CAPACITY`` is set. oneDNN reads it when it first builds a kernel,
    so this runs before any model does; ``DataLoader`` workers inherit it.

    Args:
        environ: The environment to update (``os.environ`` in :func:`main`).
        capacity: Kernels kept, ``>= 0``.

    Raises:
        ValueError: If ``capacity < 0``.

    Example:
        >>> env = {}
        >>> limit_kernel_cache(env, 8)
        >>> env
        {'ONEDNN_PRIMITIVE_CACHE_CAPACITY': '8'}
    """
    if capacity < 0:
        raise ValueError(f"limit_kernel_cache: capacity must be >= 0, got {capacity}.")
    if "ONEDNN_PRIMITIVE_CACHE_CAPACITY" in environ or "DNNL_PRIMITIVE_CACHE_CAPACITY" in environ:
        return
    environ["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] = str(capacity)


def _chosen(argv: Sequence[str]) -> str | None:
    """Return the command named in ``argv`` (the first non-option token), if any."""
    for token in argv:
        if not token.startswith("-"):
            return token if token in COMMANDS else None
    return None


def _load(name: str) -> _Command:
    module: ModuleType = importlib.import_module(COMMANDS[name][0])
    return cast(_Command, module)


def _build_parser(chosen: str | None) -> tuple[argparse.ArgumentParser, ImportError | None]:
    """Build the parser; only ``chosen``'s module is imported to add its arguments."""
    parser = argparse.ArgumentParser(
        prog="varlen",
        description="Variable-length sequences for recurrent networks: train, predict, inspect.",
    )
    parser.add_argument("--version", action="version", version=f"varlen {__version__}")
    add_common_options(parser, top_level=True)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    failure = None
    for name, (_, summary) in COMMANDS.items():
        sub = commands.add_parser(name, help=summary, description=summary[0].upper() + summary[1:])
        add_common_options(sub, top_level=False)
        if name == chosen:
            try:
                _load(name).add_arguments(sub)
            except ImportError as error:  # a missing optional dependency: this command only
                failure = error
    return parser, failure


def entry() -> NoReturn:
    """The ``varlen`` program: :func:`main` on ``sys.argv``, then exit with its code.

    The console script, ``python -m varlen.cli`` and ``torchrun -m varlen.cli`` run this. A
    process that joined a ``torchrun`` process group (``varlen train`` under ``torchrun``)
    leaves once its output is flushed, without the interpreter's teardown, where torch's
    gloo threads can abort it after every file was written (see
    :func:`~varlen.cli._common.note_process_group_left`). Embedders call :func:`main`.
    """
    code = main()
    if process_group_left():
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    raise SystemExit(code)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``varlen`` command line.

    Args:
        argv: Arguments without the program name; ``None`` reads ``sys.argv[1:]``.

    Returns:
        The exit code: 0 success, 1 failure, 2 bad input.
    """
    arguments = list(sys.argv[1:] if argv is None else argv)
    chosen = _chosen(arguments)
    if chosen in _CAPPED_COMMANDS:
        limit_kernel_cache(os.environ)  # before any model runs: memory flat in the data's size
    parser, failure = _build_parser(chosen)
    if failure is not None:
        print(f"varlen {chosen}: error: cannot load the command: {failure}", file=sys.stderr)
        return 1
    try:
        args = parser.parse_args(arguments)
    except SystemExit as stop:  # --help, --version and usage errors
        return stop.code if isinstance(stop.code, int) else 0 if stop.code is None else 2
    return run_guarded(args.command, _load(args.command).run, args)
