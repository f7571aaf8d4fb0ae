"""Tests for varlen.data.io.ts: the UEA/UCR ``.ts`` reader and writer."""

from __future__ import annotations

import io
import re
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from tests.reference.io import read_ts_reference
from varlen.data.io import ts
from varlen.data.io.ts import read_ts, write_ts
from varlen.data.ragged import Ragged

HEADER = [
    "# a comment",
    "@problemName demo",
    "@missing true",
    "@dimensions 2",
    "@classLabel true a b",
    "@data",
]  # @data is line 6


def write_lines(directory: Path, lines: list[str], name: str = "case.ts") -> Path:
    """Write ``lines`` joined by newlines to ``directory / name`` and return the path."""
    path = directory / name
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


# ----------------------------------------------------------------------------- round trips


@st.composite
def labelled_batches(draw: st.DrawFn) -> tuple[Ragged, np.ndarray | None, str]:
    """A random ragged ``(N, C)`` float64 batch with NaN, and labels, targets or None.

    Infinities are refused by both write_ts and read_ts (see the tests of that rule).
    """
    C = draw(st.integers(1, 4))
    kind = draw(st.sampled_from(["class", "target", "none"]))
    shortest = 1 if C == 1 and kind == "none" else 0  # a blank line cannot hold a case
    lengths = draw(st.lists(st.integers(shortest, 6), max_size=6))
    values = draw(
        arrays(np.float64, (sum(lengths), C), elements=st.floats(width=64, allow_infinity=False))
    )
    x = Ragged(values, np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64))
    B = len(lengths)
    y: np.ndarray | None = None
    if kind == "class":
        labels = st.text(alphabet="abXY09_-.", min_size=1, max_size=3)
        y = np.array(draw(st.lists(labels, min_size=B, max_size=B)), dtype=np.str_)
    elif kind == "target":
        finite = st.floats(width=64, allow_nan=False, allow_infinity=False)
        y = draw(arrays(np.float64, (B,), elements=finite))
    return x, y, kind


@given(batch=labelled_batches())
@example(batch=(Ragged(np.zeros((0, 3)), np.array([0, 0, 0])), np.array(["a", "b"]), "class"))
@example(batch=(Ragged(np.zeros((0, 2)), np.array([0])), None, "none"))
def test_write_ts_then_read_ts_round_trips_exactly(batch):
    """Values (NaN, inf, T_i = 0 and B = 0 included), labels and targets read back exactly."""
    x, y, kind = batch
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "round.ts"
        class_labels = ["a"] if kind == "class" and len(x) == 0 else None
        write_ts(path, x, y, class_labels=class_labels, problem_name="round trip")
        data = read_ts(path)
    assert data.x == x
    assert data.x.values.dtype == np.float64
    assert data.header["dimensions"] == x.values.shape[1]
    assert data.header["missing"] == bool(np.isnan(x.values).any())
    assert data.header["problemName"] == "round trip"
    if kind == "none":
        assert data.y is None
        assert data.class_labels == ()
    else:
        assert data.y is not None
        np.testing.assert_array_equal(data.y, y)
        assert data.y.dtype.kind == ("f" if kind == "target" else "U")
    if kind == "class" and class_labels is None:
        assert data.class_labels == tuple(sorted(set(np.asarray(y).tolist())))


NUMBER_TEXT = st.one_of(
    st.just("?"),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.integers(-999, 999).map(str),
    st.sampled_from([" 1.5", "-1.06E-4", "2e3 ", "+7", ".5"]),
)


@st.composite
def ts_texts(draw: st.DrawFn) -> str:
    """A valid ``.ts`` text whose cases have channels of different lengths and '?'."""
    C = draw(st.integers(1, 3))
    lines = ["# comment", "@problemName p", f"@dimensions {C}", "@classLabel true a b", "@data"]
    for _ in range(draw(st.integers(0, 5))):
        channels = [
            ",".join(draw(st.lists(NUMBER_TEXT, max_size=5))) for _ in range(C)
        ]  # lengths differ between channels
        lines.append(":".join(channels) + ":" + draw(st.sampled_from(["a", "b"])))
        lines.extend(draw(st.sampled_from([[], [""], ["# between cases"]])))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    return newline.join(lines) + draw(st.sampled_from(["", newline]))


