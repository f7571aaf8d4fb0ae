"""varlen: variable-length sequences for recurrent networks, exact and fast.

The package is layered, and dependencies point one way:

- :mod:`varlen.data`: NumPy only (no torch): padding, ragged storage, masks, readers,
  normalization and feature alignment.
- :mod:`varlen.nn`, :mod:`varlen.batching`: torch modules and data pipeline built on ``data``.
- :mod:`varlen.training` and :mod:`varlen.cli`: the training loop and the command line.

Importing :mod:`varlen` itself loads only the NumPy data layer; torch loads when
``varlen.nn`` or ``varlen.batching`` is imported.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
