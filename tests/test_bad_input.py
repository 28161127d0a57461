"""Bad input and faults (issue 12): every case is one clear line and a non-zero exit, never a
traceback, a silent wrong number or a lost run."""
import json
import os
import stat

import numpy as np
import pytest

from ffnbench import cli
from ffnbench.core import data
from ffnbench.core.errors import UserError
from ffnbench.core.fileio import to_json

from conftest import disk_full_on

QUICK = ["--dataset", "red", "--hidden", "5", "--epochs", "2", "--patience", "0"]
HEADER = ";".join(f'"{c}"' for c in data.COLUMNS)


def _red(data_dir):
    return data_dir / data.FILES["red"][0]


def _rows(data_dir, n):
    """The header and the first n data rows of the red-wine file."""
    return _red(data_dir).read_text().splitlines()[: n + 1]


def _write(data_dir, lines):
    _red(data_dir).write_text("\n".join(lines) + "\n")
    return str(data_dir)


def train(capsys, *argv):
    code = cli.main(["train", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err):
    return err.count("\n") == 1 and "Traceback" not in err and err.startswith("ffnbench")


# --- class 1: data that is not finite or not sane --------------------------------------

def _edit_cell(data_dir, row, col, text, n=60):
    lines = _rows(data_dir, n)
    cells = lines[row].split(";")
    cells[col] = text
    lines[row] = ";".join(cells)
    return _write(data_dir, lines)


@pytest.mark.parametrize("row, col, text, message", [
    (3, 0, "inf", "non-finite cell 'inf' at data row 3, column 'fixed acidity'"),
    (50, 4, "-inf", "non-finite cell '-inf' at data row 50, column 'chlorides'"),
    (60, 10, "1e400", "non-finite cell '1e400' at data row 60, column 'alcohol'"),
    (2, 11, "1e400", "non-finite cell '1e400' at data row 2, column 'quality'"),
    (7, 6, "1e300", "beyond ±1e+06: '1e300' at data row 7, column 'total sulfur dioxide'"),
    (5, 8, "-3.1", "negative cell '-3.1' at data row 5, column 'pH'"),
    (1, 11, "-1", "negative cell '-1' at data row 1, column 'quality'"),
    (1, 11, "11", "quality '11' at data row 1 is not a whole-number grade from 0 to 10"),
    (9, 11, "99", "quality '99' at data row 9"),
    (4, 11, "5.5", "quality '5.5' at data row 4"),
])
def test_insane_cells_name_file_row_and_column(data_dir, row, col, text, message):
    d = _edit_cell(data_dir, row, col, text)
    with pytest.raises(UserError, match=message.replace("+", r"\+")) as e:
        data.load("red", d, allow_unverified=True)
    assert str(_red(data_dir)) in str(e.value)


@pytest.mark.parametrize("n", [1, 2, 6, data.MIN_ROWS - 1])
def test_too_few_rows_is_refused(capsys, data_dir, n):
    code, out, err = train(capsys, *QUICK, "--data-dir", _write(data_dir, _rows(data_dir, n)),
                           "--allow-unverified")
    assert code == 2 and out == "" and one_line(err)
    assert f"{n} data rows; the 70/15/15 split needs at least {data.MIN_ROWS}" in err


def test_minimum_rows_train(capsys, data_dir):
    d = _write(data_dir, _rows(data_dir, data.MIN_ROWS))
    code, out, err = train(capsys, *QUICK, "--data-dir", d, "--allow-unverified", "--json")
    r = json.loads(out)
    assert code == 0 and (r["n_train"], r["n_val"], r["n_test"]) == (14, 3, 3)


def test_a_grade_with_one_wine_is_refused(capsys, data_dir):
    lines = _rows(data_dir, 100)
    lines[5] = lines[5].rsplit(";", 1)[0] + ";9"  # the only wine of grade 9
    d = _write(data_dir, lines)
    code, out, err = train(capsys, *QUICK, "--dataset", "red-quality-class", "--data-dir", d,
                           "--allow-unverified")
    assert code == 2 and one_line(err) and "grade 9 has 1 wine" in err


def _strict(text):
    """json.loads that refuses NaN and Infinity (which are not JSON)."""
    def bad(name):
        raise ValueError(f"non-finite number {name} in JSON")
    return json.loads(text, parse_constant=bad)


def test_json_is_valid_even_with_non_finite_numbers():
    doc = {"a": float("inf"), "b": [float("nan"), 1.0, {"c": -float("inf")}], "d": np.float64("nan")}
    assert _strict(to_json(doc)) == {"a": None, "b": [None, 1.0, {"c": None}], "d": None}


def test_diverged_run_prints_valid_json(capsys):
    code, out, _ = train(capsys, "--backend", "numpy", *QUICK, "--lr", "1e6", "--json")
    r = _strict(out)
    assert code == 0 and r["diverged"] is True and r["test_mse"] is None


# --- class 2: columns trusted by position -----------------------------------------------

def test_permuted_columns_are_refused(data_dir):
    lines = [";".join([c.split(";")[-1], *c.split(";")[:-1]]) for c in _rows(data_dir, 40)]
    with pytest.raises(UserError, match="expected the UCI columns fixed acidity;.*quality, "
                                        'found quality;fixed acidity'):
        data.load("red", _write(data_dir, lines), allow_unverified=True)


def test_a_file_without_header_is_refused(data_dir):
    with pytest.raises(UserError, match="found 7.4;0.7;0;1.9"):
        data.load("red", _write(data_dir, _rows(data_dir, 40)[1:]), allow_unverified=True)


def test_header_spelling_and_quoting_may_vary(data_dir):
    lines = _rows(data_dir, 40)
    lines[0] = ";".join(c.upper() for c in data.COLUMNS)
    X, y, cols = data.load("red", _write(data_dir, lines), allow_unverified=True)
    assert X.shape == (40, 11) and cols == list(data.COLUMNS)


# --- class 3: special files --------------------------------------------------------------

def test_fifo_is_refused_without_opening_it(data_dir):
    _red(data_dir).unlink()
    os.mkfifo(_red(data_dir))  # opening it would block forever
    with pytest.raises(UserError, match="not a regular file"):
        data.load("red", str(data_dir))


def test_link_to_a_device_is_refused(data_dir):
    _red(data_dir).unlink()
    _red(data_dir).symlink_to("/dev/zero")
    with pytest.raises(UserError, match="not a regular file"):
        data.load("red", str(data_dir))


def test_file_over_the_size_limit_is_refused(data_dir, monkeypatch):
    monkeypatch.setattr(data, "MAX_BYTES", 1000)
    with pytest.raises(UserError, match="more than the limit of 1000"):
        data.load("red", str(data_dir))


@pytest.mark.parametrize("raw, message", [
    (b"\xff\xfe" + HEADER.encode("utf-16-le"), "not UTF-8 text"),
    (HEADER.encode() + b"\n7.4\x00;0.7\n", "not a text file"),
])
def test_binary_or_foreign_encodings_are_one_line(data_dir, raw, message):
    _red(data_dir).write_bytes(raw)
    with pytest.raises(UserError, match=message):
        data.load("red", str(data_dir), allow_unverified=True)


# --- classes 3 and 4: write paths ---------------------------------------------------------

def test_save_weights_never_replaces_a_fifo_or_a_directory(capsys, tmp_path, monkeypatch):
    from ffnbench.core import harness
    monkeypatch.setattr(harness, "train", lambda *a, **k: pytest.fail("training started"))
    fifo, directory = tmp_path / "fifo", tmp_path / "dir"
    os.mkfifo(fifo)
    directory.mkdir()
    (tmp_path / "link").symlink_to(fifo)
    for target, message in ((fifo, "not a regular file"), (tmp_path / "link", "not a regular file"),
                            (directory, "a directory")):
        code, out, err = train(capsys, *QUICK, "--save-weights", str(target))
        assert code == 2 and out == "" and one_line(err) and message in err
    assert stat.S_ISFIFO(os.stat(fifo).st_mode) and directory.is_dir()


def test_save_weights_empty_name_is_an_error(capsys):
    code, out, err = train(capsys, *QUICK, "--save-weights", "")
    assert code == 2 and out == "" and one_line(err) and "empty file name" in err


def test_failing_weights_write_keeps_the_result_and_the_old_file(capsys, tmp_path, monkeypatch):
    target = tmp_path / "w.npz"
    target.write_bytes(b"old")

    def full_disk(*a, **k):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(np, "savez", full_disk)
    code, out, err = train(capsys, "--backend", "numpy", *QUICK, "--json", "--save-weights", str(target))
    assert code == 2 and one_line(err) and "No space left on device" in err
    assert json.loads(out)["epochs_run"] == 2  # the finished run is printed
    assert target.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["w.npz"]


def _cmd(*argv):
    import sys
    return [sys.executable, "-m", "ffnbench.cli", *argv]


def _env():
    return {**os.environ, "PYTHONPATH": str(__import__("pathlib").Path(__file__).parents[1])}


def test_file_size_limit_during_the_weights_write(tmp_path):
    import resource
    import subprocess

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (200, 200))
    p = subprocess.run(_cmd("train", "--backend", "numpy", *QUICK, "--json",
                            "--save-weights", str(tmp_path / "w.npz")),
                       capture_output=True, text=True, preexec_fn=limit, env=_env(), timeout=120)
    assert p.returncode == 2 and one_line(p.stderr) and "File too large" in p.stderr
    assert json.loads(p.stdout)["n_weights"] == 66 and list(tmp_path.iterdir()) == []


