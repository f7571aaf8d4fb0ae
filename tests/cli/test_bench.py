"""`varlen bench`: discovery, listing, running scripts as processes and the checkout errors."""

from __future__ import annotations

from pathlib import Path

import pytest

import varlen.cli.bench
from tests.cli._data import ROOT
from varlen.cli import main
from varlen.cli.bench import default_benchmarks_dir, find_benchmarks, summary


def _script(folder: Path, name: str, body: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"bench_{name}.py"
    path.write_text(f'"""The {name} benchmark: first line.\n\nMore.\n"""\n{body}\n')
    return path


@pytest.fixture
def fakes(tmp_path: Path) -> Path:
    """A benchmarks folder with two scripts that print their arguments, and one that fails."""
    folder = tmp_path / "benchmarks"
    echo = "import sys\nprint('{name} ran with', sys.argv[1:])"
    _script(folder, "alpha", echo.format(name="alpha"))
    _script(folder, "beta", echo.format(name="beta"))
    _script(folder, "broken", "raise SystemExit(3)")
    (folder / "helper.py").write_text("print('not a benchmark')\n")
    return folder


def test_bench_default_dir_is_the_checkouts_benchmarks():
    """Without --benchmarks-dir the folder is benchmarks/ beside src/ of this checkout."""
    assert default_benchmarks_dir() == ROOT / "benchmarks"


def test_bench_list_names_every_benchmark_of_the_checkout(capsys):
    """`varlen bench --list` prints one line per bench_*.py with its docstring's first line."""
    assert main(["bench", "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    scripts = sorted((ROOT / "benchmarks").glob("bench_*.py"))
    assert {"padding", "recurrent"} <= {s.stem.removeprefix("bench_") for s in scripts}
    assert [line.split()[0] for line in lines] == [s.stem.removeprefix("bench_") for s in scripts]
    padding = next(line for line in lines if line.startswith("padding "))
    assert summary(ROOT / "benchmarks" / "bench_padding.py") in padding


def test_bench_list_of_a_folder_skips_other_files(fakes, capsys):
    """Only bench_*.py files are benchmarks; the listing shows each summary line."""
    assert main(["bench", "--list", "--benchmarks-dir", str(fakes)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines() == [
        "alpha   The alpha benchmark: first line.",
        "beta    The beta benchmark: first line.",
        "broken  The broken benchmark: first line.",
    ]


def test_bench_runs_the_named_scripts_in_processes_with_quick(fakes, capfd):
    """Named benchmarks run as subprocesses (any spelling of the name) and get --quick."""
    code = main(["bench", "--benchmarks-dir", str(fakes), "--quick", "alpha", "bench_beta.py"])
    out = capfd.readouterr().out
    assert code == 0
    assert "alpha ran with ['--quick']" in out
    assert "beta ran with ['--quick']" in out
    assert out.index("== alpha") < out.index("alpha ran") < out.index("== beta")
    assert "broken" not in out


def test_bench_failure_is_exit_code_1_naming_the_benchmark(fakes, capfd):
    """A benchmark that exits non-zero makes the command exit 1; the others still run."""
    code = main(["bench", "--benchmarks-dir", str(fakes), "broken", "alpha"])
    captured = capfd.readouterr()
    assert code == 1
    assert "alpha ran with []" in captured.out
    assert captured.err.strip() == "varlen bench: error: failed: broken (exit code 3)"


def test_bench_without_a_checkout_is_a_one_line_error(monkeypatch, tmp_path, capsys):
    """An installed wheel has no benchmarks/ beside it: exit 2 saying a checkout is needed."""
    missing = tmp_path / "site-packages" / "benchmarks"
    monkeypatch.setattr(varlen.cli.bench, "default_benchmarks_dir", lambda: missing)
    assert main(["bench", "--list"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("varlen bench: error: benchmarks need a source checkout")
    assert str(missing) in err


def test_bench_missing_folder_option_is_a_one_line_error(tmp_path, capsys):
    """--benchmarks-dir naming a missing folder is exit 2, one line."""
    assert main(["bench", "--benchmarks-dir", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "need a source checkout" in err


def test_bench_empty_folder_is_an_error(tmp_path, capsys):
    """A folder without any bench_*.py script is exit 2."""
    assert main(["bench", "--list", "--benchmarks-dir", str(tmp_path)]) == 2
    assert "must hold bench_*.py scripts, got none" in capsys.readouterr().err


def test_bench_unknown_name_is_an_error_listing_the_choices(fakes, capsys):
    """An unknown NAME is exit 2 naming the benchmarks, before anything runs."""
    assert main(["bench", "--benchmarks-dir", str(fakes), "alpha", "gamma"]) == 2
    captured = capsys.readouterr()
    assert "NAME must be one of alpha, beta, broken, got 'gamma'" in captured.err
    assert "alpha ran" not in captured.out


def test_find_benchmarks_missing_folder_raises(tmp_path):
    """find_benchmarks raises the checkout error for a missing folder."""
    with pytest.raises(varlen.cli._common.CommandError, match=r"need a source checkout"):
        find_benchmarks(tmp_path / "nowhere")


def test_summary_of_a_script_without_docstring_or_unparsable_is_empty(tmp_path):
    """The summary is '' when there is no docstring or the file does not parse."""
    plain = tmp_path / "plain.py"
    plain.write_text("x = 1\n")
    broken = tmp_path / "broken.py"
    broken.write_text("def (:\n")
    assert summary(plain) == ""
    assert summary(broken) == ""
