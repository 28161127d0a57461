"""Every statistic and verdict of the committed results/table.csv recomputes from the committed
runs.csv and baselines.csv with pandas and scipy alone: written here from the definitions in
table.md, not with ffnbench's own code."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

RESULTS = Path(__file__).resolve().parents[1] / "results"
RTOL = 1e-5  # table.csv has 6 significant digits


@pytest.fixture(scope="module")
def committed():
    table = pd.read_csv(RESULTS / "table.csv", dtype={"setting": str})
    runs = pd.read_csv(RESULTS / "runs.csv", dtype={"setting": str})
    base = pd.read_csv(RESULTS / "baselines.csv")
    return table, runs, base


def _holm(p):
    p = np.asarray(p, dtype=float)
    ok = ~np.isnan(p)
    m, out = ok.sum(), np.full(len(p), np.nan)
    order = np.argsort(np.where(ok, p, np.inf), kind="stable")[:m]
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, (m - rank) * p[i])
        out[i] = min(running, 1.0)
    return out


def _recompute(table, runs, base):
    """table.csv's setting rows, recomputed: paired stats vs each baseline, Holm per protocol
    and dataset, the prediction interval, the collapse count and the verdict."""
    b = base.set_index(["setting", "dataset", "seed"])
    rows = []
    for _, r in table[table["kind"] == "setting"].iterrows():
        g = runs[(runs["protocol"] == r["protocol"]) & (runs["setting"] == r["setting"])
                 & (runs["dataset"] == r["dataset"])]
        ok = g[~g["diverged"].astype(bool)]
        out = {"protocol": r["protocol"], "setting": r["setting"], "dataset": r["dataset"]}
        y_sd = b.loc[[("mean", r["dataset"], s) for s in ok["seed"]], "test_y_sd"].to_numpy()
        collapsed = ok["test_prediction_sd"].to_numpy() < 0.01 * y_sd
        out["n_collapsed"] = int(collapsed.sum())
        for name, col in (("mean", "mean"), ("ols", "least squares"), ("best", r["best_baseline"])):
            d = ok["test_mse"].to_numpy() - b.loc[[(col, r["dataset"], s) for s in ok["seed"]],
                                                   "test_mse"].to_numpy()
            t = stats.ttest_rel(ok["test_mse"], ok["test_mse"] - d) if len(d) > 1 and d.std() > 0 else None
            out[f"vs_{name}_diff"] = d.mean() if len(d) else np.nan  # every run diverged
            out[f"vs_{name}_p"] = t.pvalue if t is not None else np.nan
            if t is not None:
                half = stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))
                out[f"vs_{name}_ci_low"], out[f"vs_{name}_ci_high"] = d.mean() - half, d.mean() + half
        x = ok["test_mse"].to_numpy()
        for suffix, v in (("", x), ("_u", x[~collapsed])):
            if len(v) < 2:
                out[f"pi_low{suffix}"] = out[f"pi_high{suffix}"] = np.nan
                continue
            half = stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) * np.sqrt(1 + 1 / len(v))
            out[f"pi_low{suffix}"], out[f"pi_high{suffix}"] = v.mean() - half, v.mean() + half
        out["published"], out["n"], out["n_div"] = r["published_test_mse"], len(g), len(g) - len(ok)
        rows.append(out)
    df = pd.DataFrame(rows)
    for name in ("mean", "ols", "best"):
        df[f"vs_{name}_p_holm"] = df.groupby(["protocol", "dataset"])[f"vs_{name}_p"].transform(_holm)
    return df


def _verdict(r):
    if np.isnan(r["published"]):
        if r["n_div"] == r["n"]:
            return f"reproduced ({r['n_div']}/{r['n']} diverged)"
        return f"partly ({r['n_div']}/{r['n']} diverged)" if r["n_div"] else "not-reproduced (no run diverged)"
    pub, lo, hi = r["published"], r["pi_low"], r["pi_high"]
    if np.isnan(lo):
        return "not-comparable (fewer than 2 runs finished)"
    if lo <= pub <= hi:
        better = r["vs_mean_diff"] < 0 and r["vs_mean_p_holm"] < 0.05
        inside = r["pi_low_u"] <= pub <= r["pi_high_u"]
        return "reproduced" if better and inside else "reproduced-at-constant-level"
    return f"ours-lower by {pub - hi:.3f}" if pub > hi else f"ours-higher by {lo - pub:.3f}"


def test_the_committed_table_recomputes_from_the_committed_runs(committed):
    table, runs, base = committed
    ours = _recompute(table, runs, base)
    t = table[table["kind"] == "setting"].reset_index(drop=True)
    assert len(t) == len(ours) > 0
    assert (t["n_collapsed"].to_numpy() == ours["n_collapsed"].to_numpy()).all()
    for name in ("mean", "ols", "best"):
        for stat in ("diff", "p", "p_holm", "ci_low", "ci_high"):
            np.testing.assert_allclose(t[f"vs_{name}_{stat}"], ours[f"vs_{name}_{stat}"],
                                       rtol=RTOL, atol=1e-12, err_msg=f"vs_{name}_{stat}")
    np.testing.assert_allclose(t["test_mse_pi_low"], ours["pi_low"], rtol=RTOL, atol=1e-12)
    np.testing.assert_allclose(t["test_mse_pi_high"], ours["pi_high"], rtol=RTOL, atol=1e-12)
    assert list(t["verdict"]) == [_verdict(r) for _, r in ours.iterrows()]


def test_the_committed_baselines_are_the_table_s_baseline_rows(committed):
    table, _, base = committed
    rows = table[table["kind"] == "baseline"].set_index(["setting", "dataset"])
    means = base.groupby(["setting", "dataset"])["test_mse"].mean()
    np.testing.assert_allclose(rows.loc[means.index, "test_mse_mean"], means, rtol=RTOL)
    assert set(base["seed"]) == set(range(int(table["n_seeds"].max())))
