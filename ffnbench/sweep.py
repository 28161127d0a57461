"""`ffnbench sweep GRID.toml`: every combination of the grid's train options, times seeds,
through the same cache and executors as `ffnbench table`; writes a tidy runs.csv, a
summary over seeds (best configuration by validation, paired against the mean predictor
and least squares on the same splits) and figures.

Grid file (TOML): each key is a `train` option by its TrainConfig name (hyphens allowed,
e.g. batch-size), set to one value or a list of values; `seeds = N` runs seeds 0..N-1
(the same splits as `ffnbench table`). `hidden` is "50,30" or 10 or [50, 30] for one
architecture, so a list of several architectures is a list of those: ["10", "50,30"].
"""
import itertools
import sys
import time
import tomllib
from dataclasses import fields
from pathlib import Path

import pandas as pd

from . import __version__, data, grid, harness, runs
from .config import TrainConfig, parse_hidden
from .errors import UserError
from .fileio import atomic_write, check_dir_path, check_target, ensure_dir, save_figure
from .table import baseline_runs, best_baselines  # the table's baselines, same splits

KEYS = tuple(f.name for f in fields(TrainConfig) if f.name != "seed")
SELECT = {  # task -> (validation criterion that picks the best, its test counterpart)
    "regression": ("val_mse", "test_mse"),
    "binary": ("val_log_loss", "test_log_loss"),
    "multiclass": ("val_log_loss", "test_log_loss"),
}
NAMES = {"val_mse": "validation MSE", "test_mse": "test MSE",
         "val_log_loss": "validation log-loss", "test_log_loss": "test log-loss"}
TOP = 5  # configurations drawn in the validation-curve figure, per dataset


class Grid:
    """A parsed grid file: `axes` (option -> list of values, file order), `seeds` (count)."""

    def __init__(self, path, axes, seeds):
        self.path, self.axes, self.seeds = Path(path), axes, seeds

    @property
    def varying(self):
        """The options with more than one value: a configuration is named by these."""
        return [k for k, v in self.axes.items() if len(v) > 1]

    def configs(self):
        """Every TrainConfig of the grid: the product of the axes (file order), seeds inside."""
        keys = list(self.axes)
        return [TrainConfig(**dict(zip(keys, combo)), seed=seed)
                for combo in itertools.product(*self.axes.values()) for seed in range(self.seeds)]

    def describe(self):
        sizes = " x ".join(f"{len(v)} {k}" for k, v in self.axes.items() if len(v) > 1)
        return f"{sizes or '1 configuration'} x {self.seeds} seed(s)"


def _value(path, key, value):
    """One grid value as TrainConfig takes it; hidden as a tuple of sizes."""
    if isinstance(value, dict):
        raise UserError(f"{path}: {key}: a table is not a value (give a value or a list)")
    if isinstance(value, bool) != (key == "allow_unverified"):
        raise UserError(f"{path}: {key} = {value!r}: "
                        + ("must be true or false" if key == "allow_unverified" else
                           "true/false is not a value of this option"))
    if key == "hidden":
        if isinstance(value, int):
            value = [value]
        if isinstance(value, list):
            value = ",".join(map(str, value))
        if not isinstance(value, str):
            raise UserError(f"{path}: hidden = {value!r}: write sizes like \"50,30\"")
        return parse_hidden(value)
    if isinstance(value, list):
        raise UserError(f"{path}: {key}: a list inside a list (give a value or a list of values)")
    return value


