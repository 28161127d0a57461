"""speed.md and the speed figures of `ffnbench compare`, from its rows."""
import numpy as np

from ..core.fileio import save_figure
from ..impls.checks import C32
from ..studies.speed import FLOPS_PER_WEIGHT, SAME_WEIGHTS_TOL
from .style import backend_style


def _fmt(v, spec):
    return "—" if v is None or (isinstance(v, float) and np.isnan(v)) else format(v, spec)


def peak_line(env):
    """The peak every "% peak" is against, the BLAS kernels this run used and the theory."""
    line = (f"Single-core float64 peak, measured as a 1024x1024 matmul: **{env['peak_gflops']:.1f} "
            f"GFLOP/s** with numpy's BLAS ({env.get('peak_blas') or 'unknown'}; measured in a "
            "fresh process without OPENBLAS_CORETYPE and the like, so the same whatever this "
            "environment forces); every % peak is against it.")
    if env.get("peak_gflops_float32"):
        line += (f" The float32 rows' % peak is against the float32 peak, the same matmul in "
                 f"float32 measured the same way: **{env['peak_gflops_float32']:.1f} GFLOP/s**.")
    if env.get("blas_in_use"):
        line += f" The numpy of this run used {env['blas_in_use']}."
    if env.get("theoretical_gflops"):
        line += (f" Theoretical FMA peak: {env['theoretical_gflops']:.1f} GFLOP/s "
                 f"({env['theoretical_how']}).")
    return line


def markdown(df, scaling, env):
    if "dtype" not in df:  # rows from before float32: all float64
        df = df.assign(dtype="float64")
    lines = [
        "# Training speed per backend",
        "",
        f"Measured by `ffnbench compare` on {env['cpu']}, Python {env['python']}, numpy "
        f"{env['numpy']}, numba {env['numba']}, torch {env['torch']}, jax {env.get('jax', '—')}, scikit-learn {env.get('scikit-learn', '—')}, "
        f"C compiler {env.get('cc') or '—'}; {env['threads']} thread(s) for every engine (BLAS, "
        "torch, XLA), so the comparison is per core."
        + (f" GPU: {env['gpu']}." if env.get("gpu") else ""),
        peak_line(env),
        f"GFLOP/s counts {FLOPS_PER_WEIGHT} x weights x samples per epoch (forward 2, backward 2, "
        "gradient and update 2 per weight and sample), whatever the engine really executes.",
        "Times are medians (min–max) over the timed epochs, after a JIT warm-up on 2 samples and one "
        "untimed epoch; every backend trains the same epochs from the same weights in the same order. "
        "On a GPU (or JAX's asynchronous dispatch) each timed epoch and the warm-up end when the "
        "device has finished (the backend's synchronize).",
        "× C: the backend's time per epoch as a multiple of the C backend's (the plain-C yardstick); "
        "× python, × torch, × sklearn: how many times faster than that backend (scikit-learn's "
        "MLP, the peer a user would otherwise pick).",
        "% bound (per-sample SGD): the bound's time as a % of the backend's, where the bound is "
        "every weight streamed once forward and once through the fused backward + update at the "
        "rates this machine reaches on long rows, plus every hidden neuron's activation and "
        "derivative at the rate of vectorised loops (`ffnbench bound`, docs/speed.md); "
        + ", ".join(f"{h}: {b:.3g} µs/sample" for h, b in df[df["dtype"] == "float64"]
                    .drop_duplicates("hidden")[["hidden", "bound_us_per_sample"]]
                    .dropna().itertuples(index=False)) + ".",
        "",
    ]
    several = df["dtype"].nunique() > 1
    if several:
        lines += ["Each dtype is its own comparison: the backends that can run in it, checked "
                  "against its reference (torch where it runs), each % peak against its "
                  "matmul peak, each × C, × python, × torch and × sklearn against that backend "
                  "in the same dtype (— where it has none); × float64: how many times faster "
                  "than the same backend in float64. float32's weights agree to round-off within C · eps32 · √updates · "
                  f"max(1, max|W|), C = {C32:g}, eps32 = 2^-23 (impls/checks.py); the % bound "
                  "is float64's only.", ""]
    lines += _same_weights(df)
    keys = ["dataset", "batch_size", "dtype"] if several else ["dataset", "batch_size"]
    for key, g in df.groupby(keys, sort=False):
        dataset, B = key[:2]
        lines += [f"## {dataset} wine, batch size {B}" + (f", {key[2]}" if several else "")
                  + f" ({g['n_samples'].iloc[0]} samples per epoch)", "",
                  "| backend | device | hidden | weights | ms/epoch | µs/sample | GFLOP/s | % peak | "
                  "% bound | × C | × python | × torch | × sklearn |"
                  + (" × float64 |" if several else "") + " warm-up s |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|" + ("---|" if several else "")
                  + "---|"]
        for r in g.itertuples():
            lines.append(
                f"| {r.backend} | {r.device} | {r.hidden} | {r.n_weights} | {r.ms_median:.2f} "
                f"({r.ms_min:.2f}–{r.ms_max:.2f}) | {r.us_per_sample:.2f} | {r.gflops:.3f} | "
                f"{r.pct_peak:.2f} | {_fmt(r.pct_bound, '.1f')} | {_fmt(r.times_c, '.2f')} | {_fmt(r.speedup_vs_python, '.1f')} | "
                f"{_fmt(r.speedup_vs_torch, '.2f')} | {_fmt(getattr(r, 'speedup_vs_sklearn', None), '.2f')} | "
                + (f"{_fmt(getattr(r, 'speedup_vs_float64', None), '.2f')} | " if several else "")
                + f"{r.warmup_s:.2f} |")
        lines.append("")
    if scaling is not None and len(scaling):
        lines += ["## Scaling study (red wine, per-sample SGD)", "",
                  "ms/epoch against number of weights; log-log slope ≈ 0 means overhead-bound, "
                  "≈ 1 compute-bound.", "", "![scaling](figures/speed_scaling.png)", ""]
        lines += scaling_findings(scaling)
    return "\n".join(lines) + "\n"