def test_stdout_errors_end_in_one_line_or_quietly(tmp_path):
    import subprocess
    with open("/dev/full", "w") as full:
        p = subprocess.run(_cmd("train", "--backend", "numpy", *QUICK, "--json"), stdout=full,
                           stderr=subprocess.PIPE, text=True, env=_env(), timeout=120)
    assert p.returncode == 1 and p.stderr == "ffnbench: error: cannot write the output " \
                                             "(No space left on device)\n"
    p = subprocess.Popen(_cmd("train", "--backend", "numpy", *QUICK, "--json"), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=_env())
    p.stdout.close()  # `| head -c 0`: the reader is gone before the output
    assert p.wait(timeout=120) == 141 and p.stderr.read() == b""


# --- class 5: the run cache ------------------------------------------------------------------

def _small_grid(tmp_path):
    from ffnbench.core.config import TrainConfig
    from ffnbench.run import cache as run_cache, executors, grid
    configs = [TrainConfig(backend="numpy", dataset="red", hidden=(3,), epochs=2, patience=0, seed=s)
               for s in (0, 1)]
    cache = run_cache.Cache(tmp_path / "cache")
    results, _ = grid.run_grid(configs, executors.InlineExecutor(), cache, progress=False)
    return configs, [cache.path(run_cache.cache_key(c)) for c in configs], results


