"""Run many independent training runs through any Executor, with an on-disk result cache.

A task is a TrainConfig (frozen, picklable); `run_task` is the module-level function a
worker calls. The grid code only uses `executor.submit` and `concurrent.futures.wait`, so a
cluster engine with the same shape can replace the local process pool. Every finished run
is stored at once as one JSON file named by `cache_key`, written atomically by the parent,
so an interrupted grid (Ctrl-C, kill -9) loses only the runs that were in flight.
"""
import hashlib
import json
import multiprocessing
import os
import signal
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from functools import lru_cache
from pathlib import Path

from tqdm import tqdm

import impls

from . import __version__, harness
from .errors import UserError
from .fileio import atomic_write, ensure_dir

# The sources that decide a run's numbers: their bytes are part of the cache key, so an
# edited harness or backend never serves stale results while the version stays the same.
_CODE = [Path(harness.__file__).with_name(n) for n in ("harness.py", "data.py", "config.py")]


def default_jobs():
    """The CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def code_files(backend):
    """The files whose bytes decide a run's numbers: the harness and the backend's
    declared sources (a C file or kernel module as well as its Python module)."""
    return [*_CODE, *impls.source_paths(backend)]


@lru_cache(maxsize=None)  # once per process: the code it runs was imported once too
def code_fingerprint(backend):
    """sha256 of `code_files(backend)`."""
    h = hashlib.sha256()
    for f in code_files(backend):
        h.update(f.read_bytes())
    return h.hexdigest()


def key_fields(config, version=__version__, code=None):
    """What identifies a run's result: full config (seed included), backend, version, code."""
    code = code_fingerprint(config.backend) if code is None else code
    return {"config": config.to_dict(), "backend": config.backend, "version": version,
            "code": code}


def cache_key(config, version=__version__, code=None):
    """sha256 of the canonical JSON of `key_fields`."""
    canonical = json.dumps(key_fields(config, version, code), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


class Cache:
    """One JSON file per finished run under `root`; `fresh` ignores (and overwrites) it."""

    def __init__(self, root, fresh=False):
        self.root, self.fresh = Path(root), fresh

    def path(self, key):
        return self.root / f"{key}.json"

    def get(self, key):
        if self.fresh:
            return None
        try:
            return json.loads(self.path(key).read_text())["result"]
        except (OSError, ValueError, KeyError):  # absent or unreadable: run it again
            return None

    def put(self, key, fields, result):
        """Store `result` under `key`, with the `key_fields` it was made from."""
        ensure_dir(self.root, "--cache-dir")
        with atomic_write(self.path(key)) as f:
            json.dump({**fields, "result": result}, f)


def run_task(config):
    """Train one run in this process; the result dict plus its wall time `run_seconds`
    (without importing the backend, which a worker does once)."""
    harness.load_backend(config)
    t0 = time.perf_counter()
    result, _ = harness.train(config)
    result["run_seconds"] = time.perf_counter() - t0
    return result


TIMING_KEYS = (*harness.TIMING_KEYS, "run_seconds")


class InlineExecutor(Executor):
    """Runs each task at submit time in this process (--jobs 1; debugging; profiling)."""

    def submit(self, fn, /, *args, **kwargs):
        future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as e:  # KeyboardInterrupt propagates
            future.set_exception(e)
        return future


def _worker_init(lifeline):
    """Ctrl-C is the parent's business (it cancels and reports once); a worker whose
    parent died (kill -9) exits instead of waiting for tasks forever."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def watch():
        try:
            lifeline.recv_bytes()  # nothing is ever sent: this returns when the parent is gone
        except (EOFError, OSError):
            pass
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


class _ProcessPool(ProcessPoolExecutor):
    """A process pool whose workers exit when this process dies."""

    def __init__(self, jobs, context):
        # only this process holds the write end; the workers get the read end
        lifeline, self._lifeline = context.Pipe(duplex=False)
        super().__init__(max_workers=jobs, mp_context=context, initializer=_worker_init,
                         initargs=(lifeline,))


def make_executor(jobs):
    """The in-process executor for one job, else a pool of `jobs` worker processes."""
    if jobs == 1:
        return InlineExecutor()
    # forkserver: workers start clean (no inherited threads or locks) on every platform
    # that has it; they import the backend once and keep it for all their runs
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    return _ProcessPool(jobs, multiprocessing.get_context(method))


def run_grid(configs, executor, cache, in_flight=1, progress=True, desc="runs"):
    """(results of `configs` in their order, how many came from `cache`): cached results
    are reused, the others computed through `executor`.

    At most `in_flight` tasks are submitted at a time, so each finished run is cached
    before the next is started (in-process) and Ctrl-C has little to cancel.
    """
    keys = [cache_key(c) for c in configs]
    results = [cache.get(k) for k in keys]
    todo = [i for i, r in enumerate(results) if r is None]
    todo.sort(key=lambda i: -_cost(configs[i]))  # longest first: fewer idle workers at the end
    n_todo = len(todo)
    bar = tqdm(total=len(configs), initial=len(configs) - n_todo, desc=desc, unit="run",
               file=sys.stderr, disable=not progress, dynamic_ncols=True)
    running = {}
    try:
        while todo or running:
            while todo and len(running) < in_flight:
                i = todo.pop(0)
                running[executor.submit(run_task, configs[i])] = i
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                i = running.pop(future)
                try:
                    results[i] = future.result()
                except BrokenProcessPool:
                    raise UserError("a worker process died; run the same command again to "
                                    "resume from the cache") from None
                cache.put(keys[i], key_fields(configs[i]), results[i])
                bar.update(1)
    finally:
        for future in running:
            future.cancel()
        bar.close()
    return results, len(configs) - n_todo


def _cost(config):
    """A run's relative cost per epoch: weights x training samples (for scheduling only)."""
    sizes = (11, *config.hidden, 1)
    n = {"red": 1599, "white": 4898}.get(config.dataset, 1000)
    return n * sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
