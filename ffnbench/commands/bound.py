"""`ffnbench bound`: the per-sample SGD bound on this machine and its micro-benchmarks
(studies/bound.py) -> OUT/bound.csv, bound_rows.csv and bound.md."""
from pathlib import Path

from ..core.fileio import atomic_write, check_out_dir, ensure_dir
from ..core.log import LOG
from ..report import bound as report
from ..studies.speed import FLOPS_PER_WEIGHT

OUTPUTS = ("bound.csv", "bound_rows.csv", "bound.md")


def main(args):
    out = Path(args.out)
    check_out_dir(out, OUTPUTS)  # before the measurements
    from ..studies import bound  # numba's kernels: imported once the options are checked
    nets, rows, peaks = bound.measure(args.inputs, FLOPS_PER_WEIGHT)
    text = report.markdown(nets, rows, peaks)
    ensure_dir(out, "--out")
    with atomic_write(out / "bound.csv") as f:
        nets.assign(peak_gflops=peaks["peak_gflops"]).to_csv(f, index=False, float_format="%.6g")
    with atomic_write(out / "bound_rows.csv") as f:
        rows.to_csv(f, index=False, float_format="%.6g")
    with atomic_write(out / "bound.md") as f:
        f.write(text)
    print(text)
    LOG.info(f"wrote {', '.join(str(out / n) for n in OUTPUTS)}")
