"""bound.md: the per-sample bound's report, from the rows studies/bound.py measured."""
from ..studies.speed import FLOPS_PER_WEIGHT
from .compare import peak_line


def _nets(nets, acts):
    act = nets["activation"].iloc[0]
    lines = [f"| hidden | weights | hidden neurons | FMA fwd | FMA bwd | update flops | weight loads | "
             f"stores | fwd ns/w | bwd+upd ns/w | weights µs | {act} µs | bound µs/sample | "
             f"bound GFLOP/s | at the net's row lengths µs | {FLOPS_PER_WEIGHT} W / peak µs | "
             "batch-256 GEMMs alone, % peak |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r.hidden} | {r.weights} | {r.neurons} | {r.fma_forward} | {r.fma_backward} | "
              f"{r.flops_update} | {r.weight_loads} | {r.weight_stores} | {r.rate_forward_ns:.3f} | "
              f"{r.rate_backward_update_ns:.3f} | {r.weights_us:.3f} | {r.activations_us:.3f} | "
              f"{r.bound_us:.3f} | {r.bound_gflops:.1f} | {r.net_shapes_us:.3f} | {r.compute_bound_us:.2f} | "
              f"{r.gemm256_pct_peak:.0f} |" for r in nets.itertuples()]
    lines += ["", "Activation and derivative per hidden neuron, ns (numpy's vectorised loops over "
                  "4,096 neurons in cache): " + ", ".join(f"{k} {v:.2f}" for k, v in acts.items()) + "."]
    return lines


def _backends(times):
    lines = ["| hidden | backend | µs/sample | bound µs | % of bound | overhead µs | overhead share |",
             "|---|---|---|---|---|---|---|"]
    for r in times.itertuples():
        lines.append(f"| {r.hidden} | {r.backend} | {r.us_per_sample:.2f} | {r.bound_us_per_sample:.3f} | "
                     f"{r.pct_bound:.1f} | {r.overhead_us_per_sample:.2f} | "
                     f"{100 * r.overhead_us_per_sample / r.us_per_sample:.0f} % |")
    return lines


def _numpy_floor(calls, times):
    lines = []
    for hidden, g in calls.groupby("hidden", sort=False):
        measured = times[(times["hidden"] == hidden) & (times["backend"] == "numpy")]["us_per_sample"]
        floor = g["us_per_sample"].sum()
        lines += ["", f"**{hidden.replace('-', ',')}**: {g['per_sample'].sum()} calls per sample, "
                      f"{floor:.2f} µs of calls"
                  + (f"; numpy's loop takes {measured.iloc[0]:.2f} µs per sample, so the calls "
                     f"alone are {100 * floor / measured.iloc[0]:.0f} % of it and the interpreter "
                     f"between them the other {measured.iloc[0] - floor:.2f} µs"
                     if len(measured) else "") + ".", "",
                  "| call | per sample | µs per call | µs per sample |", "|---|---|---|---|"]
        lines += [f"| {r.call} | {r.per_sample} | {r.us_per_call:.3f} | {r.us_per_sample:.2f} |"
                  for r in g.itertuples()]
    return lines


def markdown(nets, rows, acts, peaks, times, calls):
    dataset = times["dataset"].iloc[0] if len(times) else "red"
    lines = ["# The per-sample bound on this machine", "",
             "Written by `ffnbench bound`; one thread. " + peak_line(peaks),
             "See docs/speed.md for the model. Per sample and weight: 1 FMA forward, 1 FMA backward "
             "(not in the first layer), 3 flops of update; 2 loads and 1 store of the weight. "
             "The bound streams every weight once forward and once through the fused backward + "
             "update at the rates measured on rows of 128 doubles over as many weights as the net "
             "has, and computes every hidden neuron's activation and derivative at the rate of "
             f"numpy's vectorised loops. *At the net's row lengths*: the same two loops run on "
             "the net's own layer shapes (rows as short as its layers) plus the activations: what "
             "this loop design costs at these sizes. "
             f"`{FLOPS_PER_WEIGHT} W / peak` is the time of the flops at "
             "the matmul peak; the last column is the % of peak that the three matrix products "
             "per layer of a batch of 256 reach alone (numpy's BLAS).", ""]
    lines += _nets(nets, acts)
    lines += ["", f"## Every backend against the bound (per-sample SGD, {dataset} wine)", "",
              "The median epoch over the samples of the training part. *Overhead* is what a "
              "backend spends beyond the bound: loops, calls and short rows, everything but the "
              "work itself.", ""]
    lines += _backends(times)
    lines += ["", "## NumPy's floor: the calls of one sample", "",
              "The calls that numpy's per-sample loop makes for one sample (impls/numpy_ffn.py), "
              "each timed alone on the net's shapes. Fewer calls would leave out a product, an "
              "activation or an update, so their sum is the floor of a NumPy program of this shape."]
    lines += _numpy_floor(calls, times)
    lines += ["", "## Short rows", "", "64 rows of each width, in L1: ns per row.", "",
              "| width | fused backward + update | strictly ordered dot product |", "|---|---|---|"]
    lines += [f"| {r.width} | {r.backward_update_ns_per_row:.2f} | {r.ordered_dot_ns_per_row:.2f} |"
              for r in rows.itertuples()]
    return "\n".join(lines) + "\n"