def _same_weights(df):
    """The same-weights verdict: void with the culprits, or the largest |dW|, per dtype."""
    tol = df["same_weights_tol"] if "same_weights_tol" in df else SAME_WEIGHTS_TOL
    df = df.assign(same_weights_tol=tol)
    if not df["same_weights"].all():
        bad, only64 = df[~df["same_weights"]], (df["dtype"] == "float64").all()
        lines = ["**The comparison is void**: these backends did not end with the reference's "
                 "weights" + (f" (max |dW| > {SAME_WEIGHTS_TOL:g}):" if only64 else ":"), ""]
        lines += [f"- {r.backend}, hidden {r.hidden}, {r.dataset}, batch {r.batch_size}"
                  + ("" if only64 else f", {r.dtype}")
                  + f": max |dW| = {r.max_dw_vs_reference:.2e}"
                  + ("" if only64 else f" > {r.same_weights_tol:.3g}") for r in bad.itertuples()]
        return lines + [""]
    f64 = df[df["dtype"] == "float64"]
    lines = [f"All backends ended with the same weights (max |dW| against the reference "
             f"{f64['max_dw_vs_reference'].max():.1e} <= {SAME_WEIGHTS_TOL:g})."] if len(f64) else []
    for dtype, g in df[df["dtype"] != "float64"].groupby("dtype", sort=False):
        ratio = (g["max_dw_vs_reference"] / g["same_weights_tol"]).max()
        lines.append(f"In {dtype}, all ended with the same weights to {dtype}'s round-off (max |dW| "
                     f"against the reference {g['max_dw_vs_reference'].max():.1e}, at most "
                     f"{100 * ratio:.0f} % of its tolerance, {g['same_weights_tol'].min():.2g}–"
                     f"{g['same_weights_tol'].max():.2g} here).")
    return [" ".join(lines), ""]


def scaling_findings(scaling):
    """Slopes at the small and large end, and where the curves cross, as text lines."""
    out = ["| backend | sweep | slope, smallest two sizes | slope, largest two sizes |",
           "|---|---|---|---|"]
    for (backend, sweep), g in scaling.groupby(["backend", "sweep"], sort=False):
        g = g.sort_values("n_weights")
        x, y = np.log(g["n_weights"].to_numpy()), np.log(g["ms_median"].to_numpy())
        out.append(f"| {backend} | {sweep} | {(y[1] - y[0]) / (x[1] - x[0]):.2f} | "
                   f"{(y[-1] - y[-2]) / (x[-1] - x[-2]):.2f} |")
    out.append("")
    for sweep, g in scaling.groupby("sweep", sort=False):
        t = g.pivot(index="n_weights", columns="backend", values="ms_median").sort_index()
        names = list(t.columns)
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                faster = np.sign(t[a] - t[b]).to_numpy()
                flips = np.flatnonzero(np.diff(faster) != 0)
                for k in flips:
                    lo, hi = t.index[k], t.index[k + 1]
                    out.append(f"- {sweep} sweep: {a} and {b} cross between {lo} and {hi} weights "
                               f"({'%s becomes faster' % (a if faster[k + 1] < 0 else b)}).")
    return out + [""]


