"""``auto`` under the cost planner: bucket only when the cost model says it is clearly faster."""

from __future__ import annotations

import numpy as np
import pytest

from varlen.cli._common import CommandError
from varlen.cli._train_plan import (
    choose_auto,
    conv_pools,
    estimated_choice,
    plan_augment,
    plan_levels,
    plan_pooling,
)
from varlen.training.budget import estimate_step_seconds
from varlen.training.models import ModelConfig


def _config(*, features: int = 1, pools: tuple[int, ...] = ()) -> ModelConfig:
    """The CLI's default per-sequence model."""
    return ModelConfig(
        input_size=features,
        output_size=3,
        task="classification",
        bidirectional=True,
        conv_channels=(64, 64, 64),
        conv_kernels=(7, 5, 3),
        conv_pools=pools,
        series_norm=True,
    )


def _auto(
    lengths: np.ndarray, config: ModelConfig, *, steps: int | None = 2000, budget: float = 300.0
) -> tuple[str, str]:
    """What auto picks under the cost planner (the CLI's defaults: 2,000 steps, 300 s)."""
    estimates = {
        name: estimate_step_seconds(config, lengths, batch_size=32, technique=name)
        for name in ("mask", "bucket")
    }
    return choose_auto(
        "sequence",
        timings=None,
        lengths=lengths,
        batch_size=32,
        estimates=estimates,
        steps=steps,
        time_budget=budget,
    )


def test_margin_keeps_mask_unless_another_is_clearly_faster():
    """Without a binding time budget: the timed rule's 20% margin, on estimates."""
    assert estimated_choice({"mask": 0.0119, "bucket": 0.0100})[0] == "mask"  # 19% faster
    assert estimated_choice({"mask": 0.0121, "bucket": 0.0100})[0] == "bucket"  # 21% faster
    name, reason = estimated_choice({"mask": 0.0119, "bucket": 0.0100}, margin=0.0)
    assert name == "bucket"
    assert "estimated fastest" in reason


def test_speed_counts_only_when_the_time_budget_binds():
    """Mask's steps fit the budget: a faster bucket would train the same steps."""
    estimates = {"mask": 0.020, "bucket": 0.010}
    assert estimated_choice(estimates, steps=2000, time_budget=40.0)[0] == "mask"
    assert estimated_choice(estimates, steps=2000, time_budget=39.0)[0] == "bucket"
    assert estimated_choice(estimates, steps=None, time_budget=40.0)[0] == "bucket"  # epochs


def test_japanese_vowels_lengths_keep_mask_long_skewed_lengths_bucket():
    """JapaneseVowels-like lengths keep mask; long skewed series whose budget binds: bucket.

    270 series of 7-29 steps, 12 channels: bucket is estimated over 20% faster, but mask's
    2,000 steps fit 300 s, so mask, as the timed rule chose.
    """
    lengths = np.random.default_rng(1).integers(7, 30, 270)
    config = _config(features=12)
    mask = estimate_step_seconds(config, lengths, batch_size=32, technique="mask")
    bucket = estimate_step_seconds(config, lengths, batch_size=32, technique="bucket")
    assert mask > 1.2 * bucket  # the margin alone would pick bucket (the regression)
    name, reason = _auto(lengths, config)
    assert name == "mask"
    assert reason.startswith("auto: mask's 2000 steps fit")
    assert _auto(lengths, config, steps=None)[0] == "bucket"  # no time budget: the margin
    rng = np.random.default_rng(0)
    skewed = np.concatenate([rng.integers(100, 200, 300), rng.integers(1000, 1300, 300)])
    assert _auto(skewed, _config(pools=(2, 2, 2)))[0] == "bucket"
    assert _auto(np.full(100, 1460), _config(pools=(2, 2, 4)))[0] == "mask"  # no padding


def test_pool_one_is_no_pooling():
    """A total factor of 1 (given or chosen) records no pooling, as before pooling existed."""
    assert conv_pools(1, 3, np.array([5000])) == ()
    assert conv_pools(None, 3, np.array([10, 20])) == ()
    assert conv_pools(None, 3, np.array([1460] * 4)) == (2, 2, 4)


@pytest.mark.parametrize("pool", [2, 16])
def test_pool_without_convolutions_is_refused(pool):
    """--pool needs the front-end."""
    with pytest.raises(CommandError, match="--conv-layers 0"):
        conv_pools(pool, 0, np.array([100]))


