"""Plans made from the data alone: front-end pools and the cost model."""

from __future__ import annotations

import numpy as np
import pytest

from varlen.training.budget import (
    CostModel,
    estimate_step_seconds,
    front_end_pools,
    spread_pools,
)
from varlen.training.models import ModelConfig


@pytest.mark.parametrize(
    ("median", "layers", "pools"),
    [
        (20, 3, (1, 1, 1)),
        (128, 3, (1, 1, 1)),
        (200, 3, (2, 1, 1)),
        (700, 3, (2, 2, 2)),
        (1460, 3, (2, 2, 4)),
        (100_000, 3, (2, 2, 4)),  # at most `largest`
        (1460, 1, (16,)),
        (1460, 0, ()),
    ],
)
def test_front_end_pools_bring_the_median_to_the_target(
    median: int, layers: int, pools: tuple[int, ...]
) -> None:
    """The total factor is the smallest power of two reaching the target, spread from the front."""
    lengths = np.array([median // 2, median, median * 2])
    assert front_end_pools(lengths, layers) == pools
    assert front_end_pools(np.zeros(0, dtype=np.int64), layers) == (1,) * layers


def test_spread_pools_keeps_the_product_and_refuses_what_cannot_be_spread() -> None:
    """Factors multiply to the total; an odd remainder goes to the last block."""
    for total in range(1, 40):
        for layers in (1, 2, 3):
            assert int(np.prod(spread_pools(total, layers))) == total
    assert spread_pools(12, 3) == (2, 2, 3)
    with pytest.raises(ValueError, match="needs convolution blocks, got 0"):
        spread_pools(2, 0)
    with pytest.raises(ValueError, match="total must be an int >= 1, got 0"):
        spread_pools(0, 3)


def _config(pools: tuple[int, ...] = (), layers: int = 3) -> ModelConfig:
    return ModelConfig(
        1,
        10,
        hidden_size=64,
        bidirectional=True,
        conv_channels=(64,) * layers,
        conv_kernels=(7, 5, 3)[:layers],
        conv_pools=pools,
        series_norm=True,
    )


def test_cost_model_is_a_pure_function_of_the_data_and_grows_with_the_work() -> None:
    """Same inputs, same estimate; longer series, wider batches or no pooling cost more."""
    lengths = np.random.default_rng(0).integers(100, 1300, 500)
    one = estimate_step_seconds(_config(), lengths, batch_size=32, technique="mask")
    assert one == estimate_step_seconds(_config(), lengths, batch_size=32, technique="mask")
    assert estimate_step_seconds(_config(), lengths * 2, batch_size=32, technique="mask") > one
    assert estimate_step_seconds(_config(), lengths, batch_size=64, technique="mask") > one
    pooled = estimate_step_seconds(_config((2, 2, 2)), lengths, batch_size=32, technique="mask")
    assert pooled < one
    bucketed = estimate_step_seconds(_config(), lengths, batch_size=32, technique="bucket")
    assert bucketed < one  # fewer pads
    free = CostModel(per_step=1.0, per_time_step=0.0, per_gmac=0.0)
    assert (
        estimate_step_seconds(_config(), lengths, batch_size=32, technique="mask", cost=free) == 1
    )
    assert estimate_step_seconds(_config(), lengths[:0], batch_size=32, technique="mask") == (
        CostModel().per_step
    )
