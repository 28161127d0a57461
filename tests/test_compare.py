"""`ffnbench compare`: same work, same weights, honest arithmetic; never asserts on time."""
import re

import numpy as np
import pandas as pd
import pytest

from ffnbench import cli, impls
from ffnbench.core.config import TrainConfig
from ffnbench.core.errors import UserError
from ffnbench.report import compare as report
from ffnbench.run import machine
from ffnbench.studies import speed


@pytest.fixture(scope="module")
def rows():
    return speed.run_cases(["numpy", "numba", "python", "jax", "c"], [(5,)], ["red"], [1, 64],
                           repeat=2, peak=10.0)


def test_every_case_ends_with_the_same_weights(rows):
    assert len(rows) == 10 and rows["same_weights"].all()
    assert (rows["reference"] == "numpy").all() and rows["max_dw_vs_reference"].max() <= 1e-12
    assert (rows["device"] == "cpu").all()


def test_times_c_is_each_time_over_the_c_backends(rows):
    for _, g in rows.groupby("batch_size"):
        c = g[g["backend"] == "c"]["ms_median"].iloc[0]
        assert g["times_c"].tolist() == pytest.approx((g["ms_median"] / c).tolist())
    assert "| % peak | % bound | × C |" in report.markdown(rows, None, _env())


def test_timed_epochs_and_warm_up_end_after_the_device_is_done(monkeypatch):
    """The clock stops only after synchronize(state): on a GPU, or with JAX's asynchronous
    dispatch, train_epoch returns before the work is done (checked here on the CPU)."""
    from ffnbench.core import harness
    events = []

    class Fake:
        def from_numpy(self, params, hp, device):
            return {}

        def train_epoch(self, state, X, Y, order):
            events.append("train")

        def predict(self, state, X):
            events.append("predict")

        def synchronize(self, state):
            events.append("sync")

    monkeypatch.setattr(harness.time, "perf_counter", lambda: events.append("clock") or 0.0)
    harness.timed_epoch(Fake(), {}, None, None, None)
    assert events == ["clock", "train", "sync", "clock"]
    events.clear()
    harness.warm_up(Fake(), None, None, np.zeros((5, 1)), np.zeros((5, 1)), "cpu")
    assert events[0] == "clock" and events[-2:] == ["sync", "clock"]


def test_jax_synchronize_blocks_until_ready(monkeypatch):
    jax_ffn = impls.load("jax")
    waited = []
    monkeypatch.setattr(jax_ffn.jax, "block_until_ready", lambda x: waited.append(x) or x)
    state = jax_ffn.from_numpy([(np.ones((1, 1)), np.zeros(1))], impls.HyperParams("tanh", 0.1, 0.0))
    jax_ffn.synchronize(state)
    assert waited == [state["params"]]


def test_derived_columns_follow_from_the_median(rows):
    r = rows.iloc[0]
    n_weights = 5 * 11 + 5 + 5 + 1
    assert r["n_weights"] == n_weights and r["n_samples"] == int(0.7 * 1599)
    gflops = 6 * n_weights * r["n_samples"] / (r["ms_median"] / 1e3) / 1e9
    assert r["gflops"] == pytest.approx(gflops) and r["pct_peak"] == pytest.approx(10 * gflops)
    assert r["us_per_sample"] == pytest.approx(1e3 * r["ms_median"] / r["n_samples"])
    assert r["ms_min"] <= r["ms_median"] <= r["ms_max"]
    python = rows[(rows["backend"] == "python") & (rows["batch_size"] == "1")]["ms_median"].iloc[0]
    assert r["speedup_vs_python"] == pytest.approx(python / r["ms_median"])
    assert r["speedup_vs_torch"] is None
    assert r["backend"] == "numpy" and r["times_c"] > 0


def test_a_backend_that_computes_something_else_voids_the_comparison(monkeypatch):
    numpy_ffn = impls.load("numpy")
    real = numpy_ffn.to_numpy
    monkeypatch.setattr(numpy_ffn, "to_numpy", lambda s: [(W + 1e-6, b) for W, b in real(s)])
    df = speed.run_cases(["numba", "numpy"], [(3,)], ["red"], [1], repeat=1, peak=1.0)
    assert df["same_weights"].tolist() == [True, False]
    assert "comparison is void" in report.markdown(df, None, _env())


def _env():
    return {"cpu": "test", "python": "3", "numpy": "x", "numba": "x", "torch": "x",
            "threads": 1, "peak_gflops": 10.0, "jax": "x", "cc": None, "gpu": None}


def test_scaling_findings_name_the_crossing():
    scaling = pd.DataFrame({
        "backend": ["a"] * 3 + ["b"] * 3, "sweep": ["width"] * 6,
        "n_weights": [10, 100, 1000] * 2, "ms_median": [1.0, 1.0, 10.0, 0.1, 1.5, 100.0]})
    text = "\n".join(report.scaling_findings(scaling))
    assert "a and b cross between 10 and 100 weights (a becomes faster)" in text
    assert "| a | width | 0.00 | 1.00 |" in text


def test_peak_is_a_positive_rate():
    assert machine.measure_peak(n=64, repeat=2) > 0


def test_the_reference_peak_ignores_what_the_environment_forces(monkeypatch):
    """OPENBLAS_CORETYPE=Haswell on an AVX-512 CPU makes this process's OpenBLAS run AVX2
    kernels; the peak every % is against is measured with the kernels the library picks."""
    def kernels(**env):
        machine.reference_peak.cache_clear()
        for k in machine.FORCING:
            monkeypatch.delenv(k, raising=False)
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        got = machine.reference_peak(n=64, repeat=1)
        assert got["gflops"] > 0
        return got["blas"]
    try:
        assert kernels(OPENBLAS_CORETYPE="Haswell") == kernels() and "kernels" in kernels()
    finally:
        machine.reference_peak.cache_clear()


