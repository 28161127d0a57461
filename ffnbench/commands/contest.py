"""`ffnbench contest`: the FFN, the random forest and gradient boosting tuned with the same
budget by the same cross-validation on training + validation, refit, tested once; random and
grouped split (studies/contest.py) -> OUT/contest.csv and contest.md."""
from pathlib import Path

from ..core.config import REGRESSION_DATASETS, parse_choices
from ..core.errors import UserError
from ..core.fileio import atomic_write, check_out_dir, ensure_dir
from ..core.log import LOG
from ..report import contest as report
from ..run import executors
from ..run.cache import Cache
from ..studies import contest

OUTPUTS = ("contest.csv", "contest.md")


def main(args):
    datasets = parse_choices(args.datasets, "datasets", REGRESSION_DATASETS)
    if args.seeds < 2:
        raise UserError(f"--seeds must be at least 2 (an interval needs two), got {args.seeds}")
    out = Path(args.out)
    check_out_dir(out, OUTPUTS)
    engine, in_flight = executors.open_executor("local", args.jobs)
    n = len(datasets) * len(contest.SPLITS) * args.seeds * len(contest.CANDIDATES)
    LOG.info(f"ffnbench contest: {n} tuned models = {', '.join(datasets)} x "
             f"{len(contest.SPLITS)} splits x {args.seeds} seeds x {len(contest.CANDIDATES)} families")
    try:
        df = contest.compute(datasets, args.seeds, engine, Cache(args.cache_dir), in_flight,
                             progress=not args.quiet)
    finally:
        executors.close_executor(engine)
    text = report.markdown(df, args.seeds)
    ensure_dir(out, "--out")
    with atomic_write(out / "contest.csv") as f:
        df.to_csv(f, index=False)
    with atomic_write(out / "contest.md") as f:
        f.write(text)
    LOG.info(f"wrote {out / 'contest.csv'} and {out / 'contest.md'}")
