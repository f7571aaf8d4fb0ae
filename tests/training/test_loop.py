"""fit / evaluate / predict: learning, exact resume from checkpoints, early stopping, batching."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.cli._data import sequences
from varlen.data.grid import LengthGrid
from varlen.data.ragged import Ragged
from varlen.training.loop import (
    TrainConfig,
    _lr_factor,
    choose_technique,
    epoch_steps,
    evaluate,
    fit,
    planned_epochs,
    planned_steps,
    predict,
    predict_scores,
    split_validation,
)
from varlen.training.models import SequenceClassifier, SequenceRegressor
from varlen.training.techniques import TECHNIQUES


def easy_data(n=48, seed=0):
    """Float32 sequences whose class (0/1) is the sign of feature 0's mean, and sum targets."""
    x, labels, targets = sequences(n, seed=seed)
    return x.with_values(x.values.astype(np.float32)), (labels == "up").astype(np.int64), targets


def tiny_classifier(seed=0, **options):
    """A seeded classifier with H = 6."""
    torch.manual_seed(seed)
    return SequenceClassifier(2, 2, hidden_size=6, **options)


def split_reference(y, fraction, seed, stratify):
    """The validation indices, class by class, as documented (slow and obvious)."""
    rng = np.random.default_rng(seed)
    groups = [np.flatnonzero(y == c) for c in np.unique(y)] if stratify else [np.arange(len(y))]
    chosen = []
    for group in groups:
        chosen.extend(rng.permutation(group)[: round(fraction * len(group))].tolist())
    return sorted(chosen)


@settings(max_examples=50)
@given(
    y=st.lists(st.integers(0, 3), max_size=40).map(np.array),
    fraction=st.floats(0, 0.99),
    seed=st.integers(0, 2**32 - 1),
    stratify=st.booleans(),
)
@example(y=np.array([], dtype=np.int64), fraction=0.5, seed=0, stratify=True)
@example(y=np.array([1]), fraction=0.4, seed=0, stratify=True)
def test_split_validation_partitions_and_stratifies(y, fraction, seed, stratify):
    """Train and validation partition 0..n-1, sorted; each class gives round(fraction * n_c)."""
    train, val = split_validation(y, fraction, seed=seed, stratify=stratify)
    assert train.dtype == np.int64
    assert val.dtype == np.int64
    np.testing.assert_array_equal(np.sort(np.concatenate([train, val])), np.arange(len(y)))
    assert np.all(np.diff(train) > 0)
    assert val.tolist() == split_reference(y, fraction, seed, stratify)


def test_split_validation_rejects_fraction_out_of_range():
    """A fraction of 1 (or more, or negative) leaves nothing to train on."""
    with pytest.raises(ValueError, match=r"split_validation: fraction must be in \[0, 1\), got 1"):
        split_validation(np.zeros(3), 1, seed=0, stratify=False)


def test_choose_technique_mask_for_equal_lengths():
    """Equal lengths pad nothing in random batches: masking, no bucketing."""
    name, reason = choose_technique(np.full(100, 7), batch_size=16)
    assert name == "mask"
    assert reason.startswith("random batches of 16 are already 100% real steps")


def test_choose_technique_bucket_for_spread_lengths():
    """Widely spread lengths waste compute on pads: bucketing, with both efficiencies named."""
    lengths = np.random.default_rng(0).integers(1, 200, size=300)
    name, reason = choose_technique(lengths, batch_size=32)
    assert name == "bucket"
    assert "real steps, bucketed" in reason


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"technique": "zip"}, ValueError, r"technique must be 'pad-pre' or"),
        ({"select": "auc"}, ValueError, r"select must be 'loss' or 'metric', got 'auc'\."),
        ({"epochs": 0}, ValueError, r"TrainConfig: epochs must be an int >= 1, got 0\."),
        ({"batch_size": True}, ValueError, r"batch_size must be an int >= 1, got True\."),
        ({"lr": 0.0}, ValueError, r"TrainConfig: lr must be finite and > 0, got 0.0\."),
        ({"lr": float("inf")}, ValueError, r"TrainConfig: lr must be finite and > 0, got inf\."),
        ({"lr": float("nan")}, ValueError, r"TrainConfig: lr must be finite and > 0, got nan\."),
    ],
)
def test_train_config_rejects_bad_values(options, error, match):
    """Bad training options fail when the config is built."""
    with pytest.raises(error, match=match):
        TrainConfig(**options)


