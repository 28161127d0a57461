"""`ffnbench table`: the published wine-quality table rerun over seeds under one or more
protocols, with the baselines on the same splits (studies/table.py computes, report/table.py
writes)."""
import time
from pathlib import Path

from ..core import harness
from ..core.config import OVERRIDES, RUN_LIMIT
from ..core.errors import UserError
from ..core.fileio import check_dir_path, check_out_dir, to_json
from ..core.log import LOG
from ..report import table as report
from ..run import executors, grid
from ..run.cache import Cache
from ..studies.table import Spec, chosen_grid, compute


def run_table(spec, out, cache_dir, fresh=False, jobs=None, progress=True,
              executor="local", workers=None, scheduler=None, scheduler_file=None):
    """Run (or fetch from the cache) every run of `spec` on `executor` (local | dask, see
    executors.open_executor); write OUT/table.csv, table.md, ablation.md and runs.csv."""
    out = Path(out)
    cache = Cache(cache_dir, fresh)
    engine, in_flight = executors.open_executor(executor, jobs, workers, scheduler, scheduler_file)
    where = f"{jobs or executors.default_jobs()} job(s)" if executor == "local" else "Dask"
    n = spec.size()
    LOG.info(f"ffnbench table: {n} runs = {spec.describe()}; {where}")
    t0 = time.perf_counter()
    try:
        result = compute(spec, engine, cache, in_flight, progress)
    finally:
        executors.close_executor(engine)
    with grid.report_writes(n, cache):
        written = report.write(out, spec, result)
    LOG.info(f"{n} runs: {result.n_cached} from the cache ({cache.root}), "
             f"{n - result.n_cached} trained; wrote {', '.join(p.name for p in written)} in "
             f"{out} in {time.perf_counter() - t0:.1f} s")
    return result.table


def spec_from_args(args):
    """A validated Spec, or a UserError before anything is run or written."""
    overrides = tuple((k, getattr(args, k)) for k in OVERRIDES if getattr(args, k, None) is not None)
    if args.seeds < 1:
        raise UserError(f"--seeds must be at least 1, got {args.seeds}")
    executors.check_jobs(args.jobs)
    spec = Spec(seeds=args.seeds, backend=args.backend, epochs=args.epochs, patience=args.patience,
                overrides=overrides, **chosen_grid(args.protocol, args.datasets, args.settings))
    if not args.yes and spec.size() > RUN_LIMIT:
        raise UserError(f"{spec.size():,} runs ({spec.describe()}) is more than the "
                        f"{RUN_LIMIT:,} a table starts without --yes; check --seeds, or add --yes")
    # one run's config per protocol validates backend, epochs, patience and the overrides;
    # load_backend: the engine is there
    for protocol in spec.protocols:
        harness.load_backend(spec.config(spec.chosen()[0], spec.datasets[0], protocol, 0))
    check_out_dir(args.out, report.OUTPUTS)
    check_dir_path(args.cache_dir, "--cache-dir")
    return spec


def main(args):
    table = run_table(spec_from_args(args), out=args.out, cache_dir=args.cache_dir,
                      fresh=args.fresh, jobs=args.jobs,
                      progress=not (args.no_progress or args.quiet), executor=args.executor,
                      workers=args.workers, scheduler=args.scheduler,
                      scheduler_file=args.scheduler_file)
    if args.json:  # what table.csv holds; NaN as null
        print(to_json({"out": str(args.out), "files": list(report.OUTPUTS),
                       "rows": table.to_dict(orient="records")}))
