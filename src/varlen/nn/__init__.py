"""The torch layer: mask-aware recurrent modules, lanes, streaming, pooling and embeddings."""

from __future__ import annotations

from varlen.nn import functional
from varlen.nn.conv import (
    ConvFrontEnd,
    MaskedConv1d,
    masked_max_pool,
    pooled_lengths,
    series_standardize,
)
from varlen.nn.embedding import MaskedEmbedding
from varlen.nn.export import ExportError, OnnxExport, export_onnx
from varlen.nn.generation import Generation, RecurrentLM, Strategy, TokenModel, generate
from varlen.nn.lanes import LanesOutput, run_lanes
from varlen.nn.losses import (
    MaskedAccuracy,
    MaskedCrossEntropyLoss,
    MaskedL1Loss,
    MaskedMSELoss,
    Reduction,
    masked_accuracy,
    masked_cross_entropy,
    masked_mae,
    masked_mse,
)
from varlen.nn.pooling import (
    AttentionPooling,
    LastStepPooling,
    MaxPooling,
    MeanPooling,
    attention_pool,
    first_step,
    last_and_first,
    last_step,
    masked_max,
    masked_mean,
    masked_softmax,
)
from varlen.nn.recurrent import GRU, LSTM, LSTMState, Method
from varlen.nn.streaming import (
    StreamingRNN,
    StreamPool,
    StreamState,
    reset_state,
    run_one_at_a_time,
)

__all__ = [
    "GRU",
    "LSTM",
    "AttentionPooling",
    "ConvFrontEnd",
    "ExportError",
    "Generation",
    "LSTMState",
    "LanesOutput",
    "LastStepPooling",
    "MaskedAccuracy",
    "MaskedConv1d",
    "MaskedCrossEntropyLoss",
    "MaskedEmbedding",
    "MaskedL1Loss",
    "MaskedMSELoss",
    "MaxPooling",
    "MeanPooling",
    "Method",
    "OnnxExport",
    "RecurrentLM",
    "Reduction",
    "Strategy",
    "StreamPool",
    "StreamState",
    "StreamingRNN",
    "TokenModel",
    "attention_pool",
    "export_onnx",
    "first_step",
    "functional",
    "generate",
    "last_and_first",
    "last_step",
    "masked_accuracy",
    "masked_cross_entropy",
    "masked_mae",
    "masked_max",
    "masked_max_pool",
    "masked_mean",
    "masked_mse",
    "masked_softmax",
    "pooled_lengths",
    "reset_state",
    "run_lanes",
    "run_one_at_a_time",
    "series_standardize",
]
