"""`varlen predict` caps oneDNN's kernel cache so that its memory does not grow with the data (#22).

oneDNN keeps one compiled kernel per distinct batch shape (~0.35 MB for an LSTM, 1024 by
default); length-bucketed batches over a large store meet a new shape nearly every batch.
"""

from __future__ import annotations

import os

import pytest

from varlen.cli import KERNEL_CACHE_CAPACITY, limit_kernel_cache, main


def test_sets_the_cap_when_unset() -> None:
    """An unset cap is set to the capacity asked, nothing else changes."""
    env: dict[str, str] = {"OTHER": "1"}
    limit_kernel_cache(env, 16)
    assert env == {"OTHER": "1", "ONEDNN_PRIMITIVE_CACHE_CAPACITY": "16"}


@pytest.mark.parametrize(
    "name", ["ONEDNN_PRIMITIVE_CACHE_CAPACITY", "DNNL_PRIMITIVE_CACHE_CAPACITY"]
)
def test_keeps_the_users_setting(name: str) -> None:
    """A cap the user set (either spelling) is left as it is."""
    env = {name: "1024"}
    limit_kernel_cache(env)
    assert env == {name: "1024"}


def test_refuses_a_negative_capacity() -> None:
    """A negative capacity is an error naming what was received."""
    with pytest.raises(ValueError, match="capacity must be >= 0, got -1"):
        limit_kernel_cache({}, -1)


def test_predict_sets_it_before_running_and_train_does_not(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``varlen predict`` sets the cap first; other commands keep oneDNN's default."""
    for name in ("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "DNNL_PRIMITIVE_CACHE_CAPACITY"):
        monkeypatch.setenv(name, "0")  # recorded, so the variable is restored after the test
        monkeypatch.delenv(name)
    assert main(["train", "--help"]) == 0
    assert "ONEDNN_PRIMITIVE_CACHE_CAPACITY" not in os.environ
    assert main(["predict", "--help"]) == 0
    assert os.environ["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] == str(KERNEL_CACHE_CAPACITY)
    assert "predict" in capsys.readouterr().out
