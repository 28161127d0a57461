"""`ffnbench precision`: the table's settings in float32 and in float64 on the same runs ->
OUT/precision.md, precision.csv (one row per setting) and precision_runs.csv (both
precisions' test MSE per run, the pairs the rows are computed from)."""
from pathlib import Path

from ..core import harness
from ..core.errors import UserError
from ..core.fileio import atomic_write, check_out_dir, ensure_dir
from ..core.log import LOG
from ..report import precision as report
from ..run import executors
from ..run.cache import Cache
from ..studies import precision as study
from ..studies.stats import LEVEL
from ..studies.table import Spec, chosen_grid, run_plan

OUTPUTS = ("precision.md", "precision.csv", "precision_runs.csv")


def spec_from_args(args):
    if args.seeds < 2:
        raise UserError(f"--seeds must be at least 2 (an interval needs two pairs), got {args.seeds}")
    if not 0 < args.delta < float("inf"):
        raise UserError(f"--delta must be a positive number, got {args.delta}")
    executors.check_jobs(args.jobs)
    spec = Spec(seeds=args.seeds, backend=args.backend,
                **chosen_grid(args.protocol, args.datasets, args.settings))
    for s in study.specs(spec):  # the backend takes both precisions, its engine is there
        harness.load_backend(s.config(s.chosen()[0], s.datasets[0], s.protocols[0], 0))
    check_out_dir(args.out, OUTPUTS)
    return spec


def main(args):
    spec = spec_from_args(args)
    out = Path(args.out)
    cache = Cache(args.cache_dir)
    engine, in_flight = executors.open_executor("local", args.jobs)
    runs = []
    try:
        for s in study.specs(spec):
            LOG.info(f"ffnbench precision: {s.size()} runs = {s.describe()}")
            runs.append(run_plan(s, engine, cache, in_flight, progress=not args.quiet)[2])
    finally:
        executors.close_executor(engine)
    paired = study.pair(*runs)
    df = study.summarise(paired, {s.number: s for s in spec.chosen()}, args.delta, LEVEL)
    ensure_dir(out, "--out")
    with atomic_write(out / "precision_runs.csv") as f:
        paired.to_csv(f, index=False, float_format="%.17g")
    with atomic_write(out / "precision.csv") as f:
        df.to_csv(f, index=False, float_format="%.6g")
    with atomic_write(out / "precision.md") as f:
        f.write(report.markdown(df, study.diverged_alone(paired), len(paired), spec, args.delta, LEVEL))
    LOG.info(f"{int(df['within'].sum())} of {len(df)} settings within ±{args.delta:g}; "
             f"wrote {', '.join(OUTPUTS)} in {out}")
