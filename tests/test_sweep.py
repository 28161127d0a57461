"""`ffnbench sweep` and the Dask engine: the same runs.csv on every engine, a killed worker
changes nothing, the table on Dask is the same table, worker code is checked, and bad grid
files are one line before any run."""
import functools
import os
import re
import shutil
import signal
import sys
from concurrent.futures import Executor, Future

import cloudpickle
import pandas as pd
import pytest

from ffnbench import cli
from ffnbench.commands import sweep as sweep_command
from ffnbench.commands import table as table_command
from ffnbench.core.config import TrainConfig
from ffnbench.core.errors import UserError
from ffnbench.run import executors, grid, runs
from ffnbench.run.cache import Cache, code_fingerprint
from ffnbench.studies import sweep, table

from conftest import disk_full_on

distributed = pytest.importorskip("distributed")

EXAMPLE = """\
dataset = ["red", "white"]
backend = "numba"
hidden = ["10", "50,30,20,10,5"]
activation = ["tanh", "relu"]
optimizer = "sgd"
lr = [0.01, 0.001]
l2 = 0.1
epochs = 30
patience = 10
seeds = 3
"""
VARYING = [*grid.TIMING_KEYS, "engine"]  # the columns identical runs may differ in


@pytest.fixture(scope="module")
def cluster():
    """A LocalCluster of 2 single-threaded worker processes, shared by this module's tests."""
    import logging
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0", silence_logs=logging.ERROR) as c:
        yield c