def test_fit_learns_an_easy_task():
    """A few epochs learn the sign of a feature's mean; the result records every epoch."""
    x, y, _ = easy_data(64)
    model = tiny_classifier()
    config = TrainConfig(epochs=8, batch_size=8, lr=0.02)
    result = fit(model, x[:48], y[:48], config=config, validation=(x[48:], y[48:]), progress=False)
    assert [stats.epoch for stats in result.history] == list(range(8))
    _, accuracy = evaluate(model, x[48:], y[48:])
    assert accuracy >= 0.9
    assert result.history[-1].train_loss < result.history[0].train_loss
    assert all(0 < stats.padding_efficiency <= 1 for stats in result.history)


def test_fit_keeps_the_best_epoch_weights():
    """After fit, the model holds the weights of the epoch with the lowest validation loss."""
    x, y, _ = easy_data(40)
    model = tiny_classifier()
    config = TrainConfig(epochs=5, batch_size=8, lr=0.05, patience=None)
    result = fit(model, x[:30], y[:30], config=config, validation=(x[30:], y[30:]), progress=False)
    losses = [stats.val_loss for stats in result.history]
    assert None not in losses
    assert result.best_epoch == int(np.argmin(np.array(losses, dtype=float)))
    loss, _ = evaluate(model, x[30:], y[30:])
    assert loss == pytest.approx(losses[result.best_epoch], abs=1e-6)


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_fit_select_metric_keeps_the_epoch_of_best_metric_ties_to_lower_loss(task):
    """select='metric' keeps the best validation metric's epoch; ties go to the lower loss."""
    x, y, targets = easy_data(40)
    torch.manual_seed(0)
    if task == "classification":
        model = tiny_classifier()
    else:
        model, y = SequenceRegressor(2, 1, hidden_size=6), targets.astype(np.float32)
    config = TrainConfig(epochs=6, batch_size=8, lr=0.05, patience=None, select="metric")
    result = fit(model, x[:30], y[:30], config=config, validation=(x[30:], y[30:]), progress=False)
    sign = -1.0 if task == "classification" else 1.0  # accuracy up, MAE down
    keys = [(sign * s.val_metric, s.val_loss) for s in result.history]  # type: ignore[operator]
    assert result.best_epoch == min(range(len(keys)), key=lambda i: keys[i])
    _, metric = evaluate(model, x[30:], y[30:])
    assert metric == pytest.approx(result.history[result.best_epoch].val_metric, abs=1e-6)


def test_fit_raises_when_the_training_loss_is_not_finite(tmp_path):
    """A NaN loss stops training with an error naming epoch, batch and lr.

    The checkpoint of the last finished epoch stays (before, fit returned the untrained
    weights as 'best' and reported success).
    """
    x, y, _ = easy_data(24)
    model = tiny_classifier()
    checkpoint = tmp_path / "ckpt.pt"
    fit(
        model,
        x,
        y,
        config=TrainConfig(epochs=1, batch_size=8),
        checkpoint=checkpoint,
        progress=False,
    )
    saved = checkpoint.read_bytes()
    with torch.no_grad():
        next(model.parameters()).fill_(float("nan"))
    config = TrainConfig(epochs=3, batch_size=8, lr=0.01)
    with pytest.raises(
        FloatingPointError,
        match=r"loss must stay finite, got nan at epoch 1, batch 1: .*\(lr=0\.01\)",
    ):
        fit(model, x, y, config=config, validation=(x, y), checkpoint=checkpoint, progress=False)
    assert checkpoint.read_bytes() == saved  # the diverged run overwrote nothing


def test_fit_raises_when_no_validation_loss_is_finite():
    """Validation data that gives NaN outputs in every epoch is an error, not a silent pick."""
    x, y, _ = easy_data(24)
    bad = Ragged(np.full_like(x.values, np.nan), x.offsets)
    with pytest.raises(FloatingPointError, match=r"validation loss must be finite in at least one"):
        fit(tiny_classifier(), x, y, config=TrainConfig(epochs=2, batch_size=8),
            validation=(bad, y), progress=False)  # fmt: skip


def test_choose_technique_mask_when_bucketing_cannot_help():
    """All sequences in one batch: bucketing changes nothing, so masking, saying why."""
    name, reason = choose_technique(np.array([3, 50, 7, 90, 12]), batch_size=32)
    assert name == "mask"
    assert reason.startswith("bucketing would not help: random batches of 32 are ")


def test_fit_stops_early_without_progress():
    """Random labels: validation stops improving and patience ends training early."""
    x, _, _ = easy_data(40)
    y = np.random.default_rng(1).integers(0, 2, size=40)
    config = TrainConfig(epochs=40, batch_size=8, lr=0.05, patience=2)
    result = fit(
        tiny_classifier(), x[:30], y[:30], config=config, validation=(x[30:], y[30:]),
        progress=False,
    )  # fmt: skip
    assert result.stopped_early
    assert len(result.history) == result.best_epoch + 3


