"""Keras layer tests run in whichever backend this process chose (``KERAS_BACKEND``).

The default test command runs them on torch (``tests/conftest.py`` picks it when nothing is
set); ``scripts/check`` runs this folder a second time with ``KERAS_BACKEND=jax``. Tests
marked ``torch_backend`` are skipped on the other backends.
"""

from __future__ import annotations

import pytest

keras = pytest.importorskip("keras")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip ``torch_backend`` tests when Keras runs on another backend."""
    if keras.backend.backend() == "torch":
        return
    skip = pytest.mark.skip(reason=f"torch backend only (Keras runs on {keras.backend.backend()})")
    for item in items:
        if item.get_closest_marker("torch_backend") is not None:
            item.add_marker(skip)
