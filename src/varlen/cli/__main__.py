"""Run the command line as ``python -m varlen.cli`` (also what ``torchrun -m varlen.cli`` runs)."""

from __future__ import annotations

from varlen.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
