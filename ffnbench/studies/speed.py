"""The speed comparison: every backend trains the same epochs from the same initial weights
in the same sample order, timed one thread per engine; the comparison only counts if they
all end with the same weights.
"""
import functools
import platform
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..core import harness, memory
from ..core.config import TrainConfig
from ..impls.checks import max_diff
from ..run import machine

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
    from . import bound  # its kernels are numba's
    return bound.measure_rates(n_weights)


@functools.lru_cache(maxsize=None)
def _activation_rates():
    from . import bound
    return bound.activation_rates()


def per_sample_bound(params, activation="tanh"):
    """Seconds per sample of the per-sample SGD bound (studies/bound.py) for these weights
    and hidden activation, its rates measured here, once per size; None where numba is not
    installed."""
    sizes = (params[0][0].shape[1], *(len(b) for _, b in params))
    try:
        from . import bound
        rates = _bound_rates(bound.work(sizes)["weights"])
    except ImportError:
        return None
    return bound.per_sample_bound(sizes, rates, _activation_rates()[activation])


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
                activation = Case(backends[0], hidden, dataset, B).config().activation
                bound_s = per_sample_bound(prepared.params, activation) if B == 1 else None
                for r in group:  # the bound is per-sample SGD's; a batch has % peak
                    r["bound_us_per_sample"] = None if bound_s is None else 1e6 * bound_s
                    r["pct_bound"] = None if bound_s is None else 100 * bound_s * r["n_samples"] / (
                        r["ms_median"] / 1e3)
                    r["overhead_us_per_sample"] = (None if bound_s is None
                                                   else r["us_per_sample"] - 1e6 * bound_s)
                ref = "torch" if "torch" in weights else backends[0]
                times = {r["backend"]: r["ms_median"] for r in group}
                for r in group:
                    r["speedup_vs_python"] = times["python"] / r["ms_median"] if "python" in times else None
                    r["speedup_vs_torch"] = times["torch"] / r["ms_median"] if "torch" in times else None
                    r["speedup_vs_sklearn"] = (times["sklearn"] / r["ms_median"]
                                               if "sklearn" in times else None)
                    r["times_c"] = r["ms_median"] / times["c"] if "c" in times else None  # the yardstick
                    r["max_dw_vs_reference"] = max_diff(weights[r["backend"]], weights[ref])
                    r["reference"] = ref
                    r["same_weights"] = r["max_dw_vs_reference"] <= SAME_WEIGHTS_TOL
                rows += group
    return pd.DataFrame(rows)


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
