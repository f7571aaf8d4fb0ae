"""Read and write the UEA/UCR ``.ts`` time-series format (sktime/aeon archives).

A ``.ts`` file is a header of ``@key value`` lines ending with ``@data``, then one line per
case: channels separated by ``:``, the values of a channel by ``,``, and (for labelled data)
the class label or numeric target as the last ``:``-separated field. ``#`` lines are
comments; ``?`` marks a missing value. With ``@timeStamps true`` each value is written as a
``(timestamp,value)`` pair.

Choices this reader makes, where the format leaves room:

- **Strict.** Every malformed line raises ``ValueError`` naming the file, the line number
  and what was expected; nothing is silently skipped. Only blank lines and ``#`` comment
  lines are ignored, anywhere in the file. Header keys are case-insensitive; an unknown or
  repeated key is an error, and the header must declare ``@classLabel`` or ``@targetLabel``.
- **Channels of different lengths within one case** (allowed by the format unless
  ``@equalLength true``) are padded with NaN *at the end* up to the case's longest channel,
  so a case is one ``(T_i, C)`` block. The padded steps are indistinguishable from ``?``.
- **Missing values** ``?`` become NaN (so does a literal ``NaN``, in any case, as some
  archives write it). ``@missing false`` makes either an error.
- **Numbers** are finite decimal numbers in ASCII: an optional sign, digits with an optional
  decimal point, an optional exponent (``-1.5``, ``.5``, ``2e-3``). Python's extras are
  refused, as is anything infinite: ``1_000``, ``inf``, ``Infinity``, digits of other
  scripts, and ``1e400`` (which overflows float64) raise ``ValueError`` naming the line,
  channel and step. Numeric targets (``@targetLabel true``) follow the same rule.
- **Timestamps** are kept as strings, row-aligned with the values (:attr:`TSData.timestamps`);
  values are placed by position in the channel, not aligned on their timestamps.
- An empty channel (nothing between two ``:``) has length 0, so a case may have ``T_i = 0``.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Literal, NamedTuple, TypeAlias

import numpy as np
from numpy.typing import NDArray

from varlen._atomic import write_text
from varlen._checks import error_context, unplaced
from varlen._types import AnyArray, IntArray
from varlen.data._flat import row_positions
from varlen.data.ragged import Ragged

HeaderValue: TypeAlias = str | bool | int
"""A parsed header value: ``problemName`` is a string, flags are bools, sizes are ints."""

Source: TypeAlias = str | os.PathLike[str] | IO[str]
"""A path to a ``.ts`` file, or an open text stream."""

_WHERE = "read_ts"
_BOOL_KEYS = {
    "timestamps": "timeStamps",
    "missing": "missing",
    "univariate": "univariate",
    "equallength": "equalLength",
    "targetlabel": "targetLabel",
}
_INT_KEYS = {"dimensions": ("dimensions", 1), "serieslength": ("seriesLength", 0)}
_KNOWN_KEYS = (
    "@problemName, @timeStamps, @missing, @univariate, @dimensions, @equalLength, "
    "@seriesLength, @classLabel, @targetLabel, @data"
)
# A ':' that is not inside '(...)': the channel separator in timestamped lines, whose
# timestamps may themselves contain ':' (e.g. "2007-01-01 00:00:00").
_CHANNEL_COLON = re.compile(r":(?![^()]*\))")
_PAIR = re.compile(r"\(([^()]*)\)")


class TSData(NamedTuple):
    """The contents of a ``.ts`` file.

    Attributes:
        x: ``B`` cases as a :class:`~varlen.data.ragged.Ragged` with float64 values
            ``(N, C)``; NaN marks missing values and the end-padding of shorter channels.
        y: ``(B,)`` class labels as strings (``@classLabel true``), float64 targets
            (``@targetLabel true``), or ``None`` when the data carry neither.
        header: The header keys present in the file, under their canonical spelling
            (``problemName``, ``timeStamps``, ``missing``, ``univariate``, ``dimensions``,
            ``equalLength``, ``seriesLength``, ``classLabel``, ``targetLabel``).
        class_labels: The labels declared by ``@classLabel true``, in file order;
            ``()`` otherwise.
        timestamps: ``(N, C)`` str timestamps row-aligned with ``x.values`` (``""`` where a
            channel was padded) when ``@timeStamps true``; ``None`` otherwise.
    """

    x: Ragged
    y: AnyArray | None
    header: dict[str, HeaderValue]
    class_labels: tuple[str, ...]
    timestamps: NDArray[np.str_] | None


@dataclass(frozen=True)
class _Line:
    """A position in a file, to build error messages."""

    source: str
    number: int

    def error(self, message: str) -> ValueError:
        return ValueError(f"{_WHERE}: {self.source}:{self.number}: {message}.")


@dataclass(frozen=True)
class _Layout:
    """What the header says about the data lines."""

    label: Literal["class", "target", "none"]
    labels: frozenset[str]
    declared: tuple[str, ...]
    timestamps: bool
    allow_missing: bool
    dimensions: int | None


@dataclass
class _Cases:
    """Accumulated text of the data section, before the one float conversion."""

    tokens: list[str] = field(default_factory=list)
    stamps: list[str] = field(default_factory=list)
    channel_lengths: list[int] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    line_numbers: list[int] = field(default_factory=list)
    dimensions: int | None = None
    unusual: bool = False  # a line holds '_' or non-ASCII text: check each token's syntax


def _clip(text: str, width: int = 40) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _read_lines(source: Source) -> tuple[list[str], str]:
    """Return the lines of ``source`` and its name; a UTF-8 byte order mark is skipped."""
    if isinstance(source, str | os.PathLike):
        name = os.fspath(source)
        try:
            text = Path(source).read_text(encoding="utf-8-sig")
        except UnicodeDecodeError as error:
            raise ValueError(
                f"{_WHERE}: {name}: file must be UTF-8 text, got byte "
                f"0x{error.object[error.start]:02x} at offset {error.start}. "
                "Re-save it as UTF-8."
            ) from None
    else:
        text, name = source.read(), str(getattr(source, "name", "<stream>"))
    return text.removeprefix("\ufeff").split("\n"), name


# ----------------------------------------------------------------------------- header


def _parse_bool(key: str, tokens: list[str], at: _Line) -> bool:
    if len(tokens) != 1 or tokens[0].lower() not in ("true", "false"):
        raise at.error(f"@{key} must be followed by 'true' or 'false', got {' '.join(tokens)!r}")
    return tokens[0].lower() == "true"


def _parse_int(key: str, tokens: list[str], minimum: int, at: _Line) -> int:
    if len(tokens) != 1 or not tokens[0].isdigit() or int(tokens[0]) < minimum:
        raise at.error(f"@{key} must be an integer >= {minimum}, got {' '.join(tokens)!r}")
    return int(tokens[0])


def _parse_class_label(tokens: list[str], at: _Line) -> tuple[bool, tuple[str, ...]]:
    flag = _parse_bool("classLabel", tokens[:1], at)
    labels = tuple(tokens[1:])
    if flag and not labels:
        raise at.error("@classLabel true must be followed by the labels, got none")
    if not flag and labels:
        raise at.error(f"@classLabel false must not list labels, got {' '.join(labels)!r}")
    if len(set(labels)) != len(labels):
        repeated = sorted({label for label in labels if labels.count(label) > 1})
        raise at.error(f"@classLabel labels must be distinct, got repeated {repeated}")
    return flag, labels


def _parse_key(key: str, tokens: list[str], at: _Line) -> tuple[str, HeaderValue, tuple[str, ...]]:
    """Return ``(canonical key, value, class labels)`` for one header line."""
    lower = key.lower()
    if lower == "problemname":
        if not tokens:
            raise at.error("@problemName must be followed by a name, got nothing")
        return "problemName", " ".join(tokens), ()
    if lower == "classlabel":
        flag, labels = _parse_class_label(tokens, at)
        return "classLabel", flag, labels
    if lower in _BOOL_KEYS:
        return _BOOL_KEYS[lower], _parse_bool(_BOOL_KEYS[lower], tokens, at), ()
    if lower in _INT_KEYS:
        name, minimum = _INT_KEYS[lower]
        return name, _parse_int(name, tokens, minimum, at), ()
    raise at.error(f"header key must be one of {_KNOWN_KEYS}, got '@{key}'")


def _check_header(header: dict[str, HeaderValue], at: _Line) -> None:
    """Check the keys that depend on each other, at the ``@data`` line."""
    if "classLabel" not in header and "targetLabel" not in header:
        raise at.error("header must declare @classLabel or @targetLabel before @data, got neither")
    if header.get("classLabel") is True and header.get("targetLabel") is True:
        raise at.error(
            "header must declare at most one of '@classLabel true' and '@targetLabel true', "
            "got both"
        )
    if header.get("univariate") is True and header.get("dimensions", 1) != 1:
        raise at.error(f"@dimensions must be 1 with '@univariate true', got {header['dimensions']}")


def _parse_header(
    lines: Sequence[str], source: str
) -> tuple[dict[str, HeaderValue], tuple[str, ...], int]:
    """Return ``(header, class labels, index of the first line after @data)``."""
    header: dict[str, HeaderValue] = {}
    declared: tuple[str, ...] = ()
    last = 1
    for index, raw in enumerate(lines):
        text = raw.strip()
        if not text or text.startswith("#"):
            continue
        at, last = _Line(source, index + 1), index + 1
        parts = text[1:].split() if text.startswith("@") else []
        if not parts:
            raise at.error(
                "line must be a '@key value' header line (ending with '@data'), "
                f"got {_clip(text)!r}"
            )
        if parts[0].lower() == "data":
            if len(parts) > 1:
                raise at.error(f"@data must stand alone on its line, got {_clip(text)!r}")
            _check_header(header, at)
            return header, declared, index + 1
        name, value, labels = _parse_key(parts[0], parts[1:], at)
        if name in header:
            raise at.error(f"@{name} must appear once in the header, got it again")
        header[name], declared = value, declared + labels
    got = "an empty file" if last == 1 and not any(line.strip() for line in lines) else "none"
    raise _Line(source, last).error(f"header must end with an '@data' line, got {got}")


def _layout(header: dict[str, HeaderValue], declared: tuple[str, ...]) -> _Layout:
    label: Literal["class", "target", "none"] = "none"
    if header.get("classLabel") is True:
        label = "class"
    elif header.get("targetLabel") is True:
        label = "target"
    dimensions = header.get("dimensions", 1 if header.get("univariate") is True else None)
    return _Layout(
        label=label,
        labels=frozenset(declared),
        declared=declared,
        timestamps=header.get("timeStamps") is True,
        allow_missing=header.get("missing") is not False,
        dimensions=dimensions if isinstance(dimensions, int) else None,
    )


# ----------------------------------------------------------------------------- data lines


def _split_label(text: str, layout: _Layout, at: _Line) -> tuple[str, str]:
    """Return ``(channels text, label)``; the label is ``""`` for unlabelled data."""
    if layout.label == "none":
        return text, ""
    body, colon, label = text.rpartition(":")
    if not colon:
        raise at.error(f"case must end with ':<{layout.label} label>', got no ':' in the line")
    label = label.strip()
    if layout.label == "class" and label not in layout.labels:
        raise at.error(
            f"label must be one of the @classLabel labels {list(layout.declared)}, got {label!r}"
        )
    if layout.label == "target" and not _is_number(label):
        raise at.error(f"target must be a finite decimal number, got {label!r}")
    return body, label


_NUMBER = re.compile(r"\s*[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\s*", re.ASCII)
_NAN = re.compile(r"\s*[+-]?nan\s*", re.IGNORECASE | re.ASCII)


def _is_number(token: str) -> bool:
    """Whether ``token`` is a finite decimal number (see the module docstring)."""
    return _NUMBER.fullmatch(token) is not None and math.isfinite(float(token))


def _pair_tokens(channel: str, stamps: list[str], at: _Line) -> list[str]:
    """Split a timestamped channel ``(t,v),(t,v)`` into values; append timestamps to stamps."""
    parts = _PAIR.split(channel)  # [sep, pair, sep, pair, ..., sep]
    separators = [part.strip() for part in parts[0::2]]
    if separators[0] or separators[-1] or any(sep != "," for sep in separators[1:-1]):
        raise at.error(
            f"timestamped values must be '(timestamp,value)' pairs separated by ',', "
            f"got {_clip(channel.strip())!r}"
        )
    values = []
    for pair in parts[1::2]:
        stamp, comma, value = pair.rpartition(",")
        if not comma:
            raise at.error(f"timestamped value must be '(timestamp,value)', got '({pair})'")
        stamps.append(stamp.strip())
        values.append("nan" if value.strip() == "?" else value)
    return values


def _channel_tokens(channel: str, layout: _Layout, cases: _Cases, at: _Line) -> list[str]:
    if not channel.strip():
        return []
    if layout.timestamps:
        return _pair_tokens(channel, cases.stamps, at)
    tokens = channel.split(",")
    if "?" in channel:
        tokens = ["nan" if token.strip() == "?" else token for token in tokens]
    return tokens


def _add_case(text: str, layout: _Layout, cases: _Cases, at: _Line) -> None:
    """Parse one data line into ``cases``."""
    body, label = _split_label(text, layout, at)
    if "_" in body or not body.isascii():  # Python's float() would take 1_000 or other digits
        cases.unusual = True
    if not layout.allow_missing and "?" in body:
        raise at.error("values must not be '?' because the header says '@missing false', got '?'")
    channels = _CHANNEL_COLON.split(body) if layout.timestamps else body.split(":")
    if cases.dimensions is None:
        cases.dimensions = len(channels)
    if len(channels) != cases.dimensions:
        origin = "the header" if layout.dimensions is not None else "the first case"
        raise at.error(
            f"case must have {cases.dimensions} channels separated by ':' (from {origin}), "
            f"got {len(channels)}"
        )
    for channel in channels:
        tokens = _channel_tokens(channel, layout, cases, at)
        cases.tokens.extend(tokens)
        cases.channel_lengths.append(len(tokens))
    cases.labels.append(label)
    cases.line_numbers.append(at.number)


def _parse_cases(lines: Sequence[str], start: int, source: str, layout: _Layout) -> _Cases:
    cases = _Cases(dimensions=layout.dimensions)
    for index in range(start, len(lines)):
        text = lines[index].strip()
        if not text or text.startswith("#"):
            continue
        at = _Line(source, index + 1)
        if text.startswith("@"):
            raise at.error(f"data line must not be a header line after @data, got {_clip(text)!r}")
        _add_case(text, layout, cases, at)
    return cases


def _bad_value(cases: _Cases, source: str, C: int, *, allow_missing: bool) -> ValueError | None:
    """Return the error for the first token that is not a valid value (the slow path)."""
    per_channel = np.array(cases.channel_lengths, dtype=np.int64).reshape(-1, C)
    start = 0
    for case, lengths in enumerate(per_channel):
        for channel, length in enumerate(lengths.tolist()):
            for step, token in enumerate(cases.tokens[start : start + length]):
                if _is_number(token):
                    continue
                missing = _NAN.fullmatch(token) is not None
                if missing and allow_missing:
                    continue
                at = f"at channel {channel}, step {step}"
                message = (
                    f"values must not be missing because the header says '@missing false', "
                    f"got {_clip(token.strip())!r} {at}"
                    if missing
                    else f"values must be finite decimal numbers or '?', got "
                    f"{_clip(token.strip())!r} {at}"
                )
                return _Line(source, cases.line_numbers[case]).error(message)
            start += length
    return None


def _to_float(cases: _Cases, source: str, C: int, *, allow_missing: bool) -> NDArray[np.float64]:
    """Convert every token at once; check each token's syntax only where that is needed.

    NumPy reads what Python's ``float`` reads (``1_000``, ``inf``, ``1e400`` as inf, other
    scripts' digits): a token is checked one by one only when the converted values hold an
    infinity, a NaN under ``@missing false``, or a line had ``_`` or non-ASCII text.
    """
    try:
        flat = np.array(cases.tokens, dtype=np.float64)
    except ValueError:
        error = _bad_value(cases, source, C, allow_missing=allow_missing)
        if error is None:
            raise RuntimeError(f"varlen bug: read_ts found no bad value in {source}.") from None
        raise error from None
    suspect = cases.unusual or bool(np.isinf(flat).any())
    if suspect or (not allow_missing and bool(np.isnan(flat).any())):
        error = _bad_value(cases, source, C, allow_missing=allow_missing)
        if error is not None:
            raise error
    return flat


def _check_equal_length(
    lengths: IntArray, header: dict[str, HeaderValue], cases: _Cases, source: str
) -> None:
    """Enforce ``@equalLength true`` and its ``@seriesLength``, if declared."""
    if header.get("equalLength") is not True or lengths.shape[0] == 0:
        return
    declared = header.get("seriesLength")
    expected = int(declared) if declared is not None else int(lengths[0, 0])
    bad = np.flatnonzero((lengths != expected).any(axis=1))
    if bad.size:
        origin = f"@seriesLength {expected}" if declared is not None else "the first case"
        at = _Line(source, cases.line_numbers[int(bad[0])])
        raise at.error(
            f"every channel must have length {expected} ('@equalLength true', {origin}), "
            f"got channel lengths {lengths[int(bad[0])].tolist()}"
        )


def _assemble(
    flat: AnyArray, lengths: IntArray, fill: object
) -> tuple[AnyArray, NDArray[np.int64]]:
    """Scatter channel-major tokens into ``(N, C)`` rows, end-padding short channels.

    Args:
        flat: ``(sum(lengths),)`` values, case by case, channel by channel.
        lengths: ``(B, C)`` int64 length of every channel of every case.
        fill: Value for the end-padding of shorter channels.

    Returns:
        ``(values, offsets)``: ``values (N, C)`` with ``N = sum(max_c lengths[i, c])``,
        ``offsets (B + 1,)`` int64.
    """
    B, C = lengths.shape
    T = lengths.max(axis=1, initial=0)  # (B,) case lengths
    offsets = np.concatenate([np.zeros(1, dtype=np.int64), np.cumsum(T, dtype=np.int64)])
    out = np.full((int(offsets[-1]), C), fill, dtype=flat.dtype)
    group, step = row_positions(lengths.reshape(B * C))  # group = case * C + channel
    out[offsets[group // max(C, 1)] + step, group % max(C, 1)] = flat
    return out, offsets


def _targets(cases: _Cases, layout: _Layout) -> AnyArray | None:
    if layout.label == "none":
        return None
    if layout.label == "target":
        return np.array(cases.labels, dtype=np.float64)
    return np.array(cases.labels, dtype=np.str_)


def read_ts(source: Source) -> TSData:
    """Read a UEA/UCR ``.ts`` file into a ragged batch of multichannel series.

    Cases may have different lengths ``T_i`` (including 0). Within a case, channels of
    different lengths are padded with NaN at the end, and ``?`` reads as NaN (see the
    module docstring for every choice the reader makes).

    Args:
        source: Path of the file (read as UTF-8, with or without a byte order mark), or an
            open text stream.

    Returns:
        A :class:`TSData` with ``x`` holding float64 values ``(N, C)`` and ``B`` cases.

    Raises:
        OSError: If the file cannot be read (e.g. ``FileNotFoundError``).
        ValueError: If the file is not UTF-8 or is malformed; the message names the file,
            the line and what was expected there.

    Example:
        >>> import io
        >>> text = '''@problemName demo
        ... @missing true
        ... @classLabel true a b
        ... @data
        ... 1,2,3:4,5,6:a
        ... 7,?:8,9:b
        ... '''
        >>> data = read_ts(io.StringIO(text))
        >>> data.x.lengths  # T_i of each of the B = 2 cases
        array([3, 2])
        >>> data.x.values  # (N, C) = (5, 2)
        array([[ 1.,  4.],
               [ 2.,  5.],
               [ 3.,  6.],
               [ 7.,  8.],
               [nan,  9.]])
        >>> data.y
        array(['a', 'b'], dtype='<U1')
    """
    lines, name = _read_lines(source)
    header, declared, start = _parse_header(lines, name)
    layout = _layout(header, declared)
    cases = _parse_cases(lines, start, name, layout)
    return _chunk(cases, header, name, layout)  # the whole file as one chunk


def _chunk(cases: _Cases, header: dict[str, HeaderValue], name: str, layout: _Layout) -> TSData:
    """Convert the accumulated cases of one chunk (:func:`read_ts`: the whole file)."""
    C = cases.dimensions if cases.dimensions is not None else 0
    flat = _to_float(cases, name, C, allow_missing=layout.allow_missing)
    B = len(cases.line_numbers)
    lengths = np.array(cases.channel_lengths, dtype=np.int64).reshape(B, C)  # (B, C)
    _check_equal_length(lengths, header, cases, name)
    values, offsets = _assemble(flat, lengths, np.nan)
    timestamps = None
    if layout.timestamps:
        timestamps, _ = _assemble(np.array(cases.stamps, dtype=np.str_), lengths, "")
    return TSData(
        Ragged(values, offsets), _targets(cases, layout), header, layout.declared, timestamps
    )


def _numbered_lines(file: IO[str], name: str) -> Iterator[tuple[int, str]]:
    """Yield ``(line number, stripped text)``, naming the line where UTF-8 decoding fails."""
    number = 0
    try:
        for number, raw in enumerate(file, start=1):  # read after the loop
            yield number, raw.strip().removeprefix("\ufeff")
    except UnicodeDecodeError:
        raise ValueError(
            f"{_WHERE}: {name}:{number + 1}: file must be UTF-8 text, got a byte that is not. "
            "Re-save it as UTF-8."
        ) from None


def iter_ts(path: str | os.PathLike[str], *, chunk_cases: int = 4096) -> Iterator[TSData]:
    """Read a ``.ts`` file chunk by chunk, in memory bounded by ``chunk_cases`` cases.

    Each chunk is what :func:`read_ts` would return for the header and the next
    ``chunk_cases`` cases (the last chunk may be shorter; a file without cases gives one
    empty chunk), parsed by the same rules with the same messages (file and line). The
    first case fixes the number of channels and, under ``@equalLength true`` without
    ``@seriesLength``, the length, for every chunk.

    Args:
        path: The ``.ts`` file (UTF-8, with or without a byte order mark).
        chunk_cases: Cases per chunk, ``>= 1``.

    Yields:
        :class:`TSData` chunks, in file order.

    Raises:
        OSError: If the file cannot be read.
        ValueError: If the file is malformed or ``chunk_cases < 1`` (raised when reached).
    """
    if chunk_cases < 1:
        raise ValueError(f"iter_ts: chunk_cases must be >= 1, got {chunk_cases}.")
    name = os.fspath(path)
    with open(path, encoding="utf-8") as file:
        lines = _numbered_lines(file, name)
        head: list[str] = []
        for _, text in lines:
            head.append(text)
            words = text[1:].split() if text.startswith("@") else []
            if words and words[0].lower() == "data":
                break
        header, declared, _ = _parse_header(head, name)
        layout = _layout(header, declared)
        cases = _Cases(dimensions=layout.dimensions)
        produced = False
        for number, text in lines:
            if not text or text.startswith("#"):
                continue
            at = _Line(name, number)
            if text.startswith("@"):
                raise at.error(
                    f"data line must not be a header line after @data, got {_clip(text)!r}"
                )
            _add_case(text, layout, cases, at)
            if len(cases.line_numbers) == chunk_cases:
                chunk = _chunk(cases, header, name, layout)
                header = _fix_series_length(header, chunk)
                yield chunk
                produced = True
                cases = _Cases(dimensions=cases.dimensions)
        if cases.line_numbers or not produced:
            yield _chunk(cases, header, name, layout)


def _fix_series_length(header: dict[str, HeaderValue], chunk: TSData) -> dict[str, HeaderValue]:
    """After the first chunk, pin ``@equalLength true``'s length to the first case's."""
    if header.get("equalLength") is not True or "seriesLength" in header or len(chunk.x) == 0:
        return header
    return {**header, "seriesLength": int(chunk.x.lengths[0])}


# ----------------------------------------------------------------------------- writer


def _check_x(x: object) -> tuple[NDArray[np.float64], IntArray]:
    """Return ``(values (N, C) float64, offsets (B + 1,))`` of a ``Ragged`` with ``C >= 1``."""
    if not isinstance(x, Ragged):
        raise unplaced(TypeError(f"x must be a Ragged, got {type(x).__name__}."))
    if x.values.ndim != 2 or x.values.shape[1] == 0 or x.dtype.kind not in "biuf":
        raise unplaced(
            ValueError(
                f"x must have real values of shape (N, C) with C >= 1, got shape "
                f"{x.values.shape} and dtype {x.dtype}. Reshape univariate values to (N, 1)."
            )
        )
    values = x.values.astype(np.float64)
    infinite = np.isinf(values)
    if infinite.any():
        step, channel = (int(i) for i in np.argwhere(infinite)[0])
        raise unplaced(
            ValueError(
                f"x must hold finite values or NaN (written as '?'), got "
                f"{float(values[step, channel])!r} at step {step}, channel {channel}; "
                "read_ts refuses infinities."
            )
        )
    return values, x.offsets


def _check_label_text(name: str, labels: Sequence[str]) -> None:
    for index, label in enumerate(labels):
        if not label or ":" in label or any(char.isspace() for char in label):
            raise unplaced(
                ValueError(
                    f"{name}[{index}] must be a non-empty label without ':' or "
                    f"whitespace, got {label!r}."
                )
            )


def _check_y(y: object, B: int, class_labels: Sequence[str] | None) -> tuple[str, list[str]]:
    """Return ``(header line for the labels, per-case label text)``."""
    if y is None:
        return "@classLabel false", []
    array = np.asarray(y)
    if array.shape != (B,) or array.dtype.kind not in "biufUSO":
        raise unplaced(
            ValueError(
                f"y must be None or have shape (B,) = ({B},) with labels or real "
                f"targets, got shape {array.shape} and dtype {array.dtype}."
            )
        )
    if array.dtype.kind == "f":
        if not np.isfinite(array).all():
            index = int(np.argmin(np.isfinite(array)))
            raise unplaced(
                ValueError(
                    f"y must hold finite targets, got {float(array[index])!r} at index {index}."
                )
            )
        return "@targetLabel true", [repr(float(value)) for value in array.tolist()]
    labels = [str(value) for value in array.tolist()]
    _check_label_text("y", labels)
    declared = sorted(set(labels)) if class_labels is None else [str(c) for c in class_labels]
    _check_label_text("class_labels", declared)
    if not declared:
        raise unplaced(
            ValueError(
                "class_labels must hold at least one label, got none. "
                "Pass class_labels when y is empty."
            )
        )
    unknown = sorted(set(labels) - set(declared))
    if unknown:
        raise unplaced(ValueError(f"y must only hold labels in class_labels, got {unknown}."))
    return "@classLabel true " + " ".join(declared), labels


def _header_text(
    values: NDArray[np.float64], lengths: IntArray, labels_line: str, problem_name: str
) -> list[str]:
    C = values.shape[1]
    equal = lengths.size > 0 and bool(np.all(lengths == lengths[0]))
    lines = [
        f"@problemName {problem_name}",
        "@timeStamps false",
        f"@missing {str(bool(np.isnan(values).any())).lower()}",
        f"@univariate {str(C == 1).lower()}",
        f"@dimensions {C}",
        f"@equalLength {str(equal).lower()}",
    ]
    if equal:
        lines.append(f"@seriesLength {int(lengths[0])}")
    return [*lines, labels_line, "@data"]


def write_ts(
    path: str | os.PathLike[str],
    x: Ragged,
    y: object = None,
    *,
    class_labels: Sequence[str] | None = None,
    problem_name: str = "varlen",
) -> None:
    """Write a ragged batch of multichannel series as a ``.ts`` file, read back by read_ts.

    Every channel of case ``i`` is written with its ``T_i`` values; NaN is written as
    ``?``. Values round-trip exactly (shortest ``repr``). Float ``y`` is written as
    ``@targetLabel true`` (regression); any other ``y`` as class labels (``str(label)``).

    Args:
        path: File to create or overwrite (UTF-8).
        x: ``B`` cases with real values ``(N, C)``, ``C >= 1``; written as float64.
        y: ``(B,)`` class labels or float targets, or ``None`` (``@classLabel false``).
        class_labels: Labels to declare, in this order; defaults to the sorted distinct
            labels of ``y``. Ignored for float ``y``.
        problem_name: Value of ``@problemName``: words separated by single spaces.

    Raises:
        TypeError: If ``x`` is not a ``Ragged``.
        ValueError: If ``x`` is not ``(N, C)`` real values, ``y`` has the wrong shape, a
            label is empty or holds ``':'`` or whitespace, a label is not declared, the
            name is not words separated by single spaces, or a case would be a blank line
            (``C == 1``, ``T_i == 0`` and no ``y``).

    Example:
        >>> import io, tempfile, pathlib
        >>> x = Ragged(np.array([[1.0], [np.nan], [3.0]]), np.array([0, 2, 3]))
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "demo.ts"
        >>> write_ts(path, x, np.array(["a", "b"]))
        >>> print(path.read_text().split("@data")[1].strip())
        1.0,?:a
        3.0:b
        >>> read_ts(path).x == x
        True
    """
    with error_context("write_ts"):
        values, offsets = _check_x(x)
        lengths = np.diff(offsets)
        labels_line, labels = _check_y(y, lengths.shape[0], class_labels)
        if not problem_name or " ".join(problem_name.split()) != problem_name:
            raise unplaced(
                ValueError(
                    f"problem_name must be words separated by single spaces, got {problem_name!r}."
                )
            )
        if values.shape[1] == 1 and y is None and lengths.size and lengths.min() == 0:
            raise unplaced(
                ValueError(
                    "x must have T_i >= 1 when C == 1 and y is None (the line would be "
                    f"blank), got lengths[{int(np.argmin(lengths))}] == 0. "
                    "Pass y or drop empty cases."
                )
            )
        lines = _header_text(values, lengths, labels_line, problem_name)
        text = np.where(np.isnan(values), "?", values.astype(np.str_))  # (N, C)
        for i, (start, stop) in enumerate(
            zip(offsets[:-1].tolist(), offsets[1:].tolist(), strict=True)
        ):
            block = text[start:stop].T  # (C, T_i)
            line = ":".join(",".join(channel) for channel in block.tolist())
            lines.append(f"{line}:{labels[i]}" if labels else line)
        write_text(path, "\n".join(lines) + "\n")
