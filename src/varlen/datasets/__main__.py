"""Print the length statistics of a bundled dataset: ``python -m varlen.datasets [name]``."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import numpy as np

from varlen.datasets import list_datasets, load


def summarize(name: str) -> str:
    """Return a table of the length statistics of each split of a bundled dataset.

    Args:
        name: One of :func:`varlen.datasets.list_datasets`.

    Returns:
        Lines of text: a title with the channels and classes, then one row per split with
        the number of cases, the min / median / mean / max length and the class counts.
    """
    train = load(name, split="train")
    lines = [
        f"{name}: {train.x.values.shape[1]} channels, {len(train.class_labels)} classes",
        f"{'split':<6} {'cases':>6} {'min':>4} {'median':>6} {'mean':>6} {'max':>4}  classes",
    ]
    for split in ("train", "test"):
        data = train if split == "train" else load(name, split="test")
        lengths = data.x.lengths
        labels, counts = np.unique(np.asarray(data.y), return_counts=True)
        classes = " ".join(f"{label}:{count}" for label, count in zip(labels, counts, strict=True))
        lines.append(
            f"{split:<6} {len(lengths):>6} {lengths.min():>4} {np.median(lengths):>6.1f} "
            f"{lengths.mean():>6.1f} {lengths.max():>4}  {classes}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Print :func:`summarize` for the dataset named on the command line.

    Args:
        argv: Arguments without the program name; ``None`` reads ``sys.argv``.

    Returns:
        The exit code, 0.
    """
    parser = argparse.ArgumentParser(
        prog="python -m varlen.datasets",
        description="Print the length statistics of a bundled dataset.",
    )
    parser.add_argument("name", nargs="?", default="japanese_vowels", choices=list_datasets())
    args = parser.parse_args(argv)
    print(summarize(args.name))  # noqa: T201  # a command: its result goes to stdout
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
