"""--dtype float32 beside float64: the option, its validation and refusals, the cache key,
float32 training against torch's float32 on the wine data, and compare's dtype groups.
(The common checks' float32 cases and check_float32 run in test_backends.py.)"""
import numpy as np
import pandas as pd
import pytest

from ffnbench import cli, impls
from ffnbench.core import harness
from ffnbench.core.config import TrainConfig
from ffnbench.core.errors import UserError
from ffnbench.impls import checks
from ffnbench.parser import build_parser
from ffnbench.report import compare as report
from ffnbench.run import cache
from ffnbench.studies import speed

from conftest import max_weight_diff, subset

FLOAT32 = [n for n in impls.BACKENDS if "float32" not in dict(impls.declaration(n).refuses)]


def test_the_float32_backends_are_the_engines_with_a_float32():
    assert FLOAT32 == ["numpy", "numba", "torch", "jax", "c", "sklearn"]


def test_train_and_compare_take_the_dtype_options():
    parser = build_parser()
    assert parser.parse_args(["train"]).dtype == "float64"
    assert parser.parse_args(["train", "--dtype", "float32"]).dtype == "float32"
    assert parser.parse_args(["compare"]).dtypes == "float64"
    assert parser.parse_args(["compare", "--dtypes", "float64,float32"]).dtypes == "float64,float32"


