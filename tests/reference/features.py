"""Slow, obviously correct references for ``varlen.data.features``.

Every function loops over sources, sequences, steps and channel names, so it can serve
as an oracle for the vectorized alignment.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def union_reference(names_per_source: list[list[str]]) -> list[str]:
    """Channel names in order of first appearance across sources."""
    union: list[str] = []
    for names in names_per_source:
        for name in names:
            if name not in union:
                union.append(name)
    return union


def align_reference(
    sources: list[list[np.ndarray]],
    names_per_source: list[list[str]],
    schema: list[str],
    *,
    fill_value: float,
    nan_as_missing: bool,
) -> tuple[list[list[list[Any]]], list[list[bool]], list[list[list[bool]]], list[int]]:
    """Return ``(sequences, presence, step_presence, source)`` as nested Python lists."""
    sequences, presence, step_presence, source = [], [], [], []
    for s, (sequence_list, names) in enumerate(zip(sources, names_per_source, strict=True)):
        for sequence in sequence_list:
            source.append(s)
            presence.append([name in names for name in schema])
            rows, flags = [], []
            for step in sequence:
                row, flag = [], []
                for name in schema:
                    if name not in names:
                        row.append(fill_value)
                        flag.append(False)
                        continue
                    value = step[names.index(name)]
                    if nan_as_missing and value != value:  # NaN is the only value unequal to itself
                        row.append(fill_value)
                        flag.append(False)
                    else:
                        row.append(value)
                        flag.append(True)
                rows.append(row)
                flags.append(flag)
            sequences.append(rows)
            step_presence.append(flags)
    return sequences, presence, step_presence, source


def concat_presence_reference(
    sequences: list[np.ndarray], flags: list[np.ndarray], fill_value: float | None
) -> list[list[list[float]]]:
    """Per step: the values (absent ones replaced by ``fill_value``), then the 0/1 flags."""
    out = []
    for sequence, sequence_flags in zip(sequences, flags, strict=True):
        rows = []
        for step, step_flags in zip(sequence, sequence_flags, strict=True):
            values = [
                float(v) if (present or fill_value is None) else fill_value
                for v, present in zip(step, step_flags, strict=True)
            ]
            rows.append(values + [1.0 if present else 0.0 for present in step_flags])
        out.append(rows)
    return out