@given(text=ts_texts())
@example(text="@classLabel true a\n@data\n:a\n1,2:a")  # a case of T_i = 0
def test_read_ts_matches_reference_with_unequal_channels(text):
    """Cases match the per-value reference: '?' is NaN and short channels are NaN-padded."""
    data = read_ts(io.StringIO(text))
    cases, labels = read_ts_reference(text)
    assert len(data.x) == len(cases)
    for actual, expected in zip(data.x.to_sequences(), cases, strict=True):
        np.testing.assert_array_equal(actual, expected)
    assert data.y is not None
    assert data.y.tolist() == labels


def test_read_ts_reads_header_regression_targets_and_comments(tmp_path):
    """Header keys are case-insensitive and canonicalised; @targetLabel gives float targets."""
    lines = [
        "@ProblemName  My  Problem",
        "@TIMESTAMPS false",
        "@missing FALSE",
        "@univariate true",
        "@equalLength true",
        "@seriesLength 2",
        "@targetlabel true",
        "@data",
        "",
        "# a comment inside the data",
        "1,2:0.5",
        "3,4:-2e1",
    ]
    data = read_ts(write_lines(tmp_path, lines))
    assert data.header == {
        "problemName": "My Problem",
        "timeStamps": False,
        "missing": False,
        "univariate": True,
        "equalLength": True,
        "seriesLength": 2,
        "targetLabel": True,
    }
    np.testing.assert_array_equal(data.x.values, [[1.0], [2.0], [3.0], [4.0]])
    np.testing.assert_array_equal(data.x.offsets, [0, 2, 4])
    np.testing.assert_array_equal(data.y, [0.5, -20.0])
    assert data.class_labels == ()
    assert data.timestamps is None


def test_read_ts_without_labels_and_without_cases(tmp_path):
    """@classLabel false gives y None; a file with no cases gives B = 0 with C channels."""
    unlabelled = read_ts(write_lines(tmp_path, ["@classLabel false", "@data", "1,2:3,4"]))
    assert unlabelled.y is None
    np.testing.assert_array_equal(unlabelled.x.values, [[1.0, 3.0], [2.0, 4.0]])
    empty = read_ts(write_lines(tmp_path, [*HEADER], name="empty.ts"))
    assert len(empty.x) == 0
    assert empty.x.values.shape == (0, 2)
    assert empty.y is not None
    assert empty.y.shape == (0,)


def test_read_ts_parses_timestamps_and_keeps_them_row_aligned(tmp_path):
    """Timestamped pairs give values by position and their timestamps ('' where padded)."""
    lines = [
        "@timeStamps true",
        "@dimensions 2",
        "@classLabel true x y",
        "@data",
        "(2007-01-01 00:00:00,1.5), (2007-01-02 00:00:00,?):(2007-01-01 00:00:00,3):x",
        "(0,1),(1,2),(2,3):(0,4):y",
    ]
    data = read_ts(write_lines(tmp_path, lines))
    np.testing.assert_array_equal(
        data.x.values, [[1.5, 3.0], [np.nan, np.nan], [1, 4], [2, np.nan], [3, np.nan]]
    )
    np.testing.assert_array_equal(data.x.offsets, [0, 2, 5])
    assert data.timestamps is not None
    assert data.timestamps.tolist() == [
        ["2007-01-01 00:00:00", "2007-01-01 00:00:00"],
        ["2007-01-02 00:00:00", ""],
        ["0", "0"],
        ["1", ""],
        ["2", ""],
    ]
    assert data.y is not None
    assert data.y.tolist() == ["x", "y"]


def test_read_ts_reads_an_open_stream_and_names_it_in_errors(tmp_path):
    """A text stream is read like a path; errors name the stream's file or '<stream>'."""
    path = write_lines(tmp_path, [*HEADER, "1:2:a"])
    with path.open(encoding="utf-8") as stream:
        assert len(read_ts(stream).x) == 1
    with pytest.raises(ValueError, match=r"read_ts: <stream>:1: header must end"):
        read_ts(io.StringIO(""))


def test_read_ts_skips_a_utf8_byte_order_mark(tmp_path):
    """Files saved as "UTF-8 with BOM" (common on Windows), with CRLF endings, read as without."""
    text = "\r\n".join([*HEADER, "1,2:3,4:a", ""])
    path = tmp_path / "bom.ts"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    data = read_ts(path)
    np.testing.assert_array_equal(data.x.values, [[1.0, 3.0], [2.0, 4.0]])
    assert read_ts(io.StringIO("\ufeff" + text)).x == data.x


