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


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _package_of(module: str) -> str:
    """``varlen.cli.train`` -> ``varlen.cli``; ``varlen._atomic`` -> ``varlen``."""
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 2 or (PACKAGE / parts[-1]).is_dir() else "varlen"


def _private_imports(path: Path) -> list[str]:
    """``module.name`` for each private name ``path`` imports from another package."""
    mine = _package_of(_module_name(path))
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not (isinstance(node, ast.ImportFrom) and node.module and node.level == 0):
            continue
        if not node.module.startswith("varlen"):
            continue
        for alias in node.names:
            private = alias.name.startswith("_") and not alias.name.startswith("__")
            if private and _package_of(node.module) != mine:
                found.append(f"{node.module}.{alias.name}")
    return found


def test_no_module_imports_a_private_name_of_another_package():
    """Private names (``_x``) stay inside their package: another package uses public ones."""
    found = {
        str(path.relative_to(PACKAGE)): names
        for path in sorted(PACKAGE.rglob("*.py"))
        if (names := _private_imports(path))
    }
    assert found == {}


def test_the_private_import_rule_sees_one():
    """The rule above finds a private import from another package (and only that)."""
    tree = PACKAGE / "cli" / "train.py"
    source = tree.read_text(encoding="utf-8")
    assert "from varlen.training.loop import" in source
    fake = PACKAGE.parent / "varlen" / "cli" / "_layering_probe.py"
    try:
        fake.write_text(
            "from varlen.training.loop import _batches\nfrom varlen.cli._common import _read_toml\n"
        )
        assert _private_imports(fake) == ["varlen.training.loop._batches"]
    finally:
        fake.unlink()


def _is_extension(module: str) -> bool:
    folder = PACKAGE.parent.joinpath(*module.split(".")[:-1])
    return any(folder.glob(module.split(".")[-1] + ".*.so")) or any(
        folder.glob(module.split(".")[-1] + ".pyi")
    )


def _graph() -> dict[str, set[str]]:
    """Module -> the varlen modules it imports (anywhere in it, lazily too)."""
    modules = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    target = f"{node.module}.{alias.name}"
                    if target in modules:
                        edges.add(target)
                    elif not _is_extension(target):  # a compiled module is a leaf
                        edges.add(node.module)
            elif isinstance(node, ast.Import):
                edges.update(alias.name for alias in node.names)
        graph[name] = {edge for edge in edges if edge in modules and edge != name}
    return graph


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = list(graph[start])
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo.extend(graph[node])
    return seen


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The groups of more than one module that reach each other through imports."""
    reach = {node: _reachable(graph, node) for node in graph}
    groups = {
        tuple(sorted({node} | {other for other in reach[node] if node in reach[other]}))
        for node in graph
        if node in reach[node]
    }
    return sorted(list(group) for group in groups if len(group) > 1)


def test_no_import_circles():
    """No two modules import each other, directly or through others (lazy imports count)."""
    assert _cycles(_graph()) == []


def test_the_circle_rule_sees_one():
    """The circle finder finds a three-module circle."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]
