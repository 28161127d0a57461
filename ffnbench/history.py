"""`ffnbench history`: figures of the asv results (results/asv) across commits.

asv writes one JSON file per commit and environment under <results>/<machine>/ (format
version 2): "result_columns" names the columns of each benchmark's row in "results",
column "result" holds one value per parameter combination (itertools.product order of
column "params", whose values are Python reprs), null for a failure and NaN for a skip.
The file is read here directly, so the figures need no asv installed.
"""
import ast
import itertools
import json
import math
import subprocess
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import impls

from .config import parse_choices
from .errors import UserError
from .fileio import check_writable_dir, ensure_dir, save_figure
from .style import backend_style

TIME_EPOCH = "bench_epoch.TimeEpoch.time_epoch"  # (backend, hidden, dataset) -> seconds
TIME_MINIBATCH = "bench_epoch.TimeMiniBatchEpoch.time_epoch"  # (backend, hidden, dataset, batch)
TEST_MSE = "bench_quality.TrackQuality.track_test_mse"  # (backend, hidden) -> test MSE
EPOCHS_TO_TARGET = "bench_quality.TrackQuality.track_epochs_to_target"  # (backend, hidden)


@dataclass
class Run:
    """One commit's results in one environment on one machine."""

    commit: str
    date: datetime  # the commit's date, as asv records it
    env: str
    results: dict = field(default_factory=dict)  # benchmark -> {param tuple: float (NaN: none)}

    @property
    def label(self):
        return f"{self.commit[:8]}  {self.date:%Y-%m-%d %H:%M}"


def _decode(param):
    """asv stores parameter values as their repr: "'numpy'" -> 'numpy', '32' -> 32."""
    try:
        return ast.literal_eval(param)
    except (ValueError, SyntaxError):
        return param


def _number(value):
    return math.nan if value is None else float(value)


def _parse_results(data):
    """{benchmark: {param tuple: value}} from one asv result file's "results"."""
    columns = data["result_columns"]
    out = {}
    for name, row in data["results"].items():
        row = dict(zip(columns, row))
        values, params = row.get("result"), row.get("params") or []
        if not params:  # an unparameterised benchmark: one value
            out[name] = {(): _number(values[0] if isinstance(values, list) else values)}
            continue
        combos = itertools.product(*[[_decode(p) for p in ps] for ps in params])
        values = values if isinstance(values, list) else [values] * math.prod(map(len, params))
        out[name] = {combo: _number(v) for combo, v in zip(combos, values)}
    return out


class BadResultFile(Exception):
    """Why an asv result file cannot be used (one line)."""


MAX_RESULT_BYTES = 2**26  # asv's files are tens of KB


def _require(ok, why):
    if not ok:
        raise BadResultFile(why)


def _check_results(data):
    """The shape _parse_results relies on: named columns, rows of them, params as lists of
    reprs, and one value per parameter combination."""
    columns = data.get("result_columns")
    _require(isinstance(columns, list) and all(isinstance(c, str) for c in columns)
             and "result" in columns, "'result_columns' is not a list of names with 'result'")
    _require(isinstance(data.get("results"), dict), "'results' is not an object")
    for name, row in data["results"].items():
        _require(isinstance(row, list), f"benchmark {name}: its row is not a list")
        row = dict(zip(columns, row))
        params, values = row.get("params") or [], row.get("result")
        _require(isinstance(params, list) and all(isinstance(ps, list) and ps and all(
            isinstance(p, str) for p in ps) for ps in params),
            f"benchmark {name}: 'params' is not a list of lists of values")
        ok = (lambda v: v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)
                                      and not math.isinf(v)))  # NaN: skipped; inf: never asv's
        if isinstance(values, list):
            _require(all(map(ok, values)), f"benchmark {name}: a result is not a number")
            _require(len(values) == math.prod(map(len, params)) if params else len(values) >= 1,
                     f"benchmark {name}: {len(values)} results for "
                     f"{math.prod(map(len, params))} parameter combinations")
        else:
            _require(ok(values), f"benchmark {name}: the result is not a number")


