"""The bound for per-sample SGD: the work per sample and what this machine needs for it.

Per sample and per weight of a net with layer widths n_0 .. n_L, per-sample SGD
(impls/__init__.py's maths, transposed weights as in the numba kernel) does:

    forward   z(l) += a(l-1)[i] WT(l)[i]          1 FMA, 1 load of the weight
    backward  delta(l-1)[i] = WT(l)[i] . delta(l)  1 FMA        } one pass over the row:
    update    WT(l)[i] <- WT(l)[i] (1 - lr l2)     1 mul, 1 FMA } 1 load, 1 store
                          - (lr u[i]) delta(l)

(no delta for the inputs: the first layer only updates). The bound is the time of exactly
these loops over the net's weights, measured on rows long enough (ROW doubles) that no
short-row cost shows - no loop remainder, no per-row overhead, no dependency chain of a
short dot product, no activation - on a matrix as large as the net, so its weights sit in
the same cache level. `measure_rates(n)` times the two loops (streaming forward, fused
backward + update; a first-layer update costs about what the fused pass costs),
`per_sample_bound(sizes, rates)` adds them up. `ffnbench bound --out results`
writes the rates, the bound per net and the short-row micro-benchmarks to
results/bound.csv and bound.md; `ffnbench compare` measures the rates again on its machine
and prints every per-sample time as a % of the bound.
"""
import functools
import time

import numpy as np
import pandas as pd
from numba import njit, uint64

from ..core.config import NETS
from ..run import machine

FLAGS = {"contract", "reassoc"}  # as the numba per-sample kernel
ROW = 128  # doubles per row in the rate measurements: 16 AVX-512 registers
U1, U2, U3, U4 = (np.uint64(k) for k in range(1, 5))


@njit(fastmath=FLAGS, error_model="numpy", cache=True)
def _forward_stream(T, a, z, rows, width, reps):
    """reps x (z += a[i] T[i] over all rows, four rows per pass over z)."""
    rows, width = uint64(rows), uint64(width)
    for _ in range(reps):
        i = uint64(0)
        while i + U4 <= rows:
            a0, a1, a2, a3 = a[i], a[i + U1], a[i + U2], a[i + U3]
            r0 = i * width
            r1, r2, r3 = r0 + width, r0 + U2 * width, r0 + U3 * width
            for j in range(width):
                z[j] += (a0 * T[r0 + j] + a1 * T[r1 + j]) + (a2 * T[r2 + j] + a3 * T[r3 + j])
            i += U4
        while i < rows:
            a0, r0 = a[i], i * width
            for j in range(width):
                z[j] += a0 * T[r0 + j]
            i += U1


@njit(fastmath=FLAGS, error_model="numpy", cache=True)
def _backward_stream(T, d, u, out, rows, width, reps):
    """reps x (out[i] = T[i] . d, then T[i] <- T[i] decay - u[i] d, one pass per row)."""
    rows, width = uint64(rows), uint64(width)
    decay = 1.0 - 1e-9
    for _ in range(reps):
        for i in range(rows):
            k, r, acc = u[i], i * width, 0.0
            for j in range(width):
                w = T[r + j]
                acc += w * d[j]
                T[r + j] = w * decay - k * d[j]
            out[i] = acc


@njit(error_model="numpy", cache=True)
def _dot_chain(T, d, out, rows, width, reps):
    """reps x (out[i] = T[i] . d summed strictly in order): without reassociation every add
    waits for the one before, the dependency chain of a dot product that is not split."""
    rows, width = uint64(rows), uint64(width)
    for _ in range(reps):
        for i in range(rows):
            r, acc = i * width, 0.0
            for j in range(width):
                acc += T[r + j] * d[j]
            out[i] = acc


