"""Numba backend: a whole epoch in one jitted kernel over a flat parameter vector.

All weights and biases live in one float64 vector `theta`; layer l's W (row-major,
(fan_out, fan_in)) starts at woff[l] and its b at boff[l]. For per-sample SGD the
activations and deltas of all layers share two flat buffers indexed by aoff. Kernels are
module-level functions of arrays and scalars (cache=True), so compiled code is reused
across processes; the Python functions at the bottom adapt the backend contract to them.
"""
from functools import partial
from math import exp, sqrt

import numpy as np
from numba import njit

from impls import DELTA_SCALE, Declaration

DECLARATION = Declaration(
    name="numba", devices=("cpu",), extra="numba", packages=("numba",), gradients="hand-written",
    sources=("numba_ffn.py",), tools=(),
)
ACT_CODE = {"sigmoid": 0, "tanh": 1, "relu": 2}
OUT_CODE = {"mse": 0, "bce": 1, "ce": 2}  # linear, sigmoid, softmax output
OPT_CODE = {"sgd": 0, "adam": 1}
# error_model="numpy": x / 0.0 gives inf or nan (a diverged run, which the harness records)
# instead of a Python ZeroDivisionError check on every division, which keeps LLVM from
# vectorising the loop around it
jit = partial(njit, cache=True, error_model="numpy")


@jit(inline="always")
def _sigmoid(z):
    if z >= 0.0:
        return 1.0 / (1.0 + exp(-z))
    e = exp(z)
    return e / (1.0 + e)


LOG2E, LN2_HI, LN2_LO = 1.4426950408889634, 6.93147180369123816490e-01, 1.90821492927058770002e-10
ROUND = 6755399441055744.0  # 1.5 * 2**52: (x + ROUND) - ROUND rounds x to an integer


@jit(inline="always")
def _exp_reduced(r):
    """exp(r) for |r| <= ln(2)/2: Taylor series to r^13 (truncation < 5e-18), Horner form."""
    p = 1.0 / 6227020800.0  # 1/13!; written out: a loop over a tuple stays a loop
    p = p * r + 1.0 / 479001600.0
    p = p * r + 1.0 / 39916800.0
    p = p * r + 1.0 / 3628800.0
    p = p * r + 1.0 / 362880.0
    p = p * r + 1.0 / 40320.0
    p = p * r + 1.0 / 5040.0
    p = p * r + 1.0 / 720.0
    p = p * r + 1.0 / 120.0
    p = p * r + 1.0 / 24.0
    p = p * r + 1.0 / 6.0
    p = p * r + 0.5
    p = p * r + 1.0
    return p * r + 1.0


@jit(inline="always")
def _tanh(z, k):
    """z <- tanh(z) = 1 - 2 / (exp(2z) + 1) in place, |error| < 4e-16. math.exp is a scalar
    libm call (4.4 ns per element here, and llvmlite has no vector math library), so exp is
    written out as exp(x) = 2^q exp(r), q = round(x / ln 2), in two loops with no calls,
    which LLVM vectorises (1.3 ns). k: an int64 scratch at least as long as z, where 2^q is
    built as the bits of a float64 (exponent field q + 1023)."""
    n = z.shape[0]
    for i in range(n):
        x = 2.0 * z[i]
        x = 40.0 if x > 40.0 else (-40.0 if x < -40.0 else x)  # tanh(20) is 1.0 in float64
        q = (x * LOG2E + ROUND) - ROUND
        k[i] = (np.int64(q) + 1023) << 52
        z[i] = (x - q * LN2_HI) - q * LN2_LO
    two_q = k[:n].view(np.float64)
    for i in range(n):
        z[i] = 1.0 - 2.0 / (_exp_reduced(z[i]) * two_q[i] + 1.0)


