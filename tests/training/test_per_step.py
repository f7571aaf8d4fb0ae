"""Per-step models: labelling, per-step regression and forecasting, against per-sequence oracles."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch

from varlen.data.grid import LengthGrid
from varlen.data.ragged import Ragged
from varlen.training import (
    ModelConfig,
    NextStepForecaster,
    SequenceClassifier,
    SequenceLabeller,
    SequenceModel,
    StepRegressor,
    TrainConfig,
    evaluate_steps,
    fit_steps,
    load_model,
    predict_step_scores,
    predict_steps,
    save_model,
)
from varlen.training.loop import train
from varlen.training.per_step import step_task

LENGTHS = [7, 1, 12, 0, 4, 9, 3]


def inputs(lengths: list[int], F: int = 2, seed: int = 0) -> Ragged:
    """Random float32 sequences of the given lengths."""
    rng = np.random.default_rng(seed)
    return Ragged.from_sequences([rng.normal(size=(n, F)).astype(np.float32) for n in lengths])


def xor_task(B: int, seed: int) -> tuple[Ragged, Ragged]:
    """Label of step t: whether the sign of feature 0 changed from step t - 1 (memory needed)."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 25, size=B)
    xs, ys = [], []
    for n in lengths:
        x = rng.normal(size=(int(n), 2)).astype(np.float32)
        positive = x[:, 0] > 0
        previous = np.concatenate([[False], positive[:-1]])
        xs.append(x)
        ys.append((positive != previous).astype(np.int64))
    return Ragged.from_sequences(xs), Ragged.from_sequences(ys, dtype=np.int64)


def test_labeller_learns_a_task_that_needs_memory():
    """A labeller trained with fit_steps labels held-out steps far better than chance."""
    torch.manual_seed(0)
    x, y = xor_task(160, 0)
    x_val, y_val = xor_task(60, 1)
    model = SequenceLabeller(2, 2, hidden_size=24)
    config = TrainConfig(epochs=25, batch_size=16, lr=1e-2, seed=0)
    result = fit_steps(model, x, y, config=config, validation=(x_val, y_val), progress=False)
    loss, accuracy = evaluate_steps(model, x_val, y_val)
    assert accuracy > 0.9
    assert loss == pytest.approx(result.best_val_loss, rel=1e-5)


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_predict_step_scores_equal_each_sequence_alone(bidirectional, cell):
    """Batched per-step outputs equal each sequence run alone (lengths 0 and 1 included)."""
    torch.manual_seed(0)
    model = SequenceLabeller(2, 3, hidden_size=6, bidirectional=bidirectional, cell=cell)
    x = inputs(LENGTHS)
    scores = predict_step_scores(model, x, batch_size=3)
    assert scores.values.shape == (sum(LENGTHS), 3)
    np.testing.assert_array_equal(scores.offsets, x.offsets)
    with torch.no_grad():
        for i, sequence in enumerate(x):
            alone = model(torch.tensor(sequence)[None]).numpy()[0]
            np.testing.assert_allclose(scores[i], alone, rtol=1e-5, atol=1e-6)
    labels = predict_steps(model, x)
    np.testing.assert_array_equal(labels.values, scores.values.argmax(axis=1))


def _oracle(model: SequenceModel, x: Ragged, y: Ragged) -> tuple[list[float], list[float]]:
    """Per sequence: (sum of losses, sum of metric) over its scored steps, run alone."""
    h = model.config.horizon
    losses, metrics = [], []
    with torch.no_grad():
        for xi, yi in zip(x, y, strict=True):
            out = model(torch.tensor(xi)[None])[0]
            out = out[: max(len(xi) - h, 0)]
            target = torch.tensor(yi)[h:]
            if model.config.task == "classification":
                losses.append(
                    float(torch.nn.functional.cross_entropy(out, target, reduction="sum"))
                )
                metrics.append(float((out.argmax(1) == target).sum()))
            else:
                error = out - target.float().reshape(out.shape)
                losses.append(float(error.square().mean(1).sum()))
                metrics.append(float(error.abs().mean(1).sum()))
    return losses, metrics