@pytest.mark.parametrize(
    ("given", "per_class", "lengths", "classification", "kind", "on", "why"),
    [
        (None, 5, (30, 360), True, "sequence", True, "on (5 training series a class on average"),
        (None, 19.5, (30, 40), True, "sequence", True, "on (19.5 training series"),
        (None, 20, (30, 360), True, "sequence", False, "off (20 training series a class on"),
        (None, 5, (1460, 1460), True, "sequence", False, "off (lengths about equal, 1460-1460"),
        (None, 5, (100, 110), True, "sequence", False, "off (lengths about equal"),
        (None, 5, (30, 360), False, "sequence", False, "off (regression"),
        (False, 5, (30, 360), True, "sequence", False, "off (--no-augment)"),
        (True, 100, (9, 9), False, "sequence", True, "on (--augment)"),
        (None, 5, (30, 360), True, "step", False, "off (per-step targets"),
    ],
)
def test_plan_augment_from_the_data(given, per_class, lengths, classification, kind, on, why):
    """On for classifiers with few series a class of varying lengths; never per step.

    The flag decides when given.
    """
    y = np.arange(int(per_class * 4)) % 4
    low, high = lengths
    spread = np.linspace(low, high, len(y)).round().astype(np.int64)
    got, reason = plan_augment(y, spread, augment=given, classification=classification, kind=kind)
    assert got is on
    assert reason.startswith(why)


@pytest.mark.parametrize(
    ("given", "lengths", "kind", "pooling", "why"),
    [
        (None, [1460] * 4, "sequence", "max", "max over real steps (long windows of about one"),
        (None, [1000] * 9 + [1240], "sequence", "max", "max over real steps (long windows"),
        (None, [1000] * 8 + [1250] * 2, "sequence", "mean", "mean over real steps (lengths vary"),
        (None, [34, 207, 207, 360], "sequence", "mean", "mean over real steps (lengths vary"),
        (None, [128] * 4, "sequence", "mean", "mean over real steps (median length 128 steps"),
        (None, [], "sequence", "mean", "mean over real steps (median length 0"),
        ("mean", [1460] * 4, "sequence", "mean", "mean over real steps (--pooling)"),
        ("last", [10], "sequence", "last", "last over real steps (--pooling)"),
        (None, [1460] * 4, "step", "mean", "none (an output at every step)"),
    ],
)
def test_plan_pooling_from_the_lengths(given, lengths, kind, pooling, why):
    """Max over the real steps of long windows of one length, mean of other series.

    Long: a median over 128 steps; one length: the 90th percentile under 1.25x the 10th. The
    flag decides when given; a per-step model has no readout (mean, as recorded before).
    """
    got, reason = plan_pooling(np.array(lengths, dtype=np.int64), pooling=given, kind=kind)
    assert got == pooling
    assert reason.startswith(why)


def test_a_regressor_keeps_the_mean_readout():
    """The max readout was measured on classifiers; a regressor of long windows keeps the mean."""
    lengths = np.full(4, 1460, dtype=np.int64)
    got, reason = plan_pooling(lengths, pooling=None, kind="sequence", classification=False)
    assert got == "mean"
    assert "regressor" in reason
    assert plan_pooling(lengths, pooling="max", kind="sequence", classification=False)[0] == "max"


FEW = np.repeat(np.arange(10), 5)  # 10 classes of 5 series, as the gesture-like set
VARY = np.linspace(34, 360, 50).astype(np.int64)


@pytest.mark.parametrize(
    ("y", "lengths", "options", "levels", "why"),
    [
        (FEW, VARY, {}, False, "dropped: each series standardized only (one channel, 5 training"),
        (FEW, VARY, {"num_features": 6}, True, "kept (6 channels"),
        (np.repeat(np.arange(10), 20), np.linspace(34, 360, 200), {}, True,
         "kept (not few series a class of varying lengths; augment: off (20 training series"),
        (FEW, np.full(50, 1460), {}, True,
         "kept (not few series a class of varying lengths; augment: off (lengths about equal"),
        (FEW, VARY, {"classification": False}, True, "kept (a regressor's target may be a level)"),
        (FEW, VARY, {"series_norm": False}, True, "kept (no standardized view"),
        (FEW, VARY, {"kind": "step"}, True, "kept (per-step)"),
        (FEW, VARY, {"levels": True}, True, "kept (--levels)"),
        (FEW, np.full(50, 1460), {"levels": False}, False, "dropped (--no-levels)"),
    ],
)  # fmt: skip
def test_plan_levels_drops_them_for_one_channel_of_few_series(y, lengths, options, levels, why):
    """One channel, few series a class of varying lengths (plan_augment's rule): no levels.

    Several channels, many series, one length, a regressor, no standardized view or a
    per-step model keep them; the flag decides when given.
    """
    kwargs = {"levels": None, "num_features": 1, "series_norm": True, "classification": True,
              "kind": "sequence", **options}  # fmt: skip
    got, reason = plan_levels(y, np.asarray(lengths), **kwargs)
    assert got is levels
    assert reason.startswith(why), reason


def test_no_levels_without_the_standardized_view_is_refused():
    """--no-levels reads the standardized view alone: with --no-series-norm, one clear error."""
    with pytest.raises(CommandError, match=r"--no-levels .* got --no-series-norm .* Add --series"):
        plan_levels(FEW, VARY, levels=False, num_features=1, series_norm=False,
                    classification=True, kind="sequence")  # fmt: skip
