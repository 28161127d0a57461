"""The tidy per-run table (runs.csv) that `sweep` and `table` write: one row per run with
every config field, every metric, the stop and timing numbers, and where the run ran."""
import json
from dataclasses import fields

import pandas as pd

from ..core.config import TrainConfig
from ..core.fileio import atomic_write

CONFIG_COLUMNS = [f.name for f in fields(TrainConfig)]  # hidden as "50,30,20"
METRIC_COLUMNS = [  # regression runs fill the mse/mae ones, classification the others
    "train_mse", "val_mse", "test_mse", "test_rmse", "test_mae", "test_acc_0_5", "test_acc_1_0",
    "test_prediction_sd",  # sd of the test predictions: the collapse rule's input
    "train_log_loss", "val_log_loss", "test_log_loss",
    "train_accuracy", "val_accuracy", "test_accuracy", "test_confusion",
]
RUN_COLUMNS = ["task", "epochs_run", "best_epoch", "diverged", "diverged_epoch",
               "seconds_per_epoch", "warmup_seconds", "run_seconds",
               "n_weights", "n_train", "n_val", "n_test", "ffnbench_version"]
MACHINE_COLUMNS = ["engine", "host", "cpu_model", "cpu_cores", "python", "numpy", "numba",
                   "torch", "blas"]
COLUMNS = CONFIG_COLUMNS + METRIC_COLUMNS + RUN_COLUMNS + MACHINE_COLUMNS


def _row(config, result):
    row = {**config.to_dict(), "hidden": ",".join(map(str, config.hidden))}
    row.update({k: result.get(k) for k in METRIC_COLUMNS + RUN_COLUMNS})
    if row["test_confusion"] is not None:  # a K x K matrix: one JSON cell
        row["test_confusion"] = json.dumps(row["test_confusion"])
    row.update({k: result.get("machine", {}).get(k) for k in MACHINE_COLUMNS})
    row["engine"] = result.get("engine")
    return row


def frame(configs, results):
    """One row per (config, result) in COLUMNS order; a diverged run's metrics are NaN."""
    df = pd.DataFrame([_row(c, r) for c, r in zip(configs, results)], columns=COLUMNS)
    numeric = [c for c in METRIC_COLUMNS if c != "test_confusion"] + [
        "seconds_per_epoch", "warmup_seconds", "run_seconds"]
    df[numeric] = df[numeric].astype(float)
    df[["best_epoch", "diverged_epoch"]] = df[["best_epoch", "diverged_epoch"]].astype("Int64")
    return df


def write(df, out, parquet=False):
    """OUT/runs.csv (full precision: it is the data), and OUT/runs.parquet when asked and
    pyarrow is installed; returns the paths written."""
    paths = [out / "runs.csv"]
    with atomic_write(paths[0]) as f:
        df.to_csv(f, index=False)
    if parquet:
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            return paths
        paths.append(out / "runs.parquet")
        with atomic_write(paths[1], "wb") as f:
            df.to_parquet(f, index=False)
    return paths
