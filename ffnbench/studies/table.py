"""The published wine-quality table rerun over seeds under several protocols (readings of
the published code, docs/protocol.md), next to a mean predictor, least squares and the strong
baselines a practitioner would try first, on the same splits: the runs it needs, and the
statistics and verdicts of table.csv and the ablation.

Every run is a TrainConfig whose seed is the seed index, so all settings, all protocols
and the baselines share the same split for a given seed: every comparison is paired.
"""
import functools
from dataclasses import dataclass
from typing import NamedTuple
from pathlib import Path

import numpy as np
import pandas as pd

from ..core.config import (ALIASES, OVERRIDES, PROTOCOLS, REGRESSION_DATASETS, TrainConfig,
                           parse_choices, parse_hidden)
from ..run import grid, runs
from . import stats
from .baselines import best_baselines, compute as fit_baselines

REFERENCE = Path(__file__).parents[1] / "reference" / "seed_table.csv"  # the published table
COLLAPSED = 0.01  # a run is collapsed when sd(test predictions) < COLLAPSED * sd(test y)
PLAIN_REPRODUCED = r"reproduced($| \()"  # 'reproduced' or 'reproduced (5/5 diverged)'
TIMING_COLUMNS = ("seconds_total", "seconds_per_epoch_median")
PAIRED = ("mean", "ols", "best")  # paired differences: vs mean, OLS, the best baseline
# per comparison: mean and sd of the per-seed differences, 95 % CI, p, and p corrected by Holm
# over its family (the settings of one protocol and dataset; the baselines of one dataset)
PAIRED_STATS = ("diff", "diff_sd", "ci_low", "ci_high", "p", "p_holm")
COLUMNS = [
    "kind", "protocol", "dataset", "setting", "hidden", "activation", "lr", "l2",
    "published_test_mse", "n_seeds", "n_diverged", "n_collapsed",
    "test_mse_mean", "test_mse_sd", "test_mse_min", "test_mse_max", "test_mse_pi_low",
    "test_mse_pi_high", "test_mse_mean_uncollapsed", "test_mse_median_uncollapsed", "verdict",
    "constant_level", "test_mse_minus_mean_predictor",
    *[f"vs_{b}_{c}" for b in PAIRED for c in PAIRED_STATS], "best_baseline",
    "test_rmse_mean", "test_mae_mean", "test_mae_sd", "test_acc_0_5_mean", "test_acc_1_0_mean",
    "val_mse_mean", "train_mse_mean", "epochs_median", "best_epoch_median",
    *TIMING_COLUMNS, "backend", "max_epochs", "patience", "init", "scaling", "split", "stop",
    "input_activation", "grad_bug", "relu_grad0",
]


@dataclass(frozen=True)
class Setting:
    """One row of the published table."""

    number: int  # 1-based row of seed_table.csv
    hidden: tuple
    activation: str
    lr: float
    l2: float
    published: dict  # dataset -> published test MSE (nan: the run diverged)

@functools.lru_cache
def load_settings(path=REFERENCE):
    df = pd.read_csv(path, dtype={"hidden_sizes": str})
    return tuple(Setting(i + 1, parse_hidden(r.hidden_sizes), r.activation, float(r.learning_rate),
                    float(r.l2), {"red": float(r.test_error_red), "white": float(r.test_error_white)})
            for i, r in enumerate(df.itertuples(index=False)))


def chosen_grid(protocol, datasets, settings):
    """The Spec fields of the options that choose a table's runs (--protocol, --datasets,
    --settings: parser.add_grid_options), each checked: a bad choice is one UserError line."""
    names = ALIASES.get(protocol, protocol)  # all, both, or a comma list
    protocols = parse_choices(names, "protocol", (*PROTOCOLS, "published"))
    numbers = [str(s.number) for s in load_settings()]
    return {"protocols": tuple(dict.fromkeys(ALIASES.get(p, p) for p in protocols)),
            "datasets": parse_choices(datasets, "datasets", REGRESSION_DATASETS),
            "settings": () if settings is None else tuple(
                int(x) for x in parse_choices(settings, "settings", numbers))}