@jit(inline="always")
def _activate(z, code, k):
    """z <- f(z) in place on a 1-D array; k: int64 scratch for tanh."""
    if code == 1:
        _tanh(z, k)
    elif code == 0:
        for i in range(z.shape[0]):
            z[i] = _sigmoid(z[i])
    else:
        for i in range(z.shape[0]):
            z[i] = z[i] if z[i] > 0.0 else 0.0


@jit(inline="always")
def _fprime(a, code):  # from the activation's output a; relu'(0) = 0
    if code == 0:
        return a * (1.0 - a)
    if code == 1:
        return 1.0 - a * a
    return 1.0 if a > 0.0 else 0.0


@jit()
def _output(z, out_code):
    """The output activation, in place on one sample's z(L) (1-D) or a batch's (2-D rows)."""
    if out_code == 1:
        for k in np.ndindex(z.shape):
            z[k] = _sigmoid(z[k])
    elif out_code == 2:
        r = z.reshape((-1, z.shape[-1]))
        for n in range(r.shape[0]):
            top = r[n].max()
            for k in range(r.shape[1]):
                r[n, k] = exp(r[n, k] - top)
            r[n] /= r[n].sum()


# Per-sample kernels index per-layer views (W = theta[...].reshape) with plain range
# variables: numba then drops its negative-index checks and the loops vectorise. Flat
# index arithmetic (theta[r + i]) was 2.6x slower.

@jit(inline="always")
def _dot(row, a, n):
    """sum_i row[i] a[i] with 4 accumulators, so the adds do not wait on each other."""
    s0 = s1 = s2 = s3 = 0.0
    i = 0
    while i + 4 <= n:
        s0 += row[i] * a[i]
        s1 += row[i + 1] * a[i + 1]
        s2 += row[i + 2] * a[i + 2]
        s3 += row[i + 3] * a[i + 3]
        i += 4
    for i in range(i, n):
        s0 += row[i] * a[i]
    return (s0 + s1) + (s2 + s3)


@jit(inline="always")
def _layer(theta, sizes, woff, boff, buf, aoff, l):
    """Views of layer l: W (n_l+1, n_l), b (n_l+1,), its input part and output part of buf."""
    nin, nout = sizes[l], sizes[l + 1]
    return (theta[woff[l]:boff[l]].reshape((nout, nin)), theta[boff[l]:boff[l] + nout],
            buf[aoff[l]:aoff[l] + nin], buf[aoff[l + 1]:aoff[l + 1] + nout])


@jit()
def _forward(theta, sizes, woff, boff, aoff, A, x, code, out_code, ebits):
    """a(0) = x, then a(l) = f(W a(l-1) + b) layer by layer into the flat buffer A;
    ebits: int64 scratch as long as the widest layer."""
    L = sizes.shape[0] - 1
    A[:sizes[0]] = x
    for l in range(L):
        W, b, a, z = _layer(theta, sizes, woff, boff, A, aoff, l)
        for j in range(z.shape[0]):
            z[j] = _dot(W[j], a, a.shape[0]) + b[j]
        if l < L - 1:
            _activate(z, code, ebits)
    _output(A[aoff[L]:aoff[L] + sizes[L]], out_code)


