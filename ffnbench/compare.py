"""`ffnbench compare`: per-epoch training time of every backend on the same work.

Every backend starts from the same initial weights and trains the same epochs in the same
sample order; the comparison only counts if they all end with the same weights.
"""
import argparse
import functools
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

import impls
from impls.checks import max_diff

from . import bound, grid, harness, memory
from .config import REGRESSION_DATASETS, TrainConfig, parse_batch_size, parse_choices, parse_hidden
from .errors import UserError
from .fileio import atomic_write, check_writable_dir, save_figure, to_json
from .style import backend_style

ARCHS = ((10,), (50, 30, 20, 10, 5), (50, 100, 60, 30, 20, 10))
WIDTHS = (4, 16, 64, 256, 1024)  # scaling study: one hidden layer of this width ...
DEPTHS = (1, 2, 4, 8)  # ... or this many hidden layers of 50
FLOPS_PER_WEIGHT = 6  # per sample: 2 forward, 2 backward (delta), 2 gradient + update
SAME_WEIGHTS_TOL = 1e-10


@dataclass(frozen=True)
class Case:
    backend: str
    hidden: tuple
    dataset: str
    batch_size: int | str

    def config(self):
        # the published tanh setting: stable for the few epochs timed, so weights stay finite
        return TrainConfig(backend=self.backend, dataset=self.dataset, hidden=self.hidden,
                           activation="tanh", lr=0.01, l2=0.1, batch_size=self.batch_size,
                           seed=0)


