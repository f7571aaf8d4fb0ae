"""The command-line entry point: lazy commands, exit codes and the one-line error policy."""

from __future__ import annotations

import subprocess
import sys

import pytest

import varlen.cli
from tests.cli._data import cli_env
from varlen.cli import COMMANDS, main


@pytest.fixture
def fake(monkeypatch):
    """Route ``varlen demo`` to the fake command of tests/cli/_fake_command.py."""
    monkeypatch.setitem(COMMANDS, "demo", ("tests.cli._fake_command", "a fake command"))


def test_main_help_lists_every_command(capsys):
    """`varlen --help` exits 0 and lists the five commands."""
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in ("demo", "train", "predict", "inspect", "bench"):
        assert name in out


def test_main_help_imports_no_command_module_or_torch():
    """`varlen --help` loads neither a command module nor torch, so it is fast."""
    code = (
        "import sys, contextlib, io\n"
        "from varlen.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    assert main(['--help']) == 0\n"
        "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('varlen.cli.')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=cli_env(), check=True
    )
    assert result.stdout.strip() == "['varlen.cli._common']"


def test_main_version(capsys):
    """`varlen --version` prints the package version."""
    assert main(["--version"]) == 0
    assert varlen.__version__ in capsys.readouterr().out


def test_main_without_command_is_a_usage_error(capsys):
    """No command: argparse's usage error, exit code 2."""
    assert main([]) == 2
    assert "required: COMMAND" in capsys.readouterr().err


def test_main_unknown_command_is_a_usage_error(capsys):
    """An unknown command is exit code 2 naming the choices."""
    assert main(["trian"]) == 2
    assert "invalid choice: 'trian'" in capsys.readouterr().err


def test_main_command_help(capsys):
    """`varlen train --help` shows the command's own options."""
    assert main(["train", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--technique" in out
    assert "--resume" in out


def test_main_missing_command_module_fails_alone(monkeypatch, capsys):
    """A command whose module cannot be imported exits 1; the others still work."""
    monkeypatch.setitem(COMMANDS, "bench", ("tests.cli._no_such_module", "missing"))
    assert main(["bench"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("varlen bench: error: cannot load the command:")
    assert main(["inspect", "--help"]) == 0


@pytest.mark.usefixtures("fake")
@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("value", "varlen demo: error: fake: x must be 1, got 2.\n"),
        ("type", "varlen demo: error: fake: x must be an int, got 'a'.\n"),
        ("key", "varlen demo: error: missing key 'label'\n"),
        ("missing", "varlen demo: error: No such file or directory: 'gone.ts'\n"),
        ("command", "varlen demo: error: fake: bad input.\n"),
    ],
)
def test_main_bad_input_is_one_line_and_exit_2(capsys, kind, expected):
    """Bad input errors become one line on stderr and exit code 2, nothing on stdout."""
    assert main(["demo", "--raise", kind]) == 2
    captured = capsys.readouterr()
    assert captured.err == expected
    assert captured.out == ""


@pytest.mark.usefixtures("fake")
def test_main_other_failure_is_exit_1(capsys):
    """Another exception is exit code 1, one line that points at --debug."""
    assert main(["demo", "--raise", "runtime"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "RuntimeError: varlen bug: something broke" in err
    assert "--debug" in err


@pytest.mark.usefixtures("fake")
def test_main_interrupt_is_exit_130(capsys):
    """Ctrl-C ends with exit code 130 and a short note."""
    assert main(["demo", "--raise", "interrupt"]) == 130
    assert capsys.readouterr().err == "varlen demo: interrupted\n"


@pytest.mark.usefixtures("fake")
@pytest.mark.parametrize("where", ["before", "after"])
def test_main_debug_reraises(where):
    """--debug (before or after the command) re-raises for a traceback."""
    argv = ["demo", "--raise", "value"]
    argv = ["--debug", *argv] if where == "before" else [*argv, "--debug"]
    with pytest.raises(ValueError, match="x must be 1"):
        main(argv)


@pytest.mark.usefixtures("fake")
def test_main_quiet_before_command_is_kept(monkeypatch, capsys):
    """A global flag given before the command is not reset by the command's parser."""
    import tests.cli._fake_command as fake_module
    from varlen.cli._common import say

    seen = {}

    def spy(args):
        seen["quiet"] = args.quiet
        say(args, "diagnostic")
        return 0

    monkeypatch.setattr(fake_module, "run", spy)
    assert main(["--quiet", "demo"]) == 0
    assert seen == {"quiet": True}
    assert capsys.readouterr().err == ""


def test_python_m_varlen_cli_runs_main(tmp_path):
    """`python -m varlen.cli` is the entry point: usage errors exit 2 with argparse's line."""
    result = subprocess.run(
        [sys.executable, "-m", "varlen.cli", "inspect"],
        capture_output=True,
        text=True,
        env=cli_env(),
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 2
    assert "varlen inspect: error: the following arguments are required: DATA" in result.stderr


@pytest.mark.parametrize("left", [False, True])
def test_entry_exits_with_mains_code_and_keeps_its_output(left):
    """`entry()` exits with main's code; after a torchrun process group it skips the teardown.

    Piped stdout is block-buffered: the version line only arrives if `entry` flushes it before
    `os._exit`. An `atexit` hook shows whether the interpreter's teardown ran.
    """
    code = (
        "import atexit, sys\n"
        "from varlen.cli import _common, entry\n"
        "atexit.register(lambda: print('teardown ran', file=sys.stderr))\n"
        f"if {left}:\n"
        "    _common.note_process_group_left()\n"
        "sys.argv = ['varlen', sys.argv[1]]\n"
        "entry()\n"
    )
    for argument, expected in (("--version", 0), ("trian", 2)):
        result = subprocess.run(
            [sys.executable, "-c", code, argument], capture_output=True, text=True, env=cli_env()
        )
        assert result.returncode == expected, result.stderr
        assert ("teardown ran" in result.stderr) is not left
        if expected == 0:
            assert varlen.__version__ in result.stdout
        else:
            assert "invalid choice: 'trian'" in result.stderr