def without_times(result):
    """The history with the wall-clock fields zeroed."""
    return [
        dataclasses.replace(stats, real_steps_per_second=0.0, seconds=0.0, train_seconds=0.0)
        for stats in result.history
    ]


@pytest.mark.parametrize("technique", ["bucket", "mask", "lanes"])
def test_fit_resume_equals_uninterrupted(tmp_path, technique):
    """Stopping after epoch 1 and resuming from its checkpoint gives the same weights."""
    x, y, _ = easy_data(32)
    validation = (x[24:], y[24:])
    config = TrainConfig(technique=technique, epochs=3, batch_size=6, lr=0.02, seed=5)
    options: dict[str, Any] = {"config": config, "validation": validation, "progress": False}
    whole = tiny_classifier(dropout=0.3, num_layers=2)
    expected = fit(whole, x[:24], y[:24], checkpoint=tmp_path / "a.pt", **options)

    first = tiny_classifier(dropout=0.3, num_layers=2)
    short = {**options, "config": dataclasses.replace(config, epochs=1)}
    fit(first, x[:24], y[:24], checkpoint=tmp_path / "b.pt", **short)
    resumed = tiny_classifier(seed=99, dropout=0.3, num_layers=2)  # weights come from the file
    got = fit(resumed, x[:24], y[:24], checkpoint=tmp_path / "b.pt", resume=True, **options)

    assert without_times(got) == without_times(expected)
    assert got.best_epoch == expected.best_epoch
    for name, tensor in whole.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[name], tensor, rtol=0, atol=0)


def test_fit_checkpoint_holds_only_tensors_and_plain_values(tmp_path):
    """The checkpoint loads with weights_only=True and records the last epoch."""
    x, y, _ = easy_data(16)
    config = TrainConfig(epochs=2, batch_size=8)
    fit(tiny_classifier(), x, y, config=config, checkpoint=tmp_path / "c.pt", progress=False)
    state = torch.load(tmp_path / "c.pt", weights_only=True)
    assert state["epoch"] == 1
    assert len(state["history"]) == 2
    assert not list(tmp_path.glob("*.tmp"))


def test_fit_without_validation_selects_on_training_loss():
    """No validation data: no validation numbers, the best epoch follows the training loss."""
    x, y, _ = easy_data(16)
    config = TrainConfig(epochs=3, batch_size=8, lr=0.02)
    result = fit(tiny_classifier(), x, y, config=config, progress=False)
    assert all(stats.val_loss is None for stats in result.history)
    losses = [stats.train_loss for stats in result.history]
    assert result.best_epoch == int(np.argmin(losses))


EXACT = sorted(
    name for name, technique in TECHNIQUES.items() if technique.exact and name != "one-at-a-time"
)  # one-at-a-time is the reference