def _damage_list(p, other):
    p.write_text("[1, 2]")


def _damage_types(p, other):
    e = json.loads(p.read_text())
    e["result"]["epochs_run"] = "two"
    p.write_text(json.dumps(e))


def _damage_directory(p, other):
    p.unlink()
    p.mkdir()


def _damage_forged(p, other):
    e = json.loads(p.read_text())
    e["result"]["test_mse"] = 0.001
    p.write_text(json.dumps(e))


def _damage_copied(p, other):
    p.write_bytes(other.read_bytes())


def _damage_truncated(p, other):
    p.write_text(p.read_text()[:50])


@pytest.mark.parametrize("damage", [_damage_list, _damage_types, _damage_directory, _damage_forged,
                                    _damage_copied, _damage_truncated])
def test_invalid_cache_entries_are_set_aside_and_redone(tmp_path, damage):
    from ffnbench.run import cache as run_cache, executors, grid
    configs, paths, first = _small_grid(tmp_path)
    damage(paths[0], paths[1])
    cache = run_cache.Cache(tmp_path / "cache")
    with pytest.warns(UserWarning, match=f"{paths[0].name} set aside in .*invalid .*redone"):
        again, n_cached = grid.run_grid(configs, executors.InlineExecutor(), cache, progress=False)
    assert n_cached == 1 and len(cache.invalid) == 1
    strip = lambda r: {k: v for k, v in r.items() if k not in grid.TIMING_KEYS}  # noqa: E731
    assert [strip(r) for r in again] == [strip(r) for r in first]  # redone, the same numbers
    assert len(list((tmp_path / "cache" / "invalid").iterdir())) == 1
    assert run_cache.check_entry(json.loads(paths[0].read_text()), run_cache.key_fields(configs[0]))


