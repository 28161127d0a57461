"""`ffnbench table`: same numbers on every backend and executor, a resume that loses
nothing after kill -9, cache keys, verdicts, and one-line errors for bad input."""
import math
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest

from ffnbench import cli
from ffnbench.commands import table as table_command
from ffnbench.core.config import TrainConfig
from ffnbench.run import executors, grid
from ffnbench.run.cache import Cache, cache_key
from ffnbench.studies import baselines, stats, table

# two small published settings (#7: 10 relu, #9: 10 sigmoid), short training: a few seconds
SMALL = dict(settings=(7, 9), datasets=("red",), seeds=1, epochs=30, patience=5)


def _numbers(df):
    """The table without the columns that may differ between identical runs or backends."""
    return df.drop(columns=[*table.TIMING_COLUMNS, "backend"])


def test_published_settings_are_packaged():
    rows = table.load_settings()
    assert [s.number for s in rows] == list(range(1, 16))
    assert rows[0].hidden == (50, 30, 20, 10, 5) and rows[0].lr == 0.1
    assert math.isnan(rows[2].published["white"])  # tanh lr 0.1 on white ended in NaN
    assert rows[2].published["red"] == pytest.approx(0.663542)


def test_two_backends_give_the_same_table(tmp_path):
    out = {}
    for backend in ("numpy", "numba"):
        spec = table.Spec(backend=backend, protocols=("modern", "minmax-uniform"), **SMALL)
        out[backend] = table_command.run_table(spec, out=tmp_path / backend,
                                               cache_dir=tmp_path / "cache", jobs=1, progress=False)
    a, b = out["numpy"], out["numba"]
    runs = a[a["kind"] == "setting"]
    assert len(runs) == 4 and (runs["epochs_median"] > 2).all()  # they really trained
    assert set(b["backend"].dropna()) == {"numba"}
    pd.testing.assert_frame_equal(_numbers(a), _numbers(b), check_exact=False, rtol=1e-9, atol=1e-12)
    md = {k: (tmp_path / k / "table.md").read_text() for k in out}
    assert md["numpy"].replace("--backend numpy", "--backend numba") == md["numba"]
    written = pd.read_csv(tmp_path / "numba" / "table.csv")
    assert list(written.columns) == table.COLUMNS and len(written) == len(b)


def test_any_executor_gives_the_same_results(tmp_path):
    """The grid only needs submit/wait: a thread pool and the process pool agree with
    the in-process executor."""
    configs = [TrainConfig(backend="numba", dataset="red", hidden=(10,), epochs=4, patience=0,
                           seed=s) for s in (0, 1)]
    ran, raw = {}, {}
    for name, executor in (("inline", executors.InlineExecutor()), ("threads", ThreadPoolExecutor(2)),
                           ("processes", executors.make_executor(2))):
        with executor:
            raw[name], cached = grid.run_grid(configs, executor, Cache(tmp_path / name),
                                              in_flight=2, progress=False)
        assert cached == 0
        ran[name] = [{k: v for k, v in r.items() if k not in (*grid.TIMING_KEYS, *grid.METADATA_KEYS)}
                     for r in raw[name]]
    assert ran["inline"][0]["test_mse"] != ran["inline"][1]["test_mse"]  # seeds differ
    assert ran["threads"] == ran["inline"] and ran["processes"] == ran["inline"]
    again, cached = grid.run_grid(configs, executors.InlineExecutor(),
                                  Cache(tmp_path / "processes"), progress=False)
    assert cached == 2 and again == raw["processes"]  # timings too: read back, not rerun


def _table_cmd(out, cache, *extra):
    return [sys.executable, "-m", "ffnbench.cli", "table", "--backend", "numba",
            "--settings", "1,3", "--datasets", "red", "--seeds", "2", "--jobs", "1",
            "--no-progress", "--out", str(out), "--cache-dir", str(cache), *extra]


