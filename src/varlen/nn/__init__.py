"""The torch layer: mask-aware recurrent modules, pooling and functions over padded batches."""

from __future__ import annotations

from varlen.nn import functional
from varlen.nn.recurrent import GRU, LSTM, LSTMState, Method

__all__ = ["GRU", "LSTM", "LSTMState", "Method", "functional"]