@dataclass(frozen=True)
class Spec:
    """What one `ffnbench table` invocation computes."""

    protocols: tuple = ("modern",)
    datasets: tuple = REGRESSION_DATASETS
    seeds: int = 20  # the prediction interval of one more seed needs more than a handful
    backend: str = "numba"
    epochs: int = TrainConfig.epochs
    patience: int = TrainConfig.patience
    settings: tuple = ()  # row numbers; () = all
    overrides: tuple = ()  # ((TrainConfig field, value), ...) over every protocol's choice

    def chosen(self):
        rows = load_settings()
        return [s for s in rows if not self.settings or s.number in self.settings]

    def config(self, setting, dataset, protocol, seed):
        return TrainConfig(backend=self.backend, dataset=dataset, hidden=setting.hidden,
                           activation=setting.activation, lr=setting.lr, l2=setting.l2,
                           seed=seed, epochs=self.epochs, patience=self.patience,
                           **self.protocol(protocol))

    def protocol(self, name):
        """The TrainConfig fields protocol `name` sets, with the overrides applied."""
        return {**PROTOCOLS[name], **dict(self.overrides)}

    @property
    def split(self):
        return dict(self.overrides).get("split", "random")

    def plan(self):
        """[(protocol, setting, dataset, seed, TrainConfig)] for every run of the grid."""
        return [(p, s, d, seed, self.config(s, d, p, seed)) for p in self.protocols
                for s in self.chosen() for d in self.datasets for seed in range(self.seeds)]

    def size(self):
        """The number of runs, counted without making them."""
        return len(self.protocols) * len(self.chosen()) * len(self.datasets) * self.seeds

    def describe(self):
        return (f"{len(self.chosen())} settings x {', '.join(self.datasets)} x {self.seeds} "
                f"seed(s) x {' + '.join(self.protocols)} protocol; {self.backend} backend, "
                f"at most {self.epochs} epochs, patience {self.patience}, {self.split} split"
                + "".join(f", {k} {v}" for k, v in self.overrides if k != "split"))


# --- aggregation ------------------------------------------------------------------------

def runs_frame(plan, results):
    """One row per run: the grid coordinates and the numbers of its result."""
    keep = ("train_mse", "val_mse", "test_mse", "test_rmse", "test_mae", "test_acc_0_5",
            "test_acc_1_0", "test_prediction_sd", "epochs_run", "best_epoch", "diverged",
            "seconds_per_epoch", "run_seconds")
    rows = [{"kind": "setting", "protocol": p, "setting": s.number, "dataset": d, "seed": seed,
             **{k: r.get(k) for k in keep}} for (p, s, d, seed, _), r in zip(plan, results)]
    df = pd.DataFrame(rows)
    num = [k for k in keep if k != "diverged"]
    df[num] = df[num].astype(float)  # None (a diverged run's metrics) -> NaN
    return df


def _summary(g):
    """Statistics of one group of runs (one setting x dataset x protocol, or a baseline);
    g carries the per-seed paired differences vs_mean, vs_ols, vs_best and test_y_sd."""
    ok = g[~g["diverged"].astype(bool)]
    t = ok["test_mse"]
    collapsed = ok["test_prediction_sd"] < COLLAPSED * ok["test_y_sd"]
    out = {"n_seeds": len(g), "n_diverged": int(len(g) - len(ok)), "n_collapsed": int(collapsed.sum()),
           "test_mse_mean": t.mean(), "test_mse_sd": t.std(ddof=1),
           "test_mse_min": t.min(), "test_mse_max": t.max(),
           "test_mse_mean_uncollapsed": t[~collapsed].mean(),
           "test_mse_median_uncollapsed": t[~collapsed].median(),
           "test_rmse_mean": ok["test_rmse"].mean(), "test_mae_mean": ok["test_mae"].mean(),
           "test_mae_sd": ok["test_mae"].std(ddof=1),
           "test_acc_0_5_mean": ok["test_acc_0_5"].mean(),
           "test_acc_1_0_mean": ok["test_acc_1_0"].mean(),
           "val_mse_mean": ok["val_mse"].mean(), "train_mse_mean": ok["train_mse"].mean(),
           "test_mse_minus_mean_predictor": ok["vs_mean"].mean()}
    out["test_mse_pi_low"], out["test_mse_pi_high"] = stats.prediction_interval(t)
    for b in PAIRED:
        out.update({f"vs_{b}_{k}": v for k, v in stats.paired(ok[f"vs_{b}"]).items()})
    out["_uncollapsed_pi"] = stats.prediction_interval(t[~collapsed])
    if "epochs_run" in g:
        out.update(epochs_median=g["epochs_run"].median(), best_epoch_median=ok["best_epoch"].median(),
                   seconds_total=g["run_seconds"].sum(),
                   seconds_per_epoch_median=g["seconds_per_epoch"].median())
    return out


