"""The history figures: seconds per epoch, mini-batch epochs and test MSE of every backend
across commits, from the runs studies/history.py reads. Each machine gets a block of panels
(rows x nets) with its own commit axis, the blocks stacked, so the figure stays three panels
wide and legible at README width; the panels of one row, in every block, share their y-axis,
so nets and machines compare by height."""
import math

from ..core.fileio import save_figure
from ..studies.history import (EPOCHS_TO_TARGET, TEST_MSE, TIME_EPOCH, TIME_MINIBATCH, axis_values,
                               backends, param_combos, series)
from .style import backend_style

WIDTH = 10.0  # inches: 1,100 px at save_figure's dpi, shown about 880 px wide in the README
PANEL_HEIGHT = 2.0  # inches per row of panels
FONT = 9  # points: the smallest text of a figure (about 11 px at README width)
TITLE_FONT = 10.5
MAX_COMMIT_LABELS = 6  # per panel: short hashes that do not overlap at WIDTH / 3


def _step(runs):
    return max(1, math.ceil(len(runs) / MAX_COMMIT_LABELS))


def _commit_axis(ax, runs):
    """Every k-th commit labelled (short hash), counted back from the newest (always
    labelled), so at most MAX_COMMIT_LABELS labels."""
    ticks = list(range(len(runs) - 1, -1, -_step(runs)))[::-1]
    ax.set_xticks(ticks, [runs[i].commit[:7] for i in ticks], rotation=40, ha="right",
                  rotation_mode="anchor", fontsize=FONT)
    ax.set_xticks(range(len(runs)), minor=True)
    ax.set_xlim(-0.5, len(runs) - 0.5)
    ax.tick_params(axis="y", labelsize=FONT)
    ax.grid(True, alpha=0.3)


def _ordinal(k):
    """2nd, 3rd, 4th, 11th, 21st, ..."""
    suffix = "th" if 10 <= k % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(k % 10, "th")
    return f"{k}{suffix}"


def _same(a, b):
    """Equal to round-off at every commit where both have a value (a backend added later
    has none before), and at least one such commit."""
    both = [(x, y) for x, y in zip(a, b) if not (math.isnan(x) or math.isnan(y))]
    return bool(both) and all(abs(x - y) <= 1e-12 * max(abs(x), abs(y), 1.0) for x, y in both)


def _joined(names, width=34):
    """'a = b = c', broken into lines of at most about `width` characters."""
    lines = [names[0]]
    for name in names[1:]:
        if len(lines[-1]) + 3 + len(name) > width:
            lines[-1] += " ="
            lines.append(name)
        else:
            lines[-1] += f" = {name}"
    return "\n".join(lines)


def _plot_backends(ax, runs, benchmark, rest):
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
            ax.plot(x, y, label=names[0], linewidth=1.2, markersize=4, **backend_style(names[0]))
        else:
            ax.plot(x, y, label="several backends, identical values", color="black", marker=".",
                    markersize=4, linewidth=1.5)
            ax.annotate(_joined(names), (x[-1], y[-1]), xytext=(-4, 5), textcoords="offset points",
                        ha="right", va="bottom", fontsize=FONT)
    if not groups:
        ax.text(0.5, 0.5, "no results", ha="center", va="center", transform=ax.transAxes,
                fontsize=FONT)
    _commit_axis(ax, runs)


def _grid(rows, cols, title, machines):
    """A figure of one block of len(rows) x len(cols) panels per machine, stacked, and
    axes[machine][row][col]. The panels of a row share one y-axis (only the first column
    labels it); _same_rows gives row r of every block the same limits once drawn."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    block = PANEL_HEIGHT * len(rows) + 1.3  # the block's title, commit labels and axis label
    fig = plt.figure(figsize=(WIDTH, block * len(machines) + 1.1), layout="constrained")
    fig.suptitle(title, fontsize=TITLE_FONT)
    axes = []
    for sub, (machine, runs) in zip(fig.subfigures(len(machines), 1, squeeze=False)[:, 0],
                                    machines.items()):
        axes.append(sub.subplots(len(rows), len(cols), squeeze=False, sharex=True, sharey="row"))
        sub.suptitle(f"machine '{machine}': {len(runs)} commits, {runs[0].commit[:7]} .. "
                     f"{runs[-1].commit[:7]}", fontsize=TITLE_FONT, fontweight="bold")
        step = _step(runs)
        sub.supxlabel("commit, oldest to newest"
                      + (f" (every {_ordinal(step)} labelled)" if step > 1 else ""), fontsize=FONT)
    return fig, axes


def _same_rows(axes):
    """Row r of every machine's block gets the limits that hold all of their data (axes
    shared across subfigures would redraw the whole figure at every change); a row of 'no
    results' panels has no say. Returns the first panel of each row in every block."""
    firsts = []
    for r in range(len(axes[0])):
        drawn = [block[r][0] for block in axes if any(ax.get_lines() for ax in block[r])]
        limits = [ax.get_ylim() for ax in drawn]  # each block's row, autoscaled
        for block in axes:
            if limits:
                block[r][0].set_ylim(min(lo for lo, _ in limits), max(hi for _, hi in limits))
        firsts.append([block[r][0] for block in axes])
    return firsts


