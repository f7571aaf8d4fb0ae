"""Process-wide settings for every pytest run (tests/ and the doctests under src/)."""

from __future__ import annotations

import os

# Keras picks its backend once per process, at import: torch unless the caller chose one
# (scripts/check reruns tests/keras with KERAS_BACKEND=jax).
os.environ.setdefault("KERAS_BACKEND", "torch")
os.environ.setdefault("JAX_ENABLE_X64", "true")  # float64 oracle tests on JAX too
