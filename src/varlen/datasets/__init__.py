"""Real variable-length datasets that ship inside the package (no download at run time).

The files are read with :mod:`importlib.resources`, so they load from an installed wheel
as well as from a source checkout. Each dataset folder keeps the upstream files unmodified,
with a ``README.md`` stating source, licence and attribution and a ``SHA256SUMS``.

- ``"japanese_vowels"``: UCI Japanese Vowels (Kudo, Toyama, Shimbo 1999; UEA archive
  ``.ts`` files). Nine speakers, 12 LPC cepstrum channels, lengths 7 to 29;
  270 train and 370 test utterances. Licence CC BY 4.0 (UCI): cite the sources listed in
  ``varlen/datasets/japanese_vowels/README.md``.

Run ``python -m varlen.datasets`` to print their length statistics.
"""

from __future__ import annotations

import typing as _typing
from importlib import resources

from varlen._checks import check_choice as _check_choice
from varlen.data.io.ts import read_ts as _read_ts

if _typing.TYPE_CHECKING:
    from importlib.resources.abc import Traversable

    from varlen.data.io.ts import TSData

Split: _typing.TypeAlias = _typing.Literal["train", "test"]
"""A split of a bundled dataset."""

_FILES: dict[str, dict[str, str]] = {
    "japanese_vowels": {"train": "JapaneseVowels_TRAIN.ts", "test": "JapaneseVowels_TEST.ts"},
}


def list_datasets() -> list[str]:
    """Return the names of the bundled datasets, sorted.

    Returns:
        The names accepted by :func:`load` and :func:`path`.

    Example:
        >>> list_datasets()
        ['japanese_vowels']
    """
    return sorted(_FILES)


def path(name: str, *, split: Split = "train") -> Traversable:
    """Return the bundled file of one split of a dataset.

    Args:
        name: One of :func:`list_datasets`.
        split: ``"train"`` or ``"test"``.

    Returns:
        The file as an :class:`importlib.resources.abc.Traversable`; a
        :class:`pathlib.Path` when the package is installed as files (the usual case). Use
        :func:`importlib.resources.as_file` to get a real path in every case.

    Raises:
        ValueError: If ``name`` or ``split`` is unknown.

    Example:
        >>> path("japanese_vowels", split="test").name
        'JapaneseVowels_TEST.ts'
    """
    where = "path"
    _check_choice(where, "name", name, list_datasets())
    files = _FILES[name]
    _check_choice(where, "split", split, list(files))
    return resources.files(__name__).joinpath(name, files[split])


def load(name: str, *, split: Split = "train") -> TSData:
    """Load one split of a bundled dataset, from the package itself (no network).

    Args:
        name: One of :func:`list_datasets`.
        split: ``"train"`` or ``"test"``.

    Returns:
        The parsed file (see :func:`varlen.data.io.read_ts`).

    Raises:
        ValueError: If ``name`` or ``split`` is unknown.

    Example:
        >>> data = load("japanese_vowels", split="train")
        >>> len(data.x), data.x.values.shape[1], len(data.class_labels)  # B, C, classes
        (270, 12, 9)
    """
    with resources.as_file(path(name, split=split)) as file:
        return _read_ts(file)


__all__ = ["Split", "list_datasets", "load", "path"]
