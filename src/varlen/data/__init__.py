"""The NumPy data layer: padding, ragged storage, masks, readers. Imports no torch."""

from __future__ import annotations

from varlen.data.augment import Augmentation, augment
from varlen.data.features import AlignedFeatures, FeatureSchema, align_features, concat_presence
from varlen.data.grid import LengthGrid
from varlen.data.io import (
    TableData,
    TSData,
    group_table,
    read_table,
    read_ts,
    table_to_ragged,
    write_ts,
)
from varlen.data.keras_padding import pad_sequences
from varlen.data.lanes import LanePlan, plan_lanes
from varlen.data.masks import (
    is_contiguous,
    lengths_to_mask,
    mask_from_ids,
    mask_from_predicate,
    mask_from_value,
    mask_to_lengths,
)
from varlen.data.normalize import MeanStd, Standardizer, masked_mean_std
from varlen.data.padding import pad, unpad
from varlen.data.ragged import Ragged

__all__ = [
    "AlignedFeatures",
    "Augmentation",
    "FeatureSchema",
    "LanePlan",
    "LengthGrid",
    "MeanStd",
    "Ragged",
    "Standardizer",
    "TSData",
    "TableData",
    "align_features",
    "augment",
    "concat_presence",
    "group_table",
    "is_contiguous",
    "lengths_to_mask",
    "mask_from_ids",
    "mask_from_predicate",
    "mask_from_value",
    "mask_to_lengths",
    "masked_mean_std",
    "pad",
    "pad_sequences",
    "plan_lanes",
    "read_table",
    "read_ts",
    "table_to_ragged",
    "unpad",
    "write_ts",
]
