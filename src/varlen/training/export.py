"""The whole predictor of a ``varlen train`` model directory as one module, exportable to ONNX.

:class:`Predictor` puts the fitted input standardizer, the model (recurrent layer, pooling,
head) and, for a regressor, the target standardizer's inverse into one ``forward(x, lengths)``,
so an exported graph takes raw features and returns predictions in the training units.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from varlen.nn.export import OnnxExport, export_onnx
from varlen.training.artifacts import LoadedModel, load_model
from varlen.training.models import real_steps
from varlen.training.techniques import get_technique

__all__ = ["Predictor", "export_predictor"]


class Predictor(nn.Module):
    """Raw features in, scores out: standardize, run the model, undo the target scaling.

    ``forward(x (B, T, F) float32, lengths (B,) int64) -> (B, K) float32``: ``x`` is the raw,
    post-padded batch (features in the training order, pads any value); each real step is
    standardized with the training statistics, a missing value (NaN) becomes the mean (0
    after standardizing), as ``varlen predict`` does. ``K`` is the number of classes (logits;
    softmax gives the probabilities) or of regression targets (in the target's units).

    Args:
        loaded: A model directory's contents (:func:`varlen.training.artifacts.load_model`).
    """

    mean: Tensor
    scale: Tensor
    target_mean: Tensor
    target_scale: Tensor

    def __init__(self, loaded: LoadedModel) -> None:
        super().__init__()
        self.model = loaded.model
        F = loaded.model.config.input_size
        mean, scale = torch.zeros(F), torch.ones(F)
        if loaded.normalizer is not None:
            mean = torch.from_numpy(np.array(loaded.normalizer.mean, dtype=np.float32))
            scale = torch.from_numpy(np.array(loaded.normalizer.scale, dtype=np.float32))
        self.register_buffer("mean", mean)
        self.register_buffer("scale", scale)
        K = loaded.model.config.output_size
        target_mean, target_scale = torch.zeros(K), torch.ones(K)
        if loaded.target_normalizer is not None:
            target_mean = torch.from_numpy(
                np.array(loaded.target_normalizer.mean, dtype=np.float32)
            )
            target_scale = torch.from_numpy(
                np.array(loaded.target_normalizer.scale, dtype=np.float32)
            )
        self.register_buffer("target_mean", target_mean)
        self.register_buffer("target_scale", target_scale)

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        """Score each sequence from its real steps: ``(B, T, F)``, ``(B,)`` -> ``(B, K)``.

        A per-step model gives ``(B, T, K)``, zero at the pads.
        """
        scaled = torch.nan_to_num((x - self.mean) / self.scale, nan=0.0)
        scores: Tensor = self.model(scaled, lengths, padding="post")
        unscaled = scores * self.target_scale + self.target_mean
        if not self.model.config.per_step:
            return unscaled
        # per step (B, T, K): the target's mean must not reappear at the pads
        real = real_steps(lengths, x.shape[1], padding="post")
        return unscaled.masked_fill(~real[:, :, None], 0.0)


def export_predictor(
    directory: str | os.PathLike[str], out: str | os.PathLike[str], *, seed: int = 0
) -> OnnxExport:
    """Export a ``varlen train`` model directory's whole predictor to ONNX, verified.

    The graph takes ``x (B, T, F)`` float32 raw post-padded features and ``lengths (B,)``
    int64, and returns ``scores (B, K)`` (see :class:`Predictor`); it is written only if it
    matches each sequence run alone through the eager predictor (:func:`export_onnx`).

    Args:
        directory: The model directory.
        out: The ``.onnx`` file to write.
        seed: Seed of the check batches.

    Returns:
        :class:`varlen.nn.OnnxExport`.

    Raises:
        ValueError: If the model was trained with an inexact technique (``pad-pre``,
            ``pad-post``), whose predictions depend on padding: the graph takes lengths.
        varlen.nn.ExportError: If the exported graph does not match.
        ImportError: If the ``onnx`` extra is missing.
    """
    loaded = load_model(directory)
    if not get_technique(loaded.technique).exact:
        raise ValueError(
            f"export: the model was trained with technique {loaded.technique!r}, whose "
            "predictions depend on padding; the exported graph takes lengths and runs the "
            "exact path, so it would not reproduce them. Retrain with an exact technique."
        )
    predictor = Predictor(loaded).eval()
    return export_onnx(
        predictor,
        Path(out),
        input_size=loaded.model.config.input_size,
        padding="post",
        output_names=["scores"],
        seed=seed,
    )
