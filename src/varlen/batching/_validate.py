"""Validators shared by the sampler and the padding report (NumPy only, no torch)."""

from __future__ import annotations

import numpy as np

from varlen._checks import placed


def check_int(where: str | None, name: str, value: object, *, minimum: int) -> int:
    """Return ``value`` as an ``int >= minimum``, else raise ``TypeError``/``ValueError``.

    ``where`` names the public function or class in the message; ``None`` leaves the error for
    the enclosing :class:`~varlen._checks.error_context` to name (so for :func:`check_sizing`).
    """
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise placed(where, TypeError(f"{name} must be an int, got {value!r}."))
    if value < minimum:
        raise placed(where, ValueError(f"{name} must be >= {minimum}, got {value!r}."))
    return int(value)


def check_sizing(
    where: str | None, batch_size: object, max_tokens: object
) -> tuple[int | None, int | None]:
    """Return ``(batch_size, max_tokens)`` with exactly one of them a positive int."""
    if (batch_size is None) == (max_tokens is None):
        got = "both" if batch_size is not None else "neither"
        raise placed(
            where,
            ValueError(
                f"pass exactly one of batch_size and max_tokens, got {got}. Use "
                "batch_size for a fixed number of sequences per batch, max_tokens for a budget "
                "of padded steps (B * T_max) per batch."
            ),
        )
    if batch_size is not None:
        return check_int(where, "batch_size", batch_size, minimum=1), None
    return None, check_int(where, "max_tokens", max_tokens, minimum=1)