@jit()
def _sgd_epoch(theta, sizes, woff, boff, aoff, A, D, X, Y, order, code, out_code, scale, lr, l2):
    """Per-sample SGD over X[order]; the backward pass is fused with the update
    W <- W - lr (delta a^T + l2 W), written as W * (1 - lr l2) - (lr delta) a^T."""
    L = sizes.shape[0] - 1
    decay = 1.0 - lr * l2
    ebits = np.empty(sizes.max(), np.int64)
    for n in order:
        _forward(theta, sizes, woff, boff, aoff, A, X[n], code, out_code, ebits)
        out, dout = A[aoff[L]:aoff[L] + sizes[L]], D[aoff[L]:aoff[L] + sizes[L]]
        for j in range(sizes[L]):
            dout[j] = scale * (out[j] - Y[n, j])  # dL/dz(L)
        for l in range(L - 1, 0, -1):
            W, b, a, _ = _layer(theta, sizes, woff, boff, A, aoff, l)
            dprev, d = D[aoff[l]:aoff[l] + sizes[l]], D[aoff[l + 1]:aoff[l + 1] + sizes[l + 1]]
            dprev[:] = 0.0
            for j in range(d.shape[0]):
                row, dj = W[j], d[j]
                k = lr * dj
                for i in range(a.shape[0]):
                    w = row[i]
                    dprev[i] += w * dj  # W^T delta with the weights before the update
                    row[i] = w * decay - k * a[i]
                b[j] -= k
            for i in range(a.shape[0]):
                dprev[i] *= _fprime(a[i], code)
        W, b, a, _ = _layer(theta, sizes, woff, boff, A, aoff, 0)
        d = D[aoff[1]:aoff[1] + sizes[1]]
        for j in range(d.shape[0]):  # first layer: no delta for the inputs
            row, k = W[j], lr * d[j]
            for i in range(a.shape[0]):
                row[i] = row[i] * decay - k * a[i]
            b[j] -= k


@jit()
def _batch_gradient(theta, sizes, woff, boff, X, Y, idx, code, out_code, scale, l2, grad, ebits):
    """grad <- dJ/dtheta over the samples idx: the mean loss gradient plus l2 * W.
    Matrix products go to BLAS; everything elementwise is one fused loop, no temporaries.
    ebits: int64 scratch of len(idx) times the widest layer, for tanh."""
    L = sizes.shape[0] - 1
    m = idx.shape[0]
    acts = [X[idx]]  # a(l): (m, n_l)
    for l in range(L):
        W = theta[woff[l]:boff[l]].reshape((sizes[l + 1], sizes[l]))
        b = theta[boff[l]:boff[l] + sizes[l + 1]]
        z = np.dot(acts[l], W.T)  # (m, n_l+1)
        for n in range(m):
            for j in range(z.shape[1]):
                z[n, j] += b[j]
        if l < L - 1:
            _activate(z.reshape(-1), code, ebits)
        else:
            _output(z, out_code)
        acts.append(z)
    delta = acts[L].copy()  # (m, n_L) = dL/dz(L)
    for n in range(m):
        for j in range(delta.shape[1]):
            delta[n, j] = scale * (delta[n, j] - Y[idx[n], j])
    inv_m = 1.0 / m
    for l in range(L - 1, -1, -1):
        W = theta[woff[l]:boff[l]].reshape((sizes[l + 1], sizes[l]))
        gW = grad[woff[l]:boff[l]].reshape((sizes[l + 1], sizes[l]))
        gb = grad[boff[l]:boff[l] + sizes[l + 1]]
        g = np.dot(delta.T, acts[l])
        for j in range(gW.shape[0]):
            for i in range(gW.shape[1]):
                gW[j, i] = g[j, i] * inv_m + l2 * W[j, i]
        gb[:] = 0.0
        for n in range(m):
            for j in range(gb.shape[0]):
                gb[j] += delta[n, j]
        for j in range(gb.shape[0]):
            gb[j] *= inv_m
        if l:
            delta = np.dot(delta, W)  # (m, n_l)
            a = acts[l]
            for n in range(m):
                for i in range(delta.shape[1]):
                    delta[n, i] *= _fprime(a[n, i], code)