def _write(tmp_path, text, name="grid.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_the_example_grid_is_the_product_times_seeds(tmp_path):
    g, configs = sweep.load_grid(_write(tmp_path, EXAMPLE))
    assert len(configs) == 2 * 2 * 2 * 2 * 3 and len(set(configs)) == len(configs)
    assert g.varying == ["dataset", "hidden", "activation", "lr"]
    assert {c.hidden for c in configs} == {(10,), (50, 30, 20, 10, 5)}
    assert {c.seed for c in configs} == {0, 1, 2}
    assert all(c.epochs == 30 and c.l2 == 0.1 and c.backend == "numba" for c in configs)


def test_example_grid_gives_the_same_runs_on_every_engine(tmp_path, _baseline_cache):
    """In-process, the local pool and a LocalCluster of 2 workers: identical numbers. The
    dask one runs as a user runs it, a command of its own, whose stderr must hold no
    traceback (the LocalCluster's scheduler once logged a CRITICAL one as the client closed,
    sending the client its own removal event)."""
    import subprocess
    grid_file = _write(tmp_path, EXAMPLE.replace("epochs = 30", "epochs = 2")
                       .replace("seeds = 3", "seeds = 1"))
    engines = {"inline": ["--jobs", "1"], "local": ["--jobs", "2"],
               "dask": ["--executor", "dask", "--workers", "2"]}
    frames = {}
    for name, args in engines.items():
        out = tmp_path / name
        if name == "dask":  # its own process has not the tests' shared baseline cache (conftest):
            # a copy of it, so that it fits no baseline again and runs just the runs
            shutil.copytree(_baseline_cache, tmp_path / "cache-dask" / "baselines")
        argv = ["sweep", str(grid_file), "--out", str(out), "--cache-dir",
                str(tmp_path / f"cache-{name}"), "--no-progress", *args]
        if name == "dask":
            done = subprocess.run([sys.executable, "-m", "ffnbench", *argv], capture_output=True,
                                  text=True, timeout=300)
            assert "Traceback" not in done.stderr and "CRITICAL" not in done.stderr, done.stderr
            code = done.returncode
        else:
            code = cli.main(argv)
        assert code == 0
        frames[name] = pd.read_csv(out / "runs.csv")
        assert set(frames[name]["engine"]) == {name}  # each really ran there
        assert sorted(p.name for p in out.iterdir()) == [
            "runs.csv", "runs.parquet", "summary.md", "test_vs_lr.png", "validation_curves.png"]
    df = frames["inline"]
    assert list(df.columns) == runs.COLUMNS and len(df) == 16
    assert df["test_mse"].nunique() == 16 and (df["epochs_run"] == 2).all()
    for name in ("local", "dask"):
        pd.testing.assert_frame_equal(df.drop(columns=VARYING), frames[name].drop(columns=VARYING),
                                      check_exact=True)
    pq = pd.read_parquet(tmp_path / "dask" / "runs.parquet")
    assert list(pq.columns) == runs.COLUMNS and pq["test_mse"].tolist() == frames["dask"]["test_mse"].tolist()
    summaries = [(tmp_path / n / "summary.md").read_text().replace(str(tmp_path / n), "OUT")
                 for n in engines]
    assert summaries[0] == summaries[1] == summaries[2]
    assert "**Best by validation**" in summaries[0] and "least squares" in summaries[0]


def _die_once(marker, config):
    """A task that kills its own worker process the first time it sees seed 1."""
    if config.seed == 1 and not os.path.exists(marker):
        open(marker, "w").close()
        os.kill(os.getpid(), signal.SIGKILL)
    return grid.worker_task(config)


CONFIGS = [TrainConfig(backend="numba", dataset="red", hidden=(10,), epochs=3, patience=0, seed=s)
           for s in range(4)]


def _numbers(results):
    return [{k: v for k, v in r.items() if k not in (*grid.TIMING_KEYS, *grid.METADATA_KEYS)}
            for r in results]


def test_a_killed_worker_is_retried_and_changes_nothing(tmp_path, cluster, capsys):
    """...and is one line on stderr, saying how many runs go to other workers."""
    from ffnbench.core import log
    log.configure(0)
    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import tests
    marker = tmp_path / "killed"
    executor, in_flight = executors.open_executor("dask", scheduler=cluster.scheduler_address)
    try:
        results, cached = grid.run_grid(CONFIGS, executor, Cache(tmp_path / "dask"),
                                        in_flight=in_flight, progress=False,
                                        task=functools.partial(_die_once, str(marker)))
    finally:
        executors.close_executor(executor)
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    assert marker.exists() and cached == 0  # a worker did die mid-grid
    lost = [line for line in capsys.readouterr().err.splitlines() if "was lost" in line]
    assert len(lost) == 1 and re.search(r"its [1-9]\d* run\(s\) in progress are rescheduled",
                                        lost[0]), lost  # the one it ran, and any queued on it
    inline, _ = grid.run_grid(CONFIGS, executors.InlineExecutor(), Cache(tmp_path / "inline"),
                              progress=False)
    assert _numbers(results) == _numbers(inline)
    assert {r["engine"] for r in results} == {"dask"}


def test_table_on_dask_is_the_same_table(tmp_path, cluster):
    spec = table.Spec(settings=(7, 9), datasets=("red",), seeds=2, epochs=3, patience=2)
    local = table_command.run_table(spec, out=tmp_path / "local", cache_dir=tmp_path / "c1",
                                    jobs=1, progress=False)
    dask = table_command.run_table(spec, out=tmp_path / "dask", cache_dir=tmp_path / "c2",
                                   progress=False, executor="dask",
                                   scheduler=cluster.scheduler_address)
    cols = list(table.TIMING_COLUMNS)
    pd.testing.assert_frame_equal(local.drop(columns=cols), dask.drop(columns=cols), check_exact=True)
    assert (tmp_path / "local" / "table.md").read_text() == (tmp_path / "dask" / "table.md").read_text()
    a, b = (pd.read_csv(tmp_path / d / "runs.csv") for d in ("local", "dask"))
    assert list(a.columns) == ["protocol", "setting", *runs.COLUMNS] and len(a) == 4
    assert set(b["engine"]) == {"dask"}
    pd.testing.assert_frame_equal(a.drop(columns=VARYING), b.drop(columns=VARYING))


def test_a_result_from_other_code_is_refused_and_not_cached(tmp_path):
    def stale(config):
        return ("0.0.1", "f" * 64), grid.worker_task(config)[1]

    with pytest.raises(UserError, match="other ffnbench code.*same command again"):
        grid.run_grid(CONFIGS[:1], executors.InlineExecutor(), Cache(tmp_path), progress=False,
                      task=stale)
    assert list(tmp_path.iterdir()) == []


class _LostCluster(Executor):
    """Every future is cancelled, as when the client loses its scheduler."""

    def submit(self, fn, /, *args, **kwargs):
        future = Future()
        future.cancel()
        future.set_running_or_notify_cancel()  # as distributed's executor does: wait() wakes
        return future


def test_a_lost_cluster_is_one_line_that_says_how_to_resume(tmp_path):
    with pytest.raises(UserError, match="lost the Dask cluster.*run the same command again"):
        grid.run_grid(CONFIGS[:2], _LostCluster(), Cache(tmp_path), in_flight=2, progress=False)


@pytest.mark.parametrize("text", [
    'hiden = "10"',  # unknown key
    'lr = []',  # empty product
    'lr = [0.1, -1]',
    'lr = "fast"',
    'seeds = 0',
    'seed = 3',
    'hidden = ["10", "0"]',
    'hidden = ["10", 10]',  # the same architecture twice
    'epochs = 2.5',
    'dataset = ["red", "pink"]',
    'loss = "ce"',  # does not fit the red (regression) default dataset
    'backend = "nope"',
    'allow_unverified = "yes"',
    'patience = true',
    'lr = [0.1',  # not TOML
    'data_dir = "/nonexistent"',
])
def test_bad_grid_file_is_one_line_before_any_run(tmp_path, capsys, text):
    grid_file = _write(tmp_path, text + "\nepochs = 2\n" if "epochs" not in text else text)
    out, cache = tmp_path / "out", tmp_path / "cache"
    code = cli.main(["sweep", str(grid_file), "--out", str(out), "--cache-dir", str(cache)])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "error" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grid.toml"]


@pytest.mark.parametrize("argv", [
    ["--jobs", "0"], ["--workers", "2"], ["--scheduler", "tcp://x:1"], ["--executor", "spark"],
    ["--executor", "dask", "--jobs", "2"], ["--executor", "dask", "--workers", "0"],
    ["--executor", "dask", "--workers", "2", "--scheduler", "tcp://x:1"],
])
def test_bad_executor_options_are_one_line(tmp_path, capsys, argv):
    grid_file = _write(tmp_path, 'epochs = 2\nhidden = "10"\n')
    code = cli.main(["sweep", str(grid_file), "--out", str(tmp_path / "out"),
                     "--cache-dir", str(tmp_path / "cache"), *argv])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grid.toml"]


def test_missing_grid_file(tmp_path, capsys):
    assert cli.main(["sweep", str(tmp_path / "none.toml"), "--out", str(tmp_path / "o")]) == 2
    assert "cannot read the grid file" in capsys.readouterr().err


def _two_threads():
    """What a worker may start with (no OMP_NUM_THREADS=1 from Dask, or an earlier job)."""
    import torch
    from threadpoolctl import threadpool_limits
    threadpool_limits(2)
    torch.set_num_threads(2)


def _threads_here():
    """(BLAS threads, torch threads) of the process this runs in."""
    import torch
    from threadpoolctl import threadpool_info
    return {i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}, torch.get_num_threads()


def test_every_worker_runs_with_one_blas_and_torch_thread(tmp_path, cluster):
    configs = [TrainConfig(backend=b, dataset="red", hidden=(4,), epochs=1, patience=0)
               for b in ("torch", "numpy")]
    executor, in_flight = executors.open_executor("dask", scheduler=cluster.scheduler_address)
    try:
        client = executor.client
        workers = list(client.nthreads())

        def on_each(fn):  # in each worker's task thread (OpenMP settings are per thread)
            return {w: client.submit(fn, workers=[w], pure=False).result() for w in workers}

        on_each(_two_threads)
        before = on_each(_threads_here)
        grid.run_grid(configs, executor, Cache(tmp_path), in_flight=in_flight, progress=False)
        # Dask may have given every run to one worker: the same task once more on each, so
        # that each worker has run it whatever the scheduler chose
        on_each(functools.partial(grid.worker_task, configs[0]))
        seen = on_each(_threads_here)
    finally:
        executors.close_executor(executor)
    # torch can go back to 2 threads (so this can fail); BLAS only up to the cap that Dask's
    # OMP_NUM_THREADS=1 set when the worker started, which a cluster may not do
    assert all(t[1] == 2 for t in before.values()), before
    assert len(seen) == 2 and all(t == ({1}, 1) for t in seen.values()), seen


class _Sized(Executor):
    """A thread pool that says it fronts a cluster of 3 threads; tasks wait for `go`."""

    def __init__(self):
        from concurrent.futures import ThreadPoolExecutor
        self.pool, self.submitted = ThreadPoolExecutor(20), 0

    def threads(self):
        return 3

    def submit(self, fn, /, *args, **kwargs):
        self.submitted += 1
        return self.pool.submit(fn, *args, **kwargs)

    def shutdown(self, wait=True, *, cancel_futures=False):
        self.pool.shutdown(wait=wait, cancel_futures=cancel_futures)


def test_runs_in_flight_follow_the_cluster_threads(tmp_path):
    import threading
    go = threading.Event()

    def held(config):  # the real code fingerprint, a stand-in result
        go.wait(10)
        return (grid.__version__, code_fingerprint(config.backend)), {"seed": config.seed}

    configs = [TrainConfig(backend="numba", hidden=(4,), seed=s) for s in range(10)]
    executor, out = _Sized(), {}
    t = threading.Thread(target=lambda: out.update(r=grid.run_grid(
        configs, executor, Cache(tmp_path), in_flight=1, progress=False, task=held)))
    t.start()
    try:
        for _ in range(200):
            if executor.submitted >= 6:
                break
            threading.Event().wait(0.01)
        threading.Event().wait(0.2)
        assert executor.submitted == 6  # 2 x 3 threads, although in_flight=1, none finished
    finally:
        go.set()
        t.join(20)
        executor.shutdown()
    assert [r["seed"] for r in out["r"][0]] == list(range(10))


def test_a_failing_report_write_keeps_every_run_and_the_rerun_completes(tmp_path, capsys,
                                                                          monkeypatch):
    """summary.md cannot be written: one line, every run is in the cache, and the same command
    then writes the report without training anything again."""
    path = _write(tmp_path, 'dataset = "red"\nbackend = "numpy"\nhidden = "4"\nlr = [0.01, 0.02]\n'
                            'epochs = 2\npatience = 0\nseeds = 1\n')
    argv = ["sweep", str(path), "--jobs", "1", "--no-progress", "--out", str(tmp_path / "out"),
            "--cache-dir", str(tmp_path / "cache")]
    restore = disk_full_on(monkeypatch, sweep_command, "summary.md")
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "(No space left on device); all 2 runs are kept in the cache" in err
    assert err.count("error") == 1 and len(list((tmp_path / "cache").glob("*.json"))) == 2
    restore()
    monkeypatch.setattr(grid, "run_task", lambda c: pytest.fail("a run was redone"))
    assert cli.main(argv) == 0
    assert (tmp_path / "out" / "summary.md").exists()


def test_a_fifo_in_place_of_an_output_is_refused_before_any_run(tmp_path, capsys, monkeypatch):
    path = _write(tmp_path, 'dataset = "red"\nbackend = "numpy"\nhidden = "4"\nepochs = 2\n')
    (tmp_path / "out").mkdir()
    os.mkfifo(tmp_path / "out" / "summary.md")
    monkeypatch.setattr(grid, "run_grid", lambda *a, **k: pytest.fail("runs started"))
    code = cli.main(["sweep", str(path), "--out", str(tmp_path / "out"), "--no-progress",
                     "--cache-dir", str(tmp_path / "cache")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "never replaced" in err
