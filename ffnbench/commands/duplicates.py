"""`ffnbench duplicates`: the baselines and the best FFN of the `modern` protocol with the
random split and with the grouped split (all copies of an identical wine in one part) ->
OUT/duplicates.md, and the grouped table itself -> OUT/grouped/table.{csv,md}. The random-split
runs come from the run cache when `ffnbench table` ran before.
"""
from pathlib import Path

from ..core.fileio import atomic_write, check_out_dir, ensure_dir
from ..core.log import LOG
from ..report import duplicates as report
from ..report import table as table_report
from ..run import executors
from ..run.cache import Cache
from ..studies.table import Spec, compute

SEEDS = 20  # as the table: enough for the Welch intervals of the flattery


def main(args):
    out = Path(args.out)
    check_out_dir(out, ("duplicates.md",))
    cache = Cache(args.cache_dir)
    engine, in_flight = executors.open_executor("local", args.jobs)
    tables = {}
    try:
        for split in ("random", "grouped"):
            spec = Spec(protocols=("modern",), seeds=SEEDS,
                        overrides=(("split", split),) if split == "grouped" else ())
            LOG.info(f"ffnbench duplicates: {split} split, {spec.size()} runs = {spec.describe()}")
            result = compute(spec, engine, cache, in_flight, progress=not args.quiet)
            tables[split] = result.table
            if split == "grouped":
                table_report.write(out / "grouped", spec, result)
    finally:
        executors.close_executor(engine)
    text = report.markdown(tables, SEEDS)
    ensure_dir(out, "--out")
    with atomic_write(out / "duplicates.md") as f:
        f.write(text)
    LOG.info(f"wrote {out / 'duplicates.md'} and {out / 'grouped'}")