def test_read_ts_rejects_a_file_that_is_not_utf8_naming_it(tmp_path):
    """A Latin-1 file is a ValueError naming the file and the first bad byte."""
    path = tmp_path / "latin1.ts"
    path.write_bytes(
        "\n".join([*HEADER[:4], "@classLabel true \xe9 b", "@data", ""]).encode("latin-1")
    )
    with pytest.raises(
        ValueError,
        match=re.escape(f"read_ts: {path}: file must be UTF-8 text, got byte 0xe9 at offset "),
    ):
        read_ts(path)


# ----------------------------------------------------------------------------- errors

READ_ERRORS = [
    ("empty-file", [""], 1, r"header must end with an '@data' line, got an empty file"),
    ("blank-file", ["", "  ", ""], 1, r"header must end with an '@data' line, got an empty"),
    ("comments-only", ["# a", "# b"], 1, r"header must end with an '@data' line, got none"),
    ("no-data-line", HEADER[:5], 5, r"header must end with an '@data' line, got none"),
    ("data-before-header", ["1,2:a"], 1, r"line must be a '@key value' header line"),
    ("bare-at", ["@problemName p", "@"], 2, r"line must be a '@key value' header line"),
    ("unknown-key", ["@problemName p", "@colour red"], 2, r"header key must be one of .*'@colour'"),
    ("repeated-key", ["@missing true", "@Missing true"], 2, r"@missing must appear once"),
    ("bad-bool", ["@missing maybe"], 1, r"@missing must be followed by 'true' or 'false'"),
    (
        "bool-extra",
        ["@missing true false"],
        1,
        r"@missing must be followed by 'true' or 'false', got 'true false'",
    ),
    ("bad-int", ["@dimensions x"], 1, r"@dimensions must be an integer >= 1, got 'x'"),
    ("zero-dims", ["@dimensions 0"], 1, r"@dimensions must be an integer >= 1, got '0'"),
    ("negative", ["@seriesLength -1"], 1, r"@seriesLength must be an integer >= 0, got '-1'"),
    ("no-labels", ["@classLabel true"], 1, r"@classLabel true must be followed by the labels"),
    ("false-labels", ["@classLabel false a"], 1, r"@classLabel false must not list labels"),
    (
        "repeat-labels",
        ["@classLabel true a b a"],
        1,
        r"@classLabel labels must be distinct, got repeated \['a'\]",
    ),
    ("label-flag", ["@classLabel yes a"], 1, r"@classLabel must be followed by 'true' or"),
    ("no-name", ["@problemName"], 1, r"@problemName must be followed by a name"),
    ("data-extra", ["@classLabel true a", "@data 1"], 2, r"@data must stand alone"),
    (
        "no-label-key",
        ["@problemName p", "@data"],
        2,
        r"header must declare @classLabel or @targetLabel before @data",
    ),
    (
        "two-targets",
        ["@classLabel true a", "@targetLabel true", "@data"],
        3,
        r"header must declare at most one of '@classLabel true' and '@targetLabel true', got both",
    ),
    (
        "univariate-dims",
        ["@univariate true", "@dimensions 2", "@classLabel false", "@data"],
        4,
        r"@dimensions must be 1 with '@univariate true', got 2",
    ),
    (
        "header-after-data",
        [*HEADER, "1:2:a", "@missing true"],
        8,
        r"data line must not be a header line after @data, got '@missing true'",
    ),
    (
        "channel-count",
        [*HEADER, "1:2:a", "", "1:2:3:a"],
        9,
        r"case must have 2 channels separated by ':' \(from the header\), got 3",
    ),
    (
        "univariate-count",
        ["@univariate true", "@classLabel false", "@data", "1:2"],
        4,
        r"case must have 1 channels .*\(from the header\), got 2",
    ),
    (
        "first-case-count",
        ["@classLabel true a", "@data", "1:2:a", "1:a"],
        4,
        r"case must have 2 channels separated by ':' \(from the first case\), got 1",
    ),
    (
        "non-numeric",
        [*HEADER, "1,2:3:a", "# skip", "1:2,abc:b"],
        9,
        r"values must be finite decimal numbers or '\?', got 'abc' at channel 1, step 1",
    ),
    (
        "empty-value",
        [*HEADER, "1,,2:3:a"],
        7,
        r"values must be finite decimal numbers or '\?', got '' at channel 0, step 1",
    ),
    (
        "glued-missing",
        [*HEADER, "1?:3:a"],
        7,
        r"values must be finite decimal numbers or '\?', got '1\?'",
    ),
    (
        "unknown-label",
        [*HEADER, "1:2:c"],
        7,
        r"label must be one of the @classLabel labels \['a', 'b'\], got 'c'",
    ),
    ("no-label", ["@classLabel true a", "@data", "1,2"], 3, r"case must end with ':<class label>'"),
    (
        "bad-target",
        ["@targetLabel true", "@data", "1:x"],
        3,
        r"target must be a finite decimal number, got 'x'",
    ),
    (
        "missing-false",
        ["@missing false", "@classLabel false", "@data", "1,2", "1,?"],
        5,
        r"values must not be '\?' because the header says '@missing false'",
    ),
    (
        "series-length",
        ["@equalLength true", "@seriesLength 2", "@classLabel false", "@data", "1,2", "1,2,3"],
        6,
        r"every channel must have length 2 \('@equalLength true', @seriesLength 2\), got .*\[3\]",
    ),
    (
        "equal-length",
        ["@equalLength true", "@classLabel false", "@data", "1,2:3,4", "5,6:7"],
        5,
        r"every channel must have length 2 .*the first case\), got channel lengths \[2, 1\]",
    ),
    (
        "stamp-separator",
        ["@timeStamps true", "@classLabel false", "@data", "(1,2)(3,4)"],
        4,
        r"timestamped values must be '\(timestamp,value\)' pairs separated by ','",
    ),
    (
        "stamp-pair",
        ["@timeStamps true", "@classLabel false", "@data", "(1,2),(34)"],
        4,
        r"timestamped value must be '\(timestamp,value\)', got '\(34\)'",
    ),
    (
        "stamp-value",
        ["@timeStamps true", "@classLabel false", "@data", "(1,2),(3,x)"],
        4,
        r"values must be finite decimal numbers or '\?', got 'x' at channel 0, step 1",
    ),
]


