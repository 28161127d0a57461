"""speed.md and the speed figures of `ffnbench compare`, from its rows."""
import numpy as np

from ..core.fileio import save_figure
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
    if env.get("blas_in_use"):
        line += f" The numpy of this run used {env['blas_in_use']}."
    if env.get("theoretical_gflops"):
        line += (f" Theoretical FMA peak: {env['theoretical_gflops']:.1f} GFLOP/s "
                 f"({env['theoretical_how']}).")
    return line


def markdown(df, scaling, env):
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
        "rates this machine reaches on long rows (`ffnbench bound`, docs/speed.md); "
        + ", ".join(f"{h}: {b:.3g} µs/sample" for h, b in df.drop_duplicates("hidden")[
            ["hidden", "bound_us_per_sample"]].dropna().itertuples(index=False)) + ".",
        "",
    ]
    if not df["same_weights"].all():
        bad = df[~df["same_weights"]]
        lines += ["**The comparison is void**: these backends did not end with the reference's "
                  f"weights (max |dW| > {SAME_WEIGHTS_TOL:g}):", ""]
        lines += [f"- {r.backend}, hidden {r.hidden}, {r.dataset}, batch {r.batch_size}: "
                  f"max |dW| = {r.max_dw_vs_reference:.2e}" for r in bad.itertuples()] + [""]
    else:
        lines += [f"All backends ended with the same weights (max |dW| against the reference "
                  f"{df['max_dw_vs_reference'].max():.1e} <= {SAME_WEIGHTS_TOL:g}).", ""]
    for (dataset, B), g in df.groupby(["dataset", "batch_size"], sort=False):
        lines += [f"## {dataset} wine, batch size {B} ({g['n_samples'].iloc[0]} samples per epoch)", "",
                  "| backend | device | hidden | weights | ms/epoch | µs/sample | GFLOP/s | % peak | "
                  "% bound | × C | × python | × torch | × sklearn | warm-up s |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in g.itertuples():
            lines.append(
                f"| {r.backend} | {r.device} | {r.hidden} | {r.n_weights} | {r.ms_median:.2f} "
                f"({r.ms_min:.2f}–{r.ms_max:.2f}) | {r.us_per_sample:.2f} | {r.gflops:.3f} | "
                f"{r.pct_peak:.2f} | {_fmt(r.pct_bound, '.1f')} | {_fmt(r.times_c, '.2f')} | {_fmt(r.speedup_vs_python, '.1f')} | "
                f"{_fmt(r.speedup_vs_torch, '.2f')} | {_fmt(getattr(r, 'speedup_vs_sklearn', None), '.2f')} | "
                f"{r.warmup_s:.2f} |")
        lines.append("")
    if scaling is not None and len(scaling):
        lines += ["## Scaling study (red wine, per-sample SGD)", "",
                  "ms/epoch against number of weights; log-log slope ≈ 0 means overhead-bound, "
                  "≈ 1 compute-bound.", "", "![scaling](figures/speed_scaling.png)", ""]
        lines += scaling_findings(scaling)
    return "\n".join(lines) + "\n"


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
    fig.legend(labels.values(), labels.keys(), loc="outside lower center", ncol=len(labels),
               frameon=False)


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
        for backend, b in g.groupby("backend", sort=False):
            b = b.assign(B=b["batch_size"].astype(int)).sort_values("B")
            ax.plot(b["B"], b["us_per_sample"], label=backend, linewidth=1, **backend_style(backend))
        bound = g["bound_us_per_sample"].dropna()
        if len(bound):
            ax.axhline(bound.iloc[0], color="grey", linestyle="--", linewidth=1,
                       label="per-sample bound")
        r = g.iloc[0]
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
                for backend, b in g.groupby("backend", sort=False):
                    x = [nets.index(h) for h in b["hidden"]]
                    ax.plot(x, b["ms_median"], label=backend, linewidth=1, **backend_style(backend))
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
            for backend, g in scaling[scaling["sweep"] == sweep].groupby("backend", sort=False):
                g = g.sort_values("n_weights")
                ax.loglog(g["n_weights"], g["ms_median"], label=backend, linewidth=1,
                          **backend_style(backend))
            ax.set(title=f"{sweep} sweep ({'1 layer of 4…1024' if sweep == 'width' else '1…8 layers of 50'})",
                   xlabel="number of weights", ylabel="ms per epoch")
            ax.grid(True, which="both", alpha=0.3)
        fig.suptitle(f"Scaling, red wine, per-sample SGD{on}", fontsize=10)
        _legend_below(fig, axes)
        paths.append(save_figure(fig, out_dir / "speed_scaling.png"))
    return paths
