"""The baselines of every table and sweep, on the same splits as the networks: the mean
predictor, least squares and (with scikit-learn) a random forest, gradient boosting and an
RBF SVR, each fitted on the training part and tuned on the validation part only.

They are deterministic, so `compute` caches them like runs (one entry per dataset, seed and
split, keyed by the code and library versions that decide them) and fits the missing ones
through the same executor as the runs."""
import functools
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .. import __version__
from ..core import data, harness
from ..core.config import TrainConfig
from ..run import grid
from ..run.cache import Cache, InvalidEntry, check_envelope, study_fingerprint
from ..run.machine import machine_info


def _ols(Xtr, ytr, Xva, yva):
    X1 = np.hstack([Xtr, np.ones((len(Xtr), 1))])
    beta = np.linalg.lstsq(X1, ytr, rcond=None)[0]
    return lambda X: np.hstack([X, np.ones((len(X), 1))]) @ beta


def _tuned(make, grid_values):
    """A fit(Xtr, ytr, Xva, yva) that tries each candidate and keeps the lowest validation MSE."""
    def fit(Xtr, ytr, Xva, yva):
        best = None
        for v in grid_values:
            model = make(v).fit(Xtr, ytr)
            mse = float(np.mean((model.predict(Xva) - yva) ** 2))
            if best is None or mse < best[0]:
                best = (mse, model)
        return best[1].predict
    return fit


def strong_baselines():
    """name -> fit, with a handful of candidates each, tuned on the validation part only;
    {} where scikit-learn is not installed."""
    try:
        from sklearn.ensemble import GradientBoostingRegressor, RandomForestRegressor
        from sklearn.svm import SVR
    except ImportError:
        return {}
    return {
        "random forest": _tuned(lambda f: RandomForestRegressor(
            n_estimators=100, max_features=f, n_jobs=1, random_state=0), (0.33, 0.66)),
        "gradient boosting": _tuned(lambda d: GradientBoostingRegressor(
            n_estimators=200, learning_rate=0.1, max_depth=d, subsample=0.8, random_state=0),
            (3, 5)),
        "RBF SVR": _tuned(lambda C: SVR(kernel="rbf", C=C, gamma="scale", epsilon=0.1),
                          (1.0, 3.0)),
    }


BASELINES = {"mean": lambda Xtr, ytr, Xva, yva: (lambda X: np.full(len(X), ytr.mean())),
             "least squares": _ols}


def baseline_runs(datasets, seeds, split="random", strong=True):
    """Per dataset and seed: each baseline fitted on the training part (standard-scaled
    inputs), tuned on the validation part only; metrics on every part."""
    return pd.DataFrame([row for dataset in datasets for seed in range(seeds)
                         for row in _baseline_rows(dataset, seed, split, strong)])


@functools.lru_cache(maxsize=64)  # deterministic: one fit per process and split
def _baseline_rows(dataset, seed, split, strong):
    fits = {**BASELINES, **(strong_baselines() if strong else {})}
    p = harness.prepare(TrainConfig(dataset=dataset, seed=seed, scaling="standard", split=split))
    y = {k: v[:, 0] for k, v in p.Y.items()}
    rows = []
    for name, fit in fits.items():
        predict = fit(p.X["train"], y["train"], p.X["val"], y["val"])
        pred = {k: predict(x) for k, x in p.X.items()}
        m = {k: harness.regression_metrics(pred[k], y[k]) for k in p.X}
        rows.append({"kind": "baseline", "setting": name, "dataset": dataset,
                     "seed": seed, "diverged": False, **harness.flat_metrics("regression", m),
                     "test_prediction_sd": float(np.std(pred["test"])),
                     "test_y_sd": float(np.std(y["test"]))})
    return tuple(rows)


def best_baselines(baselines):
    """dataset -> the baseline (not the mean) with the lowest mean validation MSE."""
    val = baselines[baselines["setting"] != "mean"].groupby(["dataset", "setting"], sort=False)["val_mse"].mean()
    return {d: v.idxmin()[1] for d, v in val.groupby(level=0)}




@dataclass(frozen=True)
class Job:
    """The baselines of one dataset, seed (split) and split kind: one cache entry."""

    dataset: str
    seed: int
    split: str = "random"
    strong: bool = True


def fingerprint():
    """What decides the baselines' numbers (run.cache.study_fingerprint of this module)."""
    return study_fingerprint(__file__)


def _fields(job):
    names = [*BASELINES, *(strong_baselines() if job.strong else {})]
    return {"baselines": {"dataset": job.dataset, "seed": job.seed, "split": job.split,
                          "fits": names}, "version": __version__, "code": fingerprint()}


def _task(job):
    """What a worker runs: ((version, fingerprint), {"rows": [...], "machine": ...})."""
    rows = _baseline_rows(job.dataset, job.seed, job.split, job.strong)
    return (__version__, fingerprint()), {"rows": list(rows), "machine": machine_info()}


KIND = grid.Kind(fields=_fields, task=_task, code=lambda job: (__version__, fingerprint()),
                 cost=lambda job: data.UCI_ROWS.get(job.dataset, 0))

_ROW_KEYS = ("kind", "setting", "dataset", "seed", "test_mse", "val_mse")


def check_entry(entry, fields):
    """The cached baselines of `fields`, or InvalidEntry (another job, edited, wrong shape)."""
    result = check_envelope(entry, fields)
    rows, job = result.get("rows"), fields["baselines"]
    if (not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows)
            or [r.get("setting") for r in rows] != job["fits"]):
        raise InvalidEntry("not the rows of the baselines it names")
    for r in rows:
        if any(k not in r for k in _ROW_KEYS) or (r["dataset"], r["seed"]) != (job["dataset"], job["seed"]):
            raise InvalidEntry("a baseline row lacks a field or belongs to another run")
    return result


def store(cache):
    """The baselines' cache beside the run cache `cache`."""
    return Cache(cache.root / "baselines", cache.fresh, check=check_entry)


def compute(datasets, seeds, split, executor, cache, in_flight=1, progress=True):
    """`baseline_runs(datasets, seeds, split)`, each dataset and seed fetched from the
    baselines' cache beside the run cache `cache` (cache.root/baselines) or fitted through
    `executor` and stored there."""
    jobs = [Job(d, s, split) for d in datasets for s in range(seeds)]
    results, _ = grid.run_grid(jobs, executor, store(cache), in_flight=in_flight, progress=progress,
                               desc="baselines", kind=KIND)
    return pd.DataFrame([row for r in results for row in r["rows"]])