def grid_module():
    from ffnbench.run import grid
    return grid


def test_table_report_write_failure_keeps_every_run(tmp_path, capsys, monkeypatch):
    from ffnbench.report import table
    argv = ["table", "--backend", "numpy", "--settings", "7", "--datasets", "red", "--seeds", "2",
            "--epochs", "3", "--jobs", "1", "--no-progress", "--out", str(tmp_path / "out"),
            "--cache-dir", str(tmp_path / "cache")]
    restore = disk_full_on(monkeypatch, table, "table.md")
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "cannot write (No space left on device); all 2 runs are kept in the cache" in err
    entries = {p: p.read_bytes() for p in (tmp_path / "cache").glob("*.json")}
    assert err.count("error") == 1 and len(entries) == 2
    restore()
    monkeypatch.setattr(grid_module(), "run_task", lambda c: pytest.fail("a run was redone"))
    assert cli.main(argv) == 0  # completes from the cache
    assert {p: p.read_bytes() for p in entries} == entries
    assert "| 7 | 10 | relu |" in (tmp_path / "out" / "table.md").read_text()


def test_cache_dir_that_cannot_take_files_fails_before_any_run(tmp_path, capsys, monkeypatch):
    from ffnbench.core import fileio
    from ffnbench.run import grid

    def refuse(directory, name):
        raise UserError(f"{name}: cannot write in {directory} (Read-only file system)")
    monkeypatch.setattr(fileio, "probe_writable", refuse)
    monkeypatch.setattr(grid, "run_grid", lambda *a, **k: pytest.fail("runs started"))
    code = cli.main(["table", "--settings", "7", "--seeds", "1", "--datasets", "red",
                     "--out", str(tmp_path / "o"), "--cache-dir", str(tmp_path / "c")])
    err = capsys.readouterr().err
    assert code == 2 and one_line(err) and "Read-only file system" in err


def test_probe_sees_a_directory_that_refuses_files(tmp_path):
    from ffnbench.core import fileio
    fileio.probe_writable(tmp_path, "--out")  # a writable one passes and leaves nothing
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(UserError, match="--out x: cannot write in .*nope"):
        fileio.probe_writable(tmp_path / "nope", "--out x")


# --- class 7: sizes that cannot fit ----------------------------------------------------------

@pytest.mark.parametrize("hidden", ["100000,100000", "3000000000"])
def test_sizes_that_cannot_fit_are_refused_before_allocating(capsys, monkeypatch, hidden):
    from ffnbench.core import memory
    monkeypatch.setattr(memory, "available_bytes", lambda: 16 * 10**9)
    code, out, err = train(capsys, *QUICK, "--hidden", hidden)
    assert code == 2 and out == "" and one_line(err)
    assert f"--hidden {hidden} with numpy: training needs about" in err and "16 GB available" in err


def test_memory_estimate_on_a_hand_checked_case():
    from ffnbench.core import memory
    from ffnbench.core.config import TrainConfig
    c = TrainConfig(hidden=(5,))  # 11 -> 5 -> 1: 55 + 5 + 5 + 1 = 66 numbers of weights
    n = {"train": 1119, "val": 239, "test": 241}
    assert memory.estimate_bytes(c, (11, 5, 1), n) == 8 * (66 * 6 + 3 * 1 * 17 + 2 * 1119 * 17)
    adam = TrainConfig(hidden=(5,), optimizer="adam", batch_size="full", backend="python")
    assert memory.estimate_bytes(adam, (11, 5, 1), n) == 5 * 8 * (66 * 8 + 3 * 1119 * 17 + 2 * 1119 * 17)
    f32 = TrainConfig(hidden=(5,), dtype="float32")  # the harness's 3 copies stay float64
    assert memory.estimate_bytes(f32, (11, 5, 1), n) == 8 * 66 * 3 + 4 * (66 * 3 + 3 * 1 * 17 + 2 * 1119 * 17)
    with pytest.raises(UserError, match="needs about 0.0063 MB of memory"):
        memory.check(c, (11, 5, 1), {"train": 10, "val": 2, "test": 2}, available=100)


# --- class 8: damaged asv files -----------------------------------------------------------------