def test_a_bad_dtype_is_one_line_and_exit_2(capsys):
    with pytest.raises(UserError, match=r"^unknown dtype 'float16' \(choose from float64, float32\)$"):
        TrainConfig(dtype="float16")
    assert cli.main(["train", "--dtype", "float16"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "float16" in err, err
    assert TrainConfig(dtype="float32").hp.dtype == "float32"
    assert TrainConfig().hp.dtype == impls.HyperParams("tanh", 0.1, 0.0).dtype == "float64"


def test_a_sweep_grid_and_runs_csv_know_the_dtype():
    from ffnbench.run import runs
    from ffnbench.studies import sweep
    assert "dtype" in sweep.KEYS and "dtype" in runs.CONFIG_COLUMNS


def test_float32_runs_never_share_a_cache_entry_with_float64():
    f64, f32 = TrainConfig(), TrainConfig(dtype="float32")
    assert cache.key_fields(f32)["config"]["dtype"] == "float32"
    assert cache.cache_key(f64, code="x") != cache.cache_key(f32, code="x")


@pytest.mark.parametrize("dataset, hidden, activation, batch_size",
                         [("red", (50, 30, 20, 10, 5), "tanh", 1), ("white", (10,), "relu", 16)],
                         ids=str)
def test_float32_on_the_wine_data_agrees_with_torch_float32(dataset, hidden, activation, batch_size):
    """3 epochs from the harness on 200 wine samples: every float32 backend ends within the
    float32 tolerance of torch's float32 weights, which are float32 numbers, not float64's."""
    cfg = dict(dataset=dataset, hidden=hidden, activation=activation, lr=0.01, l2=0.1, epochs=3,
               patience=0, seed=1, batch_size=batch_size)
    prepared = subset(harness.prepare(TrainConfig(**cfg)), 200)
    ref = harness.train(TrainConfig(backend="torch", dtype="float32", **cfg), prepared)[1]
    ref64 = harness.train(TrainConfig(backend="torch", **cfg), prepared)[1]
    updates = 3 * -(-200 // batch_size)
    tol = checks.float32_tolerance(updates, checks.max_abs(ref))
    assert 0 < max_weight_diff(ref, ref64) <= tol  # float32 changes the arithmetic, within it
    for name in (n for n in FLOAT32 if n != "torch"):
        result, w = harness.train(TrainConfig(backend=name, dtype="float32", **cfg), prepared)
        assert result["config"]["dtype"] == "float32"
        assert all(np.array_equal(A.astype(np.float32), A) for W, b in w for A in (W, b)), name
        assert max_weight_diff(w, ref) <= tol, (name, max_weight_diff(w, ref), tol)


def test_the_float32_tolerance_grows_with_the_root_of_the_updates_and_the_weights():
    t = checks.float32_tolerance(100, 0.5)
    assert t == pytest.approx(checks.C32 * 2.0 ** -23 * 10)
    assert checks.float32_tolerance(400, 0.5) == pytest.approx(2 * t)
    assert checks.float32_tolerance(100, 3.0) == pytest.approx(3 * t)


@pytest.fixture(scope="module")
def rows():
    return speed.run_cases(["numpy", "torch"], [(3,)], ["red"], [1], repeat=1,
                           peak={"float64": 10.0, "float32": 20.0},
                           dtypes=("float64", "float32"))


def test_compare_gives_both_dtypes_each_against_its_own_reference_and_peak(rows):
    assert list(zip(rows["backend"], rows["dtype"])) == [
        ("numpy", "float64"), ("torch", "float64"), ("numpy", "float32"), ("torch", "float32")]
    assert rows["same_weights"].all() and (rows["reference"] == "torch").all()
    f64, f32 = rows[rows["dtype"] == "float64"], rows[rows["dtype"] == "float32"]
    assert (f64["same_weights_tol"] == speed.SAME_WEIGHTS_TOL).all()
    assert (f32["same_weights_tol"] > 1e-5).all() and f32["max_dw_vs_reference"].max() > 1e-12
    assert f64["max_dw_vs_reference"].max() <= 1e-12
    assert (f32["pct_peak"] == 100 * f32["gflops"] / 20.0).all()
    assert (f64["pct_peak"] == 100 * f64["gflops"] / 10.0).all()
    assert f32["speedup_vs_float64"].tolist() == pytest.approx(
        (f64["ms_median"].to_numpy() / f32["ms_median"].to_numpy()).tolist())
    assert f64["speedup_vs_float64"].isna().all() and f32["pct_bound"].isna().all()


def test_compares_report_has_a_section_per_dtype(rows):
    env = {"cpu": "test", "python": "3", "numpy": "x", "numba": "x", "torch": "x", "threads": 1,
           "peak_gflops": 10.0, "peak_gflops_float32": 20.0, "jax": "x", "cc": None, "gpu": None}
    text = report.markdown(rows, None, env)
    assert "## red wine, batch size 1, float64 (" in text and "## red wine, batch size 1, float32 (" in text
    assert "| × float64 |" in text and "float32 peak" in text and "In float32, all ended" in text
    one = report.markdown(rows[rows["dtype"] == "float64"], None, env)  # the default: as before
    assert "## red wine, batch size 1 (" in one and "float64 |" not in one and "In float32" not in one
    assert "All backends ended with the same weights (max |dW| against the reference" in one


def test_compare_cli_leaves_out_who_refuses_float32(tmp_path, capsys):
    code = cli.main(["compare", "--backends", "numpy,python", "--dtypes", "float64,float32",
                     "--hidden", "3", "--datasets", "red", "--batch-sizes", "1", "--repeat", "1",
                     "--no-scaling", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 0 and "no float32 rows: backend 'python' cannot express --dtype float32" in err, err
    df = pd.read_csv(tmp_path / "speed.csv")
    assert list(zip(df["backend"], df["dtype"])) == [("numpy", "float64"), ("python", "float64"),
                                                      ("numpy", "float32")]
    assert df["same_weights"].all()
    assert "float32 peak" in (tmp_path / "speed.md").read_text()


@pytest.mark.parametrize("argv, message", [
    (["--dtypes", "float64,float16"], "unknown 'float16'"),
    (["--backends", "python", "--dtypes", "float32"], "--dtypes float32: no backend of python"),
])
def test_bad_dtypes_are_one_line_and_write_nothing(tmp_path, capsys, argv, message):
    code = cli.main(["compare", "--out", str(tmp_path), *argv])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1, err
    assert list(tmp_path.iterdir()) == []


def test_verify_holds_a_float32_row_to_its_own_round_off_bound():
    from ffnbench.commands import verify
    f32, old = pd.Series({"same_weights_tol": "0.0001"}), pd.Series({"backend": "numpy"})
    bound = verify.roundoff_bound("max_dw_vs_reference", f32, f32)
    assert bound == 1e-4 and verify.cells_equal("3e-05", "5e-05", "max_dw_vs_reference", bound)
    assert not verify.cells_equal("3e-05", "5e-05", "max_dw_vs_reference")  # float64's 1e-10
    assert verify.roundoff_bound("max_dw_vs_reference", f32, old) is None  # committed before
    assert verify.roundoff_bound("test_mse", f32, f32) is None


def test_the_float32_checks_catch_a_backend_that_is_slightly_wrong(monkeypatch):
    """1e-4 off is far beyond float32's round-off here (~1e-5): the float32 case fails; and a
    backend that ignores the dtype (float64 weights) fails check_float32."""
    numpy_ffn = impls.load("numpy")
    real = numpy_ffn.to_numpy
    case = checks.float32_cases()[0]
    checks.check_same_as_reference("numpy", case)
    monkeypatch.setattr(numpy_ffn, "to_numpy", lambda s: [(W + 1e-4, b) for W, b in real(s)])
    with pytest.raises(AssertionError, match=f"{case.id}: max \\|dW\\| against torch"):
        checks.check_same_as_reference("numpy", case)
    monkeypatch.undo()
    real_from = numpy_ffn.from_numpy
    monkeypatch.setattr(numpy_ffn, "from_numpy",
                        lambda p, hp, device="cpu": real_from(p, hp._replace(dtype="float64"), device))
    with pytest.raises(AssertionError, match="float32: from_numpy -> to_numpy"):
        checks.check_float32("numpy")
