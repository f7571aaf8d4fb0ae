"""The README's torch script runs unchanged on varlen: only its import differs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).parents[2] / "README.md"
TORCH_IMPORT = "from torch.nn import LSTM  # drop-in: from varlen.nn import LSTM"


def run(script: str, tmp_path: Path, name: str) -> list[float]:
    """Run ``script`` as a user would (its own process); return the numbers it prints."""
    path = tmp_path / f"{name}.py"
    path.write_text(script, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(path)], capture_output=True, text=True, check=True, timeout=120
    )
    return [float(v) for v in re.findall(r"-?\d+\.\d+", done.stdout)]


def test_torch_script_switches_to_varlen_by_its_import(tmp_path):
    """Same loss and gradient norm with torch.nn.LSTM and with varlen.nn.LSTM."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    (script,) = [block for block in blocks if TORCH_IMPORT in block]
    switched = script.replace(TORCH_IMPORT, "from varlen.nn import LSTM")
    assert switched.splitlines()[2:] == script.splitlines()[2:]  # one line differs
    with_torch = run(script, tmp_path, "torch_script")
    with_varlen = run(switched, tmp_path, "varlen_script")
    assert len(with_torch) == 2
    assert with_varlen == pytest.approx(with_torch, rel=1e-5, abs=1e-6)
