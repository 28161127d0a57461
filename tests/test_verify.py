"""`ffnbench verify`: fresh results against committed ones, cell by cell."""
import shutil
from pathlib import Path

import pandas as pd
import pytest

from ffnbench import cli
from ffnbench.commands import verify

RESULTS = Path(__file__).resolve().parents[1] / "results"


@pytest.fixture
def trees(tmp_path):
    """(new, committed): committed holds the real table.csv/.md; new starts as a copy."""
    new, ref = tmp_path / "new", tmp_path / "ref"
    for d in (new, ref):
        d.mkdir()
        for name in ("table.csv", "table.md"):
            shutil.copy(RESULTS / name, d / name)
    return new, ref


def _edit_csv(path, row, column, value):
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    df.loc[row, column] = value
    df.to_csv(path, index=False)
    return df.loc[row]


def test_identical_trees_match(trees, capsys):
    assert cli.main(["verify", *map(str, trees)]) == 0
    out = capsys.readouterr().out
    assert "match     table.csv" in out and "derived   table.md" in out
    assert "all 2 file(s) in common match" in out


def test_one_edited_number_fails_naming_the_cell(trees, capsys):
    new, ref = trees
    row = _edit_csv(new / "table.csv", 3, "test_mse_mean", "0.5")
    assert cli.main(["verify", str(new), str(ref)]) == 1
    out = capsys.readouterr().out
    assert "MISMATCH  table.csv" in out
    assert f"setting={row['setting']}, column test_mse_mean: 0.5 here" in out
    assert "MISMATCH  table.md" in out  # derived from the bad CSV
    assert out.splitlines()[-1].startswith("verify: 2 file(s) differ")


def test_timing_columns_are_shown_not_compared(trees, capsys):
    new, ref = trees
    _edit_csv(new / "table.csv", 0, "seconds_total", "123.0")
    assert cli.main(["verify", str(new), str(ref), "--timings"]) == 0
    assert "seconds_total: 123.0 here" in capsys.readouterr().out


def test_a_subset_run_is_checked_against_its_rows_only(trees, capsys):
    new, ref = trees
    df = pd.read_csv(new / "table.csv", dtype=str, keep_default_na=False)
    df[df["setting"].isin(["7", "8"])].to_csv(new / "table.csv", index=False)
    assert cli.main(["verify", str(new), str(ref)]) == 0
    assert f"{len(df[df['setting'].isin(['7', '8'])])} of {len(df)} committed rows" in capsys.readouterr().out
    sub = pd.read_csv(new / "table.csv", dtype=str, keep_default_na=False)
    _edit_csv(new / "table.csv", len(sub) - 1, "test_mae_mean", "9")
    assert cli.main(["verify", str(new), str(ref)]) == 1


def test_rows_not_committed_are_reported_and_a_missing_column_fails(tmp_path, capsys):
    new, ref = tmp_path / "new", tmp_path / "ref"
    new.mkdir(), ref.mkdir()
    (ref / "x.csv").write_text("backend,n,ms_median\nnumpy,3,1.0\nnumba,3,2.0\ntorch,3,9.0\n")
    (new / "x.csv").write_text("backend,n,ms_median,extra\nnumpy,3,5.0,1\nc,3,0.1,1\n")
    assert cli.main(["verify", str(new), str(ref)]) == 0  # a partial run
    out = capsys.readouterr().out
    assert "1 of 3 committed rows" in out and "1 row(s) not in the committed file" in out
    (new / "x.csv").write_text("backend,n,ms_median\nnumpy,3,5.0\nc,3,0.1\nnumba,3,2.0\n")
    assert cli.main(["verify", str(new), str(ref)]) == 1  # as many rows as committed: must match
    assert "row backend=c: not in the committed file" in capsys.readouterr().out
    (new / "x.csv").write_text("backend,ms_median\nnumpy,5.0\n")
    assert cli.main(["verify", str(new), str(ref)]) == 1
    assert "columns missing here: n" in capsys.readouterr().out


def test_numbers_within_tolerance_text_exact_nan_equal_roundoff_bounded():
    assert verify.cells_equal("0.444311", "0.4443110000001")
    assert not verify.cells_equal("0.444311", "0.444321")
    assert verify.cells_equal("nan", "NaN") and not verify.cells_equal("nan", "0.1")
    assert not verify.cells_equal("reproduced", "ours lower by 0.1")
    assert not verify.cells_equal("", "0")
    assert verify.cells_equal("3e-15", "8e-15", "max_dw_vs_reference")
    assert not verify.cells_equal("3e-15", "2e-9", "max_dw_vs_reference")


def test_timing_column_names():
    for c in ("seconds_total", "ms_median", "us_per_sample", "gflops", "pct_peak", "pct_bound",
              "rate_forward_ns",
              "speedup_vs_python", "warmup_s", "seconds_per_epoch_median"):
        assert verify.is_timing(c), c
    for c in ("n_samples", "test_mse_sd", "same_weights", "n_weights", "epochs_median"):
        assert not verify.is_timing(c), c


