"""The folder tree is the architecture: check that dependencies point one way."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import varlen

PACKAGE = Path(varlen.__file__).parent


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_data_layer_imports_no_torch_in_a_fresh_interpreter():
    """Importing varlen and varlen.data (and its readers) never loads torch."""
    code = (
        "import sys, varlen, varlen.data, varlen.data.io, varlen.datasets\n"
        "assert 'torch' not in sys.modules, sorted(m for m in sys.modules if 'torch' in m)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_padding_reports_and_inspect_load_no_torch(tmp_path):
    """varlen.batching's reports and the `inspect` command are NumPy only (fast to start)."""
    data = PACKAGE / "datasets" / "japanese_vowels" / "JapaneseVowels_TRAIN.ts"
    code = (
        "import sys, varlen.batching\n"
        "from varlen.batching import padding_report, choose_technique\n"
        "from varlen.cli import main\n"
        f"status = main(['inspect', {str(data)!r}])\n"
        "assert status == 0, status\n"
        "assert 'torch' not in sys.modules, sorted(m for m in sys.modules if 'torch' in m)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path, capture_output=True)


@pytest.mark.parametrize(
    ("layer", "forbidden"),
    [
        ("data", ("torch", "varlen.nn", "varlen.batching", "varlen.training", "varlen.cli")),
        ("datasets", ("torch", "varlen.nn", "varlen.batching", "varlen.training", "varlen.cli")),
        ("nn", ("varlen.batching", "varlen.training", "varlen.cli")),
        ("batching", ("varlen.training", "varlen.cli")),
        ("training", ("varlen.cli",)),
    ],
)
def test_layer_does_not_import_upwards(layer, forbidden):
    """No module of a layer imports a layer above it."""
    for path in sorted((PACKAGE / layer).rglob("*.py")):
        for module in _imported_modules(path):
            bad = [name for name in forbidden if module == name or module.startswith(name + ".")]
            assert not bad, f"{path.relative_to(PACKAGE)} imports {module}"
