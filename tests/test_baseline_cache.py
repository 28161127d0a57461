"""The baselines are cached like runs: a rerun fits nothing and gives the same frame, the key
follows what decides their numbers, a damaged entry is set aside and refitted."""
import json

import pandas as pd
import pytest

from ffnbench.run import executors
from ffnbench.run.cache import Cache, _digest
from ffnbench.studies import baselines


def _compute(cache_dir, **kw):
    return baselines.compute(("red",), 2, "random", executors.InlineExecutor(), Cache(cache_dir),
                             progress=False, **kw)


@pytest.fixture
def no_fit(monkeypatch):
    """After this fixture is used, any baseline fit fails the test."""
    def arm():
        baselines._baseline_rows.cache_clear()
        monkeypatch.setattr(baselines, "_baseline_rows",
                            lambda *a: pytest.fail(f"baselines {a} fitted again"))
    return arm


def test_a_rerun_reads_every_baseline_from_the_cache(tmp_path, no_fit):
    first = _compute(tmp_path)
    assert len(list((tmp_path / "baselines").glob("*.json"))) == 2  # one per dataset and seed
    assert first.equals(pd.concat([baselines.baseline_runs(("red",), 2)], ignore_index=True))
    no_fit()
    again = _compute(tmp_path)
    pd.testing.assert_frame_equal(first, again, check_exact=True)


def test_the_key_follows_the_fits_the_split_and_the_code(tmp_path, monkeypatch):
    job = baselines.Job("red", 0)
    key = baselines.KIND.fields(job)
    assert baselines.KIND.fields(baselines.Job("red", 1)) != key
    assert baselines.KIND.fields(baselines.Job("red", 0, split="grouped")) != key
    assert baselines.KIND.fields(baselines.Job("red", 0, strong=False)) != key
    monkeypatch.setattr(baselines, "strong_baselines", dict)  # scikit-learn missing
    assert baselines.KIND.fields(job) != key
    monkeypatch.undo()
    from ffnbench.run import cache
    cache.study_fingerprint.cache_clear()
    monkeypatch.setattr(cache, "_version", lambda package: "0.0-other")
    try:
        assert baselines.KIND.fields(job) != key  # another numpy or scikit-learn
    finally:
        monkeypatch.undo()
        cache.study_fingerprint.cache_clear()


@pytest.mark.parametrize("damage", ["edit a number", "other rows", "not json"])
def test_a_damaged_baseline_entry_is_set_aside_and_refitted(tmp_path, damage):
    first = _compute(tmp_path)
    path = sorted((tmp_path / "baselines").glob("*.json"))[0]
    if damage == "not json":
        path.write_text("{")
    else:
        entry = json.loads(path.read_text())
        rows = entry["result"]["rows"]
        if damage == "edit a number":
            rows[1]["test_mse"] += 0.01
        else:  # re-signed: only the check of the rows themselves can see it
            entry["result"]["rows"] = rows[:1]
            fields = {k: entry[k] for k in ("baselines", "version", "code")}
            entry["sha256"] = _digest(fields, entry["result"])
        path.write_text(json.dumps(entry))
    with pytest.warns(UserWarning, match="set aside"):
        again = _compute(tmp_path)
    pd.testing.assert_frame_equal(first, again, check_exact=True)
    assert len(list((tmp_path / "baselines" / "invalid").iterdir())) == 1
