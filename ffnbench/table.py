"""`ffnbench table`: the published wine-quality table rerun over seeds under several
protocols (readings of the published code, docs/protocol.md), next to a mean predictor,
least squares and the strong baselines a practitioner would try first, on the same splits.

Every run is a TrainConfig whose seed is the seed index, so all settings, all protocols
and the baselines share the same split for a given seed: every comparison is paired.
"""
import functools
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

import impls

from . import __version__, grid, harness, runs
from .config import REGRESSION_DATASETS, SCALINGS, TrainConfig, parse_choices, parse_hidden
from .errors import UserError
from .fileio import atomic_write, check_dir_path, check_target, ensure_dir

REFERENCE = Path(__file__).parent / "reference" / "seed_table.csv"  # the published table
PROTOCOLS = {  # everything else (split, per-sample SGD, L2) is identical
    "modern": {"init": "auto", "scaling": "standard"},
    "minmax-uniform": {"init": "uniform01", "scaling": "minmax"},
    "article": {"init": "uniform01", "scaling": "none", "input_activation": True,
                "grad_bug": True, "relu_grad0": 1.0, "stop": "first-rise"},
}
ALIASES = {"published": "minmax-uniform", "both": "modern,minmax-uniform", "all": ",".join(PROTOCOLS)}
PROTOCOL_TEXT = {
    "modern": "standard scaling (training-part mean and sd), Glorot-uniform initial weights "
              "for sigmoid/tanh, He-uniform for relu, zero biases; textbook backpropagation; "
              "early stopping with patience, best weights restored",
    "minmax-uniform": "per-feature min-max scaling (training-part min and max), weights and "
                      "biases uniform in [0, 1); textbook backpropagation; early stopping with "
                      "patience, best weights restored (this was called `published` before)",
    "article": "the published code as it runs: no feature scaling, weights and biases uniform "
               "in [0, 1), the activation applied to the input too, the weight gradient taken "
               "from each layer's input before its activation, relu'(0) = 1, and training "
               "stopped at the first epoch whose validation MSE does not fall (no restore; "
               "--epochs is only a cap, the printed code has none)",
}
OVERRIDES = ("scaling", "split", "stop", "input_activation", "grad_bug", "relu_grad0")  # CLI
EPOCHS, PATIENCE = 200, 10  # the harness defaults; --epochs / --patience change them
CORTEZ_2009 = {  # Cortez et al. (2009), Table 2: MAD and accuracy at T = 0.5 and 1.0 (%)
    "MR": {"red": (0.50, 59.1, 88.6), "white": (0.59, 51.7, 84.3)},
    "NN": {"red": (0.51, 59.1, 88.8), "white": (0.58, 52.6, 84.7)},
    "SVM": {"red": (0.46, 62.4, 89.0), "white": (0.45, 64.6, 86.8)},
}
COLLAPSED = 0.01  # a run is collapsed when sd(test predictions) < COLLAPSED * sd(test y)
ALPHA = 0.05  # paired t-test level for "distinguishably better than the mean predictor"
PLAIN_REPRODUCED = r"reproduced($| \()"  # 'reproduced' or 'reproduced (5/5 diverged)'
TIMING_COLUMNS = ("seconds_total", "seconds_per_epoch_median")
PAIRED = ("mean", "ols", "best")  # paired differences: vs mean, OLS, the best baseline
COLUMNS = [
    "kind", "protocol", "dataset", "setting", "hidden", "activation", "lr", "l2",
    "published_test_mse", "n_seeds", "n_diverged", "n_collapsed",
    "test_mse_mean", "test_mse_sd", "test_mse_min", "test_mse_max",
    "test_mse_mean_uncollapsed", "test_mse_median_uncollapsed", "verdict", "constant_level",
    "test_mse_minus_mean_predictor",
    *[f"vs_{b}_{c}" for b in PAIRED for c in ("diff", "diff_sd", "p")], "best_baseline",
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


@dataclass(frozen=True)
class Spec:
    """What one `ffnbench table` invocation computes."""

    protocols: tuple = ("modern",)
    datasets: tuple = REGRESSION_DATASETS
    seeds: int = 5
    backend: str = "numba"
    epochs: int = EPOCHS
    patience: int = PATIENCE
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

    def describe(self):
        return (f"{len(self.chosen())} settings x {', '.join(self.datasets)} x {self.seeds} "
                f"seed(s) x {' + '.join(self.protocols)} protocol; {self.backend} backend, "
                f"at most {self.epochs} epochs, patience {self.patience}, {self.split} split"
                + "".join(f", {k} {v}" for k, v in self.overrides if k != "split"))


# --- the baselines: same splits ----------------------------------------------------------

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


def paired(diff):
    """Mean and sd of per-seed differences and the two-sided paired t-test p-value
    (nan with fewer than two pairs or no spread)."""
    d = np.asarray(diff, dtype=float)
    d = d[~np.isnan(d)]
    if len(d) < 2:
        return (float(d.mean()) if len(d) else np.nan), np.nan, np.nan
    sd = float(d.std(ddof=1))
    if sd <= 1e-12 * max(abs(float(d.mean())), 1e-300):  # no spread: the sign decides
        return float(d.mean()), 0.0, (1.0 if d.mean() == 0 else 0.0)
    from scipy.stats import ttest_1samp  # = ttest_rel on the pairs
    return float(d.mean()), sd, float(ttest_1samp(d, 0.0).pvalue)


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
    for b in PAIRED:
        out[f"vs_{b}_diff"], out[f"vs_{b}_diff_sd"], out[f"vs_{b}_p"] = paired(ok[f"vs_{b}"])
    # not distinguishably better than the mean: no lower on average, or not significantly
    out["constant_level"] = bool(len(ok) == 0 or not (
        out["vs_mean_diff"] < 0 and out["vs_mean_p"] < ALPHA))
    out["_uncollapsed_range"] = (t[~collapsed].min(), t[~collapsed].max())
    if "epochs_run" in g:
        out.update(epochs_median=g["epochs_run"].median(), best_epoch_median=ok["best_epoch"].median(),
                   seconds_total=g["run_seconds"].sum(),
                   seconds_per_epoch_median=g["seconds_per_epoch"].median())
    return out


def verdict(published, st):
    """The published value against our runs, in words a constant predictor cannot pass
    unremarked: reproduced (inside our min-max and distinguishably better than the mean),
    reproduced-at-constant-level (inside, but not better than predicting the mean, or
    inside only thanks to collapsed runs), ours-lower/higher by x (distance from our range)."""
    n, n_div = st["n_seeds"], st["n_diverged"]
    if np.isnan(published):
        if n_div == n:
            return f"reproduced ({n_div}/{n} diverged)"
        return f"partly ({n_div}/{n} diverged)" if n_div else "not-reproduced (no run diverged)"
    lo, hi = st["test_mse_min"], st["test_mse_max"]
    if np.isnan(lo):
        return "not-comparable (every run diverged)"
    if lo <= published <= hi:
        ulo, uhi = st["_uncollapsed_range"]
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


def best_baselines(baselines):
    """dataset -> the baseline (not the mean) with the lowest mean validation MSE."""
    val = baselines[baselines["setting"] != "mean"].groupby(["dataset", "setting"], sort=False)["val_mse"].mean()
    return {d: v.idxmin()[1] for d, v in val.groupby(level=0)}


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
                     "verdict": verdict(s.published[dataset], st), "best_baseline": best_name.get(dataset),
                     "backend": spec.backend, "max_epochs": spec.epochs, "patience": spec.patience,
                     **_protocol_columns(spec, protocol)})
    table = pd.DataFrame(rows)
    context = []
    for (name, dataset), g in baselines.groupby(["setting", "dataset"], sort=False):
        context.append({"kind": "baseline", "dataset": dataset, "setting": name, **_summary(g),
                        "best_baseline": best_name.get(dataset), "split": spec.split})
    for (protocol, dataset), g in table.groupby(["protocol", "dataset"], sort=False):
        clean = g[g["n_diverged"] == 0]  # chosen on validation MSE, never on test MSE
        if len(clean):
            context.append({**clean.loc[clean["val_mse_mean"].idxmin()].to_dict(), "kind": "best",
                            "published_test_mse": np.nan, "verdict": ""})
    table = pd.concat([table, pd.DataFrame(context)], ignore_index=True).reindex(columns=COLUMNS)
    rank = {"kind": ("setting", "best", "baseline"), "protocol": tuple(PROTOCOLS), "dataset": REGRESSION_DATASETS}
    return table.sort_values(list(rank), key=lambda c: c.map({v: i for i, v in enumerate(rank[c.name])}),
                             kind="stable", na_position="last").reset_index(drop=True)


