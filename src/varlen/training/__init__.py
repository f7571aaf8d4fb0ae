"""Training helpers: truncated back-propagation through time over long sequences."""

from __future__ import annotations

from varlen.training.tbptt import TBPTTResult, TBPTTWindow, tbptt_windows, train_tbptt

__all__ = ["TBPTTResult", "TBPTTWindow", "tbptt_windows", "train_tbptt"]
