"""Training: a small model family, the techniques side by side, fit/evaluate/predict, TBPTT.

- :class:`SequenceClassifier` / :class:`SequenceRegressor` (:class:`SequenceModel` with a
  :class:`ModelConfig`): linear input -> varlen LSTM/GRU -> pooling over real steps -> head.
- :data:`TECHNIQUES`: padding with or without a mask, bucketing, packing, lanes, one at a time.
- :func:`fit` / :func:`evaluate` / :func:`predict`, with atomic checkpoints and exact resume.
- Per-step models (:class:`SequenceLabeller`, :class:`StepRegressor`,
  :class:`NextStepForecaster`) with :func:`fit_steps` / :func:`evaluate_steps` /
  :func:`predict_steps`: one output per step, losses and metrics over real steps only.
- :func:`train_tbptt` / :func:`tbptt_windows`: truncated back-propagation through time.
"""

from __future__ import annotations

from varlen.training.artifacts import LoadedModel, load_model, save_model
from varlen.training.demo import DemoConfig, DemoRow, run_demo
from varlen.training.loop import (
    EpochStats,
    FitResult,
    TrainConfig,
    choose_technique,
    evaluate,
    fit,
    predict,
    predict_scores,
    split_validation,
)
from varlen.training.models import (
    ModelConfig,
    SequenceClassifier,
    SequenceModel,
    SequenceRegressor,
)
from varlen.training.per_step import (
    STEP_TECHNIQUES,
    NextStepForecaster,
    SequenceLabeller,
    StepRegressor,
    evaluate_steps,
    fit_steps,
    predict_step_scores,
    predict_steps,
)
from varlen.training.tbptt import TBPTTResult, TBPTTWindow, tbptt_windows, train_tbptt
from varlen.training.techniques import TECHNIQUES, Technique, get_technique

__all__ = [
    "STEP_TECHNIQUES",
    "TECHNIQUES",
    "DemoConfig",
    "DemoRow",
    "EpochStats",
    "FitResult",
    "LoadedModel",
    "ModelConfig",
    "NextStepForecaster",
    "SequenceClassifier",
    "SequenceLabeller",
    "SequenceModel",
    "SequenceRegressor",
    "StepRegressor",
    "TBPTTResult",
    "TBPTTWindow",
    "Technique",
    "TrainConfig",
    "choose_technique",
    "evaluate",
    "evaluate_steps",
    "fit",
    "fit_steps",
    "get_technique",
    "load_model",
    "predict",
    "predict_scores",
    "predict_step_scores",
    "predict_steps",
    "run_demo",
    "save_model",
    "split_validation",
    "tbptt_windows",
    "train_tbptt",
]
