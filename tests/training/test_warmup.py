"""TrainConfig refuses a warm-up longer than its step budget."""

from __future__ import annotations

import pytest

from varlen.training import TrainConfig


def test_warmup_longer_than_max_steps_is_refused():
    """warmup_steps > max_steps: the learning rate would never reach lr."""
    with pytest.raises(ValueError, match=r"warmup_steps = 11 is longer than the run \(max_steps"):
        TrainConfig(technique="mask", max_steps=10, warmup_steps=11)
    assert TrainConfig(technique="mask", max_steps=10, warmup_steps=10).warmup_steps == 10
