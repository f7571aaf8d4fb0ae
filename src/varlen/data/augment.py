"""Training-time augmentation that only ever reads a sequence's real steps.

Each sequence is transformed on its own, from its ``(T_i, *F)`` real steps and its own random
stream: a random crop (a window of the real steps), a random time warp (the window resampled
linearly to a stretched or squeezed length), a random circular shift and a random gain. Pads
never enter (there are none in a ``Ragged``), so an augmented sequence is the same whatever it
is batched or padded with, and the model trained on it stays exact: the new lengths travel with
the new sequences.

NumPy only (the data layer).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from varlen.data.ragged import Ragged

__all__ = ["Augmentation", "augment", "augment_sequence"]


@dataclass(frozen=True)
class Augmentation:
    """How much each training sequence is perturbed, per batch, on its real steps only.

    Args:
        crop: Fewest real steps kept, as a share of ``T_i``: each sequence keeps a window of
            ``round(u T_i)`` consecutive steps (``u`` uniform in ``[crop, 1]``, at least one
            step) at a uniform random start. 1: no cropping.
        warp: Largest stretch of time: the window is resampled linearly to ``round(f n)``
            steps, ``log f`` uniform in ``[-log(1 + warp), log(1 + warp)]``. 0: no warping.
        scale: Standard deviation of the log of a gain that multiplies every value of the
            sequence. 0: no scaling.
        shift: Largest circular shift of the (cropped, warped) steps, as a share of their
            number ``n``: they are rotated by ``floor(s n)`` steps, ``s`` uniform in
            ``[0, shift)`` (the last steps come first). 0: no shift; 1: any offset. Durations
            are kept: suits series recorded over a fixed window whose events may happen
            anywhere in it.

    Example:
        >>> Augmentation(crop=0.9, warp=0.2, scale=0.1).is_identity
        False
        >>> Augmentation(crop=1.0, warp=0.0, scale=0.0, shift=0.5).is_identity
        False
    """

    crop: float = 0.8
    warp: float = 0.2
    scale: float = 0.1
    shift: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 < self.crop <= 1.0:
            raise ValueError(
                f"Augmentation: crop must be in (0, 1] (the share of real steps kept), "
                f"got {self.crop!r}."
            )
        if not 0.0 <= self.shift <= 1.0:
            raise ValueError(
                f"Augmentation: shift must be in [0, 1] (the largest circular shift, as a "
                f"share of the steps; 0: none), got {self.shift!r}."
            )
        for name in ("warp", "scale"):
            value = getattr(self, name)
            if not 0.0 <= value < math.inf:
                raise ValueError(
                    f"Augmentation: {name} must be finite and >= 0 (0: none), got {value!r}."
                )

    @property
    def is_identity(self) -> bool:
        """Whether every sequence is left as it is."""
        return self.crop == 1.0 and self.warp == 0.0 and self.scale == 0.0 and self.shift == 0.0


def augment_sequence(
    sequence: NDArray[Any], augmentation: Augmentation, rng: np.random.Generator
) -> NDArray[np.float32]:
    """Crop, warp, shift and scale one sequence's real steps.

    Args:
        sequence: ``(T_i, *F)`` real steps (``T_i`` may be 0: returned unchanged).
        augmentation: How much to perturb.
        rng: The sequence's own random stream (five draws per sequence, always: the first
            four as before shifts existed, so the other transforms draw what they drew then).

    Returns:
        ``(T'_i, *F)`` float32, ``T'_i >= 1`` when ``T_i >= 1``.
    """
    values = np.asarray(sequence, dtype=np.float32)
    u, v, w = rng.random(3)
    gain = math.exp(augmentation.scale * float(rng.standard_normal()))
    turn = float(rng.random())
    T = values.shape[0]
    if T == 0:
        return values.copy()
    kept = max(1, min(T, round(T * (augmentation.crop + (1.0 - augmentation.crop) * u))))
    start = min(int(v * (T - kept + 1)), T - kept)
    window = values[start : start + kept]
    stretch = math.log1p(augmentation.warp)
    length = max(1, round(kept * math.exp(stretch * (2.0 * w - 1.0))))
    if length != kept:
        flat = window.reshape(kept, -1)
        grid = np.linspace(0.0, kept - 1.0, length) if kept > 1 else np.zeros(length)
        low = np.floor(grid).astype(np.int64)
        high = np.minimum(low + 1, kept - 1)
        frac = (grid - low)[:, None].astype(np.float32)
        flat = flat[low] * (1 - frac) + flat[high] * frac
        window = flat.reshape(length, *values.shape[1:])
    offset = int(turn * augmentation.shift * window.shape[0])
    if offset:
        window = np.roll(window, offset, axis=0)
    return (window * np.float32(gain)).astype(np.float32)


def augment(
    sequences: Sequence[NDArray[Any]] | Ragged,
    augmentation: Augmentation,
    *,
    key: int,
    ids: Sequence[int] | NDArray[np.integer[Any]],
) -> Ragged:
    """Augment each sequence with its own random stream ``(key, ids[i])``.

    A sequence's result depends on its real steps, ``key`` and its id only: not on the other
    sequences, their lengths or how a batch is padded.

    Args:
        sequences: ``B`` sequences ``(T_i, *F)``.
        augmentation: How much to perturb.
        key: The batch's random key (non-negative).
        ids: ``(B,)`` non-negative ids (e.g. dataset indices), one per sequence.

    Returns:
        The ``B`` augmented sequences, float32.

    Raises:
        ValueError: If ``ids`` does not have one id per sequence.

    Example:
        >>> x = Ragged.from_sequences([np.ones((5, 1)), np.ones((0, 1))])
        >>> out = augment(x, Augmentation(crop=0.6, warp=0.0, scale=0.0), key=0, ids=[0, 1])
        >>> bool(3 <= out.lengths[0] <= 5), int(out.lengths[1])
        (True, 0)
    """
    ids = np.asarray(ids, dtype=np.int64)
    count = len(sequences)
    if ids.shape != (count,):
        raise ValueError(
            f"augment: ids must have one id per sequence, shape ({count},), got {ids.shape}."
        )
    out = [
        augment_sequence(sequences[i], augmentation, np.random.default_rng([key, int(ids[i])]))
        for i in range(count)
    ]
    if not out:
        return Ragged.from_sequences([], dtype=np.float32)
    return Ragged.from_sequences(out, dtype=np.float32)
