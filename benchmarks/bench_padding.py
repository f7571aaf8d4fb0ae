"""pad_sequences: varlen against Keras, and against the cost of just filling the output.

Setting (issue 2): 100,000 id sequences (``--quick``: 10,000) with lengths log-normal, median 50
(sigma 1), clipped to [1, 2000], ids in [1, 20000), given once as int64 NumPy arrays and once
as Python lists. Rows, all in one run, interleaved round by round after a warm-up round:

- ``maxlen=100``: ``varlen.data.pad_sequences`` against ``keras.utils.pad_sequences``
  (target: varlen at least 3x faster). Without Keras installed, against a per-sequence loop
  written the way Keras's is (``keras-style loop``).
- ``maxlen=None`` (``T = 2000``, an 800 MB int32 output): varlen against ``np.full`` of the
  output alone, the floor of any padding (target: within 1.3x), and against Keras. The pad
  value 0 lets varlen start from ``np.zeros``; the ``value=-1`` rows show the ``np.full`` path.

Each row reports the median time over rounds, the fastest round, and the median's ratio to the
``varlen`` row of its group (above 1: slower than varlen). Which kernel ``varlen`` used is printed
first (``varlen.data.padding.NATIVE``: the compiled kernel, or the NumPy path without it).
Huge pages: NumPy asks the kernel for transparent huge pages for large arrays, and on machines
where they are granted on ``madvise`` the 800 MB rows swing 3-8x from round to round (a fault
that finds no free huge page falls back to small pages, or waits for the kernel to compact
memory). So by default this benchmark turns NumPy's request off for every candidate alike
(``np._core.multiarray._set_madvise_hugepage(False)``): slower in absolute terms, but steady.
``--hugepages`` keeps NumPy's default; compare the minimum column then.
Run: ``python benchmarks/bench_padding.py [--quick] [--hugepages]``.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from varlen.data import pad_sequences
from varlen.data.padding import NATIVE

SEED = 0
MEDIAN_LENGTH, SIGMA, MIN_LENGTH, MAX_LENGTH, VOCABULARY = 50, 1.0, 1, 2000, 20_000


@dataclass(frozen=True)
class Row:
    """One measured row of the table: a candidate's median time and its ratio to varlen."""

    group: str
    candidate: str
    median_ms: float
    min_ms: float
    ratio: float


def make_sequences(count: int, seed: int = SEED) -> tuple[list[np.ndarray], list[list[int]]]:
    """Return the same ``count`` id sequences as int64 arrays and as lists of Python ints."""
    rng = np.random.default_rng(seed)
    raw = rng.lognormal(np.log(MEDIAN_LENGTH), SIGMA, size=count)
    lengths = np.clip(np.round(raw), MIN_LENGTH, MAX_LENGTH).astype(np.int64)
    arrays = [rng.integers(1, VOCABULARY, size=n) for n in lengths.tolist()]
    return arrays, [a.tolist() for a in arrays]


def keras_style_loop(
    sequences: Sequence[Any], maxlen: int | None = None, value: float = 0.0
) -> np.ndarray:
    """Pad with one NumPy conversion and one row assignment per sequence ("pre" sides, int32).

    The stand-in for ``keras.utils.pad_sequences`` when Keras is not installed: the same
    per-sequence work (slice, ``np.asarray`` to the dtype, assign into a ``np.full`` output).
    """
    T = max(len(s) for s in sequences) if maxlen is None else maxlen
    out = np.full((len(sequences), T), value, dtype=np.int32)
    for row, sequence in enumerate(sequences):
        kept = np.asarray(sequence[max(len(sequence) - T, 0) :], dtype=np.int32)
        if len(kept):
            out[row, T - len(kept) :] = kept
    return out


def load_keras_pad() -> tuple[str, Callable[..., np.ndarray]]:
    """Return ``("keras", keras.utils.pad_sequences)``, or the Keras-style loop without Keras."""
    os.environ.setdefault("KERAS_BACKEND", "torch")  # pad_sequences is NumPy; torch is here
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import keras
    except ImportError:
        return "keras-style loop", keras_style_loop
    return "keras", keras.utils.pad_sequences


