"""`ffnbench compare`: per-epoch training time of every backend on the same work
(studies/speed.py measures, report/compare.py renders)."""
import time
from pathlib import Path

import pandas as pd

from .. import impls
from ..core import harness
from ..core.config import NETS, REGRESSION_DATASETS, parse_batch_size, parse_choices, parse_hidden
from ..core.errors import UserError
from ..core.fileio import atomic_write, check_out_dir, ensure_dir, to_json
from ..core.log import LOG
from ..report import compare as report
from ..run import machine
from ..studies.speed import DEPTHS, WIDTHS, Case, able, environment, run_cases

OUTPUTS = ("speed.csv", "speed_scaling.csv", "speed.md")


def _progress(n_cases):
    """A line per case as it starts: its number, what it times and the time left at the
    pace of the cases before it (they differ, so it is a rough guide)."""
    t0, done = time.perf_counter(), []

    def say(c):
        elapsed = time.perf_counter() - t0
        left = f", ~{elapsed / len(done) * (n_cases - len(done)):.0f} s left" if done else ""
        done.append(c)
        LOG.info(f"  [{len(done)}/{n_cases}{left}] {c.backend:>6} {'-'.join(map(str, c.hidden)):>20} "
                 f"{c.dataset:>5} batch {c.batch_size}" + (f" {c.dtype}" if c.dtype != "float64" else ""))
    return say


def main(args):
    if args.backends is None:  # every backend that can run here; say which cannot
        backends = tuple(n for n in impls.BACKENDS if not impls.unavailable(n))
        for name in impls.BACKENDS:
            if name not in backends:
                LOG.info(f"ffnbench compare: leaving out {impls.unavailable(name)}")
    else:
        backends = parse_choices(args.backends, "backends", tuple(impls.BACKENDS))
    datasets = parse_choices(args.datasets, "datasets", REGRESSION_DATASETS)
    dtypes = parse_choices(args.dtypes, "dtypes", impls.DTYPES)
    per_dtype = {dtype: able(backends, dtype) for dtype in dtypes}  # who runs in which
    for dtype, names in per_dtype.items():
        why = {name: impls.refusal(name, impls.HyperParams("tanh", 0.01, 0.1, dtype=dtype))
               for name in backends if name not in names}
        if not names:
            raise UserError(f"--dtypes {dtype}: no backend of {', '.join(backends)} runs in it "
                            f"({next(iter(why.values()))})")
        for reason in why.values():
            LOG.info(f"ffnbench compare: no {dtype} rows: {reason}")
    batch_sizes = [parse_batch_size(b) for b in parse_choices(args.batch_sizes, "batch-sizes")]
    archs = [parse_hidden(h) for h in args.hidden] if args.hidden else list(NETS)
    for B in batch_sizes:  # validates before any timing
        for dtype, names in per_dtype.items():
            Case(names[0], archs[0], datasets[0], B, dtype).config()
    if args.repeat < 1 or args.threads < 1:
        raise UserError("--repeat and --threads must be at least 1")
    for name in backends:
        harness.load_backend(Case(name, archs[0], datasets[0], 1).config())
    out = Path(args.out)
    check_out_dir(out, OUTPUTS)  # before the measurements
    n_cases = (sum(map(len, per_dtype.values())) * len(archs) * len(datasets) * len(batch_sizes)
               + (len(per_dtype[dtypes[0]]) * (len(WIDTHS) + len(DEPTHS)) if args.scaling else 0))
    say = _progress(n_cases)
    with machine.limit_threads(args.threads):
        peaks = machine.peaks(dtypes)
        peak = {dtype: peaks["peak_gflops" if dtype == "float64" else f"peak_gflops_{dtype}"]
                for dtype in ("float64", *dtypes)}
        LOG.info(f"ffnbench compare: {n_cases} cases, {args.threads} thread(s) for every engine; "
                 f"single-core float64 matmul peak {peak['float64']:.1f} GFLOP/s"
                 + "".join(f", {d} {g:.1f}" for d, g in peak.items() if d != "float64")
                 + f" ({peaks['peak_blas']})")
        df = run_cases(backends, archs, datasets, batch_sizes, args.repeat, peak, say, dtypes)
        scaling = None
        if args.scaling:
            parts = []
            for sweep, sweep_archs in (("width", [(w,) for w in WIDTHS]),
                                       ("depth", [(50,) * d for d in DEPTHS])):
                s = run_cases(backends, sweep_archs, ["red"], [1], min(args.repeat, 3), peak, say,
                              dtypes[:1])  # the scaling study: in the first dtype only
                parts.append(s.assign(sweep=sweep))
            scaling = pd.concat(parts, ignore_index=True)
    env = environment(args.threads, peaks)
    text = report.markdown(df, scaling, env)  # rendered before any file is written
    ensure_dir(out, "--out")
    with atomic_write(out / "speed.csv") as f:
        df.to_csv(f, index=False, float_format="%.6g")
    if scaling is not None:
        with atomic_write(out / "speed_scaling.csv") as f:
            scaling.to_csv(f, index=False, float_format="%.6g")
    with atomic_write(out / "speed.md") as f:
        f.write(text)
    figures = report.figures(df, scaling, out / "figures", f"{env['cpu']}, {args.threads} thread(s) per engine")
    if args.json:
        print(to_json({"environment": env, "rows": df.to_dict(orient="records"),
                       "scaling": [] if scaling is None else scaling.to_dict(orient="records")}))
    else:
        print(text)
    written = [out / n for n in OUTPUTS if n != "speed_scaling.csv" or scaling is not None]
    LOG.info(f"wrote {', '.join(map(str, [*written, *figures]))}")
    if not df["same_weights"].all():
        raise UserError("backends did not end with the same weights: the speed comparison is void")