def load_grid(path):
    """Parse and validate a grid file: every run's config is built (and checked), every
    backend imported and every dataset read before anything runs; a UserError otherwise."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except OSError as e:
        raise UserError(f"{path}: cannot read the grid file ({e.strerror})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: not a TOML file ({e})") from None
    seeds = raw.pop("seeds", 1)
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise UserError(f"{path}: seeds = {seeds!r}: must be a whole number of at least 1 "
                        "(runs seeds 0 .. seeds-1)")
    axes = {}
    for key, value in raw.items():
        name = key.replace("-", "_")
        if name == "seed":
            raise UserError(f"{path}: seed: use seeds = N (seeds 0 .. N-1, the splits that "
                            "`ffnbench table` uses)")
        if name not in KEYS:
            raise UserError(f"{path}: unknown key {key!r} (keys: {', '.join(KEYS)}, seeds)")
        if name in axes:
            raise UserError(f"{path}: {key} is given twice")
        values = value if isinstance(value, list) and not (
            name == "hidden" and value and all(isinstance(v, int) and not isinstance(v, bool)
                                               for v in value)) else [value]
        if not values:
            raise UserError(f"{path}: {key} = []: an empty list leaves nothing to run")
        axes[name] = [_value(path, name, v) for v in values]
        if len(set(map(repr, axes[name]))) != len(axes[name]):
            raise UserError(f"{path}: {key} = {value!r}: a value is repeated")
    g = Grid(path, axes, seeds)
    try:
        configs = g.configs()
    except UserError as e:
        raise UserError(f"{path}: {str(e).replace('--', '')}") from None
    if len(set(configs)) != len(configs):  # e.g. loss "mse" beside the default None
        raise UserError(f"{path}: some configurations repeat (two values of one option mean "
                        "the same)")
    for c in {(c.backend, c.device): c for c in configs}.values():
        harness.load_backend(c)  # the engine is installed and supports the device
    for c in {(c.dataset, c.data_dir, c.allow_unverified): c for c in configs}.values():
        data.load_task(c.dataset, c.data_dir, c.allow_unverified)  # readable, checksummed
    return g, configs


# --- the summary ---------------------------------------------------------------------------

def _f(x, digits=3):
    return "–" if pd.isna(x) else f"{x:.{digits}f}"


def _spread(v, digits=3):
    """mean ± sd (min–max) of a series (NaN dropped)."""
    v = v.dropna()
    if len(v) == 0:
        return "–"
    if len(v) == 1:
        return _f(v.iloc[0], digits)
    return (f"{_f(v.mean(), digits)} ± {_f(v.std(ddof=1), digits)} "
            f"({_f(v.min(), digits)}–{_f(v.max(), digits)})")


def _mask(part, row, keys):
    """The runs of `part` that belong to configuration `row`."""
    m = pd.Series(True, index=part.index)
    for k in keys:
        m &= part[k] == row[k]
    return m


def _label(row, keys):
    return ", ".join(f"{k} {row[k]}" for k in keys) or "the one configuration"


def configurations(df, keys):
    """One row per configuration (the grid's varying options) of one dataset: n runs, n
    diverged, validation criterion and test metric over the seeds that did not diverge."""
    val, test = SELECT[df["task"].iloc[0]]
    rows = []
    for combo, g in df.groupby(keys, sort=False, dropna=False) if keys else [((), df)]:
        ok = g[~g["diverged"]]
        rows.append({**dict(zip(keys, combo if isinstance(combo, tuple) else (combo,))),
                     "n": len(g), "diverged": len(g) - len(ok), "val": ok[val].mean(),
                     "test": _spread(ok[test]), "test_mean": ok[test].mean(),
                     "test_accuracy": _spread(ok["test_accuracy"]) if test != "test_mse" else "",
                     "epochs": g["epochs_run"].median(), "seeds": tuple(ok["seed"])})
    return pd.DataFrame(rows).sort_values("val", kind="stable", na_position="last")


def _paired(best_runs, base, name):
    """Best configuration minus a baseline, seed by seed (same split): mean ± sd, wins."""
    b = base[base["setting"] == name].set_index("seed")["test_mse"]
    d = (best_runs.set_index("seed")["test_mse"] - b).dropna()
    return (f"{_spread(b.loc[d.index])} | {_f(d.mean())} ± {_f(d.std(ddof=1) if len(d) > 1 else 0)}"
            f" | {int((d < 0).sum())}/{len(d)}")


def render_summary(g, df, command, baselines):
    keys = [k for k in g.varying if k != "dataset"]
    lines = [f"# Sweep {g.path.name}", "",
             f"Generated by `{command}` (ffnbench {__version__}): {len(df)} runs = "
             f"{g.describe()}. Every number is in `runs.csv` beside this file.", "",
             "Fixed options: " + ", ".join([f"{k} {v[0]}" for k, v in g.axes.items()
                                           if len(v) == 1] + ["the rest at the `ffnbench train` "
                                                              "defaults"]) + ".", "",
             "Per configuration over the seeds that did not diverge: the validation criterion "
             "(MSE, or log-loss for classification), which picks the best configuration, and "
             "the test metric as mean ± sd (min–max). Seed *i* fixes the split, the initial "
             "weights and the sample order, so every configuration and baseline of a dataset "
             "sees the same splits."]
    for dataset, part in df.groupby("dataset", sort=False):
        task = part["task"].iloc[0]
        val, test = SELECT[task]
        table = configurations(part, keys)
        clean = table[table["diverged"] == 0]
        lines += ["", f"## {dataset}", ""]
        if len(clean):
            best = clean.iloc[0]
            best_runs = part[_mask(part, best, keys)]
            lines += [f"**Best by validation**: {_label(best, keys)}: {NAMES[val]} "
                      f"{_f(best['val'], 4)}, {NAMES[test]} {best['test']}"
                      + (f", test accuracy {best['test_accuracy']}" if best["test_accuracy"] else "")
                      + f" over {best['n']} seeds.", ""]
            if task == "regression" and baselines is not None:
                lines += ["Paired on the same splits (test MSE; *difference* is best minus "
                          "baseline, seed by seed; *wins* counts the seeds where the best "
                          "configuration is lower):", "",
                          "| baseline | baseline test MSE | difference | wins |", "|---|---|---|---|"]
                base = baselines[baselines["dataset"] == dataset]
                strongest = best_baselines(base)[dataset]
                others = [] if strongest == "least squares" else [
                    (strongest, f"{strongest} (the strongest baseline by validation)")]
                for name, label in (("mean", "predict the training mean"),
                                    ("least squares", "least squares (linear regression)"),
                                    *others):
                    lines.append(f"| {label} | {_paired(best_runs, base, name)} |")
                lines.append("")
        else:
            lines += ["No configuration finished every seed without diverging.", ""]
        head = [*keys, "runs", "div", f"{NAMES[val]} (mean)", NAMES[test],
                *(["test accuracy"] if task != "regression" else []), "epochs (median)"]
        lines += [f"{len(table)} configurations, best validation first:", "",
                  "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for _, r in table.iterrows():
            cells = [*(str(r[k]) for k in keys), str(r["n"]), str(r["diverged"]), _f(r["val"], 4),
                     r["test"], *([r["test_accuracy"]] if task != "regression" else []),
                     f"{r['epochs']:g}"]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


# --- figures -------------------------------------------------------------------------------

def _axes(n, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, n, figsize=(6 * n, 6), squeeze=False)
    fig.suptitle(title, fontsize=10)
    return fig, axes[0]


def _legend_below(ax, ncol):
    """The legend under the panel, where it covers no data."""
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=ncol, frameon=False)


def plot_curves(df, results, keys, path):
    """Validation criterion per epoch of the TOP best configurations of each dataset."""
    datasets = list(dict.fromkeys(df["dataset"]))
    fig, axes = _axes(len(datasets), f"Validation curves of the {TOP} best configurations by "
                      "validation (thick: mean over the seeds still training; thin: each seed)")
    for ax, dataset in zip(axes, datasets):
        part = df[df["dataset"] == dataset]
        val = SELECT[part["task"].iloc[0]][0]
        best = configurations(part, keys).query("diverged == 0").head(TOP)
        for n, (_, b) in enumerate(best.iterrows()):
            curves = [results[i][f"{val}_history"] for i in part.index[_mask(part, b, keys)]]
            for h in curves:
                ax.plot(range(1, len(h) + 1), h, color=f"C{n}", linewidth=0.6, alpha=0.3)
            mean = pd.DataFrame(curves).mean()  # epochs as columns; NaN once a seed stopped
            ax.plot(range(1, len(mean) + 1), mean, color=f"C{n}", linewidth=2,
                    label=_label(b, keys))
        ax.set(title=f"{dataset} wine", xlabel="epoch", ylabel=NAMES[val])
        ax.grid(True, alpha=0.3)
        _legend_below(ax, ncol=1)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_lr(df, keys, path):
    """Test metric against lr, one line per architecture; the other varying options of each
    point are the ones best by validation (error bars: sd over seeds)."""
    datasets = list(dict.fromkeys(df["dataset"]))
    fig, axes = _axes(len(datasets), "Test error against learning rate per architecture (other "
                      "options chosen by validation; bars: sd over seeds)")
    for ax, dataset in zip(axes, datasets):
        part = df[df["dataset"] == dataset]
        val, test = SELECT[part["task"].iloc[0]]
        table = configurations(part, keys).query("diverged == 0")
        archs = list(dict.fromkeys(df["hidden"]))  # grid order: the same colour in every panel
        for n, hidden in enumerate(archs):  # the same order and colour in every panel
            h = table[table["hidden"] == hidden]
            if h.empty:
                continue
            best = h.groupby("lr").head(1).sort_values("lr")  # table is sorted by validation
            sd = [part.loc[_mask(part, b, keys), test].std(ddof=1) for _, b in best.iterrows()]
            dodge = 1 + 0.03 * (n - (len(archs) - 1) / 2)  # bars side by side
            ax.errorbar(best["lr"] * dodge, best["test_mean"], yerr=sd, marker="o", capsize=3,
                        linewidth=1, color=f"C{n}", label=f"hidden {hidden}")
        ax.set_xscale("log")
        ax.set(title=f"{dataset} wine", xlabel="learning rate (log)", ylabel=NAMES[test])
        ax.grid(True, which="both", alpha=0.3)
        _legend_below(ax, ncol=2)
    fig.tight_layout()
    return save_figure(fig, path)


# --- the command -----------------------------------------------------------------------------

def run_sweep(g, configs, out, cache_dir=grid.CACHE_DIR, fresh=False, executor="local", jobs=None,
              workers=None, scheduler=None, progress=True, log=sys.stderr, command=None):
    """Run (or fetch from the cache) every run of grid `g`; write runs.csv (+ .parquet),
    summary.md and figures into `out`. Returns the runs frame."""
    out = Path(out)
    cache = grid.Cache(cache_dir, fresh)
    engine, in_flight = grid.open_executor(executor, jobs, workers, scheduler, log)
    print(f"ffnbench sweep: {len(configs)} runs = {g.describe()}", file=log)
    t0 = time.perf_counter()
    try:
        results, n_cached = grid.run_grid(configs, engine, cache, in_flight=in_flight,
                                          progress=progress, desc="sweep")
    finally:
        grid.close_executor(engine)
    df = runs.frame(configs, results)
    regression = [d for d in dict.fromkeys(df["dataset"]) if data.TASKS[d] == "regression"]
    baselines = None
    splits = g.axes.get("split", ["random"])
    if regression and g.axes.get("data_dir", [None]) == [None] and len(splits) == 1:
        baselines = baseline_runs(regression, g.seeds, splits[0])
    command = command or f"ffnbench sweep {g.path}"  # where it wrote is where the file is
    summary = render_summary(g, df, command, baselines)  # rendered before any file is written
    keys = [k for k in g.varying if k != "dataset"]
    with grid.report_writes(len(configs), cache):
        ensure_dir(out, "--out")
        written = runs.write(df, out, parquet=True)
        with atomic_write(out / "summary.md") as f:
            f.write(summary)
        written.append(out / "summary.md")
        written.append(plot_curves(df, results, keys, out / "validation_curves.png"))
        if "lr" in keys and "hidden" in keys:
            written.append(plot_lr(df, keys, out / "test_vs_lr.png"))
    print(f"{len(configs)} runs: {n_cached} from the cache ({cache.root}), "
          f"{len(configs) - n_cached} trained; wrote {', '.join(p.name for p in written)} "
          f"in {out} in {time.perf_counter() - t0:.1f} s", file=log)
    return df


OUTPUTS = ("runs.csv", "runs.parquet", "summary.md", "validation_curves.png", "test_vs_lr.png")


def cmd_sweep(args):
    g, configs = load_grid(args.grid)
    out = Path(args.out) if args.out else Path("results") / "sweeps" / g.path.stem
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: not a directory")
    check_dir_path(out, "--out")
    for name in OUTPUTS:  # never replaced if not regular files
        check_target(out / name, "--out")
    check_dir_path(args.cache_dir, "--cache-dir")
    grid.check_jobs(args.jobs)
    run_sweep(g, configs, out, cache_dir=args.cache_dir, fresh=args.fresh, executor=args.executor,
              jobs=args.jobs, workers=args.workers, scheduler=args.scheduler,
              progress=not args.no_progress,
              command=f"ffnbench sweep {args.grid}")


def add_parser(sub):
    p = sub.add_parser("sweep", help="train every combination of a grid file's options over seeds",
                       description="Train every combination of the train options in GRID.toml "
                                   "(each a value or a list; seeds = N), on the local pool or a "
                                   "Dask cluster; write OUT/runs.csv (and runs.parquet), "
                                   "OUT/summary.md and figures. Finished runs are cached, so "
                                   "an interrupted sweep resumes where it stopped.",
                       epilog="examples:\n  ffnbench sweep sweeps/wine.toml --executor dask --workers 2\n"
                              "  ffnbench sweep my.toml --executor dask --scheduler tcp://host:8786")
    p.add_argument("grid", metavar="GRID.toml", help="the grid file (see docs/sweeps.md)")
    p.add_argument("--out", default=None,
                   help="directory for the results (default results/sweeps/<grid file name>)")
    grid.add_run_options(p, "finished runs, one JSON file each, shared with `ffnbench table`")
    p.set_defaults(func=cmd_sweep)
    return p
