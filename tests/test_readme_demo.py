"""The README's demo figures are generated from a recorded run, so they cannot drift."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).parents[1]


def _script():  # benchmarks/ is not a package: load the script by path
    spec = importlib.util.spec_from_file_location(
        "readme_demo", ROOT / "benchmarks" / "readme_demo.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_demo_paragraph_is_the_recorded_runs():
    """The paragraph between the markers is exactly render(docs/demo-figures.json)."""
    script = _script()
    document = json.loads((ROOT / "docs" / "demo-figures.json").read_text(encoding="utf-8"))
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert script.current(readme) == script.render(document)
    assert len(document["rows"]) == 7  # a whole `varlen demo` run, every technique