def _legend_below(fig, axes):
    labels = {}
    for ax in axes:
        for h, label in zip(*ax.get_legend_handles_labels()):
            labels.setdefault(label, h)
    n = len(labels)  # one row for the 7 backends; two for them in two dtypes
    fig.legend(labels.values(), labels.keys(), loc="outside lower center",
               ncol=n if n <= 7 else -(-n // 2), frameon=False)


def _lines(df):
    """(label, rows, style) of each line of a figure: one per backend and dtype, float64's
    under the backend's name, another dtype's dashed and named '<backend> <dtype>'."""
    df = df if "dtype" in df else df.assign(dtype="float64")
    for (backend, dtype), g in df.groupby(["backend", "dtype"], sort=False):
        style = backend_style(backend)
        if dtype != "float64":
            style["linestyle"] = "--"
        yield (backend if dtype == "float64" else f"{backend} {dtype}"), g, style


MANY_BATCH_SIZES = 4  # from here on, one figure against the batch size replaces the panels


def _batch_figure(df, path, on):
    """µs per sample against the batch size, one panel per dataset x net, with the per-sample
    bound and the time of the same flops at the matmul peak."""
    import matplotlib.pyplot as plt
    groups = list(dict.fromkeys(zip(df["dataset"], df["hidden"])))
    fig, axes = plt.subplots(1, len(groups), squeeze=False, layout="constrained",
                             figsize=(min(max(5.0 * len(groups), 8), 10), 4.8))
    for ax, (dataset, hidden) in zip(axes[0], groups):
        g = df[(df["dataset"] == dataset) & (df["hidden"] == hidden)]
        sizes = sorted({int(B) for B in g["batch_size"]})
        for label, b, style in _lines(g):
            b = b.assign(B=b["batch_size"].astype(int)).sort_values("B")
            ax.plot(b["B"], b["us_per_sample"], label=label, linewidth=1, **style)
        bound = g["bound_us_per_sample"].dropna()
        if len(bound):
            ax.axhline(bound.iloc[0], color="grey", linestyle="--", linewidth=1,
                       label="per-sample bound")
        f64 = g[g["dtype"] == "float64"] if "dtype" in g else g  # float64's peak
        r = (f64 if len(f64) else g).iloc[0]
        at_peak = FLOPS_PER_WEIGHT * r["n_weights"] / (100 * r["gflops"] / r["pct_peak"]) / 1e3
        ax.axhline(at_peak, color="grey", linestyle=":", linewidth=1, label="the flops at the matmul peak")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks(sizes, [str(B) for B in sizes], fontsize=8)
        ax.minorticks_off()
        ax.grid(True, which="major", alpha=0.3)
        ax.set(title=f"{dataset} wine, hidden {hidden.replace('-', ',')}", xlabel="batch size",
               ylabel="µs per sample (log)")
    fig.suptitle(f"Time per sample against the batch size, every backend\n{on.strip()}", fontsize=10)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=4, frameon=False, fontsize=9)
    return save_figure(fig, path)


def figures(df, scaling, out_dir, machine=None):
    """speed_backends.png (ms/epoch per net, one panel per dataset x batch size), or with
    MANY_BATCH_SIZES or more speed_batch.png (µs/sample against the batch size), and
    speed_scaling.png (ms/epoch against weights); `machine` goes into the titles."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    on = f" on {machine}" if machine else ""
    paths = []
    if len(df) and df["batch_size"].nunique() >= MANY_BATCH_SIZES:
        paths.append(_batch_figure(df, out_dir / "speed_batch.png", on))
    elif len(df):
        datasets = list(dict.fromkeys(df["dataset"]))
        batches = list(dict.fromkeys(df["batch_size"]))
        fig, axes = plt.subplots(len(datasets), len(batches), squeeze=False, layout="constrained",
                                 figsize=(4.8 * len(batches), 3.4 * len(datasets) + 0.8))
        for r, dataset in enumerate(datasets):
            for c, B in enumerate(batches):
                ax, g = axes[r][c], df[(df["dataset"] == dataset) & (df["batch_size"] == B)]
                nets = list(dict.fromkeys(g["hidden"]))
                for label, b, style in _lines(g):
                    x = [nets.index(h) for h in b["hidden"]]
                    ax.plot(x, b["ms_median"], label=label, linewidth=1, **style)
                ax.set_yscale("log")
                ax.set_xticks(range(len(nets)), nets, fontsize=8)
                ax.set_xlim(-0.4, len(nets) - 0.6)
                ax.grid(True, which="both", alpha=0.3)
                ax.set_title(f"{dataset} wine, " + ("per-sample SGD" if B == "1" else f"batch {B}"),
                             fontsize=10)
                ax.set(xlabel="hidden layers" if r == len(datasets) - 1 else None,
                       ylabel="ms per epoch (log)" if c == 0 else None)
        fig.suptitle(f"Training time per epoch, every backend on the same work{on}", fontsize=10)
        _legend_below(fig, axes.flat)
        paths.append(save_figure(fig, out_dir / "speed_backends.png"))
    if scaling is not None and len(scaling):
        fig, axes = plt.subplots(1, 2, figsize=(11, 4.6), layout="constrained")
        for ax, sweep in zip(axes, ("width", "depth")):
            for label, g, style in _lines(scaling[scaling["sweep"] == sweep]):
                g = g.sort_values("n_weights")
                ax.loglog(g["n_weights"], g["ms_median"], label=label, linewidth=1, **style)
            ax.set(title=f"{sweep} sweep ({'1 layer of 4…1024' if sweep == 'width' else '1…8 layers of 50'})",
                   xlabel="number of weights", ylabel="ms per epoch")
            ax.grid(True, which="both", alpha=0.3)
        fig.suptitle(f"Scaling, red wine, per-sample SGD{on}", fontsize=10)
        _legend_below(fig, axes)
        paths.append(save_figure(fig, out_dir / "speed_scaling.png"))
    return paths
