"""Run ``varlen`` in this process with a fault injected into its writes (for subprocess tests).

Usage: ``python -m tests.faults._faulty_cli --disk-full NAME [--skip N] -- ARGS...`` runs
``varlen ARGS`` as ``python -m varlen.cli`` would, except that writing the file ``NAME``
fails like a full disk (after ``N`` whole writes of it). Portable: no mount, no quota.
"""

from __future__ import annotations

import argparse
import sys

from varlen._atomic import disk_full, inject
from varlen.cli import main


def run(argv: list[str]) -> int:
    """Parse the fault options, then run the CLI under the fault; return its exit code."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--disk-full", required=True, metavar="NAME")
    parser.add_argument("--skip", type=int, default=0)
    parser.add_argument("args", nargs=argparse.REMAINDER)
    options = parser.parse_args(argv)
    args = options.args[1:] if options.args[:1] == ["--"] else options.args
    with inject(disk_full(name=options.disk_full, skip=options.skip)):
        return main(args)


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
