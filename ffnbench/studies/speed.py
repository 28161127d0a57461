"""The speed comparison: every backend trains the same epochs from the same initial weights
in the same sample order, timed one thread per engine; the comparison only counts if they
all end with the same weights. Each dtype (float64, and float32 where asked) is its own
group: the backends that can run in it, checked against that dtype's reference with that
dtype's tolerance (impls/checks.py), each % peak against that dtype's matmul peak.
"""
import platform
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .. import impls
from ..core import harness, memory
from ..core.config import TrainConfig
from ..impls import DTYPES, HyperParams
from ..impls.checks import float32_tolerance, max_diff
from ..run import machine

WIDTHS = (4, 16, 64, 256, 1024)  # scaling study: one hidden layer of this width ...
DEPTHS = (1, 2, 4, 8)  # ... or this many hidden layers of 50
FLOPS_PER_WEIGHT = 6  # per sample: 2 forward, 2 backward (delta), 2 gradient + update
SAME_WEIGHTS_TOL = 1e-10  # float64; float32's depends on the updates (same_weights_tol)


def same_weights_tol(dtype, updates, max_weight):
    """How far from the reference's a backend's weights may end in `dtype` after `updates`
    updates, with the reference's largest |weight| max_weight: float64's fixed 1e-10, or
    impls.checks.float32_tolerance."""
    return SAME_WEIGHTS_TOL if dtype == "float64" else float32_tolerance(updates, max_weight)


@dataclass(frozen=True)
class Case:
    backend: str
    hidden: tuple
    dataset: str
    batch_size: int | str
    dtype: str = DTYPES[0]

    def config(self):
        # the published tanh setting: stable for the few epochs timed, so weights stay finite
        return TrainConfig(backend=self.backend, dataset=self.dataset, hidden=self.hidden,
                           activation="tanh", lr=0.01, l2=0.1, batch_size=self.batch_size,
                           seed=0, dtype=self.dtype)


def able(backends, dtype):
    """The backends (in order) that can run compare's cases in `dtype`."""
    hp = HyperParams(activation="tanh", lr=0.01, l2=0.1, dtype=dtype)
    return [name for name in backends if impls.refusal(name, hp, 1) is None]


def time_case(case, repeat, prepared):
    """Warm-up (JIT) on 2 samples, one untimed epoch, then `repeat` timed epochs."""
    config = case.config()
    backend = harness.load_backend(config)
    X, Y = harness.training_data(prepared.X["train"], prepared.Y["train"], case.dtype)
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
            "dataset": case.dataset, "batch_size": str(case.batch_size), "dtype": case.dtype,
            "n_weights": n_weights,
            "n_samples": n_samples, "ms_median": 1e3 * med, "ms_min": 1e3 * min(seconds),
            "ms_max": 1e3 * max(seconds), "us_per_sample": 1e6 * med / n_samples,
            "gflops": gflops, "pct_peak": 100 * gflops / peak, "warmup_s": warmup,
            "device": device}


def per_sample_bound(params, activation="tanh"):
    """Seconds per sample of the per-sample SGD bound (studies/bound.py) for these weights
    and hidden activation, its rates measured here, once per size; None where numba is not
    installed."""
    sizes = (params[0][0].shape[1], *(len(b) for _, b in params))
    try:
        from . import bound
        rates = bound.measure_rates(bound.work(sizes)["weights"])  # cached: once per size
    except ImportError:
        return None
    return bound.per_sample_bound(sizes, rates, bound.activation_rates()[activation])


def run_cases(backends, archs, datasets, batch_sizes, repeat, peak, progress=None,
              dtypes=DTYPES[:1]):
    """One row per case, with speed-ups and the same-weights check within each group: a
    dataset x net x batch size x dtype, of the backends that can run in that dtype (able).
    peak: GFLOP/s every % peak is against, a number (float64's) or {dtype: GFLOP/s}."""
    peaks = peak if isinstance(peak, dict) else {DTYPES[0]: peak}
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
                activation = Case(backends[0], hidden, dataset, B).config().activation
                bound_s = (per_sample_bound(prepared.params, activation)
                           if B == 1 and "float64" in dtypes else None)
                n_samples = len(prepared.X["train"])
                updates = (repeat + 1) * -(-n_samples // (n_samples if B == "full" else B))
                float64_ms = {}
                for dtype in dtypes:
                    group = _group(able(backends, dtype), hidden, dataset, B, dtype, repeat,
                                   prepared, n_weights, peaks.get(dtype), progress,
                                   None if dtype != "float64" else bound_s, updates)
                    for r in group:  # x float64: how many times faster than in float64
                        if dtype == "float64":
                            float64_ms[r["backend"]] = r["ms_median"]
                        r["speedup_vs_float64"] = (
                            float64_ms[r["backend"]] / r["ms_median"]
                            if dtype != "float64" and r["backend"] in float64_ms else None)
                    rows += group
    return pd.DataFrame(rows)


def _group(names, hidden, dataset, B, dtype, repeat, prepared, n_weights, peak, progress,
           bound_s, updates):
    """The rows of one group: `names` timed in `dtype`, checked against its reference (torch
    where it is in the group, else the first); bound_s: the per-sample bound, or None (a
    batch has % peak; the bound is float64's)."""
    group, weights = [], {}
    for name in names:
        case = Case(name, hidden, dataset, B, dtype)
        if progress:
            progress(case)
        seconds, warmup, weights[name], device = time_case(case, repeat, prepared)
        group.append(_row(case, seconds, warmup, n_weights, len(prepared.X["train"]),
                          np.nan if peak is None else peak, device))
    for r in group:
        r["bound_us_per_sample"] = None if bound_s is None else 1e6 * bound_s
        r["pct_bound"] = None if bound_s is None else 100 * bound_s * r["n_samples"] / (
            r["ms_median"] / 1e3)
        r["overhead_us_per_sample"] = (None if bound_s is None
                                       else r["us_per_sample"] - 1e6 * bound_s)
    ref = "torch" if "torch" in weights else names[0]
    tol = same_weights_tol(dtype, updates, max(max(np.max(np.abs(W)), np.max(np.abs(b)))
                                               for W, b in weights[ref]))
    times = {r["backend"]: r["ms_median"] for r in group}
    for r in group:
        r["speedup_vs_python"] = times["python"] / r["ms_median"] if "python" in times else None
        r["speedup_vs_torch"] = times["torch"] / r["ms_median"] if "torch" in times else None
        r["speedup_vs_sklearn"] = (times["sklearn"] / r["ms_median"]
                                   if "sklearn" in times else None)
        r["times_c"] = r["ms_median"] / times["c"] if "c" in times else None  # the yardstick
        r["max_dw_vs_reference"] = max_diff(weights[r["backend"]], weights[ref])
        r["reference"] = ref
        r["same_weights_tol"] = tol
        r["same_weights"] = r["max_dw_vs_reference"] <= tol
    return group


def environment(threads, peaks):
    """Where the comparison ran; `peaks` as run.machine.peaks() gives them."""
    import importlib.metadata as md
    versions = {}
    for pkg in ("numpy", "numba", "torch", "jax", "scipy", "scikit-learn"):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            versions[pkg] = "not installed"
    return {"cpu": machine.cpu_model(), "python": platform.python_version(), "threads": threads,
            **peaks, **versions, "cc": machine.cc_version(),
            "gpu": machine.gpu_name()}
