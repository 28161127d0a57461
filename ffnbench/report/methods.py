"""methods.md: one line per row of `ffnbench methods`, from its row records."""
from ..core.config import TrainConfig


def _missing(x):
    return x is None or x != x  # None, or NaN in a frame's records


def _cell(row, metric, percent=False):
    m = {stat: row[f"{metric}_{stat}"] for stat in ("mean", "sd", "min", "max")}
    if _missing(m["mean"]):
        return "all diverged"
    f = (lambda v: f"{100 * v:.1f} %") if percent else (lambda v: f"{v:.3f}")
    return f"{f(m['mean'])} ± {f(m['sd'])} ({f(m['min'])}–{f(m['max'])})"


def row_line(row):
    """The table line of one row: test MSE and MAE (regression) or accuracy and log-loss."""
    classification = not _missing(row.get("test_accuracy_mean"))
    cells = ((_cell(row, "test_accuracy", percent=True), _cell(row, "test_log_loss"))
             if classification else (_cell(row, "test_mse"), _cell(row, "test_mae")))
    return (f"| {row['run']} | {row['dataset']} | {cells[0]} | {cells[1]} | "
            f"{row['n_diverged']}/{row['n_seeds']} |")


def markdown(rows, backend, seeds):
    lines = [f"# Optimisers and classification ({seeds} seeds each)", "",
             f"Made by `ffnbench methods` ({backend} backend, {seeds} seeds, early stopping "
             f"with patience {TrainConfig.patience} on validation MSE or log-loss, standard scaling unless stated).", "",
             "| run | dataset | test MSE or accuracy | test MAE or log-loss | diverged |",
             "|---|---|---|---|---|"]
    lines += [row_line(r) for r in rows]
    first = rows[0]
    lines += ["", f"## Against the published settings ({first['run']})", "",
              "Test MSE of each red regression run minus the first row's, seed by seed (seed "
              "*i* is the same split for every row): the mean difference, its 95 % confidence "
              "interval, how many seeds it is lower on, and the paired t-test p corrected by "
              "Holm's method over these comparisons. Negative: lower error than the published "
              "settings.", "", "| run | difference [95 % CI] | lower on | p (Holm) |",
              "|---|---|---|---|"]
    for r in rows:
        if _missing(r.get("vs_first_diff")):
            continue
        lines.append(f"| {r['run']} | {r['vs_first_diff']:+.3f} [{r['vs_first_ci_low']:+.3f}, "
                     f"{r['vs_first_ci_high']:+.3f}] | {r['vs_first_lower']:.0f}/{r['n_seeds']} | "
                     f"{r['vs_first_p_holm']:.2g} |")
    return "\n".join(lines) + "\n"
