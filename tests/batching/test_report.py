"""Tests for the padding report: counts, efficiency, speed-up and agreement with the sampler."""

from __future__ import annotations

import ast
import math
import types
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import varlen.batching
from tests.reference.batching import padded_cost
from varlen.batching import (
    BucketBatchSampler,
    PaddingReport,
    compare_policies,
    format_reports,
    padding_report,
)

sizings = st.one_of(
    st.builds(lambda b: {"batch_size": b}, st.integers(1, 9)),
    st.builds(lambda m: {"max_tokens": m}, st.integers(1, 150)),
)


def benchmark_lengths(n=4096, seed=0):
    """Lengths log-normal with median 100, clipped to [5, 1000] (the issue's setting)."""
    rng = np.random.default_rng(seed)
    return np.clip(np.round(rng.lognormal(np.log(100), 1.0, n)), 5, 1000).astype(np.int64)


@given(lengths=st.lists(st.integers(0, 50), max_size=50), sizing=sizings, seed=st.integers(0, 3))
@example(lengths=[], sizing={"batch_size": 3}, seed=0)
@example(lengths=[0, 0], sizing={"max_tokens": 1}, seed=0)
def test_padding_report_bucket_counts_match_the_sampler(lengths, sizing, seed):
    """The bucket report counts exactly the batches and padded steps of the sampler's epoch 0."""
    report = padding_report(lengths, **sizing, policy="bucket", seed=seed)
    over = "max_tokens" in sizing and any(sizing["max_tokens"] < T for T in lengths)
    with pytest.warns(UserWarning, match="longer than max_tokens") if over else nullcontext():
        sampler = BucketBatchSampler(lengths, **sizing, seed=seed)
    batches = list(sampler)
    L = np.asarray(lengths, dtype=np.int64)
    assert report.num_batches == len(batches)
    assert report.computed_steps == sum(padded_cost(L, batch) for batch in batches)
    assert report.real_steps == sum(lengths)
    assert report.num_sequences == len(lengths)
    assert (report.policy, report.batch_size, report.max_tokens) == (
        "bucket",
        sizing.get("batch_size"),
        sizing.get("max_tokens"),
    )


@given(lengths=st.lists(st.integers(0, 50), max_size=50), sizing=sizings, seed=st.integers(0, 3))
@example(lengths=[0, 0, 0], sizing={"batch_size": 2}, seed=0)
def test_padding_report_ratios_are_consistent(lengths, sizing, seed):
    """Efficiency = real / computed in (0, 1], and speed-up = random computed / computed."""
    bucket = padding_report(lengths, **sizing, policy="bucket", seed=seed)
    random = padding_report(lengths, **sizing, policy="random", seed=seed)
    for report in (bucket, random):
        assert report.real_steps <= report.computed_steps or report.computed_steps == 0
        assert 0 < report.efficiency <= 1
        if report.computed_steps:
            assert report.efficiency == report.real_steps / report.computed_steps
        else:
            assert report.efficiency == report.speedup == 1.0
    assert random.speedup == 1.0
    if bucket.computed_steps:
        assert bucket.speedup == random.computed_steps / bucket.computed_steps
    if "batch_size" in sizing:
        assert (
            bucket.num_batches
            == random.num_batches
            == math.ceil(len(lengths) / sizing["batch_size"])
        )


def test_padding_report_meets_the_issue_targets():
    """On the benchmark distribution, random batches of 64 waste ~82%, buckets under 5%."""
    lengths = benchmark_lengths()
    random = padding_report(lengths, batch_size=64, policy="random")
    bucket = padding_report(lengths, batch_size=64, policy="bucket")
    assert 0.15 < random.efficiency < 0.22
    assert bucket.efficiency >= 0.95
    assert bucket.speedup > 4.5


