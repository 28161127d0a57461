"""The sweep's figures: categories that are not backends (a net, a configuration's rank) never
wear a backend's colour or marker, and the lr axis names the grid's values as written."""
import itertools

import pandas as pd
import pytest

from ffnbench.report import sweep as report
from ffnbench.report.style import MEAN_MARKER, category_styles

HIDDEN = ["10", "30,10", "10,30,5", "50,30,20,10,5"]
LRS = [0.01, 0.003, 0.001]


@pytest.fixture
def frame():
    """A regression sweep of 2 datasets x 4 nets x 3 lr x 3 seeds, and each run's curve."""
    rows = [{"dataset": d, "task": "regression", "hidden": h, "lr": lr, "seed": s,
             "diverged": False, "val_mse": 0.5 + 0.01 * i + 0.001 * s, "test_mse": 0.5 + 0.02 * i,
             "test_accuracy": float("nan"), "epochs_run": 5}
            for i, (d, h, lr, s) in enumerate(itertools.product(["red", "white"], HIDDEN, LRS, range(3)))]
    df = pd.DataFrame(rows)
    return df, {i: {"val_mse_history": [0.9, 0.7, 0.6, 0.55, r["val_mse"]]} for i, r in enumerate(rows)}


def _drawn(monkeypatch, draw):
    figures = []
    monkeypatch.setattr(report, "save_figure", lambda fig, path: figures.append(fig) or path)
    draw()
    return figures[0]


def _backend_looks():
    """Every colour (as RGBA) and marker a backend can get, and matplotlib's default cycle
    (C0..C9, the backends' tab10 palette)."""
    from matplotlib.colors import to_rgba
    from ffnbench.report.style import FALLBACK_COLOURS, FALLBACK_MARKERS, FIXED
    colours = {to_rgba(c) for c, _ in FIXED.values()} | {to_rgba(c) for c in FALLBACK_COLOURS}
    colours |= {to_rgba(f"C{i}") for i in range(10)}
    return colours, {m for _, m in FIXED.values()} | set(FALLBACK_MARKERS)


def test_category_styles_are_no_backends_style():
    from matplotlib.colors import to_rgba
    colours, markers = _backend_looks()
    styles = category_styles(8)
    assert len({to_rgba(s["color"]) for s in styles}) == 8
    assert not {to_rgba(s["color"]) for s in styles} & colours
    assert "marker" not in styles[0] and MEAN_MARKER not in markers


@pytest.mark.parametrize("which", ["lr", "curves"])
def test_sweep_figures_use_no_backend_colour_or_marker(frame, monkeypatch, which):
    import matplotlib.pyplot as plt
    from matplotlib.colors import to_rgba
    df, results = frame
    draw = (lambda: report.plot_lr(df, ["hidden", "lr"], "x.png")) if which == "lr" else (
        lambda: report.plot_curves(df, results, ["hidden", "lr"], "x.png"))
    fig = _drawn(monkeypatch, draw)
    colours, markers = _backend_looks()
    lines = [line for ax in fig.axes for line in ax.get_lines()]
    assert len(lines) >= 2 * len(HIDDEN)  # a net (lr) or a rank (curves) a line, each panel
    for line in lines:
        assert to_rgba(line.get_color()) not in colours
        assert line.get_marker() in ("None", "", None, MEAN_MARKER) and line.get_marker() not in markers
    bars = [tuple(c) for ax in fig.axes for coll in ax.collections for c in coll.get_colors()]
    assert not set(bars) & colours  # the error bars too
    plt.close(fig)


def test_the_lr_axis_names_the_grid_values_as_written(frame, monkeypatch):
    import matplotlib.pyplot as plt
    df, _ = frame
    fig = _drawn(monkeypatch, lambda: report.plot_lr(df, ["hidden", "lr"], "x.png"))
    for ax in fig.axes:
        assert list(ax.get_xticks()) == sorted(LRS)
        assert [t.get_text() for t in ax.get_xticklabels()] == ["0.001", "0.003", "0.01"]
        assert list(ax.xaxis.get_minorticklocs()) == []
    assert report._plain(1e-5) == "0.00001" and report._plain(0.1) == "0.1"
    plt.close(fig)


def test_sweep_figures_stay_legible_at_readme_width(frame, monkeypatch):
    """Scaled to 900 px wide, the smallest text is still 10 px high."""
    import matplotlib.pyplot as plt
    from matplotlib.text import Text
    df, results = frame
    for draw in (lambda: report.plot_lr(df, ["hidden", "lr"], "x.png"),
                 lambda: report.plot_curves(df, results, ["hidden", "lr"], "x.png")):
        fig = _drawn(monkeypatch, draw)
        fig.canvas.draw()
        sizes = [t.get_fontsize() for t in fig.findobj(Text) if t.get_text().strip() and t.get_visible()]
        assert min(sizes) / 72 * 900 / fig.get_size_inches()[0] >= 10
        plt.close(fig)
