"""`ffnbench table`: the published wine-quality table (PROTOCOL.md section 1), rerun over
seeds under two protocols, next to a mean predictor and least squares on the same splits.

Every run is a TrainConfig whose seed is the seed index, so all settings, both protocols
and the baselines share the same split for a given seed (paired comparisons).
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
from .config import REGRESSION_DATASETS, TrainConfig, parse_choices, parse_hidden
from .errors import UserError
from .fileio import atomic_write, check_dir_path, ensure_dir

REFERENCE = Path(__file__).parent / "reference" / "seed_table.csv"  # the published table
PROTOCOLS = {  # everything else (split, SGD, L2, stopping rule) is identical
    "modern": {"init": "auto", "scaling": "standard"},
    "published": {"init": "uniform01", "scaling": "minmax"},
}
PROTOCOL_TEXT = {
    "modern": "standard scaling (training-part mean and sd), Glorot-uniform initial weights "
              "for sigmoid/tanh, He-uniform for relu, zero biases",
    "published": "min-max scaling (training-part min and max), weights and biases uniform "
                 "in [0, 1), as in the published code",
}
EPOCHS, PATIENCE = 200, 10  # the harness defaults; --epochs / --patience change them
CORTEZ_2009 = {  # Cortez et al. (2009), Table 3: MAD and accuracy at T = 0.5 (%)
    "MR": {"red": (0.50, 59.1), "white": (0.59, 51.7)},
    "NN": {"red": (0.51, 59.1), "white": (0.58, 52.6)},
    "SVM": {"red": (0.46, 62.4), "white": (0.45, 64.6)},
}
NO_BETTER = 0.02  # test MSE margin under which a setting counts as no better than the mean
TIMING_COLUMNS = ("seconds_total", "seconds_per_epoch_median")
COLUMNS = [
    "kind", "protocol", "dataset", "setting", "hidden", "activation", "lr", "l2",
    "published_test_mse", "n_seeds", "n_diverged",
    "test_mse_mean", "test_mse_sd", "test_mse_min", "test_mse_max", "verdict",
    "test_mse_minus_mean_predictor",
    "test_rmse_mean", "test_mae_mean", "test_mae_sd", "test_acc_0_5_mean", "test_acc_1_0_mean",
    "val_mse_mean", "train_mse_mean", "epochs_median", "best_epoch_median",
    *TIMING_COLUMNS, "backend", "max_epochs", "patience", "init", "scaling",
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

    def chosen(self):
        rows = load_settings()
        return [s for s in rows if not self.settings or s.number in self.settings]

    def config(self, setting, dataset, protocol, seed):
        return TrainConfig(backend=self.backend, dataset=dataset, hidden=setting.hidden,
                           activation=setting.activation, lr=setting.lr, l2=setting.l2,
                           seed=seed, epochs=self.epochs, patience=self.patience,
                           **PROTOCOLS[protocol])

    def plan(self):
        """[(protocol, setting, dataset, seed, TrainConfig)] for every run of the grid."""
        return [(p, s, d, seed, self.config(s, d, p, seed)) for p in self.protocols
                for s in self.chosen() for d in self.datasets for seed in range(self.seeds)]

    def describe(self):
        return (f"{len(self.chosen())} settings x {', '.join(self.datasets)} x {self.seeds} "
                f"seed(s) x {' + '.join(self.protocols)} protocol; {self.backend} backend, "
                f"at most {self.epochs} epochs, early stopping with patience {self.patience}")


# --- the baselines: no training, same splits ------------------------------------------

def baseline_runs(datasets, seeds):
    """Per dataset and seed: the training mean and ordinary least squares (with intercept)."""
    rows = []
    for dataset in datasets:
        for seed in range(seeds):
            p = harness.prepare(TrainConfig(dataset=dataset, seed=seed, scaling="standard"))
            X1 = {k: np.hstack([x, np.ones((len(x), 1))]) for k, x in p.X.items()}
            beta = np.linalg.lstsq(X1["train"], p.Y["train"], rcond=None)[0]  # (12, 1)
            for name, predict in (("mean", lambda k: np.full_like(p.Y[k], p.Y["train"].mean())),
                                  ("least squares", lambda k: X1[k] @ beta)):
                m = {k: harness.regression_metrics(predict(k), p.Y[k]) for k in p.X}
                rows.append({"kind": "baseline", "setting": name, "dataset": dataset,
                             "seed": seed, "diverged": False,
                             **harness.flat_metrics("regression", m)})
    return pd.DataFrame(rows)


# --- aggregation ------------------------------------------------------------------------

def runs_frame(plan, results):
    """One row per run: the grid coordinates and the numbers of its result."""
    keep = ("train_mse", "val_mse", "test_mse", "test_rmse", "test_mae", "test_acc_0_5",
            "test_acc_1_0", "epochs_run", "best_epoch", "diverged", "seconds_per_epoch",
            "run_seconds")
    rows = [{"kind": "setting", "protocol": p, "setting": s.number, "dataset": d, "seed": seed,
             **{k: r[k] for k in keep}} for (p, s, d, seed, _), r in zip(plan, results)]
    df = pd.DataFrame(rows)
    num = [k for k in keep if k != "diverged"]
    df[num] = df[num].astype(float)  # None (a diverged run's metrics) -> NaN
    return df


def _summary(g):
    """Statistics of one group of runs (one setting x dataset x protocol, or a baseline)."""
    ok = g[~g["diverged"].astype(bool)]
    t = ok["test_mse"]
    out = {"n_seeds": len(g), "n_diverged": int(len(g) - len(ok)),
           "test_mse_mean": t.mean(), "test_mse_sd": t.std(ddof=1),
           "test_mse_min": t.min(), "test_mse_max": t.max(),
           "test_rmse_mean": ok["test_rmse"].mean(), "test_mae_mean": ok["test_mae"].mean(),
           "test_mae_sd": ok["test_mae"].std(ddof=1),
           "test_acc_0_5_mean": ok["test_acc_0_5"].mean(),
           "test_acc_1_0_mean": ok["test_acc_1_0"].mean(),
           "val_mse_mean": ok["val_mse"].mean(), "train_mse_mean": ok["train_mse"].mean(),
           "test_mse_minus_mean_predictor": ok["minus_mean"].mean()}
    if "epochs_run" in g:
        out.update(epochs_median=g["epochs_run"].median(), best_epoch_median=ok["best_epoch"].median(),
                   seconds_total=g["run_seconds"].sum(),
                   seconds_per_epoch_median=g["seconds_per_epoch"].median())
    return out


def verdict(published, lo, hi, n_diverged, n):
    """'reproduced' when the published value lies within our [min, max], else how far off."""
    if np.isnan(published):
        return (f"reproduced: {n_diverged}/{n} diverged" if n_diverged
                else "not reproduced: no run diverged")
    if np.isnan(lo):
        return "not comparable: every run diverged"
    if lo <= published <= hi:
        return "reproduced"
    return f"ours lower by {published - hi:.3f}" if published > hi else f"ours higher by {lo - published:.3f}"


def aggregate(spec, runs, baselines):
    """The table.csv frame: one row per setting x dataset x protocol, then context rows."""
    by_number = {s.number: s for s in spec.chosen()}
    mean = baselines[baselines["setting"] == "mean"].set_index(["dataset", "seed"])["test_mse"]
    runs, baselines = (df.assign(minus_mean=df["test_mse"].to_numpy() - mean.loc[
        list(zip(df["dataset"], df["seed"]))].to_numpy()) for df in (runs, baselines))  # paired
    rows = []
    for (protocol, number, dataset), g in runs.groupby(["protocol", "setting", "dataset"], sort=False):
        s, st = by_number[number], _summary(g)
        rows.append({"kind": "setting", "protocol": protocol, "dataset": dataset,
                     "setting": str(number), "hidden": ",".join(map(str, s.hidden)),
                     "activation": s.activation, "lr": s.lr, "l2": s.l2,
                     "published_test_mse": s.published[dataset], **st,
                     "verdict": verdict(s.published[dataset], st["test_mse_min"],
                                        st["test_mse_max"], st["n_diverged"], st["n_seeds"]),
                     "backend": spec.backend, "max_epochs": spec.epochs, "patience": spec.patience,
                     **PROTOCOLS[protocol]})
    table = pd.DataFrame(rows)
    context = []
    for (name, dataset), g in baselines.groupby(["setting", "dataset"], sort=False):
        context.append({"kind": "baseline", "dataset": dataset, "setting": name, **_summary(g)})
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


def _published(x):
    return "NaN (diverged)" if np.isnan(x) else f"{x:.3f}"


def render_markdown(spec, table):
    settings = table[table["kind"] == "setting"]
    lines = [
        "# The published wine-quality table, reproduced",
        "",
        f"Generated by `ffnbench table --protocol {'both' if len(spec.protocols) > 1 else spec.protocols[0]}"
        f" --seeds {spec.seeds} --backend {spec.backend}` (ffnbench {__version__}); "
        "every number below is in `table.csv` beside this file.",
        "",
        f"Each setting is trained on {spec.seeds} seed(s) per dataset; seed *i* fixes the "
        "70/15/15 split, the initial weights and the sample order, and is the same for every "
        "setting, both protocols and the baselines. Per-sample SGD with L2 on the weights "
        f"(PROTOCOL.md §1), at most {spec.epochs} epochs, early stopping once the validation "
        f"MSE has not improved for {spec.patience} epochs (the best weights are restored). "
        "**Ours** is the test MSE as mean ± sd (min–max) over the seeds that did not diverge; "
        "**div** counts the runs that ended in NaN/inf. **Verdict**: *reproduced* when the "
        "published value lies within our min–max, else the distance from our range to it.",
    ]
    ds = [d for d in REGRESSION_DATASETS if d in spec.datasets]
    for protocol in spec.protocols:
        part = settings[settings["protocol"] == protocol]
        head = ["#", "hidden", "act.", "lr"] + [f"{d}: {c}" for d in ds
                                                for c in ("published", "ours", "div", "verdict")]
        lines += ["", f"## Protocol `{protocol}`", "", PROTOCOL_TEXT[protocol] + ".", "",
                  "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for number, g in part.groupby("setting", sort=False):
            r0 = g.iloc[0]
            cells = [number, r0["hidden"], r0["activation"], f"{r0['lr']:g}"]
            for d in ds:
                r = g[g["dataset"] == d].iloc[0]
                cells += [_published(r["published_test_mse"]), _ours(r),
                          f"{r['n_diverged']}/{r['n_seeds']}", r["verdict"]]
            lines.append("| " + " | ".join(map(str, cells)) + " |")
    lines += _context(spec, table, ds) + _summary_lines(spec, table, ds)
    return "\n".join(lines) + "\n"


def _context(spec, table, ds):
    base = table[table["kind"] == "baseline"]
    best = table[table["kind"] == "best"]
    head = ["model"] + [f"{d}: {c}" for d in ds for c in ("test MSE", "MAD", "acc@0.5")]
    lines = ["", "## Context: baselines on the same splits, and Cortez et al. (2009)", "",
             "MAD is the mean absolute test error (our MAE); acc@0.5 the share of test wines "
             "predicted within 0.5 of their grade. *Best of N* is the setting with the lowest "
             "mean validation MSE among those that never diverged. Cortez et al. used 20 runs "
             "of 5-fold cross-validation with tuned models, not our splits, so their rows are "
             "for orientation only.", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def row(label, pick):
        cells = [label]
        for d in ds:
            r = pick(d)
            if r is None:
                cells += ["–"] * 3
                continue
            cells += [f"{_f(r['test_mse_mean'])} ± {_f(r['test_mse_sd'])}",
                      _f(r["test_mae_mean"], 2), f"{100 * r['test_acc_0_5_mean']:.1f} %"]
        return "| " + " | ".join(cells) + " |"

    def first(frame):
        return None if frame.empty else frame.iloc[0]

    lines.append(row("predict the training mean", lambda d: first(base[(base["setting"] == "mean") & (base["dataset"] == d)])))
    lines.append(row("least squares (linear regression)",
                     lambda d: first(base[(base["setting"] == "least squares") & (base["dataset"] == d)])))
    for protocol in spec.protocols:
        b = best[best["protocol"] == protocol]
        names = "; ".join(f"{d}: #{r['setting']} {r['hidden']} {r['activation']} lr {r['lr']:g}"
                          for d in ds for _, r in b[b["dataset"] == d].iterrows())
        lines.append(row(f"best of {len(spec.chosen())}, {protocol} ({names})",
                         lambda d: first(b[b["dataset"] == d])))
    for model, vals in CORTEZ_2009.items():
        cells = [f"Cortez et al. (2009) {model}"]
        for d in ds:
            cells += ["–", f"{vals[d][0]:.2f}", f"{vals[d][1]:.1f} %"]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _summary_lines(spec, table, ds):
    settings = table[table["kind"] == "setting"]
    base = table[(table["kind"] == "baseline") & (table["setting"] == "mean")].set_index("dataset")
    lines = ["", "## Summary", ""]
    for protocol in spec.protocols:
        part = settings[settings["protocol"] == protocol]
        counts = ", ".join(f"{d} {int(part[part['dataset'] == d]['verdict'].str.startswith('reproduced').sum())}"
                           f"/{int((part['dataset'] == d).sum())}" for d in ds)
        lines.append(f"- `{protocol}`: published value reproduced (within our range) for {counts}.")
        flat = ", ".join(f"{d} {int((part[part['dataset'] == d]['test_mse_minus_mean_predictor'] > -NO_BETTER).sum())}"
                         f"/{int((part['dataset'] == d).sum())}" for d in ds)
        lines.append(f"- `{protocol}`: settings no better than predicting the training mean (test "
                     f"MSE less than {NO_BETTER} below it on average over the same splits, or "
                     f"above it): {flat}.")
    for d in ds:
        part = settings[(settings["dataset"] == d) & (settings["protocol"] == spec.protocols[0])]
        pub = part["published_test_mse"]
        mean = base.loc[d, "test_mse_mean"]
        lines.append(f"- {d}: {int((pub >= mean).sum())} of {int(pub.notna().sum())} published "
                     f"values are at or above our predict-the-mean test MSE ({mean:.3f}); "
                     f"published range {pub.min():.3f}–{pub.max():.3f}.")
    return lines


# --- the command -------------------------------------------------------------------------

def run_table(spec, out="results", cache_dir=".cache/table", fresh=False, jobs=None,
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
    table = aggregate(spec, runs_frame(plan, results), baseline_runs(spec.datasets, spec.seeds))
    report = render_markdown(spec, table)  # rendered before any file is written
    per_run = runs.frame([c for *_, c in plan], results)
    per_run.insert(0, "setting", [s.number for _, s, *_ in plan])
    per_run.insert(0, "protocol", [p for p, *_ in plan])
    ensure_dir(out, "--out")
    with atomic_write(out / "table.csv") as f:
        table.to_csv(f, index=False, float_format="%.6g")
    with atomic_write(out / "table.md") as f:
        f.write(report)
    runs.write(per_run, out)
    print(f"{len(plan)} runs: {n_cached} from the cache ({cache.root}), {len(plan) - n_cached} "
          f"trained; wrote {out / 'table.csv'}, {out / 'runs.csv'} and {out / 'table.md'} in "
          f"{time.perf_counter() - t0:.1f} s", file=log)
    return table


def spec_from_args(args):
    """A validated Spec, or a UserError before anything is run or written."""
    if args.protocol not in (*PROTOCOLS, "both"):
        raise UserError(f"unknown protocol {args.protocol!r} (choose from {', '.join(PROTOCOLS)}, both)")
    if args.seeds < 1:
        raise UserError(f"--seeds must be at least 1, got {args.seeds}")
    if args.jobs is not None and args.jobs < 1:
        raise UserError(f"--jobs must be at least 1, got {args.jobs}")
    numbers = [str(s.number) for s in load_settings()]
    settings = () if args.settings is None else tuple(
        int(x) for x in parse_choices(args.settings, "settings", numbers))
    spec = Spec(protocols=tuple(PROTOCOLS) if args.protocol == "both" else (args.protocol,),
                datasets=parse_choices(args.datasets, "datasets", REGRESSION_DATASETS), seeds=args.seeds,
                backend=args.backend, epochs=args.epochs, patience=args.patience, settings=settings)
    # one run's config validates backend, epochs and patience; load_backend: the engine is there
    harness.load_backend(spec.config(spec.chosen()[0], spec.datasets[0], spec.protocols[0], 0))
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {args.out}: not a directory")
    check_dir_path(out, "--out")
    check_dir_path(args.cache_dir, "--cache-dir")
    return spec


def cmd_table(args):
    run_table(spec_from_args(args), out=args.out, cache_dir=args.cache_dir, fresh=args.fresh,
              jobs=args.jobs, progress=not args.no_progress, executor=args.executor,
              workers=args.workers, scheduler=args.scheduler)


def add_parser(sub):
    p = sub.add_parser("table", help="reproduce the published wine-quality table (PROTOCOL.md §1)",
                       description="Train every setting of the published table on both wine "
                                   "datasets over several seeds, with early stopping; write "
                                   "OUT/table.csv and OUT/table.md. Finished runs are cached, so "
                                   "an interrupted run resumes where it stopped.")
    p.add_argument("--seeds", type=int, default=5, help="seeds (splits) per setting (default %(default)s)")
    p.add_argument("--backend", default="numba",
                   help=f"{' | '.join(impls.BACKENDS)}; results are the same (default %(default)s)")
    p.add_argument("--datasets", default=",".join(REGRESSION_DATASETS), help="comma-separated (default %(default)s)")
    p.add_argument("--protocol", default="modern",
                   help="modern | published | both (default %(default)s); modern: standard scaling, "
                        "Glorot/He weights; published: min-max scaling, weights and biases U[0, 1)")
    p.add_argument("--settings", default=None,
                   help="only these rows of the published table, e.g. 1,8 (default: all 15)")
    p.add_argument("--epochs", type=int, default=EPOCHS, help="maximum epochs (default %(default)s)")
    p.add_argument("--patience", type=int, default=PATIENCE,
                   help="early-stopping patience in epochs (default %(default)s)")
    p.add_argument("--jobs", type=int, default=None,
                   help=f"parallel worker processes (default: the cores, here {grid.default_jobs()})")
    grid.add_executor_options(p)
    p.add_argument("--out", default="results",
                   help="directory for table.csv, table.md and runs.csv (default %(default)s)")
    p.add_argument("--cache-dir", default=".cache/table",
                   help="finished runs, one JSON file each (default %(default)s)")
    p.add_argument("--fresh", action="store_true", help="ignore cached runs (and replace them)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.set_defaults(func=cmd_table)
    return p
