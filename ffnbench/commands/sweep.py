"""`ffnbench sweep GRID.toml`: every combination of the grid's train options, times seeds,
through the same cache and executors as `ffnbench table`; writes a tidy runs.csv, a
summary over seeds (best configuration by validation, paired against the mean predictor
and least squares on the same splits) and figures."""
import time
from pathlib import Path

from ..core.config import RUN_LIMIT
from ..core.fileio import atomic_write, check_dir_path, check_out_dir, ensure_dir, to_json
from ..core.log import LOG
from ..report import sweep as report
from ..run import executors, grid, runs
from ..run.cache import Cache
from ..studies.sweep import compute, load_grid

OUTPUTS = ("runs.csv", "runs.parquet", "summary.md", "validation_curves.png", "test_vs_lr.png")


def run_sweep(g, configs, out, cache_dir, fresh=False, executor="local", jobs=None,
              workers=None, scheduler=None, progress=True, command=None, scheduler_file=None):
    """Run (or fetch from the cache) every run of grid `g`; write runs.csv (+ .parquet),
    summary.md and figures into `out`. Returns the runs frame."""
    out = Path(out)
    cache = Cache(cache_dir, fresh)
    engine, in_flight = executors.open_executor(executor, jobs, workers, scheduler, scheduler_file)
    LOG.info(f"ffnbench sweep: {len(configs)} runs = {g.describe()}")
    t0 = time.perf_counter()
    try:
        df, results, n_cached, baselines = compute(g, configs, engine, cache, in_flight, progress)
    finally:
        executors.close_executor(engine)
    command = command or f"ffnbench sweep {g.path}"  # where it wrote is where the file is
    summary = report.render_summary(g, df, command, baselines)  # before any file is written
    keys = [k for k in g.varying if k != "dataset"]
    with grid.report_writes(len(configs), cache):
        ensure_dir(out, "--out")
        written = runs.write(df, out, parquet=True)
        with atomic_write(out / "summary.md") as f:
            f.write(summary)
        written.append(out / "summary.md")
        written.append(report.plot_curves(df, results, keys, out / "validation_curves.png"))
        if "lr" in keys and "hidden" in keys:
            written.append(report.plot_lr(df, keys, out / "test_vs_lr.png"))
    LOG.info(f"{len(configs)} runs: {n_cached} from the cache ({cache.root}), "
             f"{len(configs) - n_cached} trained; wrote {', '.join(p.name for p in written)} "
             f"in {out} in {time.perf_counter() - t0:.1f} s")
    return df


def main(args):
    g, configs = load_grid(args.grid, limit=None if args.yes else RUN_LIMIT)
    out = Path(args.out) if args.out else Path("build") / "sweeps" / g.path.stem
    check_out_dir(out, OUTPUTS)
    check_dir_path(args.cache_dir, "--cache-dir")
    executors.check_jobs(args.jobs)
    df = run_sweep(g, configs, out, cache_dir=args.cache_dir, fresh=args.fresh,
                   executor=args.executor, jobs=args.jobs, workers=args.workers,
                   scheduler=args.scheduler, progress=not (args.no_progress or args.quiet),
                   command=f"ffnbench sweep {args.grid}", scheduler_file=args.scheduler_file)
    if args.json:  # what runs.csv holds; NaN as null
        print(to_json({"out": str(out), "runs": df.to_dict(orient="records")}))
