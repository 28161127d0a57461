"""The C backend in float32: impls/c/ffn.c built a second time with -DFFN_REAL=float.

The common checks (tests/test_backends.py) already hold c's float32 to torch's float32 on
every case of checks.float32_cases (SGD and Adam, full batch, the quirks), and check_float32
checks the round trip, the float64 outputs and float32 against float64; tests/test_dtype.py
trains the wine data. Here: that the float build is float maths (no double arithmetic in
it, and a sum that only float rounds away), the two libraries side by side in the cache,
the state's arrays and float32 gradients."""
import ctypes
import subprocess

import numpy as np
import pytest

from ffnbench import impls
from ffnbench.impls import HyperParams, checks
from ffnbench.impls.checks import Case

c_ffn = pytest.importorskip("ffnbench.impls.c_ffn", exc_type=impls.BackendUnavailable)


def is_float32(params):
    """Every weight and bias a float32 number (held in float64 arrays, as to_numpy gives)."""
    return all(A.dtype == np.float64 and np.array_equal(A.astype(np.float32), A)
               for W, b in params for A in (W, b))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_source_compiles_without_a_float_widened_or_a_double_narrowed(dtype):
    """-Wdouble-promotion: no float is made a double (a bare 1.0 beside a float, exp() of
    math.h on a float); -Wfloat-conversion: no double becomes a float without a cast (the
    hyper-parameters are cast on purpose). As errors, with -Wall -Wextra."""
    out = subprocess.run([impls.find_tool("cc"), "-std=c99", "-fopenmp-simd", "-fsyntax-only",
                          "-Wall", "-Wextra", "-Wdouble-promotion", "-Wfloat-conversion", "-Werror",
                          f"-DFFN_REAL={c_ffn.REAL[dtype]}", str(c_ffn.SOURCE)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr


def test_float32_adds_in_float_and_float64_in_double():
    """z = 1 * 1 + 1 * 2^-24 + 2^-24: float rounds each sum back to 1 (a tie, to even);
    double gets 1 + 2^-23, itself a float32 number, so double maths rounded to float32 at
    the end would give it too."""
    params = [(np.array([[1.0, 1.0]]), np.array([2.0 ** -24]))]  # one layer: linear output
    X = np.array([[1.0, 2.0 ** -24]])
    for dtype, want in (("float32", 1.0), ("float64", 1.0 + 2.0 ** -23)):
        state = c_ffn.from_numpy(params, HyperParams("tanh", 0.1, 0.0, dtype=dtype))
        assert c_ffn.predict(state, X)[0, 0] == want, dtype


def test_each_dtype_has_its_library_and_both_stay_in_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FFNBENCH_CACHE", str(tmp_path))
    f64, f32 = c_ffn.build("float64"), c_ffn.build("float32")
    assert f64.name.startswith("ffn-float64-") and f32.name.startswith("ffn-float32-")
    assert sorted(tmp_path.iterdir()) == sorted([f64, f32])
    assert c_ffn.build() == f64 and c_ffn.build("float32") == f32  # found, not rebuilt
    assert set(c_ffn.flags("float32")) ^ set(c_ffn.flags("float64")) == {
        "-DFFN_REAL=float", "-DFFN_REAL=double"}


def test_a_float32_state_is_float32_and_takes_float64_data_too():
    case = Case("adam", 5, "bce", "tanh", dtype="float32")
    params, X, Y = checks.synthetic(case.loss)
    s32, again = (c_ffn.from_numpy(params, case.hp()) for _ in range(2))
    s64 = c_ffn.from_numpy(params, case.hp()._replace(dtype="float64"))
    assert s32["theta"].dtype == np.float32 and all(A.dtype == np.float32 for A in s32["adam"][:2])
    assert s64["theta"].dtype == np.float64
    assert s32["lib"] is c_ffn.library("float32") and s64["lib"] is c_ffn.library("float64")
    order = np.arange(len(X))
    c_ffn.train_epoch(s32, X, Y, order)  # float64 data: cast to the state's float32
    c_ffn.train_epoch(again, X.astype(np.float32), Y.astype(np.float32), order)
    assert checks.max_diff(c_ffn.to_numpy(s32), c_ffn.to_numpy(again)) == 0.0
    with pytest.raises(ctypes.ArgumentError):  # the pointer types follow the dtype
        s32["lib"].ffn_predict(ctypes.byref(s32["net"]), c_ffn._ptr(s64["theta"]),
                               c_ffn._ptr(X), len(X), c_ffn._ptr(np.empty((len(X), 1))))


@pytest.mark.parametrize("loss, activation", [("mse", "relu"), ("bce", "tanh"), ("ce", "sigmoid")])
def test_float32_gradients_agree_with_torch_float32(loss, activation):
    """gradients() in float32: float32 numbers, not float64's, and within 32 float32 eps of
    the largest gradient from torch's float32 autograd (a few roundings per product and
    sum apart; these three cases measure 0.3 to 2.6 eps)."""
    hp = HyperParams(activation, 0.1, 0.1, loss=loss, dtype="float32")
    params, X, Y = checks.synthetic(loss, seed=2)
    params[0][0][0] += 0.3  # no z exactly 0
    torch_ffn = impls.load("torch")
    got = c_ffn.gradients(c_ffn.from_numpy(params, hp), X[:7], Y[:7])
    want = torch_ffn.gradients(torch_ffn.from_numpy(params, hp), X[:7], Y[:7])
    exact = c_ffn.gradients(c_ffn.from_numpy(params, hp._replace(dtype="float64")), X[:7], Y[:7])
    assert is_float32(got)
    assert checks.max_diff(got, want) <= 32 * checks.EPS32 * checks.max_abs(want)
    assert checks.max_diff(got, exact) > 0.0