def _asv_damages():
    return {
        "results is a list": lambda d: d.update(results=[]),
        "commit_hash is a number": lambda d: d.update(commit_hash=12),
        "date of 1e22": lambda d: d.update(date=1e22),
        "params malformed": lambda d: next(iter(d["results"].values())).__setitem__(1, [5, "x"]),
        "env_name null": lambda d: d.update(env_name=None),
        "too few results": lambda d: next(iter(d["results"].values()))[0].pop(),
        "an infinite result": lambda d: next(iter(d["results"].values()))[0].__setitem__(0, 1e400),
        "not an object": lambda d: d.clear() or d.update(x=1),
    }


def _asv_dir(tmp_path, name):
    from test_history import result_file, write
    r = tmp_path / "asv"
    write(r, "m1", "aaaaaaaa-env.json", result_file("a" * 40, 1_700_000_100, 1.0))
    bad = result_file("b" * 40, 1_700_000_200, 2.0)
    _asv_damages()[name](bad)
    write(r, "m1", "bbbbbbbb-env.json", bad)
    return r


@pytest.mark.parametrize("name", list(_asv_damages()))
def test_a_damaged_asv_file_is_named_and_skipped(tmp_path, name):
    from ffnbench.studies import history
    with pytest.warns(UserWarning, match="bbbbbbbb-env.json: not an asv result file .*; skipped"):
        _, runs = history.load_runs(_asv_dir(tmp_path, name))
    assert [r.commit[0] for r in runs] == ["a"]


def test_history_with_a_damaged_file_draws_the_others(tmp_path, capsys):
    code = cli.main(["history", "--results", str(_asv_dir(tmp_path, "env_name null")),
                     "--out", str(tmp_path / "f")])
    out, err = capsys.readouterr()
    assert code == 0 and "1 commits of machine 'm1'" in out
    assert one_line(err) and "'env_name' is not a text" in err


# --- class 6 and 9: signals ---------------------------------------------------------------------

def _table(tmp_path, jobs="2", epochs="4"):
    return _cmd("table", "--backend", "numpy", "--settings", "1,3,8", "--datasets", "red,white",
                "--seeds", "3", "--epochs", epochs, "--patience", "0", "--jobs", jobs, "--no-progress", "--out", str(tmp_path / "out"),
                "--cache-dir", str(tmp_path / "cache"))


def _start(argv):
    import subprocess
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=_env(), start_new_session=True)  # its own group, as in a terminal


def _wait_for_a_run(tmp_path, proc):
    import time
    deadline = time.monotonic() + 90
    while not list((tmp_path / "cache").glob("*.json")) and time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    assert list((tmp_path / "cache").glob("*.json")), "no run finished within 90 s"


@pytest.mark.parametrize("sig, code, line", [("SIGTERM", 143, "ffnbench: terminated\n"),
                                             ("SIGKILL", -9, "")])  # Ctrl-C: the next test
def test_a_stopped_table_says_one_line_and_leaves_no_helper_noise(tmp_path, sig, code, line):
    """kill -9 / SIGTERM of a table with workers: one line (none for kill -9), no traceback,
    no leaked-semaphore notice from the helpers, finished runs kept. communicate() waits for
    every process holding the stderr pipe, the helpers included."""
    import signal
    proc = _start(_table(tmp_path))
    _wait_for_a_run(tmp_path, proc)
    proc.send_signal(getattr(signal, sig))
    _, err = proc.communicate(timeout=90)
    assert proc.returncode == code
    assert err.splitlines(keepends=True)[1:] == ([line] if line else []), err
    assert list((tmp_path / "cache").glob("*.json"))


def test_ctrl_c_while_the_pool_starts_is_one_line(tmp_path):
    """Ctrl-C reaches the whole group while workers and the forkserver start: one line. The
    table is far longer than the test's pause (300 epochs, no early stop), so a loaded machine that delays
    the test cannot let it finish before the signal."""
    import signal
    import subprocess
    import time
    proc = _start(_table(tmp_path, epochs="300"))
    deadline, seen = time.monotonic() + 60, False
    while not seen and time.monotonic() < deadline:
        seen = proc.stderr.readline().startswith("ffnbench table")
    assert seen  # the header line is printed just before the pool starts
    time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail(f"Ctrl-C did not stop the table within 90 s; stderr: {proc.communicate()[1]!r}")
    assert proc.returncode == 130 and err == "ffnbench: interrupted\n", err


