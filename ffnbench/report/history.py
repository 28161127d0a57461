"""The history figures: seconds per epoch, mini-batch epochs and test MSE of every backend
across commits, machines side by side, from the runs studies/history.py reads."""
import math

from ..core.fileio import save_figure
from ..studies.history import (EPOCHS_TO_TARGET, TEST_MSE, TIME_EPOCH, TIME_MINIBATCH, axis_values,
                               backends, param_combos, series)
from .style import backend_style


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
    for backend in backends(runs, benchmark):
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
    return list(dict.fromkeys(c for runs in machines.values() for c in param_combos(runs, benchmark)))


def plot_seconds_per_epoch(machines, path):
    combos = _all_params(machines, TIME_EPOCH)
    archs, datasets = axis_values(combos, 1), axis_values(combos, 2)
    fig, axes = _grid(datasets, archs, "Seconds per epoch, per-sample SGD (asv time_epoch, median; "
                      "lower is better)", machines)
    _time_panels(axes, machines, TIME_EPOCH, datasets, archs, lambda dataset, arch: (arch, dataset),
                 lambda dataset, arch: f"hidden {arch.replace('-', ',')} · {dataset} wine")
    return _save(fig, axes, path)


def plot_minibatch(machines, path, dataset="white"):
    combos = [c for c in _all_params(machines, TIME_MINIBATCH) if c[2] == dataset]
    archs, batches = axis_values(combos, 1), axis_values(combos, 3)
    fig, axes = _grid(batches, archs, f"Seconds per epoch, mini-batch SGD on {dataset} wine "
                      "(asv time_epoch; gaps: commits before mini-batch training)", machines)
    _time_panels(axes, machines, TIME_MINIBATCH, batches, archs,
                 lambda batch, arch: (arch, dataset, batch),
                 lambda batch, arch: f"hidden {arch.replace('-', ',')} · batch {batch}")
    return _save(fig, axes, path)


def plot_test_mse(machines, path):
    from matplotlib.ticker import MaxNLocator
    archs = axis_values(_all_params(machines, TEST_MSE), 1)
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