def _best_ns(fn, args, per, repeat=7, budget=0.02):
    """Best-of-`repeat` nanoseconds per unit (`per` units per call of fn(*args, reps)), reps
    chosen so that one call takes about `budget` seconds."""
    fn(*args, 1)
    t0 = time.perf_counter()
    fn(*args, 1)
    reps = max(1, int(budget / max(time.perf_counter() - t0, 1e-7)))
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn(*args, reps)
        best = min(best, (time.perf_counter() - t0) / reps)
    return 1e9 * best / per


def _aligned(values):
    """A copy of values starting on a 64-byte boundary (numpy's allocator promises 16), as
    the numba kernel's: then no vector load of a row straddles two cache lines."""
    buf = np.empty(len(values) + 8)
    o = (-(buf.ctypes.data // 8)) % 8
    out = buf[o:o + len(values)]
    out[:] = values
    return out


def _operands(rows, width, seed=0):
    rng = np.random.default_rng(seed)
    return (_aligned(rng.uniform(-0.1, 0.1, rows * width)),
            _aligned(rng.uniform(-1, 1, max(rows, width)) * 1e-3), _aligned(np.zeros(max(rows, width))))


@functools.lru_cache(maxsize=None)  # once per process: bound and compare state one bound
def measure_rates(n_weights, row=ROW):
    """ns per weight of the forward stream and of the fused backward + update, on a matrix
    of about n_weights doubles in rows of `row` (as many rows as that takes, at least 4)."""
    rows = max(4, -(-int(n_weights) // row))
    T, v, out = _operands(rows, row)
    per = rows * row
    return {"n_weights": per,
            "forward_ns": _best_ns(_forward_stream, (T, v, out, rows, row), per),
            "backward_update_ns": _best_ns(_backward_stream, (T, v, v, out, rows, row), per)}


ACTIVATION_N = 4096  # neurons per call: long enough that no call cost shows, in L1


def _activation_passes(kind, z, a, d):
    """f(z) into a and f'(a) into d with numpy's vectorised (SIMD) loops, no new array."""
    if kind == "tanh":  # a = tanh z, d = 1 - a^2
        return lambda: (np.tanh(z, out=a), np.multiply(a, a, out=d), np.subtract(1.0, d, out=d))
    if kind == "sigmoid":  # a = 1 / (1 + e^-z), d = a (1 - a)
        return lambda: (np.negative(z, out=a), np.exp(a, out=a), np.add(a, 1.0, out=a),
                        np.reciprocal(a, out=a), np.subtract(1.0, a, out=d), np.multiply(d, a, out=d))
    return lambda: (np.maximum(z, 0.0, out=a), np.greater(z, 0.0, out=d))  # relu, relu'(0) = 0


@functools.lru_cache(maxsize=None)
def activation_rates(n=ACTIVATION_N, repeat=7):
    """ns per neuron of each hidden activation f(z) and its derivative f'(a) together, in
    numpy's vectorised loops over n values in cache: what a kernel that vectorises them pays
    per neuron and sample (the bound's activation part)."""
    z = np.random.default_rng(0).uniform(-3, 3, n)
    a, d = np.empty(n), np.empty(n)
    out = {}
    for kind in ("sigmoid", "tanh", "relu"):
        passes = _activation_passes(kind, z, a, d)
        out[kind] = _best_ns(lambda reps: [passes() for _ in range(reps)], (), n, repeat)
    return out


def work(sizes):
    """Per-sample work of per-sample SGD on layer widths `sizes` (inputs .. outputs)."""
    layers = list(zip(sizes[:-1], sizes[1:]))
    weights = sum(a * b for a, b in layers)
    first = layers[0][0] * layers[0][1]
    return {"weights": weights, "biases": sum(b for _, b in layers),
            "fma_forward": weights, "fma_backward": weights - first,
            "flops_update": 3 * weights,  # k delta[j], then one FMA
            "weight_loads": 2 * weights, "weight_stores": weights}


def per_sample_bound(sizes, rates, activation_ns=0.0):
    """Seconds per sample: every weight streamed once forward and once through the fused
    backward + update, at the measured long-row rates, and every hidden neuron's activation
    and derivative at `activation_ns` (activation_rates; the output layer of a regression
    is linear)."""
    w = work(sizes)["weights"]
    return 1e-9 * (w * (rates["forward_ns"] + rates["backward_update_ns"])
                   + sum(sizes[1:-1]) * activation_ns)


def at_net_shapes(sizes, activation_ns=0.0):
    """Seconds per sample of the bound's two loops run at this net's own shapes (layer l: n_in
    rows of n_out weights, transposed as in the numba kernel; the first layer's update costs
    what a fused pass costs, as in the bound) and the activations: what the bound's design
    costs once the rows are as short as the net's, the part of the gap to the bound that no
    code of this loop structure avoids."""
    ns = 0.0
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        T, v, out = _operands(n_in, n_out)
        ns += _best_ns(_forward_stream, (T, v, out, n_in, n_out), 1)
        ns += _best_ns(_backward_stream, (T, v, v, out, n_in, n_out), 1)
    return 1e-9 * (ns + sum(sizes[1:-1]) * activation_ns)


def short_rows(widths=(1, 5, 8, 10, 16, 20, 30, 32, 50, 64, 100, 128), rows=64):
    """ns per row of the fused backward + update and of a strictly ordered dot product, for
    row lengths as short as this project's layers."""
    out = []
    for width in widths:
        T, v, o = _operands(rows, width)
        out.append({"width": width,
                    "backward_update_ns_per_row": _best_ns(_backward_stream, (T, v, v, o, rows, width), rows),
                    "ordered_dot_ns_per_row": _best_ns(_dot_chain, (T, v, o, rows, width), rows)})
    return out


def numpy_calls(sizes, activation="tanh", repeat=7, number=2000):
    """The calls one sample of numpy's per-sample SGD loop makes (impls/numpy_ffn.py,
    _sgd_epoch: every product one positional BLAS call, f' of all hidden layers in two ufunc
    calls), each timed alone on this net's shapes: rows (call, per sample, µs per call, µs
    per sample). Their sum is the floor of a NumPy program of this shape: a loop making
    fewer calls would have to leave out a product, an activation or an update."""
    from scipy.linalg.blas import dgemv, dger
    from timeit import repeat as timeit_repeat
    rng = np.random.default_rng(0)
    shapes = list(zip(sizes[1:], (n + 1 for n in sizes[:-1])))  # [W | b]: (n_out, n_in + 1)
    V = [np.asfortranarray(rng.uniform(-0.1, 0.1, shape)) for shape in shapes]
    x = [rng.uniform(-1, 1, n_in) for _, n_in in shapes]
    y = [rng.uniform(-1, 1, n_out) for n_out, _ in shapes]
    back = [np.empty(n_in) for _, n_in in shapes]
    hidden = rng.uniform(-1, 1, sum(sizes[1:-1]) + len(sizes) - 2)  # all a(l) with their slots
    fh, one, top = np.empty_like(hidden), np.ones_like(hidden), rng.uniform(-1, 1, sizes[-1])
    deltas = [(b[:-1], rng.uniform(0, 1, len(b) - 1), np.empty(len(b) - 1)) for b in back[1:]]
    f = {"tanh": np.tanh, "sigmoid": np.exp, "relu": np.negative}[activation]  # sigmoid: its exp
    calls = {  # name -> [one statement per call of one sample], arrays bound beforehand as in
        # the loop, so that only the call is timed
        "dgemv W [a, 1] (forward)": [lambda V=V_, a=a_, o=o_: dgemv(1.0, V, a, 0.0, o, 0, 1, 0, 1, 0, 1)
                                      for V_, a_, o_ in zip(V, x, y)],
        f"{activation} of each hidden layer": [lambda o=o_, f=f: f(o, o) for o_ in y[:-1]],
        "subtract (output error)": [lambda o=y[-1], t=top, d=back[-1][:sizes[-1]]: np.subtract(o, t, d)],
        "f' of all hidden layers (2 ufuncs)": [lambda: np.multiply(hidden, hidden, fh),
                                               lambda: np.subtract(one, fh, fh)],
        "dgemv W^T delta (backward)": [lambda V=V_, d=o_, b=b_: dgemv(1.0, V, d, 0.0, b, 0, 1, 0, 1, 1, 1)
                                       for V_, o_, b_ in list(zip(V, y, back))[1:]],
        "dger delta [a, 1]^T (update)": [lambda V=V_, d=o_, a=a_: dger(-1e-9, d, a, 1, 1, V, 1, 1, 1)
                                         for V_, o_, a_ in zip(V, y, x)],
        "multiply delta by f'": [lambda d=d_, g=g_, o=o_: np.multiply(d, g, o) for d_, g_, o_ in deltas],
    }
    rows = []
    for name, stmts in calls.items():
        us = [1e6 * min(timeit_repeat(st, number=number, repeat=repeat)) / number for st in stmts]
        rows.append({"call": name, "per_sample": len(stmts), "us_per_call": float(np.mean(us)),
                     "us_per_sample": float(np.sum(us))})
    return rows


def batch_gemm_seconds(sizes, batch=256, repeat=7):
    """Seconds per batch of the three matrix products per layer that mini-batch SGD needs
    (forward A W^T, backward delta W, gradient delta^T A), with numpy's BLAS and nothing
    else: the ceiling for a backend that hands its batch to BLAS. Each product writes into
    an array made once, as the backends do: a fresh array of a batch's size comes from the
    system each time, and its page faults would be counted as the products' time."""
    rng = np.random.default_rng(0)
    layers = [(rng.random((nout, nin)), rng.random((batch, nin)), rng.random((batch, nout)),
               np.empty((batch, nout)), np.empty((batch, nin)), np.empty((nout, nin)))
              for nin, nout in zip(sizes[:-1], sizes[1:])]

    def products():
        for W, A, D, Z, B, G in layers:
            np.dot(A, W.T, out=Z)
            np.dot(D, W, out=B)
            np.dot(D.T, A, out=G)

    products()
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(20):
            products()
        best = min(best, (time.perf_counter() - t0) / 20)
    return best


def measure(inputs, flops_per_weight, activation="tanh"):
    """(one row per net of NETS: work, rates, the bound with and without `activation`, time
    at the matmul peak, batch-256 products' % of peak; the short-row rows; the activation
    rates; run.machine.peaks()), on one thread."""
    with machine.limit_threads(1):
        peaks = machine.peaks()
        peak = peaks["peak_gflops"]
        acts = activation_rates()
        nets = []
        for hidden in NETS:
            sizes = (inputs, *hidden, 1)
            w = work(sizes)
            rates = measure_rates(w["weights"])
            weights_s = per_sample_bound(sizes, rates)
            t = per_sample_bound(sizes, rates, acts[activation])
            gemm = batch_gemm_seconds(sizes)
            flops = flops_per_weight * w["weights"]
            nets.append({"hidden": "-".join(map(str, hidden)), **w, "neurons": sum(hidden),
                         **{f"rate_{k}": v for k, v in rates.items()},
                         "weights_us": 1e6 * weights_s, "activation": activation,
                         "activations_us": 1e6 * (t - weights_s),
                         "bound_us": 1e6 * t, "bound_gflops": flops / t / 1e9,
                         "net_shapes_us": 1e6 * at_net_shapes(sizes, acts[activation]),
                         "compute_bound_us": 1e6 * flops / (peak * 1e9),
                         "gemm256_pct_peak": 100 * flops * 256 / gemm / 1e9 / peak})
        rows = short_rows()
    return pd.DataFrame(nets), pd.DataFrame(rows), acts, peaks
