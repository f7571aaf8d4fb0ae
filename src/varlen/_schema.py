"""Check JSON data against a dataclass's fields and annotated types, one key at a time.

Saved files (a model directory's ``config.json``, the options recorded with it) are checked
against the dataclasses that wrote them, so a field added to one of those dataclasses is
checked on load with no list of keys to keep in step. :func:`check_fields` requires every
field (a missing key is an error even when the field has a default: a default filled in on
load could silently change what a saved model computes), refuses unknown keys, and checks
each value against its annotation:

- ``bool``, ``int`` (not bool), ``float`` (an int is accepted), ``str``, ``Path`` (a str);
- ``Literal[...]`` (one of the values), ``X | None`` and other unions;
- ``tuple[X, ...]``, ``tuple[X, Y]``, ``list[X]``, ``Sequence[X]`` (a JSON list);
- ``dict[str, X]`` and ``Mapping`` (a JSON object), ``Any``;
- a nested dataclass (checked the same way, its keys named ``outer.inner``).

The first mismatch raises :class:`SchemaError` (a ``ValueError``) whose ``key`` is the dotted
path of the offending key. Standard library only.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import os
import types
import typing
from collections.abc import Mapping
from typing import Any

__all__ = ["SchemaError", "check_fields", "describe"]


class SchemaError(ValueError):
    """A value does not match its declared type; ``key`` is its dotted path."""

    def __init__(self, key: str, expected: str, got: str) -> None:
        super().__init__(f"key {key!r} must be {expected}, got {got}")
        self.key = key
        self.expected = expected
        self.got = got


def _got(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:60]}{'...' if len(text) > 60 else ''}"


def describe(hint: Any) -> str:
    """Return a short readable name for a type annotation.

    Args:
        hint: A resolved annotation.

    Returns:
        For example ``"one of ['last', 'mean', 'max']"`` or ``"a list of str, or null"``.
    """
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return "any value"
    if hint is type(None):
        return "null"
    if origin is typing.Literal:
        return f"one of {list(args)}"
    if origin in (typing.Union, types.UnionType):
        return ", or ".join(describe(arg) for arg in args)
    if origin in (tuple, list, collections.abc.Sequence):
        return f"a list of {describe(args[0]) if args else 'values'}"
    if origin in (dict, collections.abc.Mapping) or hint in (dict, Mapping):
        return "an object"
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return f"an object ({hint.__name__})"
    if isinstance(hint, type) and issubclass(hint, os.PathLike):
        return "a str (path)"
    name = getattr(hint, "__name__", str(hint))
    return {"int": "an int", "float": "a number", "str": "a str", "bool": "true or false"}.get(
        name, name
    )


def _check_scalar(hint: type, value: Any, key: str) -> None:
    if hint is bool:
        ok = isinstance(value, bool)
    elif hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif hint is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif hint is str or issubclass(hint, os.PathLike):
        ok = isinstance(value, str)
    else:
        raise TypeError(f"check_fields: annotation {hint!r} of key {key!r} is not supported.")
    if not ok:
        raise SchemaError(key, describe(hint), _got(value))


def _check_sequence(args: tuple[Any, ...], value: Any, key: str, hint: Any) -> None:
    if not isinstance(value, list | tuple):
        raise SchemaError(key, describe(hint), _got(value))
    if (len(args) == 2 and args[1] is Ellipsis) or len(args) == 1:
        for index, item in enumerate(value):
            check_value(args[0], item, f"{key}[{index}]")
    elif args:  # a fixed-length tuple
        if len(value) != len(args):
            raise SchemaError(key, f"a list of {len(args)} values", _got(value))
        for index, (arg, item) in enumerate(zip(args, value, strict=True)):
            check_value(arg, item, f"{key}[{index}]")


def _check_union(args: tuple[Any, ...], value: Any, key: str, hint: Any) -> None:
    errors: list[SchemaError] = []
    for arg in args:
        try:
            check_value(arg, value, key)
        except SchemaError as error:
            errors.append(error)
        else:
            return
    deeper = [error for error in errors if error.key != key]
    if len(deeper) == 1:  # one alternative matched the kind of value but not its contents
        raise deeper[0]
    raise SchemaError(key, describe(hint), _got(value))


def check_value(hint: Any, value: Any, key: str) -> None:  # noqa: C901 (one branch per kind)
    """Check ``value`` against the annotation ``hint``.

    Args:
        hint: A resolved annotation.
        value: A value decoded from JSON.
        key: The value's dotted path, for the error.

    Raises:
        SchemaError: If the value does not match.
        TypeError: If the annotation is of a kind this module does not support.
    """
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return
    if hint is type(None):
        if value is not None:
            raise SchemaError(key, "null", _got(value))
    elif origin is typing.Literal:
        if not any(value == arg and type(value) is type(arg) for arg in args):
            raise SchemaError(key, describe(hint), _got(value))
    elif origin in (typing.Union, types.UnionType):
        _check_union(args, value, key, hint)
    elif origin in (tuple, list, collections.abc.Sequence) or hint in (tuple, list):
        _check_sequence(args, value, key, hint)
    elif origin in (dict, collections.abc.Mapping) or hint in (dict, Mapping):
        if not isinstance(value, dict):
            raise SchemaError(key, describe(hint), _got(value))
        if len(args) == 2:
            for name, item in value.items():
                check_value(args[1], item, f"{key}.{name}")
    elif dataclasses.is_dataclass(hint) and isinstance(hint, type):
        check_fields(hint, value, key=key)
    elif isinstance(hint, type):
        _check_scalar(hint, value, key)
    else:
        raise TypeError(f"check_fields: annotation {hint!r} of key {key!r} is not supported.")


def check_fields(cls: type[Any], data: Any, *, key: str = "") -> None:
    """Check that ``data`` holds exactly ``cls``'s init fields, each of its annotated type.

    Args:
        cls: A dataclass.
        data: A dict decoded from JSON.
        key: The dotted path of ``data`` itself (``""`` for the top level).

    Raises:
        SchemaError: On the first missing, unknown or mistyped key.
    """
    where = key or "the top level"
    if not isinstance(data, dict):
        raise SchemaError(where, f"an object ({cls.__name__})", _got(data))
    hints = typing.get_type_hints(cls)
    names = [field.name for field in dataclasses.fields(cls) if field.init]
    prefix = f"{key}." if key else ""
    for name in names:
        if name not in data:
            raise SchemaError(prefix + name, describe(hints[name]), "no such key")
        check_value(hints[name], data[name], prefix + name)
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise SchemaError(
            prefix + str(unknown[0]), f"absent (the keys are {names})", "an unknown key"
        )
