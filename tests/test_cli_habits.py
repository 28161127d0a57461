"""What any command-line tool is expected to do: version, module entry, usage, help texts."""
import subprocess
import sys

import pytest

from ffnbench import __version__, cli

COMMANDS = ("train", "table", "sweep", "compare", "bound", "history", "verify", "methods",
            "duplicates")


def test_version(capsys):
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"ffnbench {__version__}"


def test_python_dash_m_ffnbench_is_the_same_command():
    done = subprocess.run([sys.executable, "-m", "ffnbench", "--help"], capture_output=True, text=True)
    assert done.returncode == 0
    assert done.stdout.startswith("usage: ffnbench ")
    for command in COMMANDS:
        assert command in done.stdout


def test_a_bare_call_prints_the_usage(capsys):
    assert cli.main([]) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: ffnbench") and "examples:" in err and "verify" in err


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_a_description_an_example_and_its_defaults(command, capsys):
    assert cli.main([command, "--help"]) == 0
    out = capsys.readouterr().out
    usage, _, rest = out.partition("\n\n")
    assert rest.split("\n\n")[0].strip(), "no description"
    assert "example" in out and f"ffnbench {command}" in out.split("example")[-1]
    parser = cli.build_parser()._subparsers._group_actions[0].choices[command]
    formatter = parser._get_formatter()
    for action in parser._actions:  # every option with a real default says it
        if action.option_strings and action.default not in (None, False, "==SUPPRESS=="):
            assert "default" in formatter._expand_help(action), action.dest


@pytest.mark.parametrize("command", COMMANDS)
def test_no_command_writes_into_results_by_default(command):
    """Committed results are written on purpose only (make results, or --out results)."""
    parser = cli.build_parser()._subparsers._group_actions[0].choices[command]
    out = next((a for a in parser._actions if a.dest == "out"), None)
    if out is not None and out.default is not None:
        assert str(out.default).startswith("build/"), (command, out.default)


def test_table_with_its_defaults_leaves_results_alone(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = cli.main(["table", "--settings", "7", "--datasets", "red", "--seeds", "1", "--epochs", "2",
                     "--backend", "numpy", "--jobs", "1", "--no-progress", "--cache-dir", "cache"])
    assert code == 0 and (tmp_path / "build" / "table" / "table.csv").is_file()
    assert not (tmp_path / "results").exists()


def test_no_progress_bar_when_stderr_is_not_a_terminal(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code = cli.main(["table", "--settings", "7", "--datasets", "red", "--seeds", "2", "--epochs", "2",
                     "--backend", "numpy", "--jobs", "1", "--cache-dir", "cache"])
    err = capsys.readouterr().err
    assert code == 0 and "\r" not in err and "2 runs: 0 from the cache" in err