@jit()
def _batch_epoch(theta, sizes, woff, boff, X, Y, order, B, code, out_code, scale, opt,
                 lr, l2, b1, b2, eps, M, G, t):
    """Mini-batch SGD or Adam (torch.optim.Adam's arithmetic) over X[order]; returns the
    Adam step count t after the epoch."""
    grad = np.empty_like(theta)
    ebits = np.empty(B * sizes.max(), np.int64)
    for start in range(0, order.shape[0], B):
        _batch_gradient(theta, sizes, woff, boff, X, Y, order[start:start + B], code,
                        out_code, scale, l2, grad, ebits)
        if opt == 0:
            for k in range(theta.shape[0]):
                theta[k] -= lr * grad[k]
        else:
            t += 1
            step = lr / (1.0 - b1 ** t)
            sqrt_bc2 = sqrt(1.0 - b2 ** t)
            for k in range(theta.shape[0]):
                g = grad[k]
                M[k] += (1.0 - b1) * (g - M[k])
                G[k] = G[k] * b2 + (1.0 - b2) * g * g
                theta[k] -= step * (M[k] / (sqrt(G[k]) / sqrt_bc2 + eps))
    return t


@jit()
def _predict(theta, sizes, woff, boff, aoff, A, X, code, out_code):
    L = sizes.shape[0] - 1
    out = np.empty((X.shape[0], sizes[L]))
    ebits = np.empty(sizes.max(), np.int64)
    for n in range(X.shape[0]):
        _forward(theta, sizes, woff, boff, aoff, A, X[n], code, out_code, ebits)
        out[n] = A[aoff[L]:aoff[L] + sizes[L]]
    return out


def from_numpy(params, hp, device="cpu"):
    sizes = np.array([params[0][0].shape[1]] + [W.shape[0] for W, _ in params], dtype=np.int64)
    woff, boff, k = [], [], 0
    for W, b in params:
        woff.append(k)
        boff.append(k + W.size)
        k += W.size + b.size
    theta = np.concatenate([np.concatenate([np.ravel(W), b]) for W, b in params])
    aoff = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    return {"hp": hp, "theta": theta.astype(np.float64), "sizes": sizes,
            "woff": np.array(woff, dtype=np.int64), "boff": np.array(boff, dtype=np.int64),
            "aoff": aoff, "A": np.zeros(aoff[-1]), "D": np.zeros(aoff[-1]),
            "M": np.zeros(k), "G": np.zeros(k), "t": 0,  # Adam moments and step count
            "codes": (ACT_CODE[hp.activation], OUT_CODE[hp.loss]), "scale": DELTA_SCALE[hp.loss]}


def to_numpy(state):
    theta, sizes, woff, boff = state["theta"], state["sizes"], state["woff"], state["boff"]
    return [(theta[woff[l]:boff[l]].reshape(sizes[l + 1], sizes[l]).copy(),
             theta[boff[l]:boff[l] + sizes[l + 1]].copy()) for l in range(len(sizes) - 1)]


def _layout(s):
    return s["theta"], s["sizes"], s["woff"], s["boff"]


def train_epoch(state, X, Y, order):
    hp, order = state["hp"], np.asarray(order, dtype=np.int64)
    if hp.per_sample_sgd:  # the published per-sample loop
        _sgd_epoch(*_layout(state), state["aoff"], state["A"], state["D"], X, Y, order,
                   *state["codes"], state["scale"], hp.lr, hp.l2)
        return
    state["t"] = _batch_epoch(*_layout(state), X, Y, order, hp.batch(len(order)),
                              *state["codes"], state["scale"], OPT_CODE[hp.optimizer], hp.lr,
                              hp.l2, hp.beta1, hp.beta2, hp.eps, state["M"], state["G"], state["t"])


def predict(state, X):
    return _predict(*_layout(state), state["aoff"], state["A"],
                    np.ascontiguousarray(X, dtype=np.float64), *state["codes"])


def gradients(state, X, Y):
    grad = np.empty_like(state["theta"])
    _batch_gradient(*_layout(state), X, Y, np.arange(len(X)), *state["codes"], state["scale"],
                    state["hp"].l2, grad, np.empty(len(X) * state["sizes"].max(), np.int64))
    return to_numpy({**state, "theta": grad})


def synchronize(state):
    """Nothing to wait for: the work is done when train_epoch returns."""
