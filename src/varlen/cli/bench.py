"""``varlen bench [--quick] [NAME ...]``: run the benchmarks of a source checkout.

The benchmarks are the ``bench_<name>.py`` scripts of the checkout's ``benchmarks/`` folder,
beside ``src/``; they are not part of the installed package, so this command needs a source
checkout (or ``--benchmarks-dir``). Each runs as its own process
(``python benchmarks/bench_<name>.py [--quick]``) with the checkout's ``varlen`` first on the
path, and its table streams to the terminal as it is printed. ``--list`` names them with the
first line of their docstrings.
"""

from __future__ import annotations

import argparse
import ast
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import varlen
from varlen.cli._common import CommandError, build_config

__all__ = [
    "BenchOptions",
    "add_arguments",
    "default_benchmarks_dir",
    "find_benchmarks",
    "run",
    "summary",
]

_PREFIX = "bench_"


@dataclass(frozen=True)
class BenchOptions:
    """Everything ``varlen bench`` takes.

    Args:
        names: Benchmarks to run, by name (``padding`` or ``bench_padding.py``); empty: all.
        quick: Pass ``--quick`` to each benchmark (smaller settings, fewer rounds).
        list: Only list the benchmarks.
        benchmarks_dir: The folder of ``bench_*.py`` scripts; ``None``: the checkout's.
    """

    names: tuple[str, ...] = ()
    quick: bool = False
    list: bool = False
    benchmarks_dir: Path | None = None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``varlen bench``'s arguments.

    Args:
        parser: The command's parser.
    """
    parser.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        default=argparse.SUPPRESS,
        help="benchmarks to run (default: all; see --list)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        default=argparse.SUPPRESS,
        help="smaller settings and fewer rounds (each benchmark's --quick)",
    )
    parser.add_argument(
        "--list", action="store_true", default=argparse.SUPPRESS, help="list the benchmarks"
    )
    parser.add_argument(
        "--benchmarks-dir",
        type=Path,
        default=argparse.SUPPRESS,
        metavar="DIR",
        help="folder of the bench_*.py scripts (default: benchmarks/ of the source checkout)",
    )


def default_benchmarks_dir() -> Path:
    """Return ``benchmarks/`` of the source checkout ``varlen`` is imported from.

    Returns:
        ``<checkout>/benchmarks`` for ``<checkout>/src/varlen``; it may not exist (an
        installed wheel has no checkout around it).
    """
    return Path(varlen.__file__).resolve().parents[2] / "benchmarks"


def find_benchmarks(directory: Path) -> dict[str, Path]:
    """Return the benchmarks of ``directory``: name -> script, sorted by name.

    Args:
        directory: A folder of ``bench_<name>.py`` scripts.

    Returns:
        ``{"padding": directory / "bench_padding.py", ...}``.

    Raises:
        CommandError: If ``directory`` does not exist or holds no ``bench_*.py`` script.
    """
    if not directory.is_dir():
        raise CommandError(
            f"benchmarks need a source checkout: the folder {os.fspath(directory)!r} does not "
            "exist. Run varlen bench from a clone of the repository, or pass --benchmarks-dir."
        )
    scripts = sorted(directory.glob(f"{_PREFIX}*.py"))
    if not scripts:
        raise CommandError(
            f"--benchmarks-dir must hold bench_*.py scripts, got none in {os.fspath(directory)!r}."
        )
    return {script.stem.removeprefix(_PREFIX): script for script in scripts}


def summary(script: Path) -> str:
    """Return the first line of a script's docstring, read without running it.

    Args:
        script: A Python file.

    Returns:
        The line, or ``""`` when there is no docstring or the file does not parse.
    """
    try:
        docstring = ast.get_docstring(ast.parse(script.read_text(encoding="utf-8")))
    except (SyntaxError, UnicodeDecodeError, OSError):
        return ""
    return docstring.strip().splitlines()[0] if docstring else ""


def _select(available: dict[str, Path], names: tuple[str, ...]) -> list[tuple[str, Path]]:
    """Return the benchmarks named (``padding``, ``bench_padding`` or ``bench_padding.py``)."""
    if not names:
        return list(available.items())
    chosen = []
    for name in names:
        key = name.removesuffix(".py").removeprefix(_PREFIX)
        if key not in available:
            raise CommandError(
                f"NAME must be one of {', '.join(available)}, got {name!r}. "
                "See varlen bench --list."
            )
        chosen.append((key, available[key]))
    return chosen


def _environment() -> dict[str, str]:
    """The benchmarks' environment: this ``varlen`` first on the path."""
    source = os.fspath(Path(varlen.__file__).resolve().parents[1])
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": source if not path else os.pathsep.join([source, path])}


def _run_one(name: str, script: Path, *, quick: bool) -> int:
    """Run one benchmark in its own process, its output streaming to ours; return its code."""
    print(f"== {name} ({script.name}{' --quick' if quick else ''})", flush=True)
    command = [sys.executable, os.fspath(script), *(["--quick"] if quick else [])]
    completed = subprocess.run(command, cwd=script.parent.parent, env=_environment(), check=False)
    print(flush=True)
    return completed.returncode


def run(args: argparse.Namespace) -> int:
    """Run ``varlen bench``.

    Args:
        args: The parsed arguments.

    Returns:
        The exit code: 0 if every benchmark succeeded, else 1.
    """
    options = build_config(BenchOptions, args, command="bench")
    directory = options.benchmarks_dir or default_benchmarks_dir()
    available = find_benchmarks(directory)
    if options.list:
        width = max(len(name) for name in available)
        for name, script in available.items():
            print(f"{name:{width}}  {summary(script)}".rstrip())
        return 0
    failed = []
    for name, script in _select(available, options.names):
        code = _run_one(name, script, quick=options.quick)
        if code != 0:
            failed.append(f"{name} (exit code {code})")
    if failed:
        print(f"varlen bench: error: failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0
