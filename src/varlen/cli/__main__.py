"""Run the command line as ``python -m varlen.cli`` (also what ``torchrun -m varlen.cli`` runs)."""

from __future__ import annotations

from varlen.cli import entry

if __name__ == "__main__":
    entry()