@pytest.mark.parametrize("kind", ["labeller", "regressor", "forecaster", "forecaster-3"])
@pytest.mark.parametrize("reduction", ["step", "sequence"])
def test_evaluate_steps_matches_per_sequence_oracle(kind, reduction):
    """Loss and metric equal the oracle's, steps or sequences weighted as asked."""
    torch.manual_seed(1)
    x = inputs(LENGTHS, seed=3)
    rng = np.random.default_rng(4)
    if kind == "labeller":
        model: SequenceModel = SequenceLabeller(2, 3, hidden_size=5, bidirectional=True)
        y = x.with_values(rng.integers(0, 3, size=x.num_steps))
    elif kind == "regressor":
        model = StepRegressor(2, 2, hidden_size=5)
        y = x.with_values(rng.normal(size=(x.num_steps, 2)).astype(np.float32))
    else:
        horizon = 3 if kind == "forecaster-3" else 1
        model = NextStepForecaster(2, horizon=horizon, hidden_size=5)
        y = x.with_values(rng.normal(size=x.num_steps).astype(np.float32))
    loss, metric = evaluate_steps(model, x, y, batch_size=2, reduction=reduction)
    losses, metrics = _oracle(model, x, y)
    counts = np.maximum(x.lengths - model.config.horizon, 0)
    if reduction == "step":
        expected = (sum(losses) / counts.sum(), sum(metrics) / counts.sum())
    else:
        scored = counts > 0
        expected = (
            float(np.mean(np.array(losses)[scored] / counts[scored])),
            float(np.mean(np.array(metrics)[scored] / counts[scored])),
        )
    assert (loss, metric) == pytest.approx(expected, rel=1e-5)


def test_forecaster_is_causal_and_refuses_bidirectional():
    """Changing step t + 1 never changes outputs up to t; bidirectional is refused with a reason."""
    torch.manual_seed(0)
    model = NextStepForecaster(2, hidden_size=6, num_layers=2)
    x = torch.randn(1, 8, 2)
    changed = x.clone()
    changed[0, 5:] = 100.0
    with torch.no_grad():
        torch.testing.assert_close(model(x)[0, :5], model(changed)[0, :5])
    with pytest.raises(ValueError, match="must be causal, got bidirectional=True"):
        NextStepForecaster(2, bidirectional=True)
    with pytest.raises(ValueError, match="horizon must be an int >= 1"):
        NextStepForecaster(2, horizon=0)
    with pytest.raises(ValueError, match="horizon applies to per-step models"):
        ModelConfig(2, 1, horizon=1)
    with pytest.raises(ValueError, match="horizon must be an int >= 0"):
        ModelConfig(2, 1, per_step=True, horizon=-1)


def sine_waves(B: int, seed: int) -> tuple[Ragged, Ragged]:
    """Noisy sines of random frequency: the value is both the input and the target."""
    rng = np.random.default_rng(seed)
    xs = []
    for _ in range(B):
        n = int(rng.integers(10, 40))
        t = np.arange(n)
        wave = np.sin(rng.uniform(0.2, 0.6) * t + rng.uniform(0, 6)) + rng.normal(0, 0.02, n)
        xs.append(wave.astype(np.float32)[:, None])
    x = Ragged.from_sequences(xs)
    return x, x.with_values(x.values[:, 0])


def test_forecaster_learns_the_next_value():
    """A forecaster beats repeating the last value on held-out sines."""
    torch.manual_seed(0)
    x, y = sine_waves(120, 0)
    x_val, y_val = sine_waves(40, 1)
    model = NextStepForecaster(1, hidden_size=24)
    config = TrainConfig(epochs=30, batch_size=16, lr=1e-2, seed=0)
    fit_steps(model, x, y, config=config, validation=(x_val, y_val), progress=False)
    _, mae = evaluate_steps(model, x_val, y_val)
    naive = np.mean(np.concatenate([np.abs(np.diff(seq[:, 0])) for seq in x_val]))
    assert mae < 0.6 * naive


class _Scripted:
    """A per-step task whose validation scores are scripted, epoch by epoch."""

    def __init__(self, inner: Any, scores: list[tuple[float, float]]) -> None:
        self.inner, self.scores = inner, iter(scores)
        self.name, self.lengths, self.has_validation = "fit_steps", inner.lengths, True

    def batch_loss(self, model: SequenceModel, indices: np.ndarray) -> Any:
        return self.inner.batch_loss(model, indices)

    def validate(self, model: SequenceModel) -> tuple[float, float]:
        return next(self.scores)


