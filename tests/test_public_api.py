"""Each public namespace lists its names in a sorted, complete ``__all__``."""

from __future__ import annotations

import importlib
import types

import pytest

NAMESPACES = [
    "varlen",
    "varlen.batching",
    "varlen.data",
    "varlen.data.io",
    "varlen.datasets",
    "varlen.keras",
    "varlen.nn",
    "varlen.training",
]


def _isort_key(name: str) -> tuple[int, str]:
    """Ruff's RUF022 order: CONSTANTS, then Classes, then functions, each alphabetical."""
    if name.isupper():
        return 0, name
    return (1 if name[:1].isupper() else 2), name


@pytest.mark.parametrize("name", NAMESPACES)
def test_all_is_sorted_and_resolves(name):
    """``__all__`` is sorted and every name in it exists."""
    module = importlib.import_module(name)
    exported = list(module.__all__)
    assert exported == sorted(exported, key=_isort_key)
    for item in exported:
        assert hasattr(module, item), f"{name}.{item} is listed but missing"


@pytest.mark.parametrize("name", NAMESPACES)
def test_all_is_complete(name):
    """Every public, non-module attribute of the namespace is listed in ``__all__``."""
    module = importlib.import_module(name)
    public = {
        attr
        for attr, value in vars(module).items()
        if not attr.startswith("_")
        and not isinstance(value, types.ModuleType)
        and attr not in {"annotations"}
    }
    assert public <= set(module.__all__), sorted(public - set(module.__all__))
