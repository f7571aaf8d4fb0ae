"""Slow, obviously correct references for the readers in ``varlen.data.io``.

They loop in Python over lines, channels and values (or rows), and only handle valid
input, so they serve as oracles for the vectorized readers.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def read_ts_reference(text: str) -> tuple[list[np.ndarray], list[str] | None]:
    """Parse the data section of a valid, non-timestamped ``.ts`` text value by value.

    Returns:
        ``(cases, labels)``: one float64 ``(T_i, C)`` array per case, shorter channels
        NaN-padded at the end, and the raw label text per case (``None`` if unlabelled).
    """
    lines = [line.strip() for line in text.splitlines()]
    lines = [line for line in lines if line and not line.startswith("#")]
    header = [line.lower() for line in lines[: lines.index("@data")]]
    labelled = any(
        line in ("@classlabel true", "@targetlabel true") or line.startswith("@classlabel true ")
        for line in header
    )
    cases: list[np.ndarray] = []
    labels: list[str] = []
    for line in lines[lines.index("@data") + 1 :]:
        fields = line.split(":")
        if labelled:
            labels.append(fields.pop().strip())
        channels = []
        for field in fields:
            tokens = field.split(",") if field.strip() else []
            channels.append([math.nan if t.strip() == "?" else float(t) for t in tokens])
        T = max(len(channel) for channel in channels)
        case = np.full((T, len(channels)), np.nan)
        for c, channel in enumerate(channels):
            for t, value in enumerate(channel):
                case[t, c] = value
        cases.append(case)
    return cases, labels if labelled else None


def group_table_reference(
    rows: list[dict[Any, Any]], *, id: str, order: str | None, features: list[str]
) -> dict[Any, np.ndarray]:
    """Group rows (dicts) by id into ``(T_i, F)`` float64 arrays, ordered by ``order``.

    Without ``order`` the rows of an id keep their order in ``rows``.
    """
    groups: dict[Any, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(row[id], []).append(row)
    out = {}
    for key, members in groups.items():
        if order is not None:
            members = sorted(members, key=lambda row: row[order])
        out[key] = np.array(
            [[float(row[name]) for name in features] for row in members], dtype=np.float64
        ).reshape(len(members), len(features))
    return out