@pytest.mark.parametrize(
    ("kind", "select", "best"),
    [
        ("labeller", "loss", 1),
        ("labeller", "metric", 2),  # accuracy 0.9 twice: the lower loss
        ("regressor", "loss", 1),
        ("regressor", "metric", 3),  # lowest MAE
    ],
)
def test_select_is_the_engines_rule_for_per_step_tasks(kind, select, best):
    """train() keeps the epoch that select names for a per-step task, as for fit."""
    x, y = xor_task(16, 0)
    if kind == "labeller":
        model: SequenceModel = SequenceLabeller(2, 2, hidden_size=4)
        scores = [(1.0, 0.5), (0.5, 0.7), (0.8, 0.9), (0.9, 0.9)]
    else:
        model, y = StepRegressor(2, 1, hidden_size=4), y.with_values(y.values.astype(np.float32))
        scores = [(1.0, 0.9), (0.5, 0.7), (0.8, 0.6), (0.9, 0.4)]
    config = TrainConfig(epochs=4, batch_size=8, patience=None, seed=0, select=select)
    task = _Scripted(step_task(x, y, config), scores)
    result = train(model, task, config=config, progress=False)
    assert result.best_epoch == best


@pytest.mark.parametrize("technique", ["bucket", "mask", "pack"])
def test_fit_steps_resume_equals_uninterrupted(tmp_path, technique):
    """Stopping after 2 epochs and resuming gives the weights of one 4-epoch run."""
    x, y = xor_task(40, 2)
    config: dict[str, Any] = {"batch_size": 8, "seed": 3, "technique": technique}

    def train(epochs: int, checkpoint: Any, *, resume: bool) -> SequenceModel:
        torch.manual_seed(0)
        model = SequenceLabeller(2, 2, hidden_size=5, dropout=0.1, num_layers=2)
        fit_steps(
            model,
            x,
            y,
            config=TrainConfig(epochs=epochs, **config),
            checkpoint=checkpoint,
            resume=resume,
            progress=False,
        )
        return model

    whole = train(4, None, resume=False)
    train(2, tmp_path / "c.pt", resume=False)
    resumed = train(4, tmp_path / "c.pt", resume=True)
    for (name, a), b in zip(whole.state_dict().items(), resumed.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, msg=name)


def test_fit_steps_sequence_reduction_trains():
    """The per-sequence loss reduction trains too and is recorded per epoch."""
    torch.manual_seed(0)
    x, y = xor_task(30, 5)
    model = SequenceLabeller(2, 2, hidden_size=5)
    result = fit_steps(
        model,
        x,
        y,
        config=TrainConfig(epochs=3, batch_size=8),
        reduction="sequence",
        progress=False,
    )
    assert len(result.history) == 3
    assert result.history[-1].train_loss < result.history[0].train_loss


def test_per_step_model_saves_and_loads(tmp_path):
    """A labeller round-trips through a model directory and predicts the same."""
    torch.manual_seed(0)
    model = SequenceLabeller(2, 3, hidden_size=4, bidirectional=True)
    save_model(tmp_path, model, features=["a", "b"], labels=["x", "y", "z"])
    loaded = load_model(tmp_path).model
    assert loaded.config.per_step
    x = inputs(LENGTHS)
    np.testing.assert_array_equal(predict_steps(loaded, x).values, predict_steps(model, x).values)


def test_fit_steps_raises_when_the_loss_is_not_finite():
    """A NaN input makes the training loss NaN: fit_steps stops and says why."""
    x, y = xor_task(8, 0)
    x = x.with_values(np.full_like(x.values, np.nan))
    with pytest.raises(FloatingPointError, match=r"^fit_steps: the training loss must stay finite"):
        fit_steps(SequenceLabeller(2, 2), x, y, config=TrainConfig(epochs=1), progress=False)