def _panels(machines, rows, cols):
    """(machine's block, its runs, r, row, c, col) for every panel."""
    return [(k, runs, r, row, c, col) for k, runs in enumerate(machines.values())
            for r, row in enumerate(rows) for c, col in enumerate(cols)]


def _clear_of_titles(ax):
    """The names of an identical line go below it when it runs in the panel's upper half
    (where, above it, they would meet the title); once the limits are final."""
    to_axes = ax.transData + ax.transAxes.inverted()
    for note in ax.texts:
        if hasattr(note, "xyann") and to_axes.transform(note.xy)[1] > 0.5:
            note.xyann = (note.xyann[0], -note.xyann[1])
            note.set_va("top")


def _save(fig, axes, path):
    labels = {}
    for ax in (ax for block in axes for row in block for ax in row):
        _clear_of_titles(ax)
        for h, label in zip(*ax.get_legend_handles_labels()):
            labels.setdefault(label, h)
    fig.legend(labels.values(), labels.keys(), loc="outside lower center",
               ncol=min(len(labels), 7), fontsize=FONT, frameon=False)
    return save_figure(fig, path)


def _time_panels(axes, machines, benchmark, rows, cols, params, title):
    """One log-scale panel of seconds per epoch per (machine, row, col); params(row, col) is
    the benchmark's parameters after the backend, title(row, col) the panel's title."""
    for k, runs, r, row, c, col in _panels(machines, rows, cols):
        ax = axes[k][r][c]
        _plot_backends(ax, runs, benchmark, params(row, col))
        ax.set_yscale("log")
        ax.set_title(title(row, col), fontsize=FONT)
        if c == 0:
            ax.set_ylabel("seconds per epoch", fontsize=FONT)
    _same_rows(axes)


def _all_params(machines, benchmark):
    return list(dict.fromkeys(c for runs in machines.values() for c in param_combos(runs, benchmark)))


def _hidden(arch):
    return f"hidden {arch.replace('-', ',')}"


def plot_seconds_per_epoch(machines, path):
    combos = _all_params(machines, TIME_EPOCH)
    archs, datasets = axis_values(combos, 1), axis_values(combos, 2)
    fig, axes = _grid(datasets, archs, "Seconds per epoch, per-sample SGD (asv time_epoch, median; "
                      "log scale; lower is better)", machines)
    _time_panels(axes, machines, TIME_EPOCH, datasets, archs, lambda dataset, arch: (arch, dataset),
                 lambda dataset, arch: f"{_hidden(arch)} · {dataset} wine")
    return _save(fig, axes, path)


def plot_minibatch(machines, path, dataset="white"):
    combos = [c for c in _all_params(machines, TIME_MINIBATCH) if c[2] == dataset]
    archs, batches = axis_values(combos, 1), axis_values(combos, 3)
    fig, axes = _grid(batches, archs, f"Seconds per epoch, mini-batch SGD on {dataset} wine "
                      "(asv time_epoch; log scale;\ngaps: commits before mini-batch training)",
                      machines)
    _time_panels(axes, machines, TIME_MINIBATCH, batches, archs,
                 lambda batch, arch: (arch, dataset, batch),
                 lambda batch, arch: f"{_hidden(arch)} · batch {batch}")
    return _save(fig, axes, path)


def _quality_limits(firsts, benchmark):
    """y-limits of one row of panels in every block (firsts: its first panel in each, whose
    y-axis the row shares): whole epochs with integer ticks; a test MSE that moves only by
    round-off between commits is not zoomed into."""
    from matplotlib.ticker import MaxNLocator
    lo, hi = firsts[0].get_ylim()  # _same_rows gave every block these
    for ax in firsts:
        if benchmark == EPOCHS_TO_TARGET:
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_ylim(math.floor(lo + 0.5) - 1.5, math.ceil(hi - 0.5) + 1.5)
        elif hi - lo < 0.02 * abs(hi + lo) / 2:
            mid = (hi + lo) / 2
            ax.set_ylim(mid * 0.95, mid * 1.05)
            ax.ticklabel_format(axis="y", useOffset=False)


def plot_test_mse(machines, path):
    archs = axis_values(_all_params(machines, TEST_MSE), 1)
    rows = [(TEST_MSE, "test MSE\nafter 20 epochs"), (EPOCHS_TO_TARGET, "epochs until\nvalidation MSE ≤ target")]
    fig, axes = _grid(rows, archs, "Test error (asv track_*: red wine, seed 0, no early stopping; "
                      "backends that agree\nto round-off share one black line)", machines)
    for k, runs, r, (benchmark, ylabel), c, arch in _panels(machines, rows, archs):
        ax = axes[k][r][c]
        _plot_backends(ax, runs, benchmark, (arch,))
        ax.set_title(_hidden(arch), fontsize=FONT)
        if c == 0:
            ax.set_ylabel(ylabel, fontsize=FONT)
    for firsts, (benchmark, _) in zip(_same_rows(axes), rows):
        _quality_limits(firsts, benchmark)
    return _save(fig, axes, path)


FIGURES = (  # (file name, benchmark it needs, plot function, required)
    ("history_seconds_per_epoch.png", TIME_EPOCH, plot_seconds_per_epoch, True),
    ("history_test_mse.png", TEST_MSE, plot_test_mse, True),
    ("history_minibatch.png", TIME_MINIBATCH, plot_minibatch, False),
)
