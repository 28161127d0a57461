"""What any command-line tool is expected to do: version, module entry, usage, help texts."""
import subprocess
import sys

import pytest

from ffnbench import __version__, cli

COMMANDS = ("train", "table", "sweep", "compare", "bound", "history", "verify", "methods",
            "readings", "contest", "duplicates")


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


TINY = ["table", "--settings", "7", "--datasets", "red", "--seeds", "2", "--epochs", "2",
        "--backend", "numpy", "--jobs", "1", "--cache-dir", "cache"]


def test_quiet_prints_nothing_but_errors_and_verbose_names_each_run(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main([*TINY, "-q"]) == 0
    out, err = capsys.readouterr()
    assert out == "" and err == "" and (tmp_path / "build" / "table" / "table.csv").is_file()
    assert cli.main([*TINY, "-v", "--fresh"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("ffnbench table: 2 runs")
    assert [line.split(":")[0] for line in err if line.startswith("table ")] == ["table 1/2", "table 2/2"]
    assert cli.main([*TINY, "-q", "--settings", "99"]) == 2  # an error is still one line
    assert capsys.readouterr().err.count("\n") == 1


def test_table_json_is_the_table(tmp_path, monkeypatch, capsys):
    import json
    import pandas as pd
    monkeypatch.chdir(tmp_path)
    assert cli.main([*TINY, "--json", "-q"]) == 0
    doc = json.loads(capsys.readouterr().out)
    written = pd.read_csv(tmp_path / "build" / "table" / "table.csv")
    assert doc["out"] == "build/table" and len(doc["rows"]) == len(written)
    assert [r["setting"] for r in doc["rows"]] == [str(s) for s in written["setting"]]


def test_a_huge_grid_is_refused_before_a_run_is_made(tmp_path, monkeypatch, capsys):
    """seeds = 10^8: refused from the counts alone (no config built), one line; --yes passes
    the limit (checked here up to the first config it builds)."""
    from ffnbench.core.config import RUN_LIMIT
    from ffnbench.studies import sweep
    grid = tmp_path / "huge.toml"
    grid.write_text('backend = "numpy"\nlr = [0.01, 0.1]\nseeds = 100000000\n')
    monkeypatch.setattr(sweep.Grid, "configs", lambda self: pytest.fail("configs were built"))
    assert cli.main(["sweep", str(grid), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "200,000,000 runs" in err and f"{RUN_LIMIT:,}" in err
    assert "--yes" in err and not (tmp_path / "o").exists()
    assert cli.main(["table", "--seeds", "100000000", "--out", str(tmp_path / "o")]) == 2
    assert "3,000,000,000 runs" in capsys.readouterr().err
    monkeypatch.setattr(sweep.Grid, "configs", lambda self: (_ for _ in ()).throw(SystemExit(7)))
    with pytest.raises(SystemExit):  # with --yes it goes on to make the runs
        cli.main(["sweep", str(grid), "--yes", "--out", str(tmp_path / "o")])


def test_progress_in_a_log_file_is_plain_lines_with_the_time_left(monkeypatch, capsys):
    from ffnbench.core import log
    from ffnbench.run import grid
    log.configure(0)
    times = iter([0.0, 40.0, 50.0, 80.0, 200.0])
    monkeypatch.setattr(grid.time, "monotonic", lambda: next(times))
    lines = grid._Lines("sweep", 10)
    for done in (2, 3, 4, 10):  # at 40 s: 2 trained, 8 to go; 50 s: < 30 s since; 80 s: 4 done
        lines.update(done, cached=0)
    err = capsys.readouterr().err
    assert err == ("sweep: 2/10 runs, 40 s so far, ~3 min left\n"
                   "sweep: 4/10 runs, 80 s so far, ~2 min left\n")


def _complete(script, *words):
    """What bash completes for the command line `words` (the last one being typed)."""
    line = " ".join(words)
    code = (f"source {script}; COMP_WORDS=({' '.join(repr(w) for w in words)}); "
            f"COMP_CWORD={len(words) - 1}; COMP_LINE={line!r}; COMP_POINT={len(line)}; "
            "_shtab_ffnbench; echo \"${COMPREPLY[@]}\"")
    return subprocess.run(["bash", "-c", code], capture_output=True, text=True,
                          timeout=30).stdout.split()


def test_bash_completion_from_the_documented_shtab_command(tmp_path):
    """docs/cli.md's completion script completes commands and every closed option set."""
    pytest.importorskip("shtab")
    script = tmp_path / "ffnbench.bash"
    done = subprocess.run([sys.executable, "-m", "shtab", "--shell=bash", "--prog", "ffnbench",
                           "ffnbench.parser.build_parser"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    script.write_text(done.stdout)
    assert _complete(script, "ffnbench", "ta") == ["table"]
    assert _complete(script, "ffnbench", "train", "--backend", "nu") == ["numpy", "numba"]
    assert _complete(script, "ffnbench", "sweep", "g.toml", "--executor", "") == ["local", "dask"]


def test_json_of_sweep_and_history_is_what_they_computed(tmp_path, monkeypatch, capsys):
    """(table: test_table_json_is_the_table; verify, compare, train: their own tests)"""
    import json
    from pathlib import Path
    import pandas as pd
    grid = tmp_path / "g.toml"
    grid.write_text('backend = "numpy"\ndataset = "red"\nhidden = 3\nepochs = 2\nlr = [0.01, 0.1]\n')
    monkeypatch.chdir(tmp_path)
    assert cli.main(["sweep", str(grid), "--jobs", "1", "--json", "-q", "--cache-dir", "c"]) == 0
    doc = json.loads(capsys.readouterr().out)
    written = pd.read_csv(tmp_path / "build" / "sweeps" / "g" / "runs.csv")
    assert doc["out"] == "build/sweeps/g" and [r["lr"] for r in doc["runs"]] == list(written["lr"])
    from test_history import result_file, write
    asv = tmp_path / "asv"
    write(asv, "m1", "aaaaaaaa-env.json", result_file("a" * 40, 1_700_000_100, 1.0))
    write(asv, "m1", "bbbbbbbb-env.json", result_file("b" * 40, 1_700_000_200, 2.0))
    assert cli.main(["history", "--results", str(asv), "--out", "figs", "--json", "-q"]) == 0
    doc = json.loads(capsys.readouterr().out)
    runs = doc["machines"]["m1"]
    assert [r["commit"][0] for r in runs] == ["a", "b"] and runs[0]["results"]
    assert all(Path(f).is_file() for f in doc["figures"])