@pytest.mark.parametrize(
    ("lines", "line", "match"),
    [case[1:] for case in READ_ERRORS],
    ids=[case[0] for case in READ_ERRORS],
)
def test_read_ts_rejects_malformed_files_naming_file_and_line(tmp_path, lines, line, match):
    """Every malformed file raises ValueError naming the file, the line and the expectation."""
    path = write_lines(tmp_path, lines)
    with pytest.raises(ValueError, match=re.escape(f"read_ts: {path}:{line}: ") + match) as info:
        read_ts(path)
    assert str(info.value).endswith(".")


def test_bad_value_search_reports_a_broken_invariant():
    """The slow path finds nothing where every token is valid (the caller then reports a bug)."""
    cases = ts._Cases(tokens=["1"], channel_lengths=[1], labels=[""], line_numbers=[1])
    assert ts._bad_value(cases, "file.ts", 1, allow_missing=True) is None


# ----------------------------------------------------------------------------- writer errors

ONE = Ragged(np.ones((3, 1)), np.array([0, 2, 3]))

WRITE_ERRORS = [
    ("not-ragged", {"x": np.ones((3, 1))}, TypeError, r"write_ts: x must be a Ragged, got"),
    (
        "one-dimensional",
        {"x": Ragged(np.ones(3), np.array([0, 3]))},
        ValueError,
        r"x must have real values of shape \(N, C\) with C >= 1, got shape \(3,\)",
    ),
    (
        "no-channels",
        {"x": Ragged(np.ones((3, 0)), np.array([0, 3]))},
        ValueError,
        r"x must have real values of shape \(N, C\) with C >= 1, got shape \(3, 0\)",
    ),
    (
        "string-values",
        {"x": Ragged(np.array([["a"]]), np.array([0, 1]))},
        ValueError,
        r"x must have real values .* dtype <U1",
    ),
    (
        "y-shape",
        {"y": np.array([1.0])},
        ValueError,
        r"y must be None or have shape \(B,\) = \(2,\)",
    ),
    ("y-complex", {"y": np.array([1j, 2j])}, ValueError, r"got shape \(2,\) and dtype complex128"),
    ("label-space", {"y": np.array(["a b", "c"])}, ValueError, r"y\[0\] must be a non-empty label"),
    ("label-colon", {"y": np.array(["a", "b:c"])}, ValueError, r"y\[1\] must be a non-empty label"),
    ("label-empty", {"y": np.array(["", "a"])}, ValueError, r"y\[0\] must be a non-empty label"),
    (
        "declared-text",
        {"y": np.array(["a", "b"]), "class_labels": ["a", "b", "c d"]},
        ValueError,
        r"class_labels\[2\] must be a non-empty label",
    ),
    (
        "undeclared",
        {"y": np.array(["a", "z"]), "class_labels": ["a", "b"]},
        ValueError,
        r"y must only hold labels in class_labels, got \['z'\]",
    ),
    (
        "no-declared",
        {"x": Ragged(np.ones((0, 1)), np.array([0])), "y": np.array([], dtype=np.str_)},
        ValueError,
        r"class_labels must hold at least one label, got none",
    ),
    (
        "name",
        {"problem_name": "two  spaces"},
        ValueError,
        r"problem_name must be words separated by single spaces, got 'two  spaces'",
    ),
    ("empty-name", {"problem_name": ""}, ValueError, r"problem_name must be words"),
    (
        "blank-line",
        {"x": Ragged(np.ones((2, 1)), np.array([0, 2, 2])), "y": None},
        ValueError,
        r"x must have T_i >= 1 when C == 1 and y is None .*got lengths\[1\] == 0",
    ),
]


