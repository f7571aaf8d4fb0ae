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


# ------------------------------------------------------------------- the data floor, finished

TESTS = Path(__file__).parent


def _module_name(path: Path) -> str:
    """``varlen.data.io.table`` for ``.../varlen/data/io/table.py`` (packages: their name)."""
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports_anywhere(path: Path, known: set[str]) -> set[str]:
    """Modules of ``known`` that ``path`` imports anywhere (top, functions, import_module).

    ``importlib.import_module("...")`` counts with a literal name. ``from pkg import name``
    counts as an import of ``pkg.name`` when that is a module, else of ``pkg``.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"))
    here = _module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package, `level - 1` packages up
                base = ".".join([*package[: len(package) - node.level + 1], *filter(None, [base])])
            for alias in node.names:
                child = f"{base}.{alias.name}"
                found.add(child if child in known else base)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.add(node.args[0].value)
    return found & known


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every import circle of ``graph`` (module -> modules it imports), as a path a -> ... -> a."""
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        for target in sorted(graph[node]):
            if target == path[0]:
                cycles.append([*path, target])
            elif target not in path and target > path[0]:  # each circle once, from its least
                visit(target, [*path, target])

    for start in sorted(graph):
        visit(start, [start])
    return cycles


def test_data_modules_import_no_circle():
    """Within varlen.data no module imports, directly or not, one that imports it back."""
    paths = sorted((PACKAGE / "data").rglob("*.py"))
    known = {_module_name(path) for path in paths}
    known |= {_module_name(path.with_suffix(".py")) for path in (PACKAGE / "data").rglob("*.pyi")}
    graph = {_module_name(path): _imports_anywhere(path, known) for path in paths}
    graph.update({name: set() for name in known - graph.keys()})
    # a package's __init__ may import its modules, and they never import the package back:
    assert _cycles(graph) == []


def test_the_circle_finder_finds_circles():
    """The finder itself reports a two-module circle and a longer one (it can fail)."""
    graph = {"a": {"b"}, "b": {"a"}, "c": {"d"}, "d": {"e"}, "e": {"c"}, "f": {"a"}}
    assert _cycles(graph) == [["a", "b", "a"], ["c", "d", "e", "c"]]


_PATCHERS = {"setattr", "delattr", "object"}  # monkeypatch.setattr, mock.patch.object, ...


def _varlen_module_names(tree: ast.AST) -> dict[str, str]:
    """Local name -> the ``varlen`` module (or name) it was imported as."""
    modules: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("varlen"):
            for alias in node.names:
                modules[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("varlen") and alias.asname:
                    modules[alias.asname] = alias.name
    return modules


def _is_private(name: str) -> bool:
    """``_x`` is private; a dunder such as ``__call__`` is not."""
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _patched_private(node: ast.Call, modules: dict[str, str]) -> str | None:
    """The private ``varlen`` name that the call ``node`` patches, if it patches one."""
    name = getattr(node.func, "attr", getattr(node.func, "id", ""))
    first = node.args[0]
    if isinstance(first, ast.Constant) and isinstance(first.value, str):
        dotted = first.value
        private = any(_is_private(part) for part in dotted.split(".")[1:])
        patcher = name in _PATCHERS | {"patch"}
        return dotted if patcher and dotted.startswith("varlen.") and private else None
    if (
        name in _PATCHERS
        and isinstance(first, ast.Name)
        and first.id in modules
        and len(node.args) > 1
        and isinstance(node.args[1], ast.Constant)
        and isinstance(node.args[1].value, str)
        and _is_private(node.args[1].value)
    ):
        return f"{modules[first.id]}.{node.args[1].value}"
    return None


def _private_patches(source: str) -> list[str]:
    """The private names of ``varlen`` that ``source`` (a test module) patches.

    Caught: ``monkeypatch.setattr(module, "_name", ...)``, ``mock.patch.object(module,
    "_name")`` and ``delattr`` where ``module`` was imported from ``varlen``, and dotted
    targets such as ``mock.patch("varlen.data.padding._name")`` or
    ``monkeypatch.setattr("varlen.data.padding._name", ...)``.
    """
    tree = ast.parse(source)
    modules = _varlen_module_names(tree)
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call) and node.args]
    return [found for call in calls if (found := _patched_private(call, modules))]


def test_no_test_patches_a_private_name_of_varlen():
    """Tests pass tuning parameters; none monkeypatches a private name of varlen."""
    found = {
        str(path.relative_to(TESTS)): patched
        for path in sorted(TESTS.rglob("*.py"))
        if (patched := _private_patches(path.read_text(encoding="utf-8")))
    }
    assert found == {}


def test_the_patch_finder_finds_patches():
    """The finder reports the forms that tests used to patch the padding kernel (it can fail)."""
    source = (
        "from varlen.data import padding as padding_module\n"
        "import varlen.data.padding as p\n"
        "patch.setattr(padding_module, '_native', None)\n"
        "monkeypatch.setattr(p, '_MASK_MAX_T', 0)\n"
        "mock.patch('varlen.data.padding._DENSE_RATIO', 0)\n"
        "monkeypatch.setattr(padding_module, 'NATIVE', False)\n"  # public: not reported
        "mock.patch('varlen.batching.collate._VIEW_MIN_ELEMENTS', 0)\n"
    )
    assert _private_patches(source) == [
        "varlen.data.padding._native",
        "varlen.data.padding._MASK_MAX_T",
        "varlen.data.padding._DENSE_RATIO",
        "varlen.batching.collate._VIEW_MIN_ELEMENTS",
    ]


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


# ------------------------------------------------ one house: private names, circles


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


def _circle_groups(graph: dict[str, set[str]]) -> list[list[str]]:
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
    assert _circle_groups(_graph()) == []


def test_the_circle_rule_sees_one():
    """The circle finder finds a three-module circle."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _circle_groups(graph) == [["a", "b", "c"]]
