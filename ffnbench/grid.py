"""Run many independent training runs through any Executor, with an on-disk result cache.

A task is a TrainConfig (frozen, picklable); `run_task` is the module-level function a
worker calls. The grid code only uses `executor.submit` and `concurrent.futures.wait`, so a
cluster engine with the same shape replaces the local process pool: `open_executor` makes
either (local | dask). Every finished run is stored at once as one JSON file named by
`cache_key`, written atomically by the parent, so an interrupted grid (Ctrl-C, kill -9, a lost
cluster) loses only the runs that were in flight.
"""
import hashlib
import json
import multiprocessing
import os
import platform
import signal
import socket
import sys
import threading
import time
import warnings
from concurrent.futures import (FIRST_COMPLETED, CancelledError, Executor, Future,
                                InvalidStateError, ProcessPoolExecutor, wait)
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
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


CACHE_DIR = ".cache/table"  # the default run cache, shared by table and sweep (same key, same run)


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


def _digest(fields, result):
    """sha256 of an entry's canonical JSON: any edit of a stored number is seen."""
    text = json.dumps({**fields, "result": result}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


class InvalidEntry(Exception):
    """A cache file that is not a result of the requested run (reason in the message)."""


_NUMBER = (int, float)
RESULT_TYPES = {  # the keys a result must have (those its readers use), with their types
    "backend": str, "dataset": str, "task": str, "config": dict, "metrics": dict,
    "diverged": bool, "epochs_run": int, "seconds_per_epoch": _NUMBER,
    "warmup_seconds": _NUMBER, "run_seconds": _NUMBER,
}


def check_entry(entry, fields):
    """The result in cache file `entry` (parsed JSON), or InvalidEntry saying why not:
    wrong shape or types, made for another run than `fields`, or edited since stored."""
    if not isinstance(entry, dict) or not isinstance(entry.get("result"), dict):
        raise InvalidEntry("not a cache entry (an object with a result)")
    stored = {k: entry.get(k) for k in fields}
    if stored != fields:
        diff = next(k for k in fields if stored[k] != fields[k])
        raise InvalidEntry(f"stored for another run ({diff} differs from the requested one)")
    result = entry["result"]
    if entry.get("sha256") != _digest(fields, result):
        raise InvalidEntry("its checksum does not match its content")
    for k, t in RESULT_TYPES.items():
        if not isinstance(result.get(k), t) or (t is _NUMBER and isinstance(result[k], bool)):
            raise InvalidEntry(f"result field {k!r} is missing or of the wrong type")
    if result["config"] != fields["config"] or result["backend"] != fields["backend"]:
        raise InvalidEntry("its result belongs to another run")
    return result


class Cache:
    """One JSON file per finished run under `root`; `fresh` ignores (and overwrites) it.
    An entry that fails `check_entry` is moved to root/invalid/ and counted in `invalid`."""

    def __init__(self, root, fresh=False):
        self.root, self.fresh = Path(root), fresh
        self.invalid = []  # (file name, reason) of the entries set aside

    def path(self, key):
        return self.root / f"{key}.json"

    def get(self, key, fields=None):
        """The stored result of the run `fields` (its `key_fields`), or None to run it."""
        if self.fresh:
            return None
        path = self.path(key)
        try:
            if not path.exists() and not path.is_symlink():
                return None
            if not path.is_file():
                raise InvalidEntry("not a regular file")
            if path.stat().st_size > 2**24:
                raise InvalidEntry("larger than any result")
            entry = json.loads(path.read_text())
            if fields is None and isinstance(entry, dict):  # no run named: as stored
                fields = {k: entry.get(k) for k in ("config", "backend", "version", "code")}
            return check_entry(entry, fields)
        except (OSError, ValueError, RecursionError, InvalidEntry) as e:
            self._set_aside(path, e)
            return None

    def _set_aside(self, path, why):
        reason = str(why) if isinstance(why, InvalidEntry) else f"unreadable ({type(why).__name__})"
        self.invalid.append((path.name, reason))
        aside = self.root / "invalid"
        try:  # kept for inspection, out of the way of the rerun's entry
            aside.mkdir(exist_ok=True)
            os.replace(path, aside / f"{path.stem}.{time.time_ns()}{path.suffix}")
        except OSError:
            pass  # put() then reports the path that cannot be replaced

    def report_invalid(self):
        """One warning line for the entries set aside by get(), if any."""
        if self.invalid:
            name, reason = self.invalid[0]
            more = f" and {len(self.invalid) - 1} more" if len(self.invalid) > 1 else ""
            warnings.warn(f"cache {self.root}: {name}{more} set aside in "
                          f"{self.root / 'invalid'} ({reason}); those runs are redone")

    def put(self, key, fields, result):
        """Store `result` under `key`, with the `key_fields` it was made from."""
        ensure_dir(self.root, "--cache-dir")
        with atomic_write(self.path(key)) as f:
            json.dump({**fields, "result": result, "sha256": _digest(fields, result)}, f)


def run_task(config):
    """Train one run in this process; the result dict plus its wall time `run_seconds`
    (without importing the backend, which a worker does once)."""
    harness.load_backend(config)
    t0 = time.perf_counter()
    result, _ = harness.train(config)
    result["run_seconds"] = time.perf_counter() - t0
    return result


TIMING_KEYS = (*harness.TIMING_KEYS, "run_seconds")
METADATA_KEYS = ("machine", "engine")  # where a run ran: not part of its numbers
ENGINES = ("local", "dask")  # --executor
_IN_POOL = []  # non-empty in a local pool's worker process


@lru_cache(maxsize=None)
def cpu_model():
    """The CPU's model name from /proc/cpuinfo, else what platform knows of it."""
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def machine_info():
    """Where a run ran: host, CPU, cores and the numeric libraries (BLAS via threadpoolctl)."""
    from importlib.metadata import PackageNotFoundError, version
    from threadpoolctl import threadpool_info

    cpu = cpu_model()
    libs = {}
    for name in ("numpy", "numba", "torch"):
        try:
            libs[name] = version(name)
        except PackageNotFoundError:
            libs[name] = None
    load_blas()
    blas = sorted({f"{i.get('internal_api')} {i.get('version')} ({i.get('threading_layer', '?')})"
                   for i in threadpool_info() if i.get("user_api") == "blas"})
    return {"host": socket.gethostname(), "cpu_model": cpu, "cpu_cores": default_jobs(),
            "python": platform.python_version(), **libs, "blas": "; ".join(blas) or None}


def load_blas():
    """Load numpy's BLAS and scipy's copy (numba's kernels call BLAS through it), so that
    threadpoolctl sees, limits and reports both in every process alike."""
    import numpy  # noqa: F401
    try:
        import scipy.linalg.cython_blas  # noqa: F401
    except ImportError:
        pass


def _one_thread_per_run():
    """A worker runs one training at a time per thread: BLAS and torch get one thread each,
    so runs in flight never multiply the cores they use. Set for the whole process, before
    every run (under a millisecond), so libraries loaded by an earlier run are covered too."""
    from threadpoolctl import threadpool_limits
    load_blas()
    threadpool_limits(1)
    if "torch" in sys.modules and sys.modules["torch"].get_num_threads() != 1:
        sys.modules["torch"].set_num_threads(1)


def _engine():
    """Which engine runs this task: dask (a Dask worker), local (a pool process) or inline."""
    if "distributed" in sys.modules:
        from distributed import get_worker
        try:
            get_worker()
            return "dask"
        except ValueError:
            pass
    return "local" if _IN_POOL else "inline"


def worker_task(config):
    """What an executor's worker runs: (version and code fingerprint of the code it ran, for
    the client's check; the result of `run_task`, with the worker's `machine` and `engine`)."""
    harness.load_backend(config)  # imports the engine first: its thread pools are limited too
    _one_thread_per_run()
    result = run_task(config)
    result.update(machine=machine_info(), engine=_engine())
    return (__version__, code_fingerprint(config.backend)), result


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
    _IN_POOL.append(True)

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

    def submit(self, fn, /, *args, **kwargs):
        with _deferred_interrupts():
            return super().submit(fn, *args, **kwargs)

    def kill_workers(self):
        """Ctrl-C / SIGTERM: end the workers now and wait for them, so none is left starting
        up (it would print a traceback once this process has removed the pool's semaphores);
        their runs were in flight, so nothing finished is lost."""
        for p in list((self._processes or {}).values()):
            p.kill()
        for p in list((self._processes or {}).values()):
            p.join(timeout=5)


@contextmanager
def _deferred_interrupts():
    """Start processes (forkserver, workers) safely: they inherit a blocked SIGINT, so the
    Ctrl-C a terminal sends to the whole process group reaches only this process; and Ctrl-C
    or SIGTERM here waits until the block is done, so every started worker is known to
    kill_workers (one killed halfway through its start would be left running)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending = []
    saved = {sig: signal.signal(sig, lambda signum, frame: pending.append(signum))
             for sig in (signal.SIGINT, signal.SIGTERM)}
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        for sig, handler in saved.items():
            signal.signal(sig, handler)
        for sig in pending[:1]:  # now as if it had come just after the block
            if callable(saved[sig]):
                saved[sig](sig, None)
            elif saved[sig] == signal.SIG_DFL:
                signal.raise_signal(sig)


def _quiet_pool_shutdown():
    """Two harmless messages of a process pool that is stopped early, silenced:
    - the resource tracker (a helper process that removes the pool's semaphores once this
      process is gone, even after kill -9) warns that it is removing them: it inherits
      this interpreter's -W options, so one is added before it starts;
    - CPython 3.11's pool thread raises InvalidStateError when a worker dies (Ctrl-C reaches
      the whole process group) after the parent cancelled its queued tasks; nothing is lost.
    """
    quiet = "ignore:resource_tracker:UserWarning"
    if quiet not in sys.warnoptions:
        sys.warnoptions.append(quiet)
    previous = threading.excepthook

    def hook(args):
        if not (args.exc_type is InvalidStateError
                and type(args.thread).__name__ == "_ExecutorManagerThread"):
            previous(args)

    if getattr(previous, "__name__", "") != "hook":
        threading.excepthook = hook


def make_executor(jobs):
    """The in-process executor for one job, else a pool of `jobs` worker processes
    (`open_executor` chooses between this and a Dask cluster)."""
    if jobs == 1:
        return InlineExecutor()
    _quiet_pool_shutdown()
    # forkserver: workers start clean (no inherited threads or locks) on every platform
    # that has it; they import the backend once and keep it for all their runs
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    context = multiprocessing.get_context(method)
    if method == "forkserver":  # it would import __main__ (this CLI) while Ctrl-C still
        context.set_forkserver_preload([])  # reaches it: a second "interrupted" line
    return _ProcessPool(jobs, context)


class DaskExecutor(Executor):
    """A Dask `distributed.Client` as a concurrent.futures Executor for `run_grid`: every
    task may be retried (`retries`: a task that fails is run again; a task whose worker
    dies is rescheduled by the scheduler), `shutdown` takes `cancel_futures` and closes
    the client, and the cluster ffnbench started if any; `threads()` is the cluster's size."""

    def __init__(self, client, cluster=None, retries=3):
        self.client, self.cluster = client, cluster
        self._executor = client.get_executor(pure=False, retries=retries)
        self._threads, self._asked = 0, -1e9

    def submit(self, fn, /, *args, **kwargs):
        return self._executor.submit(fn, *args, **kwargs)

    def threads(self):
        """Worker threads in the cluster now (asked at most every 5 s: workers come and go)."""
        if time.monotonic() - self._asked > 5:
            self._threads = sum(self.client.nthreads().values())
            self._asked = time.monotonic()
        return self._threads

    def shutdown(self, wait=True, *, cancel_futures=False):
        try:
            self._executor.shutdown(wait=wait and not cancel_futures)
        finally:
            self.client.close()
            if self.cluster is not None:
                self.cluster.close()