def test_fit_steps_empty_targets_score_nan():
    """Sequences too short for the horizon have no scored step: metrics are NaN."""
    model = NextStepForecaster(2, horizon=2, hidden_size=3)
    x = inputs([1, 2])
    loss, metric = evaluate_steps(model, x, x.with_values(np.zeros(3, dtype=np.float32)))
    assert math.isnan(loss)
    assert math.isnan(metric)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (
            lambda: fit_steps(
                SequenceClassifier(2, 2), inputs([2]), inputs([2]), config=TrainConfig()
            ),
            ValueError,
            "must be a per-step model",
        ),
        (lambda: predict_steps(torch.nn.Linear(2, 2), inputs([2])), TypeError, "SequenceModel"),  # type: ignore[arg-type]
        (lambda: predict_steps(SequenceLabeller(2, 2), np.zeros((2, 2))), TypeError, "Ragged"),  # type: ignore[arg-type]
        (lambda: predict_steps(SequenceLabeller(3, 2), inputs([2])), ValueError, r"shape \(F,\)"),
        (
            lambda: evaluate_steps(SequenceLabeller(2, 2), inputs([2, 3]), inputs([2, 2])),
            ValueError,
            "got 2 targets for the 3 steps of sequence 1",
        ),
        (
            lambda: evaluate_steps(
                SequenceLabeller(2, 2), inputs([2]), Ragged.from_sequences([[0, 1], [1]])
            ),
            ValueError,
            "one sequence of targets per sequence",
        ),
        (
            lambda: evaluate_steps(
                SequenceLabeller(2, 2), inputs([2]), Ragged.from_sequences([[0.5, 1.0]])
            ),
            ValueError,
            "one integer class id per step",
        ),
        (
            lambda: evaluate_steps(
                SequenceLabeller(2, 2), inputs([2]), Ragged.from_sequences([[0, 2]])
            ),
            ValueError,
            r"class ids must be in \[0, 2\) \(or -1: no label\), got 2",
        ),
        (
            lambda: evaluate_steps(
                StepRegressor(2, 2), inputs([2]), Ragged.from_sequences([[0.0, 1.0]])
            ),
            ValueError,
            r"y steps must have shape \(\) or \(output_size,\) = \(2,\)",
        ),
        (
            lambda: evaluate_steps(StepRegressor(2), inputs([2]), [[0.0, 1.0]]),  # type: ignore[arg-type]
            TypeError,
            "Ragged of per-step",
        ),
        (
            lambda: fit_steps(
                SequenceLabeller(2, 2),
                inputs([2]),
                Ragged.from_sequences([[0, 1]]),
                config=TrainConfig(technique="lanes"),
            ),
            ValueError,
            "technique must be one of",
        ),
        (
            lambda: evaluate_steps(
                SequenceLabeller(2, 2),
                inputs([2]),
                Ragged.from_sequences([[0, 1]]),
                reduction="sum",  # type: ignore[arg-type]
            ),
            ValueError,
            "reduction must be",
        ),
    ],
)
def test_per_step_functions_reject_bad_input(call, error, match):
    """Wrong models, inputs, targets and options raise with a message naming them."""
    with pytest.raises(error, match=match):
        call()


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_unlabelled_steps_are_left_out(task):
    """A step without a label (-1, or NaN) counts as if it were not there.

    Oracle: with the last step of every sequence unlabelled, a causal model scores as on the
    sequences cut one step short.
    """
    lengths = [3, 5, 2, 6]
    x = inputs(lengths)
    rng = np.random.default_rng(1)
    if task == "classification":
        model: Any = SequenceLabeller(2, 3, hidden_size=4)
        values: np.ndarray = rng.integers(0, 3, size=x.num_steps)
        hole: Any = -1
    else:
        model = StepRegressor(2, hidden_size=4)
        values = rng.normal(size=x.num_steps).astype(np.float32)
        hole = np.nan
    values[x.offsets[1:] - 1] = hole
    holes = evaluate_steps(model, x, x.with_values(values))
    short = Ragged.from_sequences([seq[:-1] for seq in x])
    kept = Ragged.from_sequences([seq[:-1] for seq in x.with_values(values)])
    np.testing.assert_allclose(holes, evaluate_steps(model, short, kept), rtol=1e-6)
    result = fit_steps(
        model, x, x.with_values(values), config=TrainConfig(epochs=2, technique="mask"),
        progress=False,
    )  # fmt: skip
    assert math.isfinite(result.history[-1].train_loss)


def test_per_step_on_a_length_grid_gives_the_same_results():
    """Per-step batches padded up to a coarse grid: same scores, losses and trained weights."""
    x, y = xor_task(30, 7)
    models, results = [], []
    for grid in (None, LengthGrid(step=1)):
        torch.manual_seed(0)
        models.append(SequenceLabeller(2, 2, hidden_size=5))
        config = TrainConfig(epochs=2, batch_size=7, seed=1, length_grid=grid)
        results.append(fit_steps(models[-1], x, y, config=config, progress=False))
        scores = predict_step_scores(models[-1], x, batch_size=7, length_grid=grid)
        np.testing.assert_allclose(
            scores.values, predict_step_scores(models[-1], x, length_grid=None).values, atol=1e-5
        )
        loss = evaluate_steps(models[-1], x, y, length_grid=grid)
        assert loss == pytest.approx(evaluate_steps(models[-1], x, y, length_grid=None), rel=1e-5)
    for a, b in zip(results[0].history, results[1].history, strict=True):
        assert b.train_loss == pytest.approx(a.train_loss, rel=1e-5)
        assert b.padding_efficiency < a.padding_efficiency
    for name, tensor in models[0].state_dict().items():
        torch.testing.assert_close(models[1].state_dict()[name], tensor, atol=1e-5, rtol=1e-5)
