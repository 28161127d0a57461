"""`ffnbench bound`: the per-sample SGD bound on this machine and its micro-benchmarks
(studies/bound.py), every backend's per-sample time against it and numpy's call floor
-> OUT/bound.csv, bound_rows.csv, bound_backends.csv, numpy_calls.csv and bound.md."""
from pathlib import Path

from .. import impls
from ..core.errors import UserError
from ..core.fileio import atomic_write, check_out_dir, ensure_dir
from ..core.log import LOG
from ..report import bound as report
from ..studies.speed import FLOPS_PER_WEIGHT

OUTPUTS = ("bound.csv", "bound_rows.csv", "bound_backends.csv", "numpy_calls.csv", "bound.md")
DATASET = "red"  # the per-backend times: per-sample SGD, one epoch of red wine's training part


def main(args):
    out = Path(args.out)
    if args.repeat < 1:
        raise UserError("--repeat must be at least 1")
    check_out_dir(out, OUTPUTS)  # before the measurements
    from ..studies import bound  # numba's kernels: imported once the options are checked
    import pandas as pd
    from ..core.config import NETS
    from ..run import machine
    from ..studies import speed
    nets, rows, acts, peaks = bound.measure(args.inputs, FLOPS_PER_WEIGHT)
    backends = [b for b in impls.BACKENDS if impls.unavailable(b) is None]
    with machine.limit_threads(1):
        times = speed.run_cases(backends, list(NETS), [DATASET], [1], args.repeat,
                                peaks["peak_gflops"])  # the nets' bound: its rates are cached
        calls = pd.DataFrame([{"hidden": "-".join(map(str, h)), **r} for h in NETS
                              for r in bound.numpy_calls((args.inputs, *h, 1))])
    text = report.markdown(nets, rows, acts, peaks, times, calls)
    ensure_dir(out, "--out")
    tables = {"bound.csv": nets.assign(peak_gflops=peaks["peak_gflops"],
                                       **{f"activation_ns_{k}": v for k, v in acts.items()}),
              "bound_rows.csv": rows, "bound_backends.csv": times, "numpy_calls.csv": calls}
    for name, df in tables.items():
        with atomic_write(out / name) as f:
            df.to_csv(f, index=False, float_format="%.6g")
    with atomic_write(out / "bound.md") as f:
        f.write(text)
    print(text)
    LOG.info(f"wrote {', '.join(str(out / n) for n in OUTPUTS)}")
