"""Training: a small model family, the techniques side by side, fit/evaluate/predict, TBPTT.

- :class:`SequenceClassifier` / :class:`SequenceRegressor` (:class:`SequenceModel` with a
  :class:`ModelConfig`): linear input -> varlen LSTM/GRU -> pooling over real steps -> head.
- :data:`TECHNIQUES`: padding with or without a mask, bucketing, packing, lanes, one at a time.
- :func:`fit` / :func:`evaluate` / :func:`predict`, with atomic checkpoints and exact resume.
- :func:`train_tbptt` / :func:`tbptt_windows`: truncated back-propagation through time.
"""

from __future__ import annotations

from varlen.training.artifacts import LoadedModel, load_model, save_model
from varlen.training.demo import DemoConfig, DemoRow, plot_demo, run_demo
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
from varlen.training.tbptt import TBPTTResult, TBPTTWindow, tbptt_windows, train_tbptt
from varlen.training.techniques import TECHNIQUES, Technique, get_technique

__all__ = [
    "TECHNIQUES",
    "DemoConfig",
    "DemoRow",
    "EpochStats",
    "FitResult",
    "LoadedModel",
    "ModelConfig",
    "SequenceClassifier",
    "SequenceModel",
    "SequenceRegressor",
    "TBPTTResult",
    "TBPTTWindow",
    "Technique",
    "TrainConfig",
    "choose_technique",
    "evaluate",
    "fit",
    "get_technique",
    "load_model",
    "plot_demo",
    "predict",
    "predict_scores",
    "run_demo",
    "save_model",
    "split_validation",
    "tbptt_windows",
    "train_tbptt",
]