def _lost_errors():
    """Exceptions that mean a worker or the cluster was lost, not that a run failed."""
    errors = [BrokenProcessPool, CancelledError]
    if "distributed" in sys.modules:
        from distributed import KilledWorker
        from distributed.comm import CommClosedError
        errors += [KilledWorker, CommClosedError]
    return tuple(errors)


def open_executor(engine="local", jobs=None, workers=None, scheduler=None, log=sys.stderr):
    """(executor, in_flight) for --executor `engine`: local = `make_executor(jobs)`;
    dask = a client of the cluster at `scheduler`, or of a LocalCluster of `workers`
    single-threaded worker processes that ffnbench starts (and the executor's shutdown
    closes). in_flight: twice the workers' threads (runs queued while others finish)."""
    if engine == "local":
        if workers is not None or scheduler is not None:
            raise UserError("--workers and --scheduler need --executor dask")
        jobs = jobs or default_jobs()
        return make_executor(jobs), 1 if jobs == 1 else 2 * jobs
    if engine != "dask":
        raise UserError(f"unknown --executor {engine!r} (choose from {', '.join(ENGINES)})")
    if jobs is not None:
        raise UserError("--jobs is for --executor local; with dask use --workers N or --scheduler")
    if workers is not None and scheduler is not None:
        raise UserError("--workers starts a local cluster, --scheduler joins one: give only one")
    if workers is not None and workers < 1:
        raise UserError(f"--workers must be at least 1, got {workers}")
    try:
        import distributed
    except ImportError:
        raise UserError("--executor dask needs the distributed package: "
                        "pip install 'ffnbench[dask]'") from None
    import logging
    for name in ["distributed", *logging.root.manager.loggerDict]:  # the one line is ours
        if name.startswith("distributed"):  # (distributed sets levels on some children)
            logging.getLogger(name).setLevel(logging.CRITICAL)
    cluster = None
    try:  # LocalCluster: RuntimeError when its workers cannot start
        if scheduler is None:
            cluster = distributed.LocalCluster(n_workers=workers or default_jobs(),
                                               threads_per_worker=1, processes=True,
                                               dashboard_address=":0", silence_logs=logging.CRITICAL)
            client = distributed.Client(cluster)
        else:
            client = distributed.Client(scheduler, timeout="20s")
    except (OSError, TimeoutError, RuntimeError, ValueError) as e:
        if cluster is not None:
            cluster.close()
        where = f"the Dask scheduler at {scheduler}" if scheduler else "a local Dask cluster"
        raise UserError(f"cannot connect to {where} ({str(e).splitlines()[0]})") from None
    executor = DaskExecutor(client, cluster)
    try:
        client.wait_for_workers(1, timeout=60)
    except TimeoutError:
        executor.shutdown()
        raise UserError(f"the Dask scheduler at {scheduler} has no workers after 60 s "
                        f"(start some with: dask worker {scheduler} --nthreads 1)") from None
    threads = executor.threads()
    print(f"Dask: {len(client.nthreads())} worker(s), {threads} thread(s) at "
          f"{client.scheduler.address}; dashboard {client.dashboard_link}", file=log)
    return executor, 2 * threads


