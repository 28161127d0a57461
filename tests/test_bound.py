"""ffnbench.studies.bound: the per-sample work, counted by hand, and the micro-kernels' arithmetic."""
import numpy as np
import pytest

from ffnbench.studies import bound, speed


def test_work_counts_every_weight_and_no_delta_for_the_inputs():
    w = bound.work((11, 10, 1))
    assert (w["weights"], w["biases"]) == (120, 11)
    assert (w["fma_forward"], w["fma_backward"], w["flops_update"]) == (120, 10, 360)
    assert (w["weight_loads"], w["weight_stores"]) == (240, 120)
    assert bound.work((11, 50, 30, 20, 10, 5, 1))["weights"] == 550 + 1500 + 600 + 200 + 50 + 5


def test_bound_adds_both_passes_over_every_weight():
    rates = {"forward_ns": 0.25, "backward_update_ns": 0.5}
    assert bound.per_sample_bound((11, 10, 1), rates) == pytest.approx(120 * 0.75e-9)


def test_micro_kernels_do_the_arithmetic_they_time():
    rng = np.random.default_rng(1)
    rows, width = 6, 5
    T, a, d, u = rng.random(rows * width), rng.random(rows), rng.random(width), rng.random(rows)
    z = np.zeros(width)
    bound._forward_stream(T, a, z, rows, width, 2)
    assert z == pytest.approx(2 * a @ T.reshape(rows, width), rel=1e-14)
    W, out = T.reshape(rows, width).copy(), np.zeros(rows)
    bound._backward_stream(T, d, u, out, rows, width, 1)
    assert out == pytest.approx(W @ d, rel=1e-14)
    assert T.reshape(rows, width) == pytest.approx(W * (1 - 1e-9) - np.outer(u, d), rel=1e-14)
    bound._dot_chain(T, d, out, rows, width, 1)
    assert out == pytest.approx(T.reshape(rows, width) @ d, rel=1e-14)


def test_compare_reports_the_bound_for_per_sample_rows_only():
    rows = speed.run_cases(["numba", "c"], [(5,)], ["red"], [1, 64], repeat=1, peak=10.0)
    one, batch = rows[rows["batch_size"] == "1"], rows[rows["batch_size"] == "64"]
    b = speed.per_sample_bound([(np.zeros((5, 11)), np.zeros(5)), (np.zeros((1, 5)), np.zeros(1))])
    assert one["bound_us_per_sample"].tolist() == pytest.approx([1e6 * b] * 2)
    assert one["pct_bound"].tolist() == pytest.approx(
        (100 * b * one["n_samples"] / (one["ms_median"] / 1e3)).tolist())
    assert batch["pct_bound"].isna().all()


def test_operands_start_on_a_cache_line():
    for rows, width in ((3, 5), (64, 128)):
        for a in bound._operands(rows, width):
            assert a.ctypes.data % 64 == 0


def test_the_bound_adds_every_hidden_neuron_s_activation():
    rates = {"forward_ns": 0.25, "backward_update_ns": 0.5}
    assert bound.per_sample_bound((11, 10, 5, 1), rates, activation_ns=2.0) == pytest.approx(
        (110 + 50 + 5) * 0.75e-9 + (10 + 5) * 2e-9)  # the linear output neuron costs nothing


@pytest.mark.parametrize("kind, f, df", [
    ("tanh", np.tanh, lambda a: 1 - a * a),
    ("sigmoid", lambda z: 1 / (1 + np.exp(-z)), lambda a: a * (1 - a)),
    ("relu", lambda z: np.maximum(z, 0), lambda a: (a > 0).astype(float))])
def test_the_activation_rates_time_the_activation_and_its_derivative(kind, f, df):
    z = np.linspace(-3, 3, 101)
    a, d = np.empty_like(z), np.empty_like(z)
    bound._activation_passes(kind, z, a, d)()
    assert a == pytest.approx(f(z), rel=1e-14) and d == pytest.approx(df(f(z)), rel=1e-12)
    assert bound.activation_rates(n=64, repeat=1)[kind] > 0


def test_numpy_s_floor_counts_the_calls_of_its_loop():
    """impls/numpy_ffn.py's _sgd_epoch per sample on L layers: L forward dgemv, L - 1
    activations, 1 subtract, 2 ufuncs of f', L - 1 backward dgemv, L dger, L - 1 multiplies."""
    rows = bound.numpy_calls((11, 50, 30, 20, 10, 5, 1), repeat=1, number=3)
    assert [r["per_sample"] for r in rows] == [6, 5, 1, 2, 5, 6, 5]
    assert all(r["us_per_call"] > 0 for r in rows)
    assert sum(r["per_sample"] for r in bound.numpy_calls((11, 10, 1), repeat=1, number=3)) == 10


def test_the_command_puts_every_backend_and_numpy_s_floor_against_the_bound(tmp_path, monkeypatch):
    import pandas as pd
    from ffnbench import cli, impls
    from ffnbench.core import config
    monkeypatch.setattr(config, "NETS", ((3,),))
    monkeypatch.setattr(bound, "NETS", ((3,),))
    assert cli.main(["bound", "--out", str(tmp_path), "--repeat", "1", "-q"]) == 0
    times = pd.read_csv(tmp_path / "bound_backends.csv")
    available = [b for b in impls.BACKENDS if impls.unavailable(b) is None]
    assert times["backend"].tolist() == available and set(times["hidden"].astype(str)) == {"3"}
    assert times["overhead_us_per_sample"].tolist() == pytest.approx(
        (times["us_per_sample"] - times["bound_us_per_sample"]).tolist(), rel=1e-4)  # 6 digits
    nets = pd.read_csv(tmp_path / "bound.csv")  # one bound per net in one report
    assert times["bound_us_per_sample"].tolist() == pytest.approx(
        nets["bound_us"].tolist() * len(times), rel=1e-5)
    assert nets["bound_us"].iloc[0] == pytest.approx(
        nets["weights_us"].iloc[0] + nets["activations_us"].iloc[0], rel=1e-4)  # 6 digits each
    assert nets["net_shapes_us"].iloc[0] > nets["activations_us"].iloc[0] > 0
    text = (tmp_path / "bound.md").read_text()
    assert "| 3 | numpy |" in text and "10 calls per sample" in text and "tanh µs" in text
    assert cli.main(["bound", "--out", str(tmp_path / "x"), "--repeat", "0"]) == 2

