"""bound.md: the per-sample bound's report, from the rows studies/bound.py measured."""
from ..studies.speed import FLOPS_PER_WEIGHT
from .compare import peak_line


def markdown(nets, rows, peaks):
    lines = ["# The per-sample bound on this machine", "",
             "Written by `ffnbench bound`; one thread. " + peak_line(peaks),
             "See docs/speed.md for the model. Per sample and weight: 1 FMA forward, 1 FMA backward "
             "(not in the first layer), 3 flops of update; 2 loads and 1 store of the weight. "
             "The bound streams every weight once forward and once through the fused backward + "
             "update at the rates measured on rows of 128 doubles over as many weights as the net "
             f"has; `{FLOPS_PER_WEIGHT} W / peak` is the time at the matmul peak; the last column is the % of peak "
             "that the three matrix products per layer of a batch of 256 reach alone (numpy's BLAS).", "",
             f"| hidden | weights | FMA fwd | FMA bwd | update flops | weight loads | stores | "
             f"fwd ns/w | bwd+upd ns/w | bound µs/sample | bound GFLOP/s | {FLOPS_PER_WEIGHT} W / peak µs | "
             "batch-256 GEMMs alone, % peak |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r.hidden} | {r.weights} | {r.fma_forward} | {r.fma_backward} | {r.flops_update} | "
              f"{r.weight_loads} | {r.weight_stores} | {r.rate_forward_ns:.3f} | "
              f"{r.rate_backward_update_ns:.3f} | {r.bound_us:.2f} | {r.bound_gflops:.1f} | "
              f"{r.compute_bound_us:.2f} | {r.gemm256_pct_peak:.0f} |" for r in nets.itertuples()]
    lines += ["", "Short rows (64 rows of each width, in L1): ns per row.", "",
              "| width | fused backward + update | strictly ordered dot product |", "|---|---|---|"]
    lines += [f"| {r.width} | {r.backward_update_ns_per_row:.2f} | {r.ordered_dot_ns_per_row:.2f} |"
              for r in rows.itertuples()]
    return "\n".join(lines) + "\n"
