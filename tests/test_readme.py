"""The README's Python example runs as written."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).parents[1] / "README.md"


def test_readme_python_examples_run():
    """Every ```python block of the README executes without error."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert blocks
    for block in blocks:
        exec(compile(block, str(README), "exec"), {})  # our own documentation, run as a user would


def test_readme_has_per_step_and_generation_examples():
    """The per-step labelling and the generation examples are Python blocks (run above)."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert any("fit_steps(" in block and "SequenceLabeller(" in block for block in blocks)
    assert any(
        "generate(" in block and "assert batched.to_lists() == alone" in block for block in blocks
    )


def test_every_guarantee_names_a_test_that_exists():
    """Each line of "What varlen guarantees" names tests, and every named test exists."""
    text = README.read_text(encoding="utf-8")
    section = text.split("## What varlen guarantees", 1)[1].split("\n## ", 1)[0]
    bullets = section.split("\n- ")[1:]
    assert len(bullets) >= 8
    root = README.parent
    for bullet in bullets:
        named = re.findall(r"`(tests/[\w/]+\.py)::(\w+)`", bullet)
        assert named, bullet
        for path, name in named:
            source = (root / path).read_text(encoding="utf-8")
            assert re.search(rf"^def {name}\(", source, re.M), f"{path}::{name}"
