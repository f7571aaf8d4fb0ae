"""``auto`` under the cost planner: bucket only when the cost model says it is clearly faster."""

from __future__ import annotations

import numpy as np
import pytest

from varlen.cli._common import CommandError
from varlen.cli._train_plan import choose_auto, conv_pools, estimated_choice
from varlen.training.budget import estimate_step_seconds
from varlen.training.models import ModelConfig


def _config(pools: tuple[int, ...] = ()) -> ModelConfig:
    """The default per-sequence model on one channel."""
    return ModelConfig(
        input_size=1,
        output_size=3,
        task="classification",
        bidirectional=True,
        conv_channels=(64, 64, 64),
        conv_kernels=(7, 5, 3),
        conv_pools=pools,
        series_norm=True,
    )


def _auto(lengths: np.ndarray, config: ModelConfig) -> tuple[str, str]:
    """What auto picks under the cost planner."""
    estimates = {
        name: estimate_step_seconds(config, lengths, batch_size=32, technique=name)
        for name in ("mask", "bucket")
    }
    return choose_auto(
        "sequence", timings=None, lengths=lengths, batch_size=32, estimates=estimates
    )


def test_margin_keeps_mask_unless_another_is_clearly_faster():
    """The timed rule's 20% margin, on estimates."""
    assert estimated_choice({"mask": 0.0119, "bucket": 0.0100})[0] == "mask"  # 19% faster
    assert estimated_choice({"mask": 0.0121, "bucket": 0.0100})[0] == "bucket"  # 21% faster
    name, reason = estimated_choice({"mask": 0.0119, "bucket": 0.0100}, margin=0.0)
    assert name == "bucket"
    assert "estimated fastest" in reason


def test_equal_lengths_keep_mask_skewed_long_lengths_bucket():
    """No padding to save: mask; much padding to save on long series: bucket."""
    rng = np.random.default_rng(0)
    equal = np.full(100, 1460)
    name, reason = _auto(equal, _config((2, 2, 4)))
    assert name == "mask"
    assert reason.startswith("auto: ")
    skewed = np.concatenate([rng.integers(100, 200, 300), rng.integers(1000, 1300, 300)])
    assert _auto(skewed, _config((2, 2, 2)))[0] == "bucket"


def test_short_lengths_choice_follows_the_estimate():
    """JapaneseVowels-like lengths (7-29): the rule is the estimate with the 20% margin."""
    lengths = np.random.default_rng(1).integers(7, 30, 270)
    config = _config()
    mask = estimate_step_seconds(config, lengths, batch_size=32, technique="mask")
    bucket = estimate_step_seconds(config, lengths, batch_size=32, technique="bucket")
    expected = "mask" if mask <= 1.2 * bucket else "bucket"
    assert _auto(lengths, config)[0] == expected


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