def _correct(df, family):
    """Holm-adjusted p of every paired comparison within each group of `family` columns,
    and constant_level: not distinguishably better than the mean predictor (no lower on
    average, or not significantly after the correction)."""
    df = df.copy()
    for b in PAIRED:
        df[f"vs_{b}_p_holm"] = df.groupby(family, sort=False)[f"vs_{b}_p"].transform(
            lambda p: stats.holm(p.to_numpy()))
    better = (df["vs_mean_diff"] < 0) & (df["vs_mean_p_holm"] < stats.ALPHA)
    df["constant_level"] = ~better.fillna(False).astype(bool)
    return df


def verdict(published, st):
    """The published value against our runs, in words a constant predictor cannot pass
    unremarked: reproduced (inside the 95 % prediction interval of one more seed, and the
    network distinguishably better than the mean predictor after Holm's correction),
    reproduced-at-constant-level (inside, but not better than predicting the mean, or inside
    only thanks to collapsed runs), ours-lower/higher by x (distance from the interval)."""
    n, n_div = st["n_seeds"], st["n_diverged"]
    if np.isnan(published):
        if n_div == n:
            return f"reproduced ({n_div}/{n} diverged)"
        return f"partly ({n_div}/{n} diverged)" if n_div else "not-reproduced (no run diverged)"
    lo, hi = st["test_mse_pi_low"], st["test_mse_pi_high"]
    if np.isnan(lo):
        return "not-comparable (fewer than 2 runs finished)"
    if lo <= published <= hi:
        ulo, uhi = st["_uncollapsed_pi"]
        honest = not st["constant_level"] and ulo <= published <= uhi
        return "reproduced" if honest else "reproduced-at-constant-level"
    return f"ours-lower by {published - hi:.3f}" if published > hi else f"ours-higher by {lo - published:.3f}"


def _with_paired(df, baselines, best_name):
    """df with per-seed differences of test MSE vs the mean predictor, least squares and
    the best baseline (best_name: dataset -> name) on the same dataset and seed, and the
    sd of the test targets (test_y_sd)."""
    b = baselines.set_index(["setting", "dataset", "seed"])

    def of(names, col="test_mse"):
        return b[col].reindex(list(zip(names, df["dataset"], df["seed"]))).to_numpy()
    t, n = df["test_mse"].to_numpy(), len(df)
    return df.assign(vs_mean=t - of(["mean"] * n), vs_ols=t - of(["least squares"] * n),
                     vs_best=t - of([best_name.get(d) for d in df["dataset"]]),
                     test_y_sd=of(["mean"] * n, "test_y_sd"))


def _protocol_columns(spec, protocol):
    c = TrainConfig(**spec.protocol(protocol)).to_dict()
    return {k: c[k] for k in ("init", *OVERRIDES)}


def aggregate(spec, runs, baselines):
    """The table.csv frame: one row per setting x dataset x protocol, then context rows."""
    by_number = {s.number: s for s in spec.chosen()}
    best_name = best_baselines(baselines)
    runs, baselines = (_with_paired(df, baselines, best_name) for df in (runs, baselines))
    rows = []
    for (protocol, number, dataset), g in runs.groupby(["protocol", "setting", "dataset"], sort=False):
        s, st = by_number[number], _summary(g)
        rows.append({"kind": "setting", "protocol": protocol, "dataset": dataset,
                     "setting": str(number), "hidden": ",".join(map(str, s.hidden)),
                     "activation": s.activation, "lr": s.lr, "l2": s.l2,
                     "published_test_mse": s.published[dataset], **st,
                     "best_baseline": best_name.get(dataset),
                     "backend": spec.backend, "max_epochs": spec.epochs, "patience": spec.patience,
                     **_protocol_columns(spec, protocol)})
    table = _correct(pd.DataFrame(rows), ["protocol", "dataset"])
    table["verdict"] = [verdict(r["published_test_mse"], r) for _, r in table.iterrows()]
    context = []
    base = _correct(pd.DataFrame([
        {"kind": "baseline", "dataset": dataset, "setting": name, **_summary(g),
         "best_baseline": best_name.get(dataset), "split": spec.split}
        for (name, dataset), g in baselines.groupby(["setting", "dataset"], sort=False)]), ["dataset"])
    context += base.to_dict(orient="records")
    best = []
    for (protocol, dataset), g in table.groupby(["protocol", "dataset"], sort=False):
        clean = g[g["n_diverged"] == 0]  # chosen on validation MSE, never on test MSE
        if len(clean):
            best.append({**clean.loc[clean["val_mse_mean"].idxmin()].to_dict(), "kind": "best",
                         "published_test_mse": np.nan, "verdict": ""})
    if best:  # one family: every comparison of every best FFN with the baselines
        best = pd.DataFrame(best)
        cols = [f"vs_{b}_p" for b in PAIRED]
        adjusted = stats.holm(best[cols].to_numpy().ravel()).reshape(len(best), len(cols))
        best[[f"{c}_holm" for c in cols]] = adjusted
        context += best.to_dict(orient="records")
    table = pd.concat([table, pd.DataFrame(context)], ignore_index=True).reindex(columns=COLUMNS)
    rank = {"kind": ("setting", "best", "baseline"), "protocol": tuple(PROTOCOLS), "dataset": REGRESSION_DATASETS}
    return table.sort_values(list(rank), key=lambda c: c.map({v: i for i, v in enumerate(rank[c.name])}),
                             kind="stable", na_position="last").reset_index(drop=True)


