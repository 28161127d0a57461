"""`ffnbench precision`: the table's runs in float32 beside float64 — pairing, the summary's
numbers on a hand-checked frame, the command end to end, and bad input."""
import numpy as np
import pandas as pd
import pytest
from scipy import stats as sstats

from ffnbench import cli
from ffnbench.core import harness
from ffnbench.core.config import TrainConfig
from ffnbench.studies import precision
from ffnbench.studies.table import Spec, load_settings

SETTINGS = {s.number: s for s in load_settings()}


def _paired(rows, sd64=0.3, sd32=0.3):
    cols = ["protocol", "setting", "dataset", "seed", "test_mse_float64", "diverged_float64",
            "best_epoch_float64", "test_mse_float32", "diverged_float32", "best_epoch_float32"]
    return pd.DataFrame(rows, columns=cols).assign(test_prediction_sd_float64=sd64,
                                                   test_prediction_sd_float32=sd32)


def test_the_summary_on_hand_checked_pairs():
    rows = [("modern", 4, "red", 0, 0.50, False, 10, 0.5004, False, 10),
            ("modern", 4, "red", 1, 0.40, False, 12, 0.4002, False, 13),
            ("modern", 4, "red", 2, 0.45, False, 9, np.nan, True, 3),  # float32 alone diverged
            ("modern", 8, "red", 0, 0.60, False, 7, 0.60000001, False, 7),
            ("modern", 8, "red", 1, 0.70, False, 7, 0.70000003, False, 7),
            ("modern", 8, "red", 2, np.nan, True, 2, np.nan, True, 2)]
    paired = _paired(rows)
    paired.loc[2, "test_prediction_sd_float64"] = 1e-15  # the float32-alone divergence's twin
    df = precision.summarise(paired, SETTINGS, delta=0.001, level=0.95)
    a, b = df.iloc[0], df.iloc[1]
    assert (a["n_seeds"], a["n_paired"], a["diverged_float32_only"], a["diverged_float64_only"],
            a["diverged_both"]) == (3, 2, 1, 0, 0)
    d = np.array([0.0004, 0.0002])
    half = sstats.t.ppf(1 - 0.05 / 2 / 2, 1) * d.std(ddof=1) / np.sqrt(2)  # Bonferroni over 2 rows
    assert a["diff"] == pytest.approx(0.0003)
    assert (a["ci_low"], a["ci_high"]) == pytest.approx((0.0003 - half, 0.0003 + half))
    assert a["max_abs_diff"] == pytest.approx(0.0004) and a["share_within"] == 1.0
    assert a["same_best_epoch"] == 0.5 and a["test_mse_float64_mean"] == pytest.approx(0.45)
    assert not a["within"]  # the interval (two pairs, t of 1 degree of freedom) is wide
    assert (b["n_paired"], b["diverged_both"]) == (2, 1) and b["within"]
    assert b["hidden"] == ",".join(map(str, SETTINGS[8].hidden))
    assert precision.diverged_alone(paired)["float32"] == (1, 1e-15)
    assert precision.diverged_alone(paired)["float64"][0] == 0


def test_runs_that_do_not_pair_are_an_error():
    one = _paired([("modern", 4, "red", 0, 0.5, False, 1, 0.5, False, 1)])
    runs = one.rename(columns={"test_mse_float64": "test_mse", "diverged_float64": "diverged",
                               "best_epoch_float64": "best_epoch",
                               "test_prediction_sd_float64": "test_prediction_sd"})
    with pytest.raises(ValueError, match="do not pair"):
        precision.pair(runs, runs.assign(seed=1))


def test_the_float32_spec_differs_from_the_float64_one_only_in_its_dtype():
    f64, f32 = precision.specs(Spec(seeds=2, settings=(4,), backend="numpy", overrides=(("dtype", "float32"),)))
    a, b = (s.plan()[0][-1] for s in (f64, f32))
    assert (a.dtype, b.dtype) == ("float64", "float32")
    assert a.to_dict() == {**b.to_dict(), "dtype": "float64"}


def test_precision_trains_each_run_in_both_precisions(tmp_path, capsys):
    out = tmp_path / "out"
    assert cli.main(["precision", "--backend", "numpy", "--settings", "4", "--seeds", "2",
                     "--datasets", "red", "--protocol", "modern", "--out", str(out),
                     "--cache-dir", str(tmp_path / "cache"), "-q"]) == 0
    runs = pd.read_csv(out / "precision_runs.csv")
    row = pd.read_csv(out / "precision.csv").iloc[0]
    assert len(runs) == 2 and row["n_paired"] == 2
    s = SETTINGS[4]
    cfg = dict(backend="numpy", dataset="red", hidden=s.hidden, activation=s.activation, lr=s.lr,
               l2=s.l2, seed=1, **Spec().protocol("modern"))
    for dtype in ("float64", "float32"):  # each column is that precision's own run
        result, _ = harness.train(TrainConfig(dtype=dtype, **cfg))
        assert runs.loc[1, f"test_mse_{dtype}"] == result["test_mse"], dtype
    diff = runs["test_mse_float32"] - runs["test_mse_float64"]
    assert 0 < diff.abs().max() < 1e-4  # float32 really ran, and stayed close
    assert row["diff"] == pytest.approx(diff.mean(), rel=1e-5)
    assert row["within"] == (-0.001 <= row["ci_low"] and row["ci_high"] <= 0.001)
    assert "| 4 | 50,30,20,10,5 | tanh |" in (out / "precision.md").read_text()


@pytest.mark.parametrize("args, message", [
    (["--seeds", "1"], "--seeds must be at least 2"),
    (["--delta", "0"], "--delta must be a positive number"),
    (["--delta", "nan"], "--delta must be a positive number"),
    (["--backend", "python"], "float32"),
    (["--settings", "99"], "settings"),
], ids=str)
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys, args, message):
    out = tmp_path / "out"
    assert cli.main(["precision", "--out", str(out), "--cache-dir", str(tmp_path / "c"), *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert not out.exists()


def test_the_committed_precision_rows_follow_from_the_committed_pairs():
    """results/precision.csv recomputed from results/precision_runs.csv alone (6 digits, as
    written); and its float64 runs are the committed table's runs, number for number."""
    from pathlib import Path
    results = Path(__file__).parents[1] / "results"
    paired = pd.read_csv(results / "precision_runs.csv")
    committed = pd.read_csv(results / "precision.csv")
    again = precision.summarise(paired, SETTINGS)
    num = [c for c in committed.columns if committed[c].dtype.kind == "f"]
    np.testing.assert_allclose(again[num].to_numpy(float), committed[num].to_numpy(float),
                               rtol=1e-5, atol=1e-12, equal_nan=True)
    assert (again["within"] == committed["within"]).all()
    table = pd.read_csv(results / "runs.csv").set_index(["protocol", "setting", "dataset", "seed"])
    mine = paired.set_index(["protocol", "setting", "dataset", "seed"])
    np.testing.assert_array_equal(mine["test_mse_float64"],
                                  table.loc[mine.index, "test_mse"].to_numpy())
