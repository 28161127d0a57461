"""Run many independent training runs through any Executor, with the on-disk run cache.

A task is a TrainConfig (frozen, picklable); `worker_task` is the module-level function a
worker calls. Every finished run is stored at once in the cache (cache.py), written
atomically by the parent, so an interrupted grid (Ctrl-C, kill -9, a lost cluster) loses
only the runs that were in flight.
"""
import sys
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass

from tqdm import tqdm

from .. import __version__
from ..core import data, harness
from ..core.errors import UserError, check_stopped
from ..core.log import LOG, verbose
from .cache import code_fingerprint, fields_key, key_fields
from .executors import engine_name, lost_errors, ProcessPool
from .machine import one_thread_per_run, machine_info


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


def worker_task(config):
    """What an executor's worker runs: (version and code fingerprint of the code it ran, for
    the client's check; the result of `run_task`, with the worker's `machine` and `engine`)."""
    harness.load_backend(config)  # imports the engine first: its thread pools are limited too
    one_thread_per_run()
    result = run_task(config)
    result.update(machine=machine_info(), engine=engine_name())
    return (__version__, code_fingerprint(config.backend)), result


@dataclass(frozen=True)
class Kind:
    """What run_grid needs to know of one kind of cached task (a training run, a baseline)."""

    fields: Callable  # item -> what identifies its result (the cache key is their hash)
    task: Callable  # item -> ((version, code fingerprint), result): what a worker runs
    code: Callable  # item -> the (version, code fingerprint) this process would make it with
    cost: Callable  # item -> its relative cost (the longest are started first)
    label: Callable = repr  # item -> a few words for -v


def run_grid(configs, executor, cache, in_flight=1, progress=True, desc="runs", task=None,
             kind=None):
    """(results of `configs` in their order, how many came from `cache`): cached results
    are reused, the others computed through `executor`. `kind` (default RUNS: TrainConfigs)
    says how its items are keyed, run and checked.

    At most `in_flight` tasks are submitted at a time (or `executor.threads()` x 2 when it
    is a cluster whose size may change), so each finished run is cached before the next is
    started (in-process) and Ctrl-C has little to cancel. `task` (default `worker_task`)
    returns ((version, code fingerprint), result); a result made by other code than this
    process's is refused. A lost worker or cluster is one UserError line: the finished runs
    are in the cache, so the same command resumes.
    """
    kind = kind or RUNS
    task = task or kind.task
    n = len(configs)
    results, n_cached, n_done = [None] * n, 0, 0  # (a disabled tqdm counts nothing)
    # longest first (fewer idle workers at the end); each is looked up in the cache only when
    # its turn comes, so the first run starts at once however large the grid
    order = sorted(range(n), key=lambda i: kind.cost(configs[i]))
    bar = tqdm(total=n, desc=desc, unit="run", file=sys.stderr, dynamic_ncols=True,
               disable=None if progress else True)  # None: drawn only on a terminal
    lines = _Lines(desc, n) if progress and bar.disable else None  # a log file: plain lines
    running, lost = {}, lost_errors()
    slots = getattr(executor, "threads", None)
    try:
        while order or running:
            limit = max(in_flight, 2 * slots()) if slots else in_flight
            while order and len(running) < limit:
                i = order.pop()
                fields = kind.fields(configs[i])
                key = fields_key(fields)
                results[i] = cache.get(key, fields)
                if results[i] is not None:
                    n_cached, n_done = n_cached + 1, n_done + 1
                    bar.update(1)
                    continue
                running[executor.submit(task, configs[i])] = i, key, fields
            if not running:
                continue
            # a timeout, not a bare wait: a Ctrl-C whose exception was dropped (see
            # errors.check_stopped) still ends the wait
            done, _ = wait(running, timeout=0.5, return_when=FIRST_COMPLETED)
            check_stopped()
            for future in done:
                i, key, fields = running.pop(future)
                try:
                    code, results[i] = future.result()
                except lost as e:
                    what = ("a worker process died" if isinstance(e, BrokenProcessPool) else
                            f"lost the Dask cluster or a worker ({type(e).__name__}: "
                            f"{str(e).splitlines()[0] if str(e) else 'cancelled'})")
                    raise UserError(f"{what}; run the same command again to resume from the "
                                    "cache") from None
                _check_code(code, kind.code(configs[i]), results[i])
                cache.put(key, fields, results[i])
                n_done += 1
                bar.update(1)
                if verbose():
                    LOG.debug(f"{desc} {n_done}/{n}: {kind.label(configs[i])} in "
                              f"{results[i].get('run_seconds', float('nan')):.1f} s on "
                              f"{results[i].get('machine', {}).get('host', '?')}")
                if lines:
                    lines.update(n_done, n_cached)
    except KeyboardInterrupt:
        if isinstance(executor, ProcessPool):
            executor.kill_workers()
        raise
    finally:
        for future in running:
            future.cancel()
        bar.close()
        cache.report_invalid()
    return results, n_cached


class _Lines:
    """Progress where no bar is drawn (stderr is a file): a line at most every `every`
    seconds, with the time left at the pace of the runs trained so far."""

    def __init__(self, desc, total, every=30.0):
        self.desc, self.total, self.every = desc, total, every
        self.t0 = self.last = time.monotonic()

    def update(self, done, cached):
        now = time.monotonic()
        if now - self.last < self.every or done == self.total:
            return
        self.last = now
        trained = done - cached
        left = (now - self.t0) / trained * (self.total - done)
        LOG.info(f"{self.desc}: {done}/{self.total} runs, {_minutes(now - self.t0)} so far, "
                 f"~{_minutes(left)} left")


def _minutes(seconds):
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


@contextmanager
def report_writes(n_runs, cache):
    """Writing a report after the runs: a failure is one line saying that every run is in
    the cache, so the same command writes the report without training again."""
    try:
        yield
    except UserError as e:
        raise UserError(f"{e}; all {n_runs} runs are kept in the cache {cache.root}: "
                        "run the same command again to write the report") from None


def _check_code(code, ours, result):
    """Refuse a result computed by other ffnbench code than the client's (a stale worker)."""
    if tuple(code) != tuple(ours):
        host = result.get("machine", {}).get("host", "?")
        raise UserError(f"worker on {host} runs other ffnbench code (version {code[0]}, sources "
                        f"{code[1][:12]}) than this client (version {ours[0]}, sources "
                        f"{ours[1][:12]}); install the same ffnbench on every worker and run "
                        "the same command again (finished runs are kept)")


def _cost(config):
    """A run's relative cost per epoch: weights x training samples (for scheduling only)."""
    sizes = (11, *config.hidden, 1)
    colour = config.dataset.split("-")[0]  # red-quality-class: red's file; color: both files
    n = data.UCI_ROWS.get(colour, sum(data.UCI_ROWS.values()))
    return n * sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))



RUNS = Kind(fields=key_fields, task=worker_task, cost=_cost,
            code=lambda config: (__version__, code_fingerprint(config.backend)),
            label=lambda c: (f"{c.backend} {c.dataset} {'-'.join(map(str, c.hidden))} "
                             f"{c.activation} lr {c.lr} seed {c.seed}"))
