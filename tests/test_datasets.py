"""Tests for varlen.datasets: the bundled JapaneseVowels data, its loader and summary command."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from importlib import resources

import numpy as np
import pytest

from tests.reference.io import read_ts_reference
from varlen.datasets import list_datasets, load, path
from varlen.datasets.__main__ import main

SHA256 = {
    "JapaneseVowels_TRAIN.ts": "68a430eabd919cc77f40b1f5f3bc0dcafacc1486bca9260785aeb7d262cc78cd",
    "JapaneseVowels_TEST.ts": "b3d41d6a0ca3bcad3afb9ca7d4365382aa51341e2e58bae2a574babdda5b9462",
}
# From the dataset README: cases, length min / median / max, mean rounded, class counts.
STATS = {
    "train": (270, 7, 15, 26, 15.8, [30] * 9),
    "test": (370, 7, 15, 29, 15.4, [31, 35, 88, 44, 29, 24, 40, 50, 29]),
}


def test_list_datasets_and_path_name_the_bundled_files():
    """japanese_vowels is listed, and path() finds both splits inside the package."""
    assert list_datasets() == ["japanese_vowels"]
    assert path("japanese_vowels").name == "JapaneseVowels_TRAIN.ts"
    assert path("japanese_vowels", split="test").name == "JapaneseVowels_TEST.ts"
    assert path("japanese_vowels", split="test").is_file()


def test_bundled_files_match_their_checksums():
    """The bundled bytes match SHA256SUMS and the hashes published in the dataset README."""
    folder = resources.files("varlen.datasets").joinpath("japanese_vowels")
    sums = folder.joinpath("SHA256SUMS").read_text().splitlines()
    listed = {name: digest for digest, name in (line.split() for line in sums)}
    assert listed == SHA256
    for name, digest in SHA256.items():
        assert hashlib.sha256(folder.joinpath(name).read_bytes()).hexdigest() == digest
    readme = folder.joinpath("README.md").read_text(encoding="utf-8")
    assert "Kudo" in readme
    assert "CC BY 4.0" in readme


@pytest.mark.parametrize("split", ["train", "test"])
def test_load_japanese_vowels_has_the_documented_statistics(split):
    """Each split has the README's case count, 12 channels, 9 classes and length statistics."""
    cases, shortest, median, longest, mean, counts = STATS[split]
    data = load("japanese_vowels", split=split)
    lengths = data.x.lengths
    assert len(data.x) == cases
    assert data.x.values.shape == (lengths.sum(), 12)
    assert data.x.values.dtype == np.float64
    assert (int(lengths.min()), float(np.median(lengths)), int(lengths.max())) == (
        shortest,
        median,
        longest,
    )
    assert round(float(lengths.mean()), 1) == mean
    assert not np.isnan(data.x.values).any()
    assert data.class_labels == tuple("123456789")
    assert data.y is not None
    labels, label_counts = np.unique(data.y, return_counts=True)
    assert labels.tolist() == list("123456789")
    assert label_counts.tolist() == counts
    assert data.header["dimensions"] == 12
    assert data.header["problemName"] == "JapaneseVowels"


@pytest.mark.parametrize("split", ["train", "test"])
def test_load_japanese_vowels_matches_the_reference_parser(split):
    """Every value and label equals the per-value reference parse of the bundled file."""
    text = path("japanese_vowels", split=split).read_text(encoding="utf-8")
    cases, labels = read_ts_reference(text)
    data = load("japanese_vowels", split=split)
    assert data.y is not None
    assert data.y.tolist() == labels
    for actual, expected in zip(data.x.to_sequences(), cases, strict=True):
        np.testing.assert_array_equal(actual, expected)
    first = data.x[0]  # first value of the train file: 1.860936 in channel 0
    if split == "train":
        assert first[0, 0] == 1.860936
        assert first[0, 1] == -0.207383


@pytest.mark.parametrize(
    ("name", "split", "match"),
    [
        ("mnist", "train", r"path: name must be 'japanese_vowels', got 'mnist'\."),
        ("japanese_vowels", "valid", r"path: split must be 'train' or 'test', got 'valid'\."),
    ],
)
def test_load_rejects_unknown_names_and_splits(name, split, match):
    """Unknown dataset names and splits raise ValueError listing the valid choices."""
    with pytest.raises(ValueError, match=match):
        load(name, split=split)


def test_main_prints_length_statistics_per_split(capsys):
    """The summary command prints cases, min/median/mean/max length and classes."""
    assert main([]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "japanese_vowels: 12 channels, 9 classes"
    assert out[2].split() == ["train", "270", "7", "15.0", "15.8", "26"] + [
        f"{label}:30" for label in range(1, 10)
    ]
    assert out[3].split()[:6] == ["test", "370", "7", "15.0", "15.4", "29"]
    assert out[3].split()[6:] == [
        "1:31",
        "2:35",
        "3:88",
        "4:44",
        "5:29",
        "6:24",
        "7:40",
        "8:50",
        "9:29",
    ]


def test_main_rejects_unknown_datasets(capsys):
    """An unknown name is a usage error (exit code 2) listing the choices."""
    with pytest.raises(SystemExit) as info:
        main(["mnist"])
    assert info.value.code == 2
    assert "invalid choice: 'mnist'" in capsys.readouterr().err


def test_python_dash_m_varlen_datasets_runs_without_torch():
    """The module runs as a command and never imports torch."""
    code = (
        "import runpy, sys\n"
        "sys.argv = ['varlen.datasets']\n"
        "try:\n"
        "    runpy.run_module('varlen.datasets', run_name='__main__', alter_sys=True)\n"
        "except SystemExit as exit:\n"
        "    assert exit.code == 0, exit.code\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("japanese_vowels: 12 channels")