def test_compare_policies_rows():
    """Three rows: random, bucketed and token-budget, each relative to random batching."""
    lengths = benchmark_lengths(1000, seed=1)
    rows = compare_policies(lengths, batch_size=32, seed=2)
    assert [(r.policy, r.batch_size, r.max_tokens) for r in rows] == [
        ("random", 32, None),
        ("bucket", 32, None),
        ("bucket", None, 32 * math.ceil(lengths.mean())),
    ]
    assert rows[0] == padding_report(lengths, batch_size=32, policy="random", seed=2)
    assert rows[1] == padding_report(lengths, batch_size=32, policy="bucket", seed=2)
    budget = padding_report(lengths, max_tokens=rows[2].max_tokens, seed=2)
    assert rows[2] == budget._replace(speedup=rows[0].computed_steps / budget.computed_steps)
    assert rows[2].efficiency > rows[1].efficiency > rows[0].efficiency
    explicit = compare_policies(lengths, batch_size=32, max_tokens=5000)
    assert explicit[2].max_tokens == 5000


def test_compare_policies_on_no_sequences():
    """Empty lengths give zero batches, efficiency 1 and a budget of 1."""
    rows = compare_policies([], batch_size=4)
    assert [row.num_batches for row in rows] == [0, 0, 0]
    assert [row.efficiency for row in rows] == [1.0, 1.0, 1.0]
    assert rows[2].max_tokens == 1


def test_format_reports_prints_one_line_per_row():
    """The table has a header and one aligned row per report."""
    rows = compare_policies(benchmark_lengths(500), batch_size=16)
    lines = format_reports(rows).splitlines()
    assert len(lines) == 4
    assert lines[0].split() == [
        "policy",
        "batch_size",
        "max_tokens",
        "batches",
        "real_steps",
        "computed_steps",
        "efficiency",
        "speedup",
    ]
    assert lines[3].split()[:3] == ["bucket", "-", str(rows[2].max_tokens)]
    assert len({len(line) for line in lines}) == 1
    assert isinstance(rows[0], PaddingReport)


@pytest.mark.parametrize(
    ("function", "kwargs", "error", "match"),
    [
        (padding_report, {"lengths": [1.0], "batch_size": 1}, TypeError, r"lengths must be int"),
        (padding_report, {"lengths": [1], "batch_size": 1, "max_tokens": 2}, ValueError, r"both"),
        (padding_report, {"lengths": [1]}, ValueError, r"got neither"),
        (padding_report, {"lengths": [1], "batch_size": 0}, ValueError, r"batch_size must be >= 1"),
        (
            padding_report,
            {"lengths": [1], "batch_size": 1, "policy": "sorted"},
            ValueError,
            r"policy must be 'random' or 'bucket', got 'sorted'",
        ),
        (padding_report, {"lengths": [1], "batch_size": 1, "seed": -2}, ValueError, r"seed must"),
        (compare_policies, {"lengths": [1], "batch_size": 0}, ValueError, r"batch_size must be"),
        (
            compare_policies,
            {"lengths": [1], "batch_size": 1, "max_tokens": 0},
            ValueError,
            r"max_tokens must be >= 1, got 0",
        ),
        (compare_policies, {"lengths": [1], "batch_size": 1, "seed": 1.0}, TypeError, r"seed must"),
    ],
)
def test_report_functions_reject_bad_arguments(function, kwargs, error, match):
    """Bad arguments raise a message that names the function and the argument."""
    kwargs = dict(kwargs)
    lengths = kwargs.pop("lengths")
    with pytest.raises(error, match=rf"^{function.__name__}: .*{match}"):
        function(lengths, **kwargs)


# ------------------------------------------------------------------------ packaging

PACKAGE = Path(varlen.batching.__file__).parent


@pytest.mark.parametrize("module", ["report.py", "_plan.py", "_validate.py"])
def test_report_modules_import_no_torch(module):
    """The report and its helpers use NumPy only, so the CLI could run them without torch."""
    tree = ast.parse((PACKAGE / module).read_text(encoding="utf-8"))
    imported = {
        a.name for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names
    }
    imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    allowed = {
        "varlen._checks",
        "varlen._types",
        "varlen.batching._plan",
        "varlen.batching._validate",
    }
    assert not {name for name in imported if name and name.split(".")[0] == "torch"}
    assert {name for name in imported if name and name.startswith("varlen")} <= allowed


def test_batching_all_is_sorted_and_complete():
    """varlen.batching lists every public name in a sorted __all__, and each resolves."""
    exported = list(varlen.batching.__all__)
    assert exported == sorted(exported)
    assert all(hasattr(varlen.batching, name) for name in exported)
    public = {
        name
        for name, value in vars(varlen.batching).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    } - {"annotations"}
    assert public == set(exported)