def test_ctrl_c_during_the_imports_is_one_line():
    """A KeyboardInterrupt raised while cli.py imports pandas (where a real Ctrl-C lands)."""
    import subprocess
    import sys
    code = ("import sys, runpy\n"
            "class Stop:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name == 'pandas': raise KeyboardInterrupt\n"
            "sys.meta_path.insert(0, Stop())\n"
            "sys.argv = ['ffnbench', 'train']\n"
            "runpy.run_module('ffnbench.cli', run_name='__main__')\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env(),
                       timeout=60)
    assert p.returncode == 130 and p.stderr == "ffnbench: interrupted\n" and p.stdout == ""


def test_table_never_replaces_a_fifo_report_and_checks_before_running(tmp_path, capsys, monkeypatch):
    from ffnbench.run import grid
    (tmp_path / "out").mkdir()
    os.mkfifo(tmp_path / "out" / "table.md")
    monkeypatch.setattr(grid, "run_grid", lambda *a, **k: pytest.fail("runs started"))
    code = cli.main(["table", "--settings", "7", "--seeds", "1", "--datasets", "red",
                     "--out", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "c")])
    err = capsys.readouterr().err
    assert code == 2 and one_line(err) and "table.md: not a regular file; it is never replaced" in err
    assert stat.S_ISFIFO(os.stat(tmp_path / "out" / "table.md").st_mode)


def test_history_never_replaces_a_fifo_figure(tmp_path, capsys):
    from test_history import result_file, write
    r, out = tmp_path / "asv", tmp_path / "figs"
    write(r, "m1", "aaaaaaaa-env.json", result_file("a" * 40, 1_700_000_100, 1.0))
    out.mkdir()
    os.mkfifo(out / "history_test_mse.png")
    code = cli.main(["history", "--results", str(r), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and one_line(err) and "history_test_mse.png: not a regular file" in err
    assert list(out.glob("*.png")) == [out / "history_test_mse.png"]  # nothing drawn before


def test_a_failing_cache_write_keeps_the_runs_before_it(tmp_path, capsys, monkeypatch):
    from ffnbench.run.cache import Cache
    argv = ["table", "--backend", "numpy", "--settings", "7", "--datasets", "red", "--seeds", "3",
            "--epochs", "3", "--jobs", "1", "--no-progress", "--out", str(tmp_path / "out"),
            "--cache-dir", str(tmp_path / "cache")]
    real, calls = Cache.put, []

    def put(self, key, fields, result):
        calls.append(key)
        if len(calls) == 2:
            raise UserError(f"{self.path(key)}: cannot write (Disk quota exceeded)")
        return real(self, key, fields, result)
    monkeypatch.setattr(Cache, "put", put)
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    header, error = err.split("\n", 1)  # what it runs, then the one error line
    assert header.startswith("ffnbench table: 3 runs")
    assert one_line(error) and "cannot write (Disk quota exceeded)" in error
    assert len(list((tmp_path / "cache").glob("*.json"))) == 1 and not (tmp_path / "out").exists()
    monkeypatch.setattr(Cache, "put", real)
    assert cli.main(argv) == 0 and len(list((tmp_path / "cache").glob("*.json"))) == 3


def test_a_failing_figure_write_is_one_line(tmp_path, capsys, monkeypatch):
    import matplotlib.figure
    from test_history import result_file, write
    r = tmp_path / "asv"
    write(r, "m1", "aaaaaaaa-env.json", result_file("a" * 40, 1_700_000_100, 1.0))

    def full(self, *a, **k):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", full)
    code = cli.main(["history", "--results", str(r), "--out", str(tmp_path / "f")])
    err = capsys.readouterr().err
    assert code == 2 and one_line(err) and "cannot write (No space left on device)" in err
    assert list((tmp_path / "f").iterdir()) == []  # no temporary left behind


def test_closed_stdout_is_one_line_not_a_silent_success():
    import subprocess
    p = subprocess.run(_cmd("train", *QUICK, "--json"), stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True, env=_env(), timeout=60,
                       preexec_fn=lambda: os.close(1))
    assert p.returncode == 1 and p.stderr == "ffnbench: error: standard output is closed\n"