def test_the_theoretical_peak_reads_lanes_fma_and_clock(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\ncpu MHz\t\t: 2600.000\nflags\t\t: sse2 avx fma avx2 avx512f\n\n"
                    "processor\t: 1\n")
    got = machine.theoretical_peak(info)
    assert got["gflops"] == pytest.approx(8 * 2 * 2 * 2.6) and "avx512f" in got["how"]
    info.write_text("cpu MHz : 3000\nflags : sse2 avx\n")
    assert machine.theoretical_peak(info)["gflops"] == pytest.approx(4 * 2 * 3.0)
    assert machine.theoretical_peak(tmp_path / "none") is None


def test_the_report_names_both_kernels_and_the_theory():
    line = report.peak_line({**_env(), "peak_blas": "openblas 1, SkylakeX kernels as picked",
                             "blas_in_use": "openblas 1, Haswell kernels (OPENBLAS_CORETYPE=Haswell)",
                             "theoretical_gflops": 83.2, "theoretical_how": "avx512f: ..."})
    assert "10.0 GFLOP/s** with numpy's BLAS (openblas 1, SkylakeX" in line
    assert "used openblas 1, Haswell kernels" in line and "83.2 GFLOP/s" in line


def test_cli_writes_all_outputs(tmp_path, capsys):
    code = cli.main(["compare", "--backends", "numpy,numba", "--hidden", "4", "--datasets", "red",
                     "--batch-sizes", "1", "--repeat", "1", "--no-scaling", "--out", str(tmp_path)])
    assert code == 0
    df = pd.read_csv(tmp_path / "speed.csv")
    assert list(df["backend"]) == ["numpy", "numba"] and df["same_weights"].all()
    assert "single-core float64 peak" in (tmp_path / "speed.md").read_text().lower()
    assert (tmp_path / "figures" / "speed_backends.png").stat().st_size > 1000
    err = capsys.readouterr().err  # a numbered line per case, the time left from the second on
    cases = [line.split("]")[0].strip() for line in err.splitlines() if line.strip().startswith("[")]
    assert len(cases) == 2 and cases[0] == "[1/2" and re.fullmatch(r"\[2/2, ~\d+ s left", cases[1]), err


@pytest.mark.parametrize("argv, message", [
    (["--backends", "numpy,fortran"], "unknown 'fortran'"),
    (["--datasets", "red,,white"], "empty item"),
    (["--backends", "numpy,numpy"], "each may appear only once"),
    (["--datasets", "color"], "unknown 'color'"),
    (["--batch-sizes", "0"], "--batch-size must be at least 1"),
    (["--hidden", "10,,5"], "empty layer size"),
    (["--repeat", "0"], "--repeat and --threads must be at least 1"),
    (["--out", "/dev/null/speed"], "is not a directory"),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys, argv, message):
    code = cli.main(["compare", "--out", str(tmp_path), *argv])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_by_default_a_backend_that_cannot_run_here_is_left_out_and_named(tmp_path, capsys,
                                                                         monkeypatch):
    monkeypatch.setenv("CC", str(tmp_path / "no-such-cc"))
    monkeypatch.setattr(impls, "BACKENDS", {k: impls.BACKENDS[k] for k in ("numpy", "c")})
    code = cli.main(["compare", "--hidden", "3", "--datasets", "red", "--batch-sizes", "1",
                     "--repeat", "1", "--no-scaling", "--out", str(tmp_path)])
    assert code == 0 and "leaving out backend 'c' needs the program 'cc'" in capsys.readouterr().err
    assert list(pd.read_csv(tmp_path / "speed.csv")["backend"]) == ["numpy"]


def test_every_backends_memory_is_checked_not_only_the_first(monkeypatch):
    """compare prepares each case once, with the first backend: the others' own copies (pure
    Python's lists are ~5x numpy's arrays) must still be estimated before anything runs."""
    from ffnbench.core import memory
    real = memory.estimate_bytes
    monkeypatch.setattr(memory, "available_bytes",
                        lambda: 2 * real(TrainConfig(backend="numpy", hidden=(5,)), (11, 5, 1),
                                         {"train": 1119, "val": 239, "test": 241}))
    with pytest.raises(UserError, match="with python: training needs about"):
        speed.run_cases(["numpy", "python"], [(5,)], ["red"], [1], repeat=1, peak=1.0)


def test_a_missing_out_directory_is_made(tmp_path, capsys):
    out = tmp_path / "not" / "yet"
    code = cli.main(["compare", "--backends", "numpy,python", "--hidden", "3", "--datasets", "red",
                     "--batch-sizes", "1", "--repeat", "1", "--no-scaling", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 0 and (out / "speed.csv").is_file() and (out / "speed.md").is_file()
    assert f"wrote {out / 'speed.csv'}" in err  # it says where it wrote


def test_many_batch_sizes_give_one_figure_against_the_batch_size(tmp_path):
    df = speed.run_cases(["numpy", "numba"], [(3,)], ["red"], [1, 2, 4, 8], repeat=1, peak=1.0)
    paths = report.figures(df, None, tmp_path)
    assert [p.name for p in paths] == ["speed_batch.png"]
    few = report.figures(df[df["batch_size"].isin(["1", "8"])], None, tmp_path / "few")
    assert [p.name for p in few] == ["speed_backends.png"]