# --- the markdown table ----------------------------------------------------------------

def _f(x, digits=3):
    return "–" if pd.isna(x) else f"{x:.{digits}f}"


def _ours(r):
    if r["n_diverged"] == r["n_seeds"]:
        return "diverged"
    if r["n_seeds"] - r["n_diverged"] == 1:
        return _f(r["test_mse_mean"])
    return (f"{_f(r['test_mse_mean'])} ± {_f(r['test_mse_sd'])} "
            f"({_f(r['test_mse_min'])}–{_f(r['test_mse_max'])})")


def _diff(r, b="mean"):
    """A paired difference as 'mean ± sd (p)'."""
    d, sd, p = r[f"vs_{b}_diff"], r[f"vs_{b}_diff_sd"], r[f"vs_{b}_p"]
    if pd.isna(d):
        return "–"
    return f"{d:+.3f} ± {_f(sd)}" + ("" if pd.isna(p) else f" (p {p:.2g})")


def _published(x):
    return "NaN (diverged)" if np.isnan(x) else f"{x:.3f}"


def _command(spec):
    names = [p for p in PROTOCOLS if p in spec.protocols]
    protocol = "all" if len(names) == len(PROTOCOLS) else ",".join(names)
    opts = "".join(f" --{k.replace('_', '-')}" + ("" if v is True else f" {v:g}" if isinstance(v, float) else f" {v}")
                   for k, v in spec.overrides)
    return f"ffnbench table --protocol {protocol} --seeds {spec.seeds} --backend {spec.backend}{opts}"