def add_run_options(parser, cache_help):
    """--jobs, --executor, --workers, --scheduler, --cache-dir, --fresh, --no-progress: the
    same for every command that runs a grid; cache_help: what the cache holds, for --help."""
    parser.add_argument("--jobs", type=int, default=None,
                        help=f"with --executor local: worker processes (default: the cores, "
                             f"here {default_jobs()})")
    parser.add_argument("--executor", default="local",
                        help="local: a process pool of --jobs workers on this machine; dask: a "
                             "Dask cluster, see --workers and --scheduler (default %(default)s)")
    parser.add_argument("--workers", type=int, default=None,
                        help="with --executor dask: start a local Dask cluster of N single-"
                             "threaded worker processes (default: the cores)")
    parser.add_argument("--scheduler", default=None, metavar="ADDRESS",
                        help="with --executor dask: use the running cluster whose scheduler is "
                             "at ADDRESS, e.g. tcp://10.0.0.5:8786")
    parser.add_argument("--cache-dir", default=CACHE_DIR, help=f"{cache_help} (default %(default)s)")
    parser.add_argument("--fresh", action="store_true", help="ignore cached runs (and replace them)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def check_jobs(jobs):
    """--jobs: None (the cores) or at least 1, else one UserError line."""
    if jobs is not None and jobs < 1:
        raise UserError(f"--jobs must be at least 1, got {jobs}")


def close_executor(executor):
    """Shut `executor` down without waiting; pending runs are cancelled (any Executor,
    also one whose shutdown has no cancel_futures, like Dask's ClientExecutor)."""
    try:
        executor.shutdown(wait=False, cancel_futures=True)
    except TypeError:
        executor.shutdown(wait=False)


def run_grid(configs, executor, cache, in_flight=1, progress=True, desc="runs", task=None):
    """(results of `configs` in their order, how many came from `cache`): cached results
    are reused, the others computed through `executor`.

    At most `in_flight` tasks are submitted at a time (or `executor.threads()` x 2 when it
    is a cluster whose size may change), so each finished run is cached before the next is
    started (in-process) and Ctrl-C has little to cancel. `task` (default `worker_task`)
    returns ((version, code fingerprint), result); a result made by other code than this
    process's is refused. A lost worker or cluster is one UserError line: the finished runs
    are in the cache, so the same command resumes.
    """
    task = task or worker_task
    keys = [cache_key(c) for c in configs]
    results = [cache.get(k, key_fields(c)) for k, c in zip(keys, configs)]
    cache.report_invalid()
    todo = [i for i, r in enumerate(results) if r is None]
    todo.sort(key=lambda i: -_cost(configs[i]))  # longest first: fewer idle workers at the end
    n_todo = len(todo)
    bar = tqdm(total=len(configs), initial=len(configs) - n_todo, desc=desc, unit="run",
               file=sys.stderr, disable=not progress, dynamic_ncols=True)
    running, lost = {}, _lost_errors()
    slots = getattr(executor, "threads", None)
    try:
        while todo or running:
            limit = max(in_flight, 2 * slots()) if slots else in_flight
            while todo and len(running) < limit:
                i = todo.pop(0)
                running[executor.submit(task, configs[i])] = i
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                i = running.pop(future)
                try:
                    code, results[i] = future.result()
                except lost as e:
                    what = ("a worker process died" if isinstance(e, BrokenProcessPool) else
                            f"lost the Dask cluster or a worker ({type(e).__name__}: "
                            f"{str(e).splitlines()[0] if str(e) else 'cancelled'})")
                    raise UserError(f"{what}; run the same command again to resume from the "
                                    "cache") from None
                _check_code(code, configs[i], results[i])
                cache.put(keys[i], key_fields(configs[i]), results[i])
                bar.update(1)
    except KeyboardInterrupt:
        if isinstance(executor, _ProcessPool):
            executor.kill_workers()
        raise
    finally:
        for future in running:
            future.cancel()
        bar.close()
    return results, len(configs) - n_todo


@contextmanager
def report_writes(n_runs, cache):
    """Writing a report after the runs: a failure is one line saying that every run is in
    the cache, so the same command writes the report without training again."""
    try:
        yield
    except UserError as e:
        raise UserError(f"{e}; all {n_runs} runs are kept in the cache {cache.root}: "
                        "run the same command again to write the report") from None


def _check_code(code, config, result):
    """Refuse a result computed by other ffnbench code than the client's (a stale worker)."""
    ours = (__version__, code_fingerprint(config.backend))
    if tuple(code) != ours:
        host = result.get("machine", {}).get("host", "?")
        raise UserError(f"worker on {host} runs other ffnbench code (version {code[0]}, sources "
                        f"{code[1][:12]}) than this client (version {ours[0]}, sources "
                        f"{ours[1][:12]}); install the same ffnbench on every worker and run "
                        "the same command again (finished runs are kept)")


def _cost(config):
    """A run's relative cost per epoch: weights x training samples (for scheduling only)."""
    sizes = (11, *config.hidden, 1)
    n = {"red": 1599, "white": 4898}.get(config.dataset, 1000)
    return n * sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