def cases(count: int) -> list[tuple[str, str, Callable[[], object]]]:
    """Return ``(group, candidate, thunk)`` for every row, in the order of one round."""
    arrays, lists = make_sequences(count)
    T = max(len(a) for a in arrays)
    keras_name, keras_pad = load_keras_pad()
    fill = partial(np.full, (count, T), dtype=np.int32)
    rows: list[tuple[str, str, Callable[[], object]]] = []
    data: Sequence[Any]
    for kind, data in (("arrays", arrays), ("lists", lists)):
        rows += [
            (f"maxlen=100, {kind}", "varlen", partial(pad_sequences, data, maxlen=100)),
            (f"maxlen=100, {kind}", keras_name, partial(keras_pad, data, maxlen=100)),
        ]
    for kind, data in (("arrays", arrays), ("lists", lists)):
        group = f"maxlen=None, {kind}"
        rows += [
            (group, "varlen", partial(pad_sequences, data)),
            (group, "np.full (B, T) only", partial(fill, 0)),
            (group, keras_name, partial(keras_pad, data)),
        ]
    group = "maxlen=None, arrays, value=-1"
    rows += [
        (group, "varlen", partial(pad_sequences, arrays, value=-1)),
        (group, "np.full (B, T) only", partial(fill, -1)),
    ]
    return rows


def time_once(thunk: Callable[[], Any], settle: int = 0) -> tuple[float, int]:
    """Return the seconds one call takes and the bytes of its result (then dropped).

    ``settle``: bytes to allocate, touch and free first, so that every candidate starts from
    the same state of the memory allocator. (A call right after one whose output was only
    partly touched, e.g. varlen's ``np.zeros``-based output, otherwise pays 1.5-3x for its own
    page faults: measured on this benchmark's 800 MB rows.)
    """
    if settle:
        np.ones(settle, dtype=np.uint8)  # touched, then freed at once
    gc.collect()
    start = time.perf_counter()
    result = thunk()
    elapsed = time.perf_counter() - start
    nbytes = int(getattr(result, "nbytes", 0))
    del result
    return elapsed, nbytes


def run(*, quick: bool = False) -> list[Row]:
    """Measure every row, interleaved round by round after one warm-up round.

    Within a group, the candidate that goes first changes from round to round, and before
    every timed call a buffer of the group's output size is touched and freed (see
    :func:`time_once`), so no candidate inherits another's memory state.
    """
    count, rounds = (10_000, 5) if quick else (100_000, 9)
    plan = cases(count)
    groups = list(dict.fromkeys(group for group, _, _ in plan))
    times: dict[tuple[str, str], list[float]] = {(g, c): [] for g, c, _ in plan}
    output_bytes = dict.fromkeys(groups, 0)  # learned in round 0
    for round_ in range(rounds + 1):
        for group in groups:
            members = [(c, thunk) for g, c, thunk in plan if g == group]
            shift = round_ % len(members)
            for candidate, thunk in members[shift:] + members[:shift]:
                elapsed, nbytes = time_once(thunk, settle=output_bytes[group])
                output_bytes[group] = max(output_bytes[group], nbytes)
                if round_ > 0:  # round 0 warms up caches, allocator and imports
                    times[group, candidate].append(elapsed)
    medians = {key: statistics.median(values) for key, values in times.items()}
    return [
        Row(
            group,
            cand,
            1e3 * median,
            1e3 * min(times[group, cand]),
            median / medians[group, "varlen"],
        )
        for (group, cand), median in medians.items()
    ]


def format_table(rows: list[Row]) -> str:
    """Return the rows as an aligned text table."""
    lines = [f"{'case':32} {'candidate':22} {'median ms':>10} {'min ms':>8} {'x varlen':>9}"]
    for row in rows:
        lines.append(
            f"{row.group:32} {row.candidate:22} {row.median_ms:10.1f} {row.min_ms:8.1f} "
            f"{row.ratio:9.2f}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``--quick``, run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="10,000 sequences, 5 rounds")
    parser.add_argument(
        "--hugepages", action="store_true", help="let NumPy ask for huge pages (noisy rows)"
    )
    args = parser.parse_args(argv)
    core = getattr(np, "_core", None) or np.core  # NumPy 2 / NumPy 1
    core.multiarray._set_madvise_hugepage(args.hugepages)
    kernel = "compiled kernel" if NATIVE else "NumPy path (compiled kernel not built)"
    pages = "on (NumPy's default)" if args.hugepages else "off (--hugepages turns them on)"
    print(f"varlen.pad_sequences runs the {kernel}; huge pages {pages}")
    print(format_table(run(quick=args.quick)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