def read_result_file(path):
    """One asv result file as a Run, or BadResultFile saying what is wrong with it."""
    try:
        _require(path.is_file(), "not a regular file")
        _require(path.stat().st_size <= MAX_RESULT_BYTES, f"larger than {MAX_RESULT_BYTES} bytes")
        data = json.loads(path.read_bytes())
    except OSError as e:
        raise BadResultFile(f"cannot read: {e.strerror}") from None
    except (ValueError, RecursionError) as e:
        raise BadResultFile(f"not JSON: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    _require(isinstance(data, dict), "not a JSON object")
    commit, date, env = data.get("commit_hash"), data.get("date"), data.get("env_name")
    _require(isinstance(commit, str) and commit, "'commit_hash' is not a text")
    _require(isinstance(env, str) and env, "'env_name' is not a text")
    _require(isinstance(date, (int, float)) and not isinstance(date, bool), "'date' is not a number")
    try:
        when = datetime.fromtimestamp(date / 1000, timezone.utc)
    except (OverflowError, OSError, ValueError):
        raise BadResultFile(f"'date' {date!r} is not a time in milliseconds") from None
    _check_results(data)
    return Run(commit, when, env, _parse_results(data))


def _machines(results_dir):
    return sorted(d.name for d in results_dir.iterdir()
                  if d.is_dir() and any(f.name != "machine.json" for f in d.glob("*.json")))


def _git_order(results_dir, commits):
    """commit -> position in git's topological order (oldest first), or {} without git."""
    try:
        out = subprocess.run(["git", "-C", str(results_dir), "rev-list", "--topo-order",
                              "--reverse", "--all"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return {}
    order = {c: i for i, c in enumerate(out.stdout.split())} if out.returncode == 0 else {}
    return order if all(c in order for c in commits) else {}


def _record_hint():
    """How to get asv results, in terms that work where the command is run."""
    if Path("Makefile").is_file() and Path("asv.conf.json").is_file():  # in a clone
        return "record them first: make history, see docs/asv.md"
    return ("run it in a clone of the ffnbench repository, which holds them in results/asv, "
            "or point --results at an asv results directory")


def load_runs(results_dir, machine=None):
    """(machine name, [Run, ...] in commit order) from an asv results directory.

    Several environments for one machine: the one with the most commits is used.
    """
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise UserError(f"{results_dir}: no such directory ({_record_hint()})")
    machines = _machines(results_dir)
    if not machines:
        raise UserError(f"{results_dir}: holds no asv results ({_record_hint()})")
    if machine is None:
        if len(machines) > 1:
            raise UserError(f"{results_dir} holds results of several machines "
                            f"({', '.join(machines)}): choose one with --machine")
        machine = machines[0]
    elif machine not in machines:
        raise UserError(f"{results_dir}: no results for machine '{machine}' "
                        f"(there are: {', '.join(machines)})")
    runs, bad = [], []
    for path in sorted((results_dir / machine).glob("*.json")):
        if path.name == "machine.json":
            continue
        try:
            runs.append(read_result_file(path))
        except BadResultFile as e:
            bad.append(f"{path}: not an asv result file ({e})")
    if not runs:
        more = f" (and {len(bad) - 1} more such files)" if len(bad) > 1 else ""
        raise UserError(bad[0] + more)
    for line in bad:  # one damaged file does not hide the others' history
        warnings.warn(line + "; skipped")
    envs = {}
    for run in runs:
        envs.setdefault(run.env, []).append(run)
    runs = max(envs.values(), key=len)
    order = _git_order(results_dir, [r.commit for r in runs])
    runs.sort(key=lambda r: (order.get(r.commit, 0), r.date, r.commit))
    return machine, runs


def series(runs, benchmark, params):
    """The values of one benchmark at one parameter combination, one per run (NaN: none)."""
    return [run.results.get(benchmark, {}).get(tuple(params), math.nan) for run in runs]


def _params(runs, benchmark):
    """All parameter combinations of `benchmark` seen in the runs, in first-seen order."""
    seen = {}
    for run in runs:
        for combo in run.results.get(benchmark, {}):
            seen.setdefault(combo, None)
    return list(seen)


def _axis_values(combos, i):
    return list(dict.fromkeys(c[i] for c in combos))


def _backends(runs, benchmark):
    """The registered backends first, then any other the results hold (e.g. a removed one)."""
    return list(dict.fromkeys([*impls.BACKENDS, *(c[0] for c in _params(runs, benchmark))]))


MAX_COMMIT_LABELS = 12


def _commit_axis(ax, runs, bottom):
    """Every k-th commit labelled (short hash), so at most MAX_COMMIT_LABELS labels."""
    step = max(1, math.ceil(len(runs) / MAX_COMMIT_LABELS))
    ticks = list(range(0, len(runs), step))
    ax.set_xticks(ticks, [runs[i].commit[:7] for i in ticks], rotation=45, ha="right", fontsize=7)
    ax.set_xticks(range(len(runs)), minor=True)
    ax.set_xlim(-0.5, len(runs) - 0.5)
    ax.grid(True, alpha=0.3)
    if bottom:
        ax.set_xlabel(f"commit, oldest to newest ({len(runs)} commits"
                      + (f"; every {_ordinal(step)} labelled)" if step > 1 else ")"), fontsize=8)


def _ordinal(k):
    """2nd, 3rd, 4th, 11th, 21st, ..."""
    suffix = "th" if 10 <= k % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(k % 10, "th")
    return f"{k}{suffix}"


def _same(a, b):
    """Equal to round-off at every commit where both have a value (a backend added later
    has none before), and at least one such commit."""
    both = [(x, y) for x, y in zip(a, b) if not (math.isnan(x) or math.isnan(y))]
    return bool(both) and all(abs(x - y) <= 1e-12 * max(abs(x), abs(y), 1.0) for x, y in both)


def _plot_backends(ax, runs, benchmark, rest, bottom=True):
    """One line per backend of benchmark values at params (backend, *rest); backends whose
    values are all identical share one black line, labelled with their names."""
    x = range(len(runs))
    groups = []  # [names, values]: identical series drawn once, so none hides another
    for backend in _backends(runs, benchmark):
        y = series(runs, benchmark, (backend, *rest))
        if all(math.isnan(v) for v in y):
            continue
        same = next((g for g in groups if _same(g[1], y)), None)
        if same:
            same[0].append(backend)
            same[1] = [v if math.isnan(w) else w for v, w in zip(y, same[1])]  # the union
        else:
            groups.append([[backend], y])
    for names, y in groups:
        if len(names) == 1:
            ax.plot(x, y, label=names[0], linewidth=1, markersize=4, **backend_style(names[0]))
        else:
            ax.plot(x, y, label="several backends, identical values", color="black", marker=".",
                    markersize=4, linewidth=1.5)
            ax.annotate(" = ".join(names), (x[-1], y[-1]), xytext=(-4, 6), textcoords="offset points",
                        ha="right", fontsize=7)
    if not groups:
        ax.text(0.5, 0.5, "no results", ha="center", va="center", transform=ax.transAxes)
    _commit_axis(ax, runs, bottom)


def _grid(rows, cols, title, machines):
    """A figure with len(rows) x (len(cols) x machines) panels and a legend below them."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    n = len(cols) * len(machines)
    fig, axes = plt.subplots(len(rows), n, figsize=(max(4.2 * n, 7), 2.9 * len(rows) + 1.6),
                             squeeze=False, sharex="col", layout="constrained")
    where = "; ".join(f"'{m}' ({len(r)} commits, {r[0].commit[:7]} .. {r[-1].commit[:7]})"
                      for m, r in machines.items())
    fig.suptitle(f"{title}\nasv results of machine {where}", fontsize=10)
    return fig, axes


def _panels(machines, cols):
    """(panel column, machine, its runs, col) for every machine, side by side."""
    return [(k * len(cols) + c, m, runs, col) for k, (m, runs) in enumerate(machines.items())
            for c, col in enumerate(cols)]


def _save(fig, axes, path):
    labels = {}
    for ax in axes.flat:
        for h, label in zip(*ax.get_legend_handles_labels()):
            labels.setdefault(label, h)
    fig.legend(labels.values(), labels.keys(), loc="outside lower center",
               ncol=min(len(labels), 6), fontsize=8, frameon=False)
    return save_figure(fig, path)


def _time_panels(fig_axes, machines, benchmark, rows, cols, params, title):
    """One log-scale panel of seconds per epoch per (row, machine, col); params(row, col) is
    the benchmark's parameters after the backend, title(row, col) the panel's title."""
    several = len(machines) > 1
    for r, row in enumerate(rows):
        for c, machine, runs, col in _panels(machines, cols):
            ax = fig_axes[r][c]
            _plot_backends(ax, runs, benchmark, params(row, col), bottom=r == len(rows) - 1)
            ax.set_yscale("log")
            ax.set_title((f"{machine}\n" if several else "") + title(row, col), fontsize=9)
            if c == 0:
                ax.set_ylabel("seconds per epoch (log)")


def _all_params(machines, benchmark):
    return list(dict.fromkeys(c for runs in machines.values() for c in _params(runs, benchmark)))


def plot_seconds_per_epoch(machines, path):
    combos = _all_params(machines, TIME_EPOCH)
    archs, datasets = _axis_values(combos, 1), _axis_values(combos, 2)
    fig, axes = _grid(datasets, archs, "Seconds per epoch, per-sample SGD (asv time_epoch, median; "
                      "lower is better)", machines)
    _time_panels(axes, machines, TIME_EPOCH, datasets, archs, lambda dataset, arch: (arch, dataset),
                 lambda dataset, arch: f"hidden {arch.replace('-', ',')} · {dataset} wine")
    return _save(fig, axes, path)


def plot_minibatch(machines, path, dataset="white"):
    combos = [c for c in _all_params(machines, TIME_MINIBATCH) if c[2] == dataset]
    archs, batches = _axis_values(combos, 1), _axis_values(combos, 3)
    fig, axes = _grid(batches, archs, f"Seconds per epoch, mini-batch SGD on {dataset} wine "
                      "(asv time_epoch; gaps: commits before mini-batch training)", machines)
    _time_panels(axes, machines, TIME_MINIBATCH, batches, archs,
                 lambda batch, arch: (arch, dataset, batch),
                 lambda batch, arch: f"hidden {arch.replace('-', ',')} · batch {batch}")
    return _save(fig, axes, path)


def plot_test_mse(machines, path):
    from matplotlib.ticker import MaxNLocator
    archs = _axis_values(_all_params(machines, TEST_MSE), 1)
    rows = [(TEST_MSE, "test MSE after 20 epochs"), (EPOCHS_TO_TARGET, "epochs until\nvalidation MSE ≤ target")]
    fig, axes = _grid(rows, archs, "Test error (asv track_*: red wine, seed 0, no early stopping; "
                      "backends that agree to round-off share one line)", machines)
    several = len(machines) > 1
    for r, (benchmark, ylabel) in enumerate(rows):
        for c, machine, runs, arch in _panels(machines, archs):
            ax = axes[r][c]
            _plot_backends(ax, runs, benchmark, (arch,), bottom=r == len(rows) - 1)
            lo, hi = ax.get_ylim()
            if benchmark == EPOCHS_TO_TARGET:  # whole epochs: integer ticks, some room around
                ax.yaxis.set_major_locator(MaxNLocator(integer=True))
                ax.set_ylim(math.floor(lo + 0.5) - 1.5, math.ceil(hi - 0.5) + 1.5)
            elif hi - lo < 0.02 * abs(hi + lo) / 2:  # round-off between commits: not a step
                mid = (hi + lo) / 2
                ax.set_ylim(mid * 0.95, mid * 1.05)
                ax.ticklabel_format(axis="y", useOffset=False)
            ax.set_title((f"{machine}\n" if several else "") + f"hidden {arch.replace('-', ',')}",
                         fontsize=9)
            if c == 0:
                ax.set_ylabel(ylabel)
    return _save(fig, axes, path)


FIGURES = (  # (file name, benchmark it needs, plot function, required)
    ("history_seconds_per_epoch.png", TIME_EPOCH, plot_seconds_per_epoch, True),
    ("history_test_mse.png", TEST_MSE, plot_test_mse, True),
    ("history_minibatch.png", TIME_MINIBATCH, plot_minibatch, False),
)


def draw(results_dir, out_dir, machine=None):
    """Draw every figure the results allow, machines side by side ('a,b'; None: every machine
    recorded); returns ({machine: runs}, the paths written)."""
    if machine is None:
        names = _machines(Path(results_dir)) if Path(results_dir).is_dir() else [None]
        names = names or [None]  # None: load_runs says what is missing
    else:
        names = list(parse_choices(machine, "machine"))
    machines = dict(load_runs(results_dir, name) for name in names)
    for _, benchmark, _, required in FIGURES:
        for name, runs in machines.items():
            if required and not _params(runs, benchmark):
                raise UserError(f"{results_dir}: no results of {benchmark} for machine '{name}'")
    out_dir = Path(out_dir)
    ensure_dir(out_dir, "--out")
    for name, *_ in FIGURES:  # before drawing: a FIFO or a read-only directory is one line
        check_writable_dir(out_dir / name, "--out")
    written = []
    for fname, benchmark, plot, _ in FIGURES:
        if any(not math.isnan(v) for runs in machines.values() for run in runs
               for v in run.results.get(benchmark, {}).values()):
            written.append(plot(machines, out_dir / fname))
    return machines, written


def cmd_history(args):
    machines, written = draw(args.results, args.out, args.machine)
    for machine, runs in machines.items():
        print(f"{len(runs)} commits of machine '{machine}' "
              f"({runs[0].commit[:8]} .. {runs[-1].commit[:8]}):")
    for path in written:
        print(f"  wrote {path}")


def add_parser(sub):
    p = sub.add_parser("history", help="draw the asv history (speed and test error per commit)",
                       description="Draw the asv results (speed and test error of every backend "
                                   "across commits) as PNG figures; nothing is measured. Record "
                                   "results first with asv (see docs/asv.md).",
                       epilog="example:\n  ffnbench history --machine ffnbench-ref-2core "
                              "--out build/figures")
    p.add_argument("--results", default="results/asv", help="asv results directory (default %(default)s)")
    p.add_argument("--out", default="results/figures", help="directory for the PNGs (default %(default)s)")
    p.add_argument("--machine", help="whose results to draw, e.g. NAME or NAME1,NAME2 side by "
                                     "side (default: every machine recorded, side by side)")
    p.set_defaults(func=cmd_history)
