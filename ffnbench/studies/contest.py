"""An equal contest between the FFN and the strongest baselines: every family gets the same
budget and the same procedure, on the same splits.

For each dataset, split kind (random, grouped) and seed, the training and validation parts
together (85 %) are cut into FOLDS folds (by duplicate group for the grouped split); each of
a family's CANDIDATES is scored by its mean validation MSE over the folds; the best is refit
on the whole 85 % and evaluated once on the test part. The FFN stops early on each fold
(patience, at most MAX_EPOCHS; a fold run that reaches the cap is counted) and is refit for
the median of its folds' best epochs. Each unit (dataset, split, seed, family) is one cached
task of run_grid, like a run."""
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .. import __version__
from ..core import data, harness
from ..core.config import TrainConfig
from ..run import grid
from ..run.cache import Cache, InvalidEntry, check_envelope, study_fingerprint
from ..run.machine import machine_info, one_thread_per_run

FOLDS = 3
MAX_EPOCHS, PATIENCE = 500, 10
SPLITS = ("random", "grouped")
FFN = dict(backend="numba", optimizer="adam", lr=1e-3, batch_size=32, activation="relu")
SGD = dict(optimizer="sgd", batch_size=1)
CANDIDATES = {  # the same budget for every family: four settings each, fixed in advance;
    # the FFN's include the table's best by validation (#13) and the sweep's best on white
    "FFN": [dict(SGD, hidden=(10, 30, 5), lr=1e-3, l2=0.1),
            dict(SGD, hidden=(50, 30, 20, 10, 5), lr=1e-3, l2=0.01),
            dict(hidden=(30, 10), l2=0.0), dict(hidden=(100, 50), l2=1e-3)],
    "random forest": [dict(max_features=f, min_samples_leaf=m)
                      for f, m in ((0.33, 1), (0.5, 1), (0.66, 1), (0.33, 3))],
    "gradient boosting": [dict(max_depth=d, learning_rate=r)
                          for d, r in ((3, 0.05), (6, 0.05), (3, 0.1), (6, 0.1))],
}


@dataclass(frozen=True)
class Unit:
    """One family tuned, refit and tested on one dataset, split kind and seed."""

    dataset: str
    split: str
    seed: int
    family: str


def _folds(pool, groups, seed):
    """[(fit, check)] index arrays cutting `pool` into FOLDS parts (whole groups if given)."""
    rng = np.random.default_rng([seed, 7])
    if groups is None:
        parts = np.array_split(rng.permutation(pool), FOLDS)
    else:
        ids = np.unique(groups[pool])
        fold_of = dict(zip(rng.permutation(ids), np.arange(len(ids)) % FOLDS))
        which = np.array([fold_of[g] for g in groups[pool]])
        parts = [pool[which == k] for k in range(FOLDS)]
    return [(np.concatenate(parts[:k] + parts[k + 1:]), parts[k]) for k in range(FOLDS)]


def _ffn(X, y, fit, check, test, seed, epochs=None, patience=None, **cand):
    """(validation MSE, test MSE, best epoch, reached the cap) of one FFN; epochs and
    patience default to MAX_EPOCHS and PATIENCE."""
    config = TrainConfig(dataset="red", seed=seed, epochs=epochs or MAX_EPOCHS,
                         patience=PATIENCE if patience is None else patience,
                         **{**FFN, **cand})  # dataset only names the task: the data are given
    Xs = {k: np.ascontiguousarray(data.scale("standard", X[fit], X[idx]))
          for k, idx in (("train", fit), ("val", check), ("test", test))}
    Ys = {k: y[idx].reshape(-1, 1).astype(np.float64)
          for k, idx in (("train", fit), ("val", check), ("test", test))}
    sizes = (X.shape[1], *config.hidden, 1)
    params = harness.init_params(sizes, config.activation, config.init, seed)
    r, _ = harness.train(config, harness.Prepared(Xs, Ys, params))
    if r["diverged"]:
        return np.inf, np.nan, r["epochs_run"], False
    return r["val_mse"], r["test_mse"], r["best_epoch"], r["epochs_run"] == MAX_EPOCHS


TREES = {  # what every candidate of a family shares (a candidate may override it)
    "random forest": dict(n_estimators=100, n_jobs=1, random_state=0),
    "gradient boosting": dict(max_iter=300, early_stopping=False, random_state=0),
}