@pytest.mark.parametrize(
    ("arguments", "error", "match"),
    [case[1:] for case in WRITE_ERRORS],
    ids=[case[0] for case in WRITE_ERRORS],
)
def test_write_ts_rejects_bad_arguments_before_writing(tmp_path, arguments, error, match):
    """Bad inputs raise with the standard message, and no file is created."""
    path = tmp_path / "out.ts"
    kwargs = {"x": ONE, "y": np.array(["a", "b"]), **arguments}
    with pytest.raises(error, match=match):
        write_ts(path, kwargs.pop("x"), kwargs.pop("y"), **kwargs)
    assert not path.exists()


def test_write_ts_writes_integer_labels_and_declared_order(tmp_path):
    """Integer labels are written as text, in the declared order; values as shortest repr."""
    path = tmp_path / "ints.ts"
    x = Ragged(np.array([[0.1, 1], [1 / 3, 2]]), np.array([0, 1, 2]))
    write_ts(path, x, np.array([2, 10]), class_labels=["10", "2"])
    text = path.read_text(encoding="utf-8")
    assert "@classLabel true 10 2\n" in text
    assert text.endswith("@data\n0.1:1.0:2\n0.3333333333333333:2.0:10\n")
    data = read_ts(path)
    assert data.class_labels == ("10", "2")
    assert data.x == x


@pytest.mark.parametrize(
    ("missing", "token", "match"),
    [
        (
            "true",
            "1_000",
            r"values must be finite decimal numbers or '\?', got '1_000' at channel 0",
        ),
        ("true", "inf", r"got 'inf'"),
        ("true", "-Infinity", r"got '-Infinity'"),
        ("true", "1e400", r"got '1e400'"),
        ("true", "\u0661\u0662", r"finite decimal numbers"),
        ("false", "nan", r"must not be missing because the header says '@missing false'"),
        ("false", "NaN", r"got 'NaN' at channel 0, step 1"),
        ("false", "1e400", r"got '1e400'"),
    ],
)
def test_read_ts_numbers_are_strict(missing, token, match):
    """Python float()'s extras (1_000, inf, other digits, overflow) are not .ts numbers."""
    text = f"@problemName p\n@missing {missing}\n@classLabel true a\n@data\n1,{token},3:a\n"
    with pytest.raises(ValueError, match=match):
        read_ts(io.StringIO(text))


def test_read_ts_reads_nan_as_missing_and_plain_decimals():
    """A literal NaN is a missing value where missing values are allowed; decimals read."""
    text = "@problemName p\n@missing true\n@classLabel true a\n@data\n-1.5,.5,2e-3,NaN,+4:a\n"
    data = read_ts(io.StringIO(text))
    np.testing.assert_array_equal(data.x.values[:, 0], [-1.5, 0.5, 2e-3, np.nan, 4.0])


@pytest.mark.parametrize("target", ["1_0", "inf", "nan", "1e400"])
def test_read_ts_targets_are_strict_too(target):
    """Numeric targets follow the same rule."""
    text = f"@problemName p\n@missing true\n@targetLabel true\n@data\n1,2:{target}\n"
    with pytest.raises(ValueError, match=r"target must be a finite decimal number"):
        read_ts(io.StringIO(text))


def test_write_ts_refuses_what_read_ts_refuses(tmp_path):
    """Infinite values or non-finite targets cannot be written (they would not read back)."""
    x = Ragged(np.array([[1.0], [np.inf]]), np.array([0, 2]))
    with pytest.raises(ValueError, match=r"x must hold finite values or NaN .* inf"):
        write_ts(tmp_path / "a.ts", x, np.array(["a"]))
    x = Ragged(np.array([[1.0]]), np.array([0, 1]))
    with pytest.raises(ValueError, match=r"y must hold finite targets, got nan"):
        write_ts(tmp_path / "a.ts", x, np.array([np.nan]))
