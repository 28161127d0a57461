"""methods.md: one line per row of `ffnbench methods`, from its row records."""
from ..core.config import TrainConfig


def _cell(row, metric, percent=False):
    m = {stat: row[f"{metric}_{stat}"] for stat in ("mean", "sd", "min", "max")}
    if m["mean"] is None:
        return "all diverged"
    f = (lambda v: f"{100 * v:.1f} %") if percent else (lambda v: f"{v:.3f}")
    return f"{f(m['mean'])} ± {f(m['sd'])} ({f(m['min'])}–{f(m['max'])})"


def row_line(row):
    """The table line of one row: test MSE and MAE (regression) or accuracy and log-loss."""
    cells = ((_cell(row, "test_mse"), _cell(row, "test_mae")) if "test_mse_mean" in row
             else (_cell(row, "test_accuracy", percent=True), _cell(row, "test_log_loss")))
    return (f"| {row['run']} | {row['dataset']} | {cells[0]} | {cells[1]} | "
            f"{row['n_diverged']}/{row['n_seeds']} |")


def markdown(rows, backend, seeds):
    lines = [f"# Optimisers and classification ({seeds} seeds each)", "",
             f"Made by `ffnbench methods` ({backend} backend, {seeds} seeds, early stopping "
             f"with patience {TrainConfig.patience} on validation MSE or log-loss, standard scaling unless stated).", "",
             "| run | dataset | test MSE or accuracy | test MAE or log-loss | diverged |",
             "|---|---|---|---|---|"]
    return "\n".join(lines + [row_line(r) for r in rows]) + "\n"
