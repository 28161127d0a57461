"""Executors for many independent runs: in this process, a local process pool, or a Dask
cluster (`open_executor`). The grid only uses `executor.submit` and
`concurrent.futures.wait`, so a cluster engine with the same shape replaces the local pool.
The pool's workers exit when this process dies, and Ctrl-C / SIGTERM end them at once."""
import multiprocessing
import os
import signal
import sys
import threading
import time
from concurrent.futures import CancelledError, Executor, Future, InvalidStateError, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager

from ..core.config import EXECUTORS
from ..core.errors import UserError
from ..core.log import LOG, verbose
from .machine import default_jobs




_IN_POOL = []  # non-empty in a local pool's worker process


def engine_name():
    """Which engine runs this task: dask (a Dask worker), local (a pool process) or inline."""
    if "distributed" in sys.modules:
        from distributed import get_worker
        try:
            get_worker()
            return "dask"
        except ValueError:
            pass
    return "local" if _IN_POOL else "inline"


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


class ProcessPool(ProcessPoolExecutor):
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
    return ProcessPool(jobs, context)


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
            try:  # else the scheduler sends this client's own removal to its closed comm
                self.client.unsubscribe_topic("all")
            except Exception:  # a lost scheduler: nothing to unsubscribe from
                pass
            self.client.close()
            if self.cluster is not None:
                self.cluster.close()


def _worker_event(event):
    """The scheduler's event stream (called in the client's thread): one line when a worker
    goes, saying how many runs it had that the scheduler gives to other workers; with -v,
    one when a worker joins."""
    _, msg = event
    if not isinstance(msg, dict):
        return
    if msg.get("action") == "remove-worker":
        n = len(msg.get("processing-tasks") or ())
        how = "left" if msg.get("expected") else "was lost"
        LOG.info(f"Dask: worker {msg.get('worker', '?')} {how}; its {n} run(s) in progress are "
                 "rescheduled on the other workers")
    elif msg.get("action") == "add-worker":
        LOG.debug(f"Dask: worker {msg.get('worker', '?')} joined")


def lost_errors():
    """Exceptions that mean a worker or the cluster was lost, not that a run failed."""
    errors = [BrokenProcessPool, CancelledError]
    if "distributed" in sys.modules:
        from distributed import KilledWorker
        from distributed.comm import CommClosedError
        errors += [KilledWorker, CommClosedError]
    return tuple(errors)


def open_executor(engine="local", jobs=None, workers=None, scheduler=None, scheduler_file=None):
    """(executor, in_flight) for --executor `engine`: local = `make_executor(jobs)`;
    dask = a client of the cluster at `scheduler` (else the one a `scheduler_file` names, as
    dask-jobqueue and dask-mpi write it, else dask's own configuration: the
    DASK_SCHEDULER_ADDRESS variable or `scheduler-address` in its config files), or of a
    LocalCluster of `workers` single-threaded worker processes that ffnbench starts (and the
    executor's shutdown closes). in_flight: twice the workers' threads (runs queued while
    others finish)."""
    if engine == "local":
        if workers is not None or scheduler is not None or scheduler_file is not None:
            raise UserError("--workers, --scheduler and --scheduler-file need --executor dask")
        jobs = jobs or default_jobs()
        return make_executor(jobs), 1 if jobs == 1 else 2 * jobs
    if engine != "dask":
        raise UserError(f"unknown --executor {engine!r} (choose from {', '.join(EXECUTORS)})")
    if jobs is not None:
        raise UserError("--jobs is for --executor local; with dask use --workers N or --scheduler")
    if sum(x is not None for x in (workers, scheduler, scheduler_file)) > 1:
        raise UserError("--workers starts a local cluster, --scheduler and --scheduler-file join "
                        "one: give only one")
    if workers is not None and workers < 1:
        raise UserError(f"--workers must be at least 1, got {workers}")
    try:
        import distributed
    except ImportError:
        raise UserError("--executor dask needs the distributed package: "
                        "pip install 'ffnbench[dask]'") from None
    import logging
    level = logging.WARNING if verbose() else logging.CRITICAL  # -v: Dask's own messages too
    for name in ["distributed", *logging.root.manager.loggerDict]:  # else the lines are ours
        if name.startswith("distributed"):  # (distributed sets levels on some children)
            logging.getLogger(name).setLevel(level)
    if scheduler_file is not None and not os.path.isfile(scheduler_file):
        raise UserError(f"--scheduler-file {scheduler_file}: no such file (the scheduler writes "
                        "it: dask scheduler --scheduler-file FILE)")
    if scheduler is None and scheduler_file is None and workers is None:
        import dask  # DASK_SCHEDULER_ADDRESS lands in dask's config as scheduler-address
        scheduler = dask.config.get("scheduler-address", None)
    cluster = None
    try:  # LocalCluster: RuntimeError when its workers cannot start
        if scheduler_file is not None:
            client = distributed.Client(scheduler_file=str(scheduler_file), timeout="20s")
            scheduler = client.scheduler.address
        elif scheduler is None:
            cluster = distributed.LocalCluster(n_workers=workers or default_jobs(),
                                               threads_per_worker=1, processes=True,
                                               dashboard_address=":0", silence_logs=logging.CRITICAL)
            client = distributed.Client(cluster)
        else:
            client = distributed.Client(scheduler, timeout="20s")
    except (OSError, TimeoutError, RuntimeError, ValueError) as e:
        if cluster is not None:
            cluster.close()
        where = (f"the Dask scheduler at {scheduler}" if scheduler else
                 f"the Dask scheduler of --scheduler-file {scheduler_file}" if scheduler_file else
                 "a local Dask cluster")
        raise UserError(f"cannot connect to {where} ({str(e).splitlines()[0]})") from None
    executor = DaskExecutor(client, cluster)
    client.subscribe_topic("all", _worker_event)
    try:
        client.wait_for_workers(1, timeout=60)
    except TimeoutError:
        executor.shutdown()
        raise UserError(f"the Dask scheduler at {scheduler} has no workers after 60 s "
                        f"(start some with: dask worker {scheduler} --nthreads 1)") from None
    threads = executor.threads()
    LOG.info(f"Dask: {len(client.nthreads())} worker(s), {threads} thread(s) at "
             f"{client.scheduler.address}; dashboard {client.dashboard_link}")
    return executor, 2 * threads


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

