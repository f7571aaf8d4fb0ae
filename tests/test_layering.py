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
        (
            "data",
            (
                "torch",
                "keras",
                "varlen.nn",
                "varlen.batching",
                "varlen.training",
                "varlen.cli",
                "varlen.keras",
            ),
        ),
        (
            "datasets",
            (
                "torch",
                "keras",
                "varlen.nn",
                "varlen.batching",
                "varlen.training",
                "varlen.cli",
                "varlen.keras",
            ),
        ),
        ("nn", ("keras", "varlen.batching", "varlen.training", "varlen.cli", "varlen.keras")),
        ("batching", ("keras", "varlen.training", "varlen.cli", "varlen.keras")),
        ("training", ("keras", "varlen.cli", "varlen.keras")),
        ("cli", ("keras", "varlen.keras")),
        # varlen.keras sits beside training: on nn (torch backend) and data/batching only.
        ("keras", ("varlen.training", "varlen.cli")),
    ],
)
def test_layer_does_not_import_upwards(layer, forbidden):
    """No module of a layer imports a layer above it."""
    for path in sorted((PACKAGE / layer).rglob("*.py")):
        for module in _imported_modules(path):
            bad = [name for name in forbidden if module == name or module.startswith(name + ".")]
            assert not bad, f"{path.relative_to(PACKAGE)} imports {module}"


def test_keras_layer_uses_only_public_names_of_other_packages():
    """varlen.keras imports other varlen packages by their public names only."""
    for path in sorted((PACKAGE / "keras").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                inside = node.module.startswith("varlen.keras")
                if node.module.startswith("varlen.") and not inside:
                    private = [a.name for a in node.names if a.name.startswith("_")]
                    parts = [p for p in node.module.split(".") if p.startswith("_")]
                    allowed = node.module in {"varlen._checks"}  # the shared validators
                    assert allowed or not (private or parts), f"{path.name}: {node.module}"
