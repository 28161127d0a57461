"""`ffnbench readings`: the `article` protocol under each reading of the input scaling that
the printed code leaves open (it loads no data) -> OUT/readings.md and readings.csv: per
published cell, the verdict and the collapsed runs under each reading."""
from pathlib import Path

import pandas as pd

from ..core.config import SCALINGS
from ..core.fileio import atomic_write, check_out_dir, ensure_dir
from ..core.log import LOG
from ..report import readings as report
from ..run import executors
from ..run.cache import Cache
from ..studies.table import Spec, compute

OUTPUTS = ("readings.md", "readings.csv")


def main(args):
    out = Path(args.out)
    check_out_dir(out, OUTPUTS)
    cache = Cache(args.cache_dir)
    engine, in_flight = executors.open_executor("local", args.jobs)
    tables = []
    try:
        for scaling in sorted(SCALINGS, key=lambda s: s != "none"):  # the protocol's own first
            spec = Spec(protocols=("article",), seeds=args.seeds,
                        overrides=() if scaling == "none" else (("scaling", scaling),))
            LOG.info(f"ffnbench readings: scaling {scaling}, {spec.size()} runs")
            table = compute(spec, engine, cache, in_flight, progress=not args.quiet).table
            tables.append(table[table["kind"] == "setting"].assign(reading=scaling))
    finally:
        executors.close_executor(engine)
    df = pd.concat(tables, ignore_index=True)
    text = report.markdown(df, args.seeds)
    ensure_dir(out, "--out")
    with atomic_write(out / "readings.csv") as f:
        df[report.COLUMNS].to_csv(f, index=False, float_format="%.6g")
    with atomic_write(out / "readings.md") as f:
        f.write(text)
    LOG.info(f"wrote {out / 'readings.md'} and {out / 'readings.csv'}")