def test_resume_after_kill_loses_nothing_and_gives_the_same_table(tmp_path):
    cache, out = tmp_path / "cache", tmp_path / "out"
    proc = subprocess.Popen(_table_cmd(out, cache), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not list(cache.glob("*.json")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL  # killed midway, not finished
    before = {p.name: p.read_bytes() for p in cache.glob("*.json")}
    assert 1 <= len(before) < 4 and not (out / "table.csv").exists()

    resumed = subprocess.run(_table_cmd(out, cache), capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert f"4 runs: {len(before)} from the cache" in resumed.stderr
    assert all((cache / name).read_bytes() == data for name, data in before.items())  # reused
    assert len(list(cache.glob("*.json"))) == 4

    fresh = subprocess.run(_table_cmd(tmp_path / "fresh", tmp_path / "cache2", "--fresh"),
                           capture_output=True, text=True, timeout=120)
    assert fresh.returncode == 0, fresh.stderr
    assert (out / "table.md").read_text() == (tmp_path / "fresh" / "table.md").read_text()
    a, b = (pd.read_csv(d / "table.csv") for d in (out, tmp_path / "fresh"))
    pd.testing.assert_frame_equal(_numbers(a), _numbers(b))
    assert not list(out.glob(".*.tmp")) and not list(cache.glob(".*.tmp"))


def test_cache_key_covers_seed_backend_version_and_code():
    base = TrainConfig(backend="numba", dataset="red", hidden=(10,), seed=0)
    key = cache_key(base)
    assert len(key) == 64 and key == cache_key(TrainConfig(backend="numba", dataset="red",
                                                             hidden=(10,), seed=0))
    others = [cache_key(TrainConfig(backend="numba", dataset="red", hidden=(10,), seed=1)),
              cache_key(TrainConfig(backend="numpy", dataset="red", hidden=(10,), seed=0)),
              cache_key(TrainConfig(backend="numba", dataset="red", hidden=(10,), seed=0,
                                    scaling="minmax")),
              cache_key(base, version="0.0.0-other"),
              cache_key(base, code="edited source")]
    assert len({key, *others}) == 6


def _st(lo, hi, div=0, constant=False, ulo=None, uhi=None):
    """A row's statistics: the 95 % prediction interval (lo, hi), and the uncollapsed one."""
    return {"n_seeds": 5, "n_diverged": div, "test_mse_pi_low": lo, "test_mse_pi_high": hi,
            "constant_level": constant,
            "_uncollapsed_pi": (lo if ulo is None else ulo, hi if uhi is None else uhi)}


@pytest.mark.parametrize("published, st, expected", [
    (0.60, _st(0.55, 0.65), "reproduced"),
    (0.60, _st(0.55, 0.65, constant=True), "reproduced-at-constant-level"),
    (0.80, _st(0.55, 0.83, ulo=0.55, uhi=0.65), "reproduced-at-constant-level"),  # via a collapsed run
    (0.70, _st(0.55, 0.65), "ours-lower by 0.050"),
    (0.50, _st(0.55, 0.65), "ours-higher by 0.050"),
    (math.nan, _st(0.55, 0.65, div=2), "partly (2/5 diverged)"),
    (math.nan, _st(math.nan, math.nan, div=5), "reproduced (5/5 diverged)"),
    (math.nan, _st(0.55, 0.65), "not-reproduced (no run diverged)"),
    (0.60, _st(math.nan, math.nan, div=4), "not-comparable (fewer than 2 runs finished)"),
])
def test_verdict(published, st, expected):
    assert table.verdict(published, st) == expected


def _runs(**kw):
    return pd.DataFrame({"diverged": False, "test_mse": [0.62, 0.66, 0.70], "test_rmse": 0.8,
                         "test_mae": 0.6, "test_acc_0_5": 0.4, "test_acc_1_0": 0.7,
                         "val_mse": 0.66, "train_mse": 0.66, "test_prediction_sd": 0.0,
                         "test_y_sd": 0.8, "vs_mean": 0.0, "vs_ols": 0.1, "vs_best": 0.2, **kw})


def test_a_constant_cannot_pass_as_reproduced():
    """The mean predictor's own runs, scored like a setting, are at constant level and
    collapsed, so a published value inside their interval is never plain 'reproduced'."""
    st = table._correct(pd.DataFrame([table._summary(_runs())]).assign(f=0), ["f"]).iloc[0]
    assert st["n_collapsed"] == 3 and st["constant_level"]
    assert table.verdict(0.65, st) == "reproduced-at-constant-level"
    better = table._summary(_runs(test_prediction_sd=0.5, vs_mean=[-0.10, -0.12, -0.11]))
    st = table._correct(pd.DataFrame([better]).assign(f=0), ["f"]).iloc[0]
    assert st["n_collapsed"] == 0 and not st["constant_level"] and st["vs_mean_p_holm"] < 0.05
    assert table.verdict(0.65, st) == "reproduced"


def test_the_correction_can_take_a_setting_back_to_constant_level():
    """p 0.03 alone is 'better than the mean'; as one of three tests of a family it is not."""
    rows = pd.DataFrame({"protocol": "modern", "dataset": "red", "vs_mean_diff": -0.1,
                         "vs_mean_p": [0.03, 0.5, 0.6], **{f"vs_{b}_p": 0.5 for b in ("ols", "best")}})
    alone = table._correct(rows.iloc[:1], ["protocol", "dataset"])
    family = table._correct(rows, ["protocol", "dataset"])
    assert not alone["constant_level"].iloc[0] and family["constant_level"].iloc[0]
    assert family["vs_mean_p_holm"].tolist() == pytest.approx([0.09, 1.0, 1.0])


def test_paired_statistics_use_the_per_seed_differences():
    """Level means, but one side lower on every seed: the paired test sees it."""
    from scipy.stats import t, ttest_rel
    ours, theirs = np.array([0.50, 0.60, 0.70, 0.55]), np.array([0.52, 0.63, 0.71, 0.58])
    st = stats.paired(ours - theirs)
    d = ours - theirs
    assert st["diff"] == pytest.approx(-0.0225) and st["diff_sd"] == pytest.approx(np.std(d, ddof=1))
    assert st["p"] == pytest.approx(ttest_rel(ours, theirs).pvalue) and st["p"] < 0.05
    half = t.ppf(0.975, 3) * np.std(d, ddof=1) / 2
    assert (st["ci_low"], st["ci_high"]) == pytest.approx((d.mean() - half, d.mean() + half))


def test_holm_by_hand():
    """m = 4: sorted p times 4, 3, 2, 1, kept monotone; NaN stays out of the family."""
    p = [0.01, 0.04, math.nan, 0.03, 0.005]
    assert stats.holm(p)[[0, 1, 3, 4]].tolist() == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert math.isnan(stats.holm(p)[2]) and stats.holm([0.9, 0.8]).tolist() == [1.0, 1.0]


def test_the_prediction_interval_covers_one_more_draw_95_percent_of_the_time():
    """Checked against the definition by simulation: normal draws, n = 5 seeds."""
    rng = np.random.default_rng(0)
    draws = rng.normal(0.5, 0.04, size=(4000, 6))
    inside = [lo <= x[5] <= hi for x in draws for lo, hi in [stats.prediction_interval(x[:5])]]
    assert abs(np.mean(inside) - 0.95) < 0.015


@pytest.mark.parametrize("argv", [
    ["--backend", "nope"], ["--seeds", "0"], ["--seeds", "two"], ["--datasets", "pink"],
    ["--datasets", "red,red"], ["--jobs", "0"], ["--protocol", "old"], ["--settings", "16"],
    ["--epochs", "0"], ["--patience", "-1"], ["--protocol", "modern,modern"],
    ["--stop", "never"], ["--split", "halves"], ["--relu-grad0", "0.5"], ["--scaling", "log"],
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, argv):
    out, cache = tmp_path / "out", tmp_path / "cache"
    code = cli.main(["table", *argv, "--out", str(out), "--cache-dir", str(cache)])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "error" in err
    assert list(tmp_path.iterdir()) == []


def test_out_must_be_a_directory(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    code = cli.main(["table", "--out", str(tmp_path / "file"), "--cache-dir", str(tmp_path / "c")])
    assert code == 2 and "not a directory" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


@pytest.mark.parametrize("option", ["--out", "--cache-dir"])
def test_a_directory_below_a_file_fails_before_any_run(tmp_path, capsys, option):
    (tmp_path / "file").write_text("x")
    paths = {"--out": str(tmp_path / "out"), "--cache-dir": str(tmp_path / "cache"),
             option: str(tmp_path / "file" / "sub")}
    code = cli.main(["table", "--settings", "7", "--seeds", "1", "--datasets", "red",
                     *[x for kv in paths.items() for x in kv]])
    err = capsys.readouterr().err
    assert code == 2 and f"{option} " in err and "is not a directory" in err
    assert err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_without_scikit_learn_the_table_runs_and_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(baselines, "strong_baselines", dict)
    baselines._baseline_rows.cache_clear()
    spec = table.Spec(settings=(7,), datasets=("red",), seeds=2, epochs=3, backend="numpy")
    t = table_command.run_table(spec, out=tmp_path, cache_dir=tmp_path / "cache", jobs=1,
                                progress=False)
    baselines._baseline_rows.cache_clear()
    assert set(t[t["kind"] == "baseline"]["setting"]) == {"mean", "least squares"}
    assert "scikit-learn is not installed" in (tmp_path / "table.md").read_text()
    assert (t[t["kind"] == "setting"]["best_baseline"] == "least squares").all()


def test_published_is_an_alias_and_overrides_reach_every_run(tmp_path):
    args = cli.build_parser().parse_args(["table", "--protocol", "published,article", "--split",
                                          "grouped", "--grad-bug", "--out", str(tmp_path / "o"),
                                          "--cache-dir", str(tmp_path / "c")])
    spec = table_command.spec_from_args(args)
    assert spec.protocols == ("minmax-uniform", "article") and spec.split == "grouped"
    configs = [c for *_, c in spec.plan()]
    assert all(c.split == "grouped" and c.grad_bug for c in configs)
    assert {c.input_activation for c in configs} == {False, True}  # the rest stays per protocol


def test_readings_gives_each_cell_a_verdict_under_each_scaling(tmp_path, monkeypatch, request):
    """`ffnbench readings` on two settings: one row per cell and reading in readings.csv,
    whose verdicts are the ones `table --protocol article --scaling X` gives."""
    from ffnbench.core.config import SCALINGS
    two = table.load_settings()[6:8]  # #7, #8
    monkeypatch.setattr(table, "load_settings", lambda: two)
    monkeypatch.setattr(baselines, "strong_baselines", dict)  # mean and OLS: fitted at once
    baselines._baseline_rows.cache_clear()
    request.addfinalizer(baselines._baseline_rows.cache_clear)  # no weak rows for later tests
    out = tmp_path / "r"
    assert cli.main(["readings", "--seeds", "2", "--jobs", "1", "--out", str(out),
                     "--cache-dir", str(tmp_path / "c"), "-q"]) == 0
    df = pd.read_csv(out / "readings.csv", dtype={"setting": str})
    assert len(df) == len(SCALINGS) * 2 * 2 and set(df["reading"]) == set(SCALINGS)
    assert cli.main(["table", "--protocol", "article", "--scaling", "minmax", "--seeds", "2",
                     "--jobs", "1", "--out", str(tmp_path / "t"), "--cache-dir", str(tmp_path / "c"),
                     "-q"]) == 0
    t = pd.read_csv(tmp_path / "t" / "table.csv", dtype={"setting": str})
    t = t[t["kind"] == "setting"].set_index(["dataset", "setting"])["verdict"]
    mm = df[df["reading"] == "minmax"].set_index(["dataset", "setting"])["verdict"]
    assert mm.to_dict() == t.loc[mm.index].to_dict()
    text = (out / "readings.md").read_text()
    assert all(f"`{s}`" in text for s in SCALINGS) and "| 7 |" in text
