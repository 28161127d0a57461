"""The equal contest: folds that partition training + validation (whole duplicate groups on
the grouped split), the same procedure for every family, paired comparisons by seed."""
import numpy as np
import pandas as pd
import pytest

pytest.importorskip("sklearn")

from ffnbench import cli  # noqa: E402
from ffnbench.core import data  # noqa: E402
from ffnbench.report import contest as report  # noqa: E402
from ffnbench.studies import contest, stats  # noqa: E402


@pytest.mark.parametrize("split", ["random", "grouped"])
def test_folds_partition_the_pool_and_keep_groups_whole(split):
    X, y, _ = data.load("red")
    groups = data.duplicate_groups(X, y) if split == "grouped" else None
    train, val, _ = data.split(len(y), 3, groups=groups)
    pool = np.concatenate([train, val])
    folds = contest._folds(pool, groups, 3)
    checks = [check for _, check in folds]
    assert sorted(np.concatenate(checks).tolist()) == sorted(pool.tolist())
    for fit, check in folds:
        assert not set(fit) & set(check) and len(fit) + len(check) == len(pool)
        if groups is not None:
            assert not set(groups[fit]) & set(groups[check])
    assert max(map(len, checks)) - min(map(len, checks)) < 0.1 * len(pool)


TINY = {"FFN": [dict(hidden=(3,), l2=0.0), dict(hidden=(5,), l2=1e-3)],
        "random forest": [dict(max_features=0.5, min_samples_leaf=1, n_estimators=5)],
        "gradient boosting": [dict(max_depth=2, learning_rate=0.1, max_iter=10)]}


def test_the_contest_tunes_every_family_alike_and_compares_by_seed(tmp_path, monkeypatch):
    monkeypatch.setattr(contest, "CANDIDATES", TINY)
    monkeypatch.setattr(report, "CANDIDATES", TINY)
    monkeypatch.setattr(contest, "MAX_EPOCHS", 4)  # every fold run reaches the cap
    out = tmp_path / "c"
    assert cli.main(["contest", "--seeds", "2", "--datasets", "red", "--jobs", "1", "--out",
                     str(out), "--cache-dir", str(tmp_path / "cache"), "-q"]) == 0
    df = pd.read_csv(out / "contest.csv")
    assert len(df) == 2 * 2 * 3 and set(df["family"]) == set(TINY)
    ffn = df[df["family"] == "FFN"]
    assert (ffn["fold_runs"] == 2 * contest.FOLDS).all() and (ffn["fold_runs_capped"] == 6).all()
    trees = df[df["family"] != "FFN"]
    assert (ffn["epochs"] <= 4).all() and np.isfinite(ffn["test_mse"]).all()
    assert trees["test_mse"].between(0.2, 1.0).all()  # a sane model on red wine
    one = df[(df["split"] == "grouped")].pivot(index="seed", columns="family", values="test_mse")
    c = report.comparisons(df)
    row = c[(c["split"] == "grouped") & (c["versus"] == "random forest")].iloc[0]
    assert row["diff"] == pytest.approx((one["FFN"] - one["random forest"]).mean())
    assert c["p_holm"].tolist() == pytest.approx(stats.holm(c["p"].to_numpy()).tolist())
    text = (out / "contest.md").read_text()
    assert "4-epoch cap: 24 of 24 (100.0 %)" in text and "| red | grouped | random forest |" in text
    # a rerun is read from the cache
    monkeypatch.setattr(contest, "run_unit", lambda unit: pytest.fail("trained again"))
    assert cli.main(["contest", "--seeds", "2", "--datasets", "red", "--jobs", "1", "--out",
                     str(tmp_path / "again"), "--cache-dir", str(tmp_path / "cache"), "-q"]) == 0
    assert (tmp_path / "again" / "contest.csv").read_text() == (out / "contest.csv").read_text()


def test_one_seed_is_refused_in_one_line(tmp_path, capsys):
    assert cli.main(["contest", "--seeds", "1", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--seeds must be at least 2" in err