def limit_threads(n):
    """One BLAS/torch thread pool size for every engine (the comparison is per core)."""
    from threadpoolctl import threadpool_limits
    grid.load_blas()  # scipy's copy too (numba's BLAS): a library loaded later is not limited
    limiter = threadpool_limits(n)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(n)
    if n == 1 and "XLA_FLAGS" not in os.environ:  # read when JAX first runs something
        os.environ["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
    return limiter


def measure_peak(n=1024, repeat=5):
    """GFLOP/s of a float64 n x n matmul, best of `repeat`, under the current thread limit."""
    rng = np.random.default_rng(0)
    A, B = rng.random((n, n)), rng.random((n, n))
    A @ B
    best = min(_seconds(lambda: A @ B) for _ in range(repeat))
    return 2 * n ** 3 / best / 1e9


def _seconds(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def time_case(case, repeat, prepared):
    """Warm-up (JIT) on 2 samples, one untimed epoch, then `repeat` timed epochs."""
    config = case.config()
    backend = harness.load_backend(config)
    X, Y = prepared.X["train"], prepared.Y["train"]
    warmup = harness.warm_up(backend, prepared.params, config.hp, X, Y, config.device)
    state = backend.from_numpy(prepared.params, config.hp, config.device)
    orders = harness.epoch_orders(config.seed, len(X))
    harness.timed_epoch(backend, state, X, Y, next(orders))
    seconds = [harness.timed_epoch(backend, state, X, Y, next(orders)) for _ in range(repeat)]
    return seconds, warmup, backend.to_numpy(state), str(state.get("device", config.device))


def _row(case, seconds, warmup, n_weights, n_samples, peak, device):
    med = float(np.median(seconds))
    gflops = FLOPS_PER_WEIGHT * n_weights * n_samples / med / 1e9
    return {"backend": case.backend, "hidden": "-".join(map(str, case.hidden)),
            "dataset": case.dataset, "batch_size": str(case.batch_size), "n_weights": n_weights,
            "n_samples": n_samples, "ms_median": 1e3 * med, "ms_min": 1e3 * min(seconds),
            "ms_max": 1e3 * max(seconds), "us_per_sample": 1e6 * med / n_samples,
            "gflops": gflops, "pct_peak": 100 * gflops / peak, "warmup_s": warmup,
            "device": device}


@functools.lru_cache(maxsize=None)
def _bound_rates(n_weights):
    return bound.measure_rates(n_weights)


def per_sample_bound(params):
    """Seconds per sample of the per-sample SGD bound (ffnbench/bound.py) for these weights,
    its rates measured here, once per size."""
    sizes = (params[0][0].shape[1], *(len(b) for _, b in params))
    return bound.per_sample_bound(sizes, _bound_rates(bound.work(sizes)["weights"]))


def run_cases(backends, archs, datasets, batch_sizes, repeat, peak, progress=None):
    """One row per case, with speed-ups and the same-weights check within each group."""
    rows = []
    for dataset in datasets:
        for hidden in archs:
            for B in batch_sizes:
                prepared = harness.prepare(Case(backends[0], hidden, dataset, B).config())
                n_weights = sum(W.size + b.size for W, b in prepared.params)
                sizes = (prepared.params[0][0].shape[1], *(len(b) for _, b in prepared.params))
                n_rows = {k: len(x) for k, x in prepared.X.items()}
                for name in backends[1:]:  # prepare checked backends[0]; each has its own copies
                    memory.check(Case(name, hidden, dataset, B).config(), sizes, n_rows)
                group, weights = [], {}
                for name in backends:
                    case = Case(name, hidden, dataset, B)
                    if progress:
                        progress(case)
                    seconds, warmup, weights[name], device = time_case(case, repeat, prepared)
                    group.append(_row(case, seconds, warmup, n_weights,
                                      len(prepared.X["train"]), peak, device))
                bound_s = per_sample_bound(prepared.params) if B == 1 else None
                for r in group:  # the bound is per-sample SGD's; a batch has % peak
                    r["bound_us_per_sample"] = None if bound_s is None else 1e6 * bound_s
                    r["pct_bound"] = None if bound_s is None else 100 * bound_s * r["n_samples"] / (
                        r["ms_median"] / 1e3)
                ref = "torch" if "torch" in weights else backends[0]
                times = {r["backend"]: r["ms_median"] for r in group}
                for r in group:
                    r["speedup_vs_python"] = times["python"] / r["ms_median"] if "python" in times else None
                    r["speedup_vs_torch"] = times["torch"] / r["ms_median"] if "torch" in times else None
                    r["times_c"] = r["ms_median"] / times["c"] if "c" in times else None  # the yardstick
                    r["max_dw_vs_reference"] = max_diff(weights[r["backend"]], weights[ref])
                    r["reference"] = ref
                    r["same_weights"] = r["max_dw_vs_reference"] <= SAME_WEIGHTS_TOL
                rows += group
    return pd.DataFrame(rows)


def _environment(threads, peak):
    import importlib.metadata as md
    versions = {}
    for pkg in ("numpy", "numba", "torch", "jax", "scipy"):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            versions[pkg] = "not installed"
    return {"cpu": grid.cpu_model(), "python": platform.python_version(), "threads": threads,
            "peak_gflops": peak, "peak_blas": peak_blas(), **versions, "cc": _cc_version(),
            "gpu": _gpu_name()}


def peak_blas():
    """numpy's BLAS as the peak's matmul ran it: library, version and the kernels it picked
    (OpenBLAS picks by CPU unless OPENBLAS_CORETYPE says otherwise: AVX2 kernels run at half
    the AVX-512 ones' rate, so the peak is the library's under these kernels, not the core's)."""
    from threadpoolctl import threadpool_info
    libs = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    lib = next((i for i in libs if "numpy" in i.get("filepath", "")), libs[0] if libs else None)
    if lib is None:
        return None
    forced = os.environ.get("OPENBLAS_CORETYPE") if lib.get("internal_api") == "openblas" else None
    return (f"{lib.get('internal_api')} {lib.get('version')}, {lib.get('architecture')} kernels"
            + (f" (OPENBLAS_CORETYPE={forced} in the environment)" if forced else ""))


def _cc_version():
    """The C backend's compiler, first line of `cc --version`, or None."""
    cc = impls.find_tool("cc")
    try:
        return subprocess.run([cc, "--version"], capture_output=True, text=True,
                              timeout=60).stdout.splitlines()[0] if cc else None
    except (OSError, subprocess.SubprocessError, IndexError):
        return None


def _gpu_name():
    """The CUDA device torch sees, where torch is loaded and has one; else None."""
    torch = sys.modules.get("torch")
    return torch.cuda.get_device_name(0) if torch is not None and torch.cuda.is_available() else None


def _fmt(v, spec):
    return "—" if v is None or (isinstance(v, float) and np.isnan(v)) else format(v, spec)


def markdown(df, scaling, env):
    lines = [
        "# Training speed per backend",
        "",
        f"Measured by `ffnbench compare` on {env['cpu']}, Python {env['python']}, numpy "
        f"{env['numpy']}, numba {env['numba']}, torch {env['torch']}, jax {env.get('jax', '—')}, "
        f"C compiler {env.get('cc') or '—'}; {env['threads']} thread(s) for every engine (BLAS, "
        "torch, XLA), so the comparison is per core."
        + (f" GPU: {env['gpu']}." if env.get("gpu") else ""),
        f"Single-core float64 peak, measured as a 1024x1024 matmul: **{env['peak_gflops']:.1f} GFLOP/s**"
        + (f" with numpy's BLAS ({env['peak_blas']})" if env.get("peak_blas") else "") + ".",
        f"GFLOP/s counts {FLOPS_PER_WEIGHT} x weights x samples per epoch (forward 2, backward 2, "
        "gradient and update 2 per weight and sample), whatever the engine really executes.",
        "Times are medians (min–max) over the timed epochs, after a JIT warm-up on 2 samples and one "
        "untimed epoch; every backend trains the same epochs from the same weights in the same order. "
        "On a GPU (or JAX's asynchronous dispatch) each timed epoch and the warm-up end when the "
        "device has finished (the backend's synchronize).",
        "× C: the backend's time per epoch as a multiple of the C backend's (the plain-C yardstick).",
        "% bound (per-sample SGD): the bound's time as a % of the backend's, where the bound is "
        "every weight streamed once forward and once through the fused backward + update at the "
        "rates this machine reaches on long rows (`python -m ffnbench.bound`, docs/speed.md); "
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
                  "% bound | × C | × python | × torch | warm-up s |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in g.itertuples():
            lines.append(
                f"| {r.backend} | {r.device} | {r.hidden} | {r.n_weights} | {r.ms_median:.2f} "
                f"({r.ms_min:.2f}–{r.ms_max:.2f}) | {r.us_per_sample:.2f} | {r.gflops:.3f} | "
                f"{r.pct_peak:.2f} | {_fmt(r.pct_bound, '.1f')} | {_fmt(r.times_c, '.2f')} | {_fmt(r.speedup_vs_python, '.1f')} | "
                f"{_fmt(r.speedup_vs_torch, '.2f')} | {r.warmup_s:.2f} |")
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


def figures(df, scaling, out_dir, machine=None):
    """speed_backends.png (ms/epoch per net, one panel per dataset x batch size) and
    speed_scaling.png (ms/epoch against weights); `machine` goes into the titles."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    on = f" on {machine}" if machine else ""
    paths = []
    if len(df):
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


def cmd_compare(args):
    if args.backends is None:  # every backend that can run here; say which cannot
        backends = tuple(n for n in impls.BACKENDS if not impls.unavailable(n))
        for name in impls.BACKENDS:
            if name not in backends:
                print(f"ffnbench compare: leaving out {impls.unavailable(name)}", file=sys.stderr)
    else:
        backends = parse_choices(args.backends, "backends", tuple(impls.BACKENDS))
    datasets = parse_choices(args.datasets, "datasets", REGRESSION_DATASETS)
    batch_sizes = [parse_batch_size(b) for b in parse_choices(args.batch_sizes, "batch-sizes")]
    archs = [parse_hidden(h) for h in args.hidden] if args.hidden else list(ARCHS)
    for B in batch_sizes:
        Case(backends[0], archs[0], datasets[0], B).config()  # validates before any timing
    if args.repeat < 1 or args.threads < 1:
        raise UserError("--repeat and --threads must be at least 1")
    for name in backends:
        harness.load_backend(Case(name, archs[0], datasets[0], 1).config())
    out = Path(args.out)
    if not out.is_dir():
        raise UserError(f"--out {out}: directory does not exist")
    for name in ("speed.csv", "speed_scaling.csv", "speed.md"):  # before the measurements
        check_writable_dir(out / name, "--out")
    say = (lambda c: None) if args.json else (lambda c: print(
        f"  {c.backend:>6} {'-'.join(map(str, c.hidden)):>20} {c.dataset:>5} batch {c.batch_size}",
        file=sys.stderr, flush=True))
    with limit_threads(args.threads):
        peak = measure_peak()
        print(f"ffnbench compare: {args.threads} thread(s) for every engine; single-core float64 "
              f"matmul peak {peak:.1f} GFLOP/s", file=sys.stderr)
        df = run_cases(backends, archs, datasets, batch_sizes, args.repeat, peak, say)
        scaling = None
        if args.scaling:
            parts = []
            for sweep, sweep_archs in (("width", [(w,) for w in WIDTHS]),
                                       ("depth", [(50,) * d for d in DEPTHS])):
                s = run_cases(backends, sweep_archs, ["red"], [1], min(args.repeat, 3), peak, say)
                parts.append(s.assign(sweep=sweep))
            scaling = pd.concat(parts, ignore_index=True)
    env = _environment(args.threads, peak)
    report = markdown(df, scaling, env)  # rendered before any file is written
    with atomic_write(out / "speed.csv") as f:
        df.to_csv(f, index=False, float_format="%.6g")
    if scaling is not None:
        with atomic_write(out / "speed_scaling.csv") as f:
            scaling.to_csv(f, index=False, float_format="%.6g")
    with atomic_write(out / "speed.md") as f:
        f.write(report)
    figures(df, scaling, out / "figures", f"{env['cpu']}, {args.threads} thread(s) per engine")
    if args.json:
        print(to_json({"environment": env, "rows": df.to_dict(orient="records"),
                       "scaling": [] if scaling is None else scaling.to_dict(orient="records")}))
    else:
        print(report)
    if not df["same_weights"].all():
        raise UserError("backends did not end with the same weights: the speed comparison is void")


def add_parser(sub):
    p = sub.add_parser("compare", help="time every backend on the same training work",
                       description="Train every backend from the same initial weights in the same "
                                   "sample order, time its epochs (one thread per engine, after a "
                                   "JIT warm-up), check that all end with the same weights, and "
                                   "write OUT/speed.csv, speed.md and OUT/figures/speed_*.png.",
                       epilog="example:\n  ffnbench compare --no-scaling --datasets white "
                              "--out build/speed")
    p.add_argument("--backends", default=None,
                   help=f"comma-separated, of {', '.join(impls.BACKENDS)} (default: all that can "
                        "run here; those that cannot are named on stderr)")
    p.add_argument("--hidden", action="append",
                   help="an architecture, e.g. 50,30,20,10,5; repeat the option for several "
                        "(default: 10 / 50,30,20,10,5 / 50,100,60,30,20,10)")
    p.add_argument("--datasets", default="red,white", help="comma-separated (default %(default)s)")
    p.add_argument("--batch-sizes", default="1,256",
                   help="comma-separated; 1 = per-sample SGD, 'full' allowed (default %(default)s)")
    p.add_argument("--repeat", type=int, default=5, help="timed epochs per case (default %(default)s)")
    p.add_argument("--threads", type=int, default=1,
                   help="threads for every engine, BLAS and torch (default %(default)s: per core)")
    p.add_argument("--scaling", action=argparse.BooleanOptionalAction, default=True,
                   help="also run the width/depth scaling study (default on)")
    p.add_argument("--out", default="results",
                   help="directory for speed.csv/.md and figures/ (default %(default)s)")
    p.add_argument("--json", action="store_true", help="print the rows as JSON")
    p.set_defaults(func=cmd_compare)
