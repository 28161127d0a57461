"""A sweep: every combination of a grid file's train options, times seeds, through the same
cache and executors as the table; its runs and, per configuration, the statistics over seeds
that the summary and figures show (report/sweep.py).

Grid file (TOML): each key is a `train` option by its TrainConfig name (hyphens allowed,
e.g. batch-size), set to one value or a list of values; `seeds = N` runs seeds 0..N-1
(the same splits as `ffnbench table`). `hidden` is "50,30" or 10 or [50, 30] for one
architecture, so a list of several architectures is a list of those: ["10", "50,30"].
"""
import itertools
import math
import tomllib
from dataclasses import fields
from pathlib import Path

import pandas as pd

from ..core import data, harness
from ..core.config import TASKS, TrainConfig, parse_hidden
from ..core.errors import UserError
from ..run import grid, runs
from .baselines import compute as fit_baselines

KEYS = tuple(f.name for f in fields(TrainConfig) if f.name != "seed")
SELECT = {  # task -> (validation criterion that picks the best, its test counterpart)
    "regression": ("val_mse", "test_mse"),
    "binary": ("val_log_loss", "test_log_loss"),
    "multiclass": ("val_log_loss", "test_log_loss"),
}


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

    def size(self):
        """The number of runs, counted without making them."""
        return math.prod(len(v) for v in self.axes.values()) * self.seeds

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


def load_grid(path, limit=None):
    """Parse and validate a grid file: its size is checked against `limit` runs first, then
    every run's config is built (and checked), every backend imported and every dataset read
    before anything runs; a UserError otherwise."""
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
    if limit is not None and g.size() > limit:
        raise UserError(f"{path}: {g.size():,} runs ({g.describe()}) is more than the {limit:,} "
                        "a sweep starts without --yes; check seeds and the lists, or add --yes")
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


def fmt(x, digits=3):
    return "–" if pd.isna(x) else f"{x:.{digits}f}"


def spread(v, digits=3):
    """mean ± sd (min–max) of a series (NaN dropped)."""
    v = v.dropna()
    if len(v) == 0:
        return "–"
    if len(v) == 1:
        return fmt(v.iloc[0], digits)
    return (f"{fmt(v.mean(), digits)} ± {fmt(v.std(ddof=1), digits)} "
            f"({fmt(v.min(), digits)}–{fmt(v.max(), digits)})")


def mask(part, row, keys):
    """The runs of `part` that belong to configuration `row`."""
    m = pd.Series(True, index=part.index)
    for k in keys:
        m &= part[k] == row[k]
    return m


def configurations(df, keys):
    """One row per configuration (the grid's varying options) of one dataset: n runs, n
    diverged, validation criterion and test metric over the seeds that did not diverge."""
    val, test = SELECT[df["task"].iloc[0]]
    rows = []
    for combo, g in df.groupby(keys, sort=False, dropna=False) if keys else [((), df)]:
        ok = g[~g["diverged"]]
        rows.append({**dict(zip(keys, combo if isinstance(combo, tuple) else (combo,))),
                     "n": len(g), "diverged": len(g) - len(ok), "val": ok[val].mean(),
                     "test": spread(ok[test]), "test_mean": ok[test].mean(),
                     "test_accuracy": spread(ok["test_accuracy"]) if test != "test_mse" else "",
                     "epochs": g["epochs_run"].median(), "seeds": tuple(ok["seed"])})
    return pd.DataFrame(rows).sort_values("val", kind="stable", na_position="last")



def compute(g, configs, executor, cache, in_flight=1, progress=True):
    """Run (or fetch from `cache`) every run of grid `g`; returns (the runs frame, the
    results, how many came from the cache, the baselines on the same splits or None)."""
    results, n_cached = grid.run_grid(configs, executor, cache, in_flight=in_flight,
                                      progress=progress, desc="sweep")
    df = runs.frame(configs, results)
    regression = [d for d in dict.fromkeys(df["dataset"]) if TASKS[d] == "regression"]
    baselines = None
    splits = g.axes.get("split", ["random"])
    if regression and g.axes.get("data_dir", [None]) == [None] and len(splits) == 1:
        baselines = fit_baselines(regression, g.seeds, splits[0], executor, cache, in_flight,
                                  progress)
    return df, results, n_cached, baselines
