"""The length distribution shared by the recurrent, batching and lanes benchmarks.

Issues 3-5 measure on one setting: 4,096 sequences with lengths log-normal, median 100
(sigma 1: random batches of 64 are then ~0.18 real steps), clipped to [5, 1000]. Keeping it in
one place keeps the benchmarks comparable.
"""

from __future__ import annotations

import numpy as np

MEDIAN, SIGMA, SHORTEST, LONGEST = 100, 1.0, 5, 1000


def sample_lengths(n: int, rng: np.random.Generator) -> np.ndarray:
    """Return ``(n,)`` int64 lengths, log-normal (median 100, sigma 1) clipped to [5, 1000]."""
    raw = rng.lognormal(np.log(MEDIAN), SIGMA, size=n)
    return np.clip(np.round(raw), SHORTEST, LONGEST).astype(np.int64)
