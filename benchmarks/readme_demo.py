"""Write the README's demo figures from a recorded ``varlen demo`` run, so they cannot drift.

``varlen demo`` writes ``varlen-demo/varlen-demo.json`` (its rows and hyperparameters). This
script copies that record to ``docs/demo-figures.json`` (with a note on the machine) and
rewrites the README paragraph between ``<!-- demo-figures:begin -->`` and
``<!-- demo-figures:end -->`` from it. ``tests/test_readme_demo.py`` checks that the README
paragraph is exactly what :func:`render` makes of ``docs/demo-figures.json``: a figure edited by
hand, or a record replaced without rewriting the README, fails the test.

Usage::

    varlen demo
    python benchmarks/readme_demo.py varlen-demo/varlen-demo.json --note "2 cores, shared"
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
RECORD = ROOT / "docs" / "demo-figures.json"
BEGIN, END = "<!-- demo-figures:begin -->", "<!-- demo-figures:end -->"


def render(document: dict[str, Any]) -> str:
    """The README's demo paragraph for one recorded run (no markers, no trailing newline).

    Args:
        document: ``varlen-demo.json``'s content, plus an optional ``"note"``.

    Returns:
        The paragraph, wrapped at 100 columns.
    """
    rows = document["rows"]
    seed = document["config"]["seed"]

    def listed(*, exact: bool) -> str:
        return ", ".join(
            f"{row['technique']} {row['test_accuracy']:.3f}"
            for row in rows
            if row["exact"] is exact
        )

    seconds = sum(float(row["seconds"]) for row in rows)
    note = f"; {document['note']}" if document.get("note") else ""
    text = (
        f"**Demo** — `varlen demo` (seed {seed}; training took {seconds:.0f} s in all on the "
        f"machine of the recorded run{note}): test accuracy on JapaneseVowels of the same "
        f"bidirectional LSTM trained per technique: {listed(exact=True)} (the exact ones), "
        f"{listed(exact=False)} (inexact). These figures are written by "
        "`benchmarks/readme_demo.py` from the run recorded in `docs/demo-figures.json`."
    )
    return _wrap(text, 100)


def _wrap(text: str, width: int) -> str:
    lines: list[str] = []
    line = ""
    for word in text.split(" "):
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    lines.append(line)
    return "\n".join(lines)


def rewrite(readme: str, paragraph: str) -> str:
    """``readme`` with the text between the markers replaced by ``paragraph``.

    Raises:
        ValueError: If the markers are missing.
    """
    head, found, rest = readme.partition(BEGIN)
    _, found_end, tail = rest.partition(END)
    if not found or not found_end:
        raise ValueError(f"README.md must hold {BEGIN} ... {END}.")
    return f"{head}{BEGIN}\n{paragraph}\n{END}{tail}"


def current(readme: str) -> str:
    """The paragraph between the markers of ``readme``."""
    return readme.partition(BEGIN)[2].partition(END)[0].strip("\n")


def main(argv: list[str] | None = None) -> int:
    """Copy a demo record to docs/ and rewrite the README paragraph from it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("record", type=Path, help="varlen-demo.json from `varlen demo`")
    parser.add_argument("--note", default="", help="the machine, e.g. its load, for the README")
    args = parser.parse_args(argv)
    document = json.loads(args.record.read_text(encoding="utf-8"))
    if args.note:
        document["note"] = args.note
    RECORD.parent.mkdir(exist_ok=True)
    RECORD.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    README.write_text(rewrite(README.read_text(encoding="utf-8"), render(document)), "utf-8")
    print(f"wrote {RECORD.relative_to(ROOT)} and the README's demo paragraph", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
