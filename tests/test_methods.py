"""`ffnbench methods`: each row's statistics over seeds, and every red regression row against
the published settings seed by seed, with its interval and Holm-corrected p."""
import numpy as np
import pandas as pd
import pytest

from ffnbench import cli
from ffnbench.commands import methods
from ffnbench.core import harness
from ffnbench.core.config import TrainConfig
from ffnbench.report import methods as report
from ffnbench.studies import stats

SMALL = dict(hidden=(5,), activation="tanh", epochs=3, patience=0)


def test_rows_and_the_comparison_with_the_first_row(tmp_path, monkeypatch):
    rows = [("first", "red", dict(SMALL, lr=0.01)), ("second", "red", dict(SMALL, lr=0.05)),
            ("third", "red", dict(SMALL, lr=0.002)), ("classes", "color", dict(SMALL, lr=0.01))]
    monkeypatch.setattr(methods, "ROWS", rows)
    monkeypatch.setattr(methods, "SEEDS", 3)
    assert cli.main(["methods", "--backend", "numpy", "--out", str(tmp_path), "-q"]) == 0
    df = pd.read_csv(tmp_path / "methods.csv")
    mse = [np.array([r["test_mse"] for r in harness.train_seeds(
        TrainConfig(backend="numpy", dataset="red", seed=0, **o), 3)]) for _, _, o in rows[:3]]
    expected = [stats.paired(m - mse[0]) for m in mse[1:]]
    assert df["vs_first_diff"][1:3].tolist() == pytest.approx([e["diff"] for e in expected], rel=1e-5)
    assert df["vs_first_p_holm"][1:3].tolist() == pytest.approx(
        stats.holm([e["p"] for e in expected]), rel=1e-5)
    assert df["vs_first_diff"].isna().tolist() == [True, False, False, True]  # first, classes
    text = (tmp_path / "methods.md").read_text()
    assert "| classes | color | " in text and "nan" not in text  # accuracy, not an MSE of NaN
    section = text.split("## Against the published settings")[1]
    assert "| second |" in section and "| classes |" not in section and "| first |" not in section


def test_a_row_with_every_run_diverged_says_so():
    row = {"run": "r", "dataset": "red", "n_diverged": 3, "n_seeds": 3,
           **{f"{m}_{s}": np.nan for m in ("test_mse", "test_mae", "test_accuracy", "test_log_loss")
              for s in ("mean", "sd", "min", "max")}}
    assert report.row_line(row) == "| r | red | all diverged | all diverged | 3/3 |"
