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
