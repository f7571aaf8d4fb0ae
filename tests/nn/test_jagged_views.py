"""Bad jagged views (nested tensors with offsets and lengths) get clear errors.

Before: float offsets or lengths were truncated and ran, a row running into the next ran, and a
negative length corrupted memory (``free(): invalid pointer``).
"""

from __future__ import annotations

import pytest
import torch

from varlen.nn import GRU, LSTM


def _view(offsets: list[float], lengths: list[float]) -> torch.Tensor:
    values = torch.randn(6, 2)
    return torch.nested.nested_tensor_from_jagged(
        values, torch.tensor(offsets), lengths=torch.tensor(lengths)
    )


@pytest.mark.parametrize(
    ("offsets", "lengths", "error", "match"),
    [
        ([0.0, 2.0, 4.0], [1, 2], TypeError, "view's offsets must be int32 or int64"),
        ([0, 2, 4], [1.0, 2.0], TypeError, "view's lengths must be int32 or int64"),
        ([0, 2, 4], [-1, 2], ValueError, r"lengths must be >= 0, got .*lengths\[0\] = -1"),
        ([0, 4, 2, 6], [2, 1, 2], ValueError, r"offsets must never decrease.*\(row 1\)"),
        ([0, 2, 5], [1, 4], ValueError, r"row i must end by offsets\[i \+ 1\].*\(row 1\)"),
        ([0, 2, 7], [1, 6], ValueError, r"row i must end by offsets\[i \+ 1\]"),
        ([-1, 2, 4], [1, 2], ValueError, "offsets must be >= 0"),
    ],
)
@pytest.mark.parametrize("cls", [LSTM, GRU])
def test_bad_jagged_views_are_refused_clearly(cls, offsets, lengths, error, match):
    """Each bad view: one line that names the rule and the row."""
    module = cls(2, 3, batch_first=True)
    with pytest.raises(error, match=match):
        module(_view(offsets, lengths))


def test_a_view_whose_offsets_do_not_start_at_0_still_runs():
    """Views of narrowed rows start past 0 (torch.nested.narrow): that stays valid."""
    module = LSTM(2, 3, batch_first=True)
    values = torch.randn(6, 2)
    view = torch.nested.nested_tensor_from_jagged(
        values, torch.tensor([1, 3, 6]), lengths=torch.tensor([2, 2])
    )
    out, _ = module(view)
    alone, _ = module(values[3:5][None], torch.tensor([2]))
    torch.testing.assert_close(out.values()[2:], alone[0])


def test_readme_jagged_example_prints_nothing_on_stderr(tmp_path):
    """The README's ragged-input example, run as a script: no torch log line on stderr."""
    import re
    import subprocess
    import sys
    from pathlib import Path

    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    (block,) = [b for b in re.findall(r"```python\n(.*?)```", readme, re.S) if "njt" in b]
    script = tmp_path / "ragged.py"
    script.write_text(block, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