@pytest.mark.parametrize("technique", EXACT)
@pytest.mark.parametrize("pooling", ["last", "mean", "max"])
def test_predict_scores_exact_techniques_equal_one_at_a_time(technique, pooling):
    """Every exact technique scores each sequence as if run alone, in input order."""
    x, _, _ = easy_data(11, seed=3)
    model = tiny_classifier(pooling=pooling, bidirectional=True)
    alone = predict_scores(model, x, technique="one-at-a-time")
    got = predict_scores(model, x, technique=technique, batch_size=4)
    torch.testing.assert_close(got, alone, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("technique", ["pad-pre", "pad-post"])
def test_predict_scores_unmasked_padding_changes_results(technique):
    """Without a mask, pads leak into the result of every shorter sequence (the pitfall)."""
    x, _, _ = easy_data(8, seed=3)
    model = tiny_classifier()
    alone = predict_scores(model, x, technique="one-at-a-time")
    got = predict_scores(model, x, technique=technique, batch_size=8)
    longest = int(np.argmax(x.lengths))
    torch.testing.assert_close(got[longest], alone[longest], atol=1e-5, rtol=1e-5)
    shorter = x.lengths < x.lengths.max()
    assert not torch.allclose(got[shorter], alone[shorter], atol=1e-4)


def test_evaluate_matches_predictions():
    """Accuracy is the share of predict's ids equal to y; MAE compares predicted values."""
    x, y, targets = easy_data(20)
    model = tiny_classifier()
    _, accuracy = evaluate(model, x, y)
    ids = predict(model, x)
    assert ids.dtype == np.int64
    assert accuracy == pytest.approx(np.mean(ids == y))
    torch.manual_seed(0)
    regressor = SequenceRegressor(2, 1, hidden_size=4)
    loss, mae = evaluate(regressor, x, targets.astype(np.float32))
    values = predict(regressor, x)
    assert values.shape == (20, 1)
    assert mae == pytest.approx(np.mean(np.abs(values[:, 0] - targets)), rel=1e-5)
    assert loss == pytest.approx(np.mean((values[:, 0] - targets) ** 2), rel=1e-4)


def test_predict_empty_and_zero_length_sequences():
    """B = 0 gives no rows; a length-0 sequence still gets a score."""
    model = tiny_classifier()
    empty = Ragged(np.zeros((0, 2), dtype=np.float32), np.array([0]))
    assert predict_scores(model, empty).shape == (0, 2)
    x = Ragged(np.ones((3, 2), dtype=np.float32), np.array([0, 0, 3]))
    scores = predict_scores(model, x)
    assert scores.shape == (2, 2)
    assert torch.isfinite(scores).all()


def test_fit_progress_bars_show_losses_and_metric(capsys):
    """With progress on, the bars on stderr show the loss, validation loss and metric."""
    x, y, _ = easy_data(16)
    config = TrainConfig(epochs=2, batch_size=8)
    fit(tiny_classifier(), x[:12], y[:12], config=config, validation=(x[12:], y[12:]))
    err = capsys.readouterr().err
    assert "training" in err
    assert "val_loss=" in err
    assert "val_accuracy=" in err  # the metric is named


@pytest.mark.parametrize("patience", [0, -1, 1.5, True])
def test_train_config_rejects_patience_below_one(patience):
    """Patience is a number of epochs >= 1, or None to never stop early."""
    with pytest.raises(ValueError, match="patience must be an int >= 1 or None"):
        TrainConfig(patience=patience)


def test_fit_budget_in_steps_with_warmup_and_cosine_schedule():
    """max_steps sets the epochs; the learning rate warms up, then decays to zero."""
    x, y, _ = easy_data(16)
    config = TrainConfig(
        epochs=1000, batch_size=8, lr=0.01, max_steps=10, warmup_steps=3, schedule="cosine"
    )
    model = tiny_classifier()
    result = fit(model, x, y, config=config, progress=False)
    assert result.planned_epochs == 5  # 2 steps per epoch
    assert len(result.history) == 5
    assert result.steps == 10
    factor = _lr_factor(config, 10)
    assert [round(factor(s), 3) for s in (0, 1, 2)] == [0.333, 0.667, 1.0]
    assert factor(10) == pytest.approx(0.0)
    assert 0 < factor(6) < 1


def test_fit_patience_in_steps_and_log_lines():
    """Patience counts optimizer steps; each epoch logs a line naming the metric."""
    x, y, _ = easy_data(16)
    config = TrainConfig(epochs=50, batch_size=4, lr=1e-9, patience=6, patience_unit="steps")
    lines: list[str] = []
    result = fit(
        tiny_classifier(), x[:12], y[:12], config=config, validation=(x[12:], y[12:]),
        progress=False, log=lines.append,
    )  # fmt: skip
    assert result.stopped_early
    assert len(result.history) - 1 - result.best_epoch == 2  # 3 steps per epoch: 6 steps stale
    assert len(lines) == len(result.history)
    assert "validation accuracy" in lines[0]
    assert "ETA" in lines[0]


def test_accuracy_axis_starts_below_the_lowest_accuracy():
    """The demo chart's accuracy axis starts at a round value 0.05 below the lowest bar."""
    from varlen.cli._demo_report import accuracy_floor

    assert accuracy_floor([0.97, 0.99]) == pytest.approx(0.9)
    assert accuracy_floor([0.12, 0.9]) == pytest.approx(0.05)
    assert accuracy_floor([0.04, 0.9]) == 0.0
    assert accuracy_floor([float("nan")]) == 0.0
    assert accuracy_floor([1.0]) == pytest.approx(0.95)


GRIDS = st.sampled_from([LengthGrid(step=1 / 4), LengthGrid(step=1), LengthGrid(step=1 / 2)])


@settings(max_examples=25, deadline=None)
@given(
    lengths=st.lists(st.integers(0, 30), min_size=1, max_size=12),
    technique=st.sampled_from(EXACT),
    grid=GRIDS,
    pooling=st.sampled_from(["last", "mean", "max"]),
)
@example(lengths=[0, 1, 30, 1, 1], technique="mask", grid=LengthGrid(step=1), pooling="last")
def test_predict_scores_on_a_length_grid_equal_each_sequence_alone(
    lengths, technique, grid, pooling
):
    """Batches padded up to a grid length score each sequence as alone, and as unrounded."""
    rng = np.random.default_rng(len(lengths))
    x = Ragged.from_sequences([rng.normal(size=(n, 2)).astype(np.float32) for n in lengths])
    model = tiny_classifier(pooling=pooling, bidirectional=True)
    alone = predict_scores(model, x, technique="one-at-a-time")
    rounded = predict_scores(model, x, technique=technique, batch_size=4, length_grid=grid)
    plain = predict_scores(model, x, technique=technique, batch_size=4, length_grid=None)
    torch.testing.assert_close(rounded, alone, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(rounded, plain, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("technique", ["bucket", "mask"])
def test_fit_on_a_length_grid_gives_the_same_losses_and_weights(technique):
    """Training on batches padded up to a coarse grid = training on unrounded batches."""
    x, y, _ = easy_data(40, seed=4)
    results, models = [], []
    for grid in (None, LengthGrid(step=1)):
        config = TrainConfig(technique=technique, epochs=2, batch_size=6, lr=0.02, length_grid=grid)
        models.append(tiny_classifier(pooling="mean"))
        results.append(
            fit(models[-1], x[:32], y[:32], config=config, validation=(x[32:], y[32:]),
                progress=False)
        )  # fmt: skip
    plain, rounded = results
    for a, b in zip(plain.history, rounded.history, strict=True):
        assert b.train_loss == pytest.approx(a.train_loss, rel=1e-5)
        assert b.val_loss == pytest.approx(a.val_loss, rel=1e-5)
        assert b.real_steps == a.real_steps
        assert b.padding_efficiency < a.padding_efficiency  # step 1 doubles some batches
    for name, tensor in models[0].state_dict().items():
        torch.testing.assert_close(models[1].state_dict()[name], tensor, atol=1e-5, rtol=1e-5)


def test_train_config_rejects_a_bad_length_grid():
    """length_grid is a LengthGrid or None."""
    with pytest.raises(TypeError, match=r"TrainConfig: length_grid must be a varlen\.data\.grid"):
        TrainConfig(length_grid=1 / 16)  # type: ignore[arg-type]
    with pytest.raises(
        TypeError, match=r"predict_scores: length_grid must be a varlen\.data\.grid"
    ):
        predict_scores(tiny_classifier(), easy_data(4)[0], length_grid=0.5)  # type: ignore[arg-type]


def test_fit_max_steps_stops_inside_an_epoch_and_resumes_exactly(tmp_path):
    """A step budget that ends mid-epoch trains exactly that many steps, resumed or not."""
    x, y, _ = easy_data(32)
    validation = (x[24:], y[24:])
    config = TrainConfig(epochs=100, batch_size=8, lr=0.02, seed=2, max_steps=5, patience=None)
    options: dict[str, Any] = {"config": config, "validation": validation, "progress": False}
    whole = tiny_classifier()
    expected = fit(whole, x[:24], y[:24], checkpoint=tmp_path / "a.pt", **options)
    assert expected.planned_epochs == 2  # 3 batches per epoch
    assert [stats.steps for stats in expected.history] == [3, 2]
    assert expected.steps == 5
    assert torch.load(tmp_path / "a.pt", weights_only=True)["epoch"] == 1

    fit(tiny_classifier(), x[:24], y[:24], checkpoint=tmp_path / "b.pt",
        **{**options, "config": dataclasses.replace(config, epochs=1)})  # fmt: skip
    resumed = tiny_classifier(seed=9)
    got = fit(resumed, x[:24], y[:24], checkpoint=tmp_path / "b.pt", resume=True, **options)
    assert without_times(got) == without_times(expected)
    for name, tensor in whole.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[name], tensor, rtol=0, atol=0)


@pytest.mark.parametrize(
    ("epochs", "max_steps", "per_epoch", "expected"),
    [(10, None, 4, [4] * 10), (10, 9, 4, [4, 4, 1]), (2, 9, 4, [4, 4]), (3, 8, 4, [4, 4]),
     (5, 3, 0, [0, 0, 0])],
)  # fmt: skip
def test_epoch_steps_spend_the_budget(epochs, max_steps, per_epoch, expected):
    """Whole epochs, then what the step budget has left; planned_steps is their sum."""
    config = TrainConfig(epochs=epochs, max_steps=max_steps)
    total = planned_epochs(config, per_epoch)
    assert [epoch_steps(config, per_epoch, epoch) for epoch in range(total)] == expected
    assert planned_steps(config, per_epoch) == sum(expected)
