"""A stand-in command for testing the CLI's error policy: raises what ``--raise`` names."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from varlen.cli._common import CommandError, build_config

ERRORS: dict[str, BaseException] = {
    "value": ValueError("fake: x must be 1,\n  got 2."),
    "type": TypeError("fake: x must be an int, got 'a'."),
    "key": KeyError("label"),
    "missing": FileNotFoundError(2, "No such file or directory", "gone.ts"),
    "command": CommandError("fake: bad input."),
    "runtime": RuntimeError("varlen bug: something broke"),
    "interrupt": KeyboardInterrupt(),
}


@dataclass(frozen=True)
class FakeOptions:
    """Options of the fake command."""

    raise_: str = ""
    count: int = 1
    rate: float = 0.5
    name: str | None = None
    mode: str = "a"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--raise`` and a few typed options."""
    parser.add_argument("--raise", dest="raise_", default=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, default=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    """Raise the chosen error, or print the config."""
    options = build_config(FakeOptions, args, command="fake")
    if options.raise_:
        raise ERRORS[options.raise_]
    print(options)  # noqa: T201  # a command prints its result
    return 0