def render_markdown(spec, table):
    settings = table[table["kind"] == "setting"]
    lines = [
        "# The published wine-quality table, reproduced",
        "",
        f"Generated by `{_command(spec)}` (ffnbench {__version__}); every number below is in "
        "`table.csv` beside this file. The protocols, the printed code's quirks and the verdict "
        "rules are explained in docs/protocol.md.",
        "",
        f"Each setting is trained on {spec.seeds} seed(s) per dataset; seed *i* fixes the "
        f"70/15/15 split ({spec.split}: "
        + ("identical wines may sit in different parts" if spec.split == "random" else
           "all copies of an identical wine in one part") +
        "), the initial weights and the sample order, and is the same for every setting, every "
        "protocol and the baselines, so every comparison is paired by seed. Per-sample SGD "
        f"with L2 on the weights, at most {spec.epochs} epochs; patience {spec.patience} where "
        "the protocol stops on patience. **Ours**: test MSE, mean ± sd (min–max) over the runs "
        "that did not diverge. **div**: runs that ended in NaN/inf. **coll.**: collapsed runs, "
        f"whose test predictions have an sd below {COLLAPSED:.0%} of the test targets' (a "
        "constant in all but name). **vs mean**: our test MSE minus the mean predictor's on "
        "the same seeds, mean ± sd of the per-seed differences (paired t-test p). "
        "**Verdict**: *reproduced* — the published value lies within our min–max and our "
        f"runs are distinguishably better than predicting the training mean (paired p < {ALPHA}); "
        "*reproduced-at-constant-level* — within our min–max, but our runs are not "
        "distinguishably better than the mean, or the value is inside only because of "
        "collapsed runs; *ours-lower/higher by x* — the distance from our range to it; for the "
        "published NaN, how many of our runs diverged.",
    ]
    ds = [d for d in REGRESSION_DATASETS if d in spec.datasets]
    for protocol in spec.protocols:
        part = settings[settings["protocol"] == protocol]
        head = ["#", "hidden", "act.", "lr"] + [f"{d}: {c}" for d in ds for c in (
            "published", "ours", "div", "coll.", "vs mean", "verdict")]
        lines += ["", f"## Protocol `{protocol}`", "", PROTOCOL_TEXT[protocol] + ".", "",
                  "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for number, g in part.groupby("setting", sort=False):
            r0 = g.iloc[0]
            cells = [number, r0["hidden"], r0["activation"], f"{r0['lr']:g}"]
            for d in ds:
                r = g[g["dataset"] == d].iloc[0]
                cells += [_published(r["published_test_mse"]), _ours(r),
                          f"{r['n_diverged']}/{r['n_seeds']}", f"{r['n_collapsed']}",
                          _diff(r), r["verdict"]]
            lines.append("| " + " | ".join(map(str, cells)) + " |")
    lines += _context(spec, table, ds) + _paired_lines(spec, table, ds) + _summary_lines(spec, table, ds)
    return "\n".join(lines) + "\n"


def _context(spec, table, ds):
    base = table[table["kind"] == "baseline"]
    best = table[table["kind"] == "best"]
    head = ["model"] + [f"{d}: {c}" for d in ds for c in ("test MSE", "vs mean", "MAD", "acc@0.5", "acc@1.0")]
    strong = set(base["setting"]) - set(BASELINES)
    lines = ["", "## Context: baselines on the same splits, and Cortez et al. (2009)", "",
             "Every baseline is fitted on each seed's training part (standard-scaled inputs) and "
             "picks among at most two candidate settings by validation MSE, never by test MSE. "
             "MAD is the mean absolute test error (our MAE); acc@T the share of test wines "
             "predicted within T of their grade. *Best of N* is the setting with the lowest "
             "mean validation MSE among those that never diverged. Cortez et al. used 20 runs "
             "of 5-fold cross-validation with tuned models, not our splits, so their rows are "
             "for orientation only.", ""]
    if not strong:
        lines += ["*scikit-learn is not installed: the random forest, gradient boosting and "
                  "RBF SVR rows were skipped (`pip install 'ffnbench[baselines]'`).*", ""]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def row(label, pick):
        cells = [label]
        for d in ds:
            r = pick(d)
            if r is None:
                cells += ["–"] * 5
                continue
            cells += [f"{_f(r['test_mse_mean'])} ± {_f(r['test_mse_sd'])}", _diff(r),
                      _f(r["test_mae_mean"], 2), f"{100 * r['test_acc_0_5_mean']:.1f} %",
                      f"{100 * r['test_acc_1_0_mean']:.1f} %"]
        return "| " + " | ".join(cells) + " |"

    def first(frame):
        return None if frame.empty else frame.iloc[0]

    for name in dict.fromkeys(base["setting"]):
        lines.append(row(name, lambda d: first(base[(base["setting"] == name) & (base["dataset"] == d)])))
    for protocol in spec.protocols:
        b = best[best["protocol"] == protocol]
        names = "; ".join(f"{d}: #{r['setting']} {r['hidden']} {r['activation']} lr {r['lr']:g}"
                          for d in ds for _, r in b[b["dataset"] == d].iterrows())
        lines.append(row(f"best of {len(spec.chosen())}, {protocol} ({names})",
                         lambda d: first(b[b["dataset"] == d])))
    for model, vals in CORTEZ_2009.items():
        cells = [f"Cortez et al. (2009) {model}"]
        for d in ds:
            cells += ["–", "–", f"{vals[d][0]:.2f}", f"{vals[d][1]:.1f} %", f"{vals[d][2]:.1f} %"]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _paired_lines(spec, table, ds):
    best = table[table["kind"] == "best"]
    lines = ["", "## Paired comparisons of the best FFN", "",
             "Test MSE of the best setting (by validation) minus the baseline's, on the same "
             "seeds: mean ± sd of the per-seed differences (two-sided paired t-test p). "
             "Negative: the FFN is better.", "",
             "| protocol | dataset | best FFN | vs mean | vs least squares | vs best baseline |",
             "|---|---|---|---|---|---|"]
    for _, r in best.iterrows():
        lines.append(f"| {r['protocol']} | {r['dataset']} | #{r['setting']} | {_diff(r, 'mean')} | "
                     f"{_diff(r, 'ols')} | {_diff(r, 'best')} ({r['best_baseline']}) |")
    return lines


def _summary_lines(spec, table, ds):
    settings = table[table["kind"] == "setting"]
    base = table[(table["kind"] == "baseline") & (table["setting"] == "mean")].set_index("dataset")
    lines = ["", "## Summary", ""]
    for d in ds:
        pub = settings[(settings["dataset"] == d) & (settings["protocol"] == spec.protocols[0])]["published_test_mse"]
        r = base.loc[d]
        n_in = int(((pub >= r["test_mse_min"]) & (pub <= r["test_mse_max"])).sum())
        lines.append(f"- Control, {d}: the min–max rule applied to predicting the training mean "
                     f"(test MSE {_f(r['test_mse_min'])}–{_f(r['test_mse_max'])} over the seeds) "
                     f"would call {n_in}/{int(pub.notna().sum())} published values reproduced; "
                     f"{int((pub >= r['test_mse_mean']).sum())} published values are at or above "
                     f"its mean ({_f(r['test_mse_mean'])}).")
    for protocol in spec.protocols:
        part = settings[settings["protocol"] == protocol]
        for d in ds:
            g = part[part["dataset"] == d]
            v = g["verdict"]
            kinds = {"reproduced": v.str.match(PLAIN_REPRODUCED).sum(),
                     "reproduced-at-constant-level": (v == "reproduced-at-constant-level").sum(),
                     "ours-lower": v.str.startswith("ours-lower").sum(),
                     "ours-higher": v.str.startswith("ours-higher").sum()}
            lines.append(f"- `{protocol}`, {d}: " + ", ".join(f"{k} {int(n)}" for k, n in kinds.items())
                         + f" of {len(g)}; {int(g['constant_level'].astype(bool).sum())} settings not "
                         f"distinguishably better than the mean predictor; "
                         f"{int(g['n_diverged'].sum())} diverged and {int(g['n_collapsed'].sum())} "
                         f"collapsed runs of {int(g['n_seeds'].sum())}.")
    return lines


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


def render_ablation(spec, table):
    ab = ablation(table)
    protocols = [p for p in spec.protocols]
    head = ["#", "hidden", "act.", "lr", "data", "published"] + [f"{p}: ours (div)" for p in protocols] + [
        "closest", "by", "mean predictor (distance)", "reproduced by (verdict)"]
    lines = ["# Which reading of the published code comes closest to each published cell", "",
             f"Generated by `{_command(spec)}` together with table.md, from the same runs "
             "(`table.csv` beside this file holds every number). For each of the published "
             "cells: our mean test MSE over the seeds that did not diverge under each protocol "
             "(diverged runs in brackets), the protocol whose mean is closest to the published "
             "value and by how much, and the protocols whose verdict is a kind of *reproduced* "
             "(see table.md for the verdict rules). The mean predictor's test MSE on the same "
             "splits stands beside them as the yardstick: a protocol that is closer to a published "
             "value than the constant is only informative if it is also better than the constant. "
             "For a published NaN, *closest* is the protocol with the most diverged runs and *by* "
             "the share of its runs that did not diverge.",
             "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for _, r in ab.iterrows():
        cells = [r["setting"], r["hidden"], r["activation"], f"{r['lr']:g}", r["dataset"],
                 _published(r["published"])]
        cells += [("diverged" if r[f"{p}_diverged"] == spec.seeds else _f(r[f"{p}_ours"]))
                  + f" ({r[f'{p}_diverged']})" for p in protocols]
        by = _f(r["closest_distance"]) if np.isfinite(r["closest_distance"]) else "–"
        rep = "; ".join(f"{p} ({r[f'{p}_verdict']})" for p in r["reproduced_by"].split(",") if p) or "none"
        mp = "–" if np.isnan(r["published"]) else f"{_f(r['mean_predictor'])} ({_f(r['mean_predictor_distance'])})"
        cells += [r["closest"], by, mp, rep]
        lines.append("| " + " | ".join(map(str, cells)) + " |")
    lines += ["", "## Counts", ""]
    for d in dict.fromkeys(ab["dataset"]):
        part = ab[ab["dataset"] == d]
        closest = part["closest"].value_counts()
        lines.append(f"- {d}: closest " + ", ".join(f"`{p}` {int(closest.get(p, 0))}" for p in protocols)
                     + f" of {len(part)}; reproduced (any kind) by " + ", ".join(
                         f"`{p}` {int(part[f'{p}_verdict'].str.startswith('reproduced').sum())}"
                         for p in protocols)
                     + f"; by none: {int((part['reproduced_by'] == '').sum())}; "
                     f"plain *reproduced* (better than the mean): " + ", ".join(
                         f"`{p}` {int(part[f'{p}_verdict'].str.match(PLAIN_REPRODUCED).sum())}"
                         for p in protocols) + "; the mean predictor is at least as close as "
                     f"every protocol for {int((part['mean_predictor_distance'] <= part['closest_distance']).sum())}.")
    settings = table[table["kind"] == "setting"]
    for _, r in ab[ab["published"].isna()].iterrows():
        lines += ["", f"## The published NaN: #{r['setting']} ({r['hidden']} {r['activation']}, "
                      f"lr {r['lr']:g}) on {r['dataset']}", ""]
        same = settings[settings["setting"] == r["setting"]]
        for _, o in same.iterrows():
            rest = "" if o["n_diverged"] == o["n_seeds"] else f"; test MSE {_ours(o)} over the others"
            lines.append(f"- `{o['protocol']}`, {o['dataset']} (published "
                         f"{_published(o['published_test_mse'])}): {o['n_diverged']}/{o['n_seeds']} "
                         f"runs diverged{rest}; verdict: {o['verdict']}.")
    return "\n".join(lines) + "\n"


# --- the command -------------------------------------------------------------------------

def run_table(spec, out="results", cache_dir=grid.CACHE_DIR, fresh=False, jobs=None,
              progress=True, log=sys.stderr, executor="local", workers=None, scheduler=None):
    """Run (or fetch from the cache) every run of `spec` on `executor` (local | dask, see
    grid.open_executor); write table.csv, table.md and the per-run runs.csv."""
    out = Path(out)
    plan = spec.plan()
    cache = grid.Cache(cache_dir, fresh)
    engine, in_flight = grid.open_executor(executor, jobs, workers, scheduler, log)
    where = f"{jobs or grid.default_jobs()} job(s)" if executor == "local" else "Dask"
    print(f"ffnbench table: {len(plan)} runs = {spec.describe()}; {where}", file=log)
    t0 = time.perf_counter()
    try:
        results, n_cached = grid.run_grid([c for *_, c in plan], engine, cache,
                                          in_flight=in_flight, progress=progress, desc="table")
    finally:
        grid.close_executor(engine)
    table = aggregate(spec, runs_frame(plan, results),
                      baseline_runs(spec.datasets, spec.seeds, spec.split))
    report = render_markdown(spec, table)  # rendered before any file is written
    extra = {"ablation.md": render_ablation(spec, table)} if len(spec.protocols) > 1 else {}
    per_run = runs.frame([c for *_, c in plan], results)
    per_run.insert(0, "setting", [s.number for _, s, *_ in plan])
    per_run.insert(0, "protocol", [p for p, *_ in plan])
    with grid.report_writes(len(plan), cache):
        ensure_dir(out, "--out")
        with atomic_write(out / "table.csv") as f:
            table.to_csv(f, index=False, float_format="%.6g")
        for name, text in {"table.md": report, **extra}.items():
            with atomic_write(out / name) as f:
                f.write(text)
        runs.write(per_run, out)
    print(f"{len(plan)} runs: {n_cached} from the cache ({cache.root}), {len(plan) - n_cached} "
          f"trained; wrote {out / 'table.csv'}, {out / 'runs.csv'} and {out / 'table.md'} in "
          f"{time.perf_counter() - t0:.1f} s", file=log)
    return table


def spec_from_args(args):
    """A validated Spec, or a UserError before anything is run or written."""
    names = ALIASES.get(args.protocol, args.protocol)  # all, both, or a comma list
    protocols = tuple(ALIASES.get(p, p) for p in parse_choices(names, "protocol", (*PROTOCOLS, "published")))
    overrides = tuple((k, getattr(args, k)) for k in OVERRIDES if getattr(args, k, None) is not None)
    if args.seeds < 1:
        raise UserError(f"--seeds must be at least 1, got {args.seeds}")
    grid.check_jobs(args.jobs)
    numbers = [str(s.number) for s in load_settings()]
    settings = () if args.settings is None else tuple(
        int(x) for x in parse_choices(args.settings, "settings", numbers))
    spec = Spec(protocols=tuple(dict.fromkeys(protocols)),
                datasets=parse_choices(args.datasets, "datasets", REGRESSION_DATASETS), seeds=args.seeds,
                backend=args.backend, epochs=args.epochs, patience=args.patience, settings=settings,
                overrides=overrides)
    # one run's config per protocol validates backend, epochs, patience and the overrides;
    # load_backend: the engine is there
    for protocol in spec.protocols:
        harness.load_backend(spec.config(spec.chosen()[0], spec.datasets[0], protocol, 0))
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {args.out}: not a directory")
    check_dir_path(out, "--out")
    for name in ("table.csv", "table.md", "ablation.md", "runs.csv"):  # never replaced if not regular files
        check_target(out / name, "--out")
    check_dir_path(args.cache_dir, "--cache-dir")
    return spec


def cmd_table(args):
    run_table(spec_from_args(args), out=args.out, cache_dir=args.cache_dir, fresh=args.fresh,
              jobs=args.jobs, progress=not args.no_progress, executor=args.executor,
              workers=args.workers, scheduler=args.scheduler)


def add_parser(sub):
    p = sub.add_parser("table", help="reproduce the published wine-quality table (docs/protocol.md)",
                       description="Train every setting of the published table on both wine "
                                   "datasets over several seeds under one or more protocols; write "
                                   "OUT/table.csv, OUT/table.md and, for several protocols, "
                                   "OUT/ablation.md. Finished runs are cached, so "
                                   "an interrupted run resumes where it stopped.",
                       epilog="example (two rows of the table, then checked against the committed "
                              "results):\n  ffnbench table --settings 7,8 --out build/try\n"
                              "  ffnbench verify build/try results")
    p.add_argument("--seeds", type=int, default=5, help="seeds (splits) per setting (default %(default)s)")
    p.add_argument("--backend", default="numba",
                   help=f"{' | '.join(impls.BACKENDS)}; results are the same (default %(default)s)")
    p.add_argument("--datasets", default=",".join(REGRESSION_DATASETS), help="comma-separated (default %(default)s)")
    p.add_argument("--protocol", default="modern",
                   help=f"{' | '.join(PROTOCOLS)}, a comma list of them, or all (default "
                        "%(default)s; published = minmax-uniform, both = modern,minmax-uniform); "
                        "see docs/protocol.md")
    p.add_argument("--scaling", default=None,
                   help=f"{' | '.join(SCALINGS)}: override every protocol's feature scaling")
    p.add_argument("--settings", default=None,
                   help="only these rows of the published table, e.g. 1,8 (default: all 15)")
    p.add_argument("--epochs", type=int, default=EPOCHS, help="maximum epochs (default %(default)s)")
    p.add_argument("--patience", type=int, default=PATIENCE,
                   help="early-stopping patience in epochs (default %(default)s)")
    p.add_argument("--out", default="results",
                   help="directory for table.csv, table.md and runs.csv (default %(default)s)")
    grid.add_run_options(p, "finished runs, one JSON file each")
    p.set_defaults(func=cmd_table)
    return p  # cli adds the quirk options (--stop, --split, --input-activation, ...)