# --- the ablation: which reading of the published code comes closest -------------------

def ablation(table):
    """One row per published cell (setting x dataset): per protocol our mean test MSE, the
    distance to the published value and the verdict; the closest protocol and whether any
    reproduces the cell; the mean predictor's distance beside them. A published NaN is
    matched by the share of diverged runs."""
    settings = table[table["kind"] == "setting"]
    mean = table[(table["kind"] == "baseline") & (table["setting"] == "mean")].set_index("dataset")
    rows = []
    for (number, dataset), g in settings.groupby(["setting", "dataset"], sort=False):
        pub = g["published_test_mse"].iloc[0]
        row = {"setting": number, "dataset": dataset, "hidden": g["hidden"].iloc[0],
               "activation": g["activation"].iloc[0], "lr": g["lr"].iloc[0], "published": pub}
        score = {}
        for _, r in g.iterrows():
            p = r["protocol"]
            dist = (1.0 - r["n_diverged"] / r["n_seeds"]) if np.isnan(pub) else abs(r["test_mse_mean"] - pub)
            row[f"{p}_ours"], row[f"{p}_diverged"] = r["test_mse_mean"], r["n_diverged"]
            row[f"{p}_distance"], row[f"{p}_verdict"] = dist, r["verdict"]
            score[p] = np.inf if np.isnan(dist) else dist
        row["closest"] = min(score, key=score.get)
        row["closest_distance"] = score[row["closest"]]
        row["mean_predictor"] = mean.loc[dataset, "test_mse_mean"]
        row["mean_predictor_distance"] = abs(row["mean_predictor"] - pub)  # nan for a NaN cell
        row["reproduced_by"] = ",".join(p for p in score if str(row[f"{p}_verdict"]).startswith("reproduced"))
        rows.append(row)
    return pd.DataFrame(rows)




class Result(NamedTuple):
    table: pd.DataFrame  # table.csv
    runs: pd.DataFrame  # runs.csv: one row per run
    baselines: pd.DataFrame  # baselines.csv: one row per baseline, dataset and seed
    n_cached: int  # runs that came from the cache


def run_plan(spec, executor, cache, in_flight=1, progress=True):
    """(plan, results, runs.csv's frame, how many came from `cache`): every run of `spec`,
    run (or fetched from `cache`) through `executor`, without the baselines."""
    plan = spec.plan()
    results, n_cached = grid.run_grid([c for *_, c in plan], executor, cache,
                                      in_flight=in_flight, progress=progress, desc="table")
    per_run = runs.frame([c for *_, c in plan], results)
    per_run.insert(0, "setting", [s.number for _, s, *_ in plan])
    per_run.insert(0, "protocol", [p for p, *_ in plan])
    return plan, results, per_run, n_cached


def compute(spec, executor, cache, in_flight=1, progress=True):
    """Run (or fetch from `cache`) every run of `spec` and its baselines through `executor`."""
    plan, results, per_run, n_cached = run_plan(spec, executor, cache, in_flight, progress)
    base = fit_baselines(spec.datasets, spec.seeds, spec.split, executor, cache, in_flight,
                         progress)
    table = aggregate(spec, runs_frame(plan, results), base)
    return Result(table, per_run, base, n_cached)