def _tree(family, X, y, fit, check, test, **cand):
    from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor
    make = RandomForestRegressor if family == "random forest" else HistGradientBoostingRegressor
    model = make(**{**TREES[family], **cand}).fit(X[fit], y[fit])
    return (float(np.mean((model.predict(X[check]) - y[check]) ** 2)),
            float(np.mean((model.predict(X[test]) - y[test]) ** 2)))


def run_unit(unit):
    """Tune `unit.family` by cross-validation on training + validation, refit the best on
    all of it, test once: one row."""
    X, y, _ = data.load_task(unit.dataset)
    groups = data.duplicate_groups(X, y) if unit.split == "grouped" else None
    train, val, test = data.split(len(y), unit.seed, groups=groups)
    pool = np.concatenate([train, val])
    folds = _folds(pool, groups, unit.seed)
    scores, best_epochs, capped = [], [], 0
    for cand in CANDIDATES[unit.family]:
        if unit.family == "FFN":
            runs = [_ffn(X, y, fit, check, test, unit.seed, **cand) for fit, check in folds]
            best_epochs.append([e for *_, e, _ in runs])
            capped += sum(c for *_, c in runs)
        else:
            runs = [_tree(unit.family, X, y, fit, check, test, **cand) for fit, check in folds]
        scores.append(float(np.mean([r[0] for r in runs])))
    best = int(np.argmin(scores))
    row = {"dataset": unit.dataset, "split": unit.split, "seed": unit.seed,
           "family": unit.family, "candidate": best, "cv_mse": scores[best]}
    if unit.family == "FFN":
        epochs = int(np.median(best_epochs[best]))
        _, test_mse, _, _ = _ffn(X, y, pool, pool, test, unit.seed, epochs=epochs, patience=0,
                                 **CANDIDATES["FFN"][best])
        row.update(epochs=epochs, fold_runs=len(CANDIDATES["FFN"]) * FOLDS, fold_runs_capped=capped)
    else:
        test_mse = _tree(unit.family, X, y, pool, pool, test, **CANDIDATES[unit.family][best])[1]
    row["test_mse"] = test_mse
    return row


def fingerprint():
    return study_fingerprint(__file__)


def _task(unit):
    """What a worker runs: its engines loaded first, so one_thread_per_run limits their
    thread pools (OpenMP in the boosting, BLAS) to one per unit in flight."""
    from sklearn import ensemble  # noqa: F401  (loaded before the limit below)
    harness.load_backend(TrainConfig(**FFN))
    one_thread_per_run()
    return (__version__, fingerprint()), {"rows": [run_unit(unit)], "machine": machine_info()}


def _fields(unit):
    return {"contest": {"dataset": unit.dataset, "split": unit.split, "seed": unit.seed,
                        "family": unit.family}, "version": __version__, "code": fingerprint()}


KIND = grid.Kind(fields=_fields, task=_task, code=lambda unit: (__version__, fingerprint()),
                 cost=lambda u: data.UCI_ROWS.get(u.dataset, 0) * (2 if u.family == "FFN" else 1),
                 label=lambda u: f"{u.family} {u.dataset} {u.split} seed {u.seed}")


def check_entry(entry, fields):
    """The cached row of `fields`, or InvalidEntry (another unit, edited, wrong shape)."""
    result = check_envelope(entry, fields)
    rows, unit = result.get("rows"), fields["contest"]
    if (not isinstance(rows, list) or len(rows) != 1 or not isinstance(rows[0], dict)
            or {k: rows[0].get(k) for k in unit} != unit
            or not isinstance(rows[0].get("test_mse"), (int, float))):
        raise InvalidEntry("not the row of the contest unit it names")
    return result


def compute(datasets, seeds, executor, cache, in_flight=1, progress=True):
    """One row per dataset, split kind, seed and family (cached beside the runs)."""
    units = [Unit(d, s, seed, f) for d in datasets for s in SPLITS for seed in range(seeds)
             for f in CANDIDATES]
    store = Cache(cache.root / "contest", cache.fresh, check=check_entry)
    results, _ = grid.run_grid(units, executor, store, in_flight=in_flight, progress=progress,
                               desc="contest", kind=KIND)
    return pd.DataFrame([row for r in results for row in r["rows"]])