def test_key_grows_until_rows_are_unique():
    ref = pd.DataFrame({"backend": ["a", "a", "b"], "hidden": ["1", "2", "1"], "ms": ["1", "2", "3"],
                        "mse": ["0.1", "0.2", "0.3"]})
    assert verify.row_key("speed.csv", ref) == ["backend", "hidden"]
    assert verify.row_key("other.csv", ref) == ["backend", "hidden"]


def test_markdown_without_csv_masks_only_timings(tmp_path, capsys):
    new, ref = tmp_path / "new", tmp_path / "ref"
    new.mkdir(), ref.mkdir()
    text = ("# Runs\n\nTook 12.5 s on this machine.\n\n| run | test MSE | ms/epoch |\n|---|---|---|\n"
            "| a | 0.444 | 3.1 |\n")
    (ref / "summary.md").write_text(text)
    (new / "summary.md").write_text(text.replace("12.5 s", "20.1 s").replace("3.1 |", "4.7 |"))
    assert cli.main(["verify", str(new), str(ref)]) == 0
    (new / "summary.md").write_text(text.replace("# Runs", "# Runs of 5 seed(s)").replace("Took", "Took 5 seed(s)"))
    (ref / "summary.md").write_text(text.replace("# Runs", "# Runs of 3 seed(s)").replace("Took", "Took 5 seed(s)"))
    assert cli.main(["verify", str(new), str(ref)]) == 1  # a count is not a timing
    (ref / "summary.md").write_text(text)
    (new / "summary.md").write_text(text.replace("0.444", "0.445"))
    assert cli.main(["verify", str(new), str(ref)]) == 1
    assert "line 7, column 'test MSE': '0.445' here, '0.444' committed" in capsys.readouterr().out


def test_nothing_in_common_fails_and_bad_directories_are_one_line(tmp_path, capsys):
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    (tmp_path / "a" / "x.csv").write_text("k,v\n1,2\n")
    assert cli.main(["verify", str(tmp_path / "a"), str(tmp_path / "b")]) == 1
    assert "nothing was checked" in capsys.readouterr().out
    assert cli.main(["verify", str(tmp_path / "nope"), str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a directory" in err


def test_strict_demands_every_committed_row(trees, capsys):
    new, ref = trees
    df = pd.read_csv(new / "table.csv", dtype=str, keep_default_na=False)
    df.drop(index=3).to_csv(new / "table.csv", index=False)  # one committed row lost
    assert cli.main(["verify", str(new), str(ref)]) == 0  # a partial rerun may lack it
    assert cli.main(["verify", "--strict", str(new), str(ref)]) == 1
    assert "1 committed row(s) missing here" in capsys.readouterr().out


def test_expect_fails_on_a_file_the_run_should_have_made(trees, capsys):
    new, ref = trees
    assert cli.main(["verify", "--expect", "table.csv", str(new), str(ref)]) == 0
    code = cli.main(["verify", "--expect", "table.csv,methods.csv", str(new), str(ref)])
    out = capsys.readouterr().out
    assert code == 1 and "MISMATCH  methods.csv: expected from this run" in out


def test_json_is_one_parsable_object(trees, capsys):
    import json
    new, ref = trees
    _edit_csv(new / "table.csv", 0, "test_mse_mean", "9.99")
    code = cli.main(["verify", "--json", str(new), str(ref)])
    report = json.loads(capsys.readouterr().out)
    assert code == 1 and report["ok"] is False
    assert {f["path"]: f["status"] for f in report["files"]}["table.csv"] == "MISMATCH"


def test_family_corrected_cells_are_checked_only_in_a_whole_run(trees, capsys):
    """A table of two settings corrects its p-values over those two: a partial run shows its
    Holm p and verdicts but cannot be held to the committed ones; a whole run is."""
    new, ref = trees
    df = pd.read_csv(new / "table.csv", dtype=str, keep_default_na=False)
    i = df.index[df["setting"] == "7"][0]
    _edit_csv(new / "table.csv", i, "vs_ols_p_holm", "0.0123")
    assert cli.main(["verify", str(new), str(ref)]) == 1  # whole: every cell counts
    assert "column vs_ols_p_holm: 0.0123 here" in capsys.readouterr().out
    part = pd.read_csv(new / "table.csv", dtype=str, keep_default_na=False)
    part[part["setting"].isin(["7", "8"])].to_csv(new / "table.csv", index=False)
    assert cli.main(["verify", str(new), str(ref)]) == 0
    out = capsys.readouterr().out
    assert "corrected over their family not compared in a partial run" in out and "vs_ols_p_holm" in out
    _edit_csv(new / "table.csv", 0, "test_mse_mean", "9")  # everything else still counts
    assert cli.main(["verify", str(new), str(ref)]) == 1
