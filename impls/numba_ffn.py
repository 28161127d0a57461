"""Numba backend: a whole epoch in one jitted kernel over a flat parameter vector.

All weights and biases live in one float64 vector `theta`; layer l's W (row-major,
(fan_out, fan_in)) starts at woff[l] and its b at boff[l]. Activations and deltas of all
layers share two flat buffers indexed by aoff. Kernels are module-level functions of
arrays and scalars (cache=True), so compiled code is reused across processes.
"""
from math import exp, tanh

import numpy as np
from numba import njit

NAME = "numba"
DEVICES = ("cpu",)
ACT_CODE = {"sigmoid": 0, "tanh": 1, "relu": 2}


@njit(cache=True, inline="always")
def _f(z, code):
    if code == 0:
        return 1.0 / (1.0 + exp(-z))
    if code == 1:
        return tanh(z)
    return z if z > 0.0 else 0.0


@njit(cache=True, inline="always")
def _fprime(a, code):  # from the activation's output a; relu'(0) = 0
    if code == 0:
        return a * (1.0 - a)
    if code == 1:
        return 1.0 - a * a
    return 1.0 if a > 0.0 else 0.0


@njit(cache=True)
def _forward(theta, sizes, woff, boff, aoff, A, x, code):
    """a(0) = x, then z = W a + b layer by layer into A; the output layer is linear."""
    L = sizes.shape[0] - 1
    A[:sizes[0]] = x
    for l in range(L):
        nin, nout, ai, ao = sizes[l], sizes[l + 1], aoff[l], aoff[l + 1]
        for j in range(nout):
            r = woff[l] + j * nin
            s = theta[boff[l] + j]
            for i in range(nin):
                s += theta[r + i] * A[ai + i]
            A[ao + j] = _f(s, code) if l < L - 1 else s


@njit(cache=True)
def _sgd_epoch(theta, sizes, woff, boff, aoff, A, D, X, Y, order, code, lr, l2):
    """Per-sample SGD over X[order]; backward pass fused with the update."""
    L = sizes.shape[0] - 1
    for n in order:
        _forward(theta, sizes, woff, boff, aoff, A, X[n], code)
        for j in range(sizes[L]):
            D[aoff[L] + j] = 2.0 * (A[aoff[L] + j] - Y[n, j])  # dL/dz(L), linear output
        for l in range(L - 1, -1, -1):
            nin, nout, ai, ao = sizes[l], sizes[l + 1], aoff[l], aoff[l + 1]
            D[ai:ai + nin] = 0.0
            for j in range(nout):
                dj = D[ao + j]
                r = woff[l] + j * nin
                for i in range(nin):
                    w = theta[r + i]
                    D[ai + i] += w * dj  # W^T delta with the weights before the update
                    theta[r + i] = w - lr * (dj * A[ai + i] + l2 * w)
                theta[boff[l] + j] -= lr * dj
            if l:
                for i in range(nin):
                    D[ai + i] *= _fprime(A[ai + i], code)


@njit(cache=True)
def _predict(theta, sizes, woff, boff, aoff, A, X, code):
    L = sizes.shape[0] - 1
    out = np.empty((X.shape[0], sizes[L]))
    for n in range(X.shape[0]):
        _forward(theta, sizes, woff, boff, aoff, A, X[n], code)
        out[n] = A[aoff[L]:aoff[L] + sizes[L]]
    return out


@njit(cache=True)
def _gradients(theta, sizes, woff, boff, aoff, A, D, X, Y, code, l2):
    """Mean over samples of the per-sample gradients, plus l2 * W on the weights."""
    L = sizes.shape[0] - 1
    G = np.zeros_like(theta)
    for n in range(X.shape[0]):
        _forward(theta, sizes, woff, boff, aoff, A, X[n], code)
        for j in range(sizes[L]):
            D[aoff[L] + j] = 2.0 * (A[aoff[L] + j] - Y[n, j])
        for l in range(L - 1, -1, -1):
            nin, nout, ai, ao = sizes[l], sizes[l + 1], aoff[l], aoff[l + 1]
            D[ai:ai + nin] = 0.0
            for j in range(nout):
                dj = D[ao + j]
                r = woff[l] + j * nin
                for i in range(nin):
                    D[ai + i] += theta[r + i] * dj
                    G[r + i] += dj * A[ai + i]
                G[boff[l] + j] += dj
            for i in range(nin):
                D[ai + i] *= _fprime(A[ai + i], code)
    G /= X.shape[0]
    for l in range(L):
        for k in range(woff[l], boff[l]):
            G[k] += l2 * theta[k]
    return G


def from_numpy(params, hp, device="cpu"):
    sizes = np.array([params[0][0].shape[1]] + [W.shape[0] for W, _ in params], dtype=np.int64)
    woff, boff, k = [], [], 0
    for W, b in params:
        woff.append(k)
        boff.append(k + W.size)
        k += W.size + b.size
    theta = np.concatenate([np.concatenate([np.ravel(W), b]) for W, b in params])
    theta = theta.astype(np.float64)
    aoff = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    return {"hp": hp, "code": ACT_CODE[hp.activation], "theta": theta, "sizes": sizes,
            "woff": np.array(woff, dtype=np.int64), "boff": np.array(boff, dtype=np.int64),
            "aoff": aoff, "A": np.zeros(aoff[-1]), "D": np.zeros(aoff[-1])}


def _layout(s):
    return s["theta"], s["sizes"], s["woff"], s["boff"], s["aoff"], s["A"]


def to_numpy(state):
    theta, sizes, woff, boff = state["theta"], state["sizes"], state["woff"], state["boff"]
    return [(theta[woff[l]:boff[l]].reshape(sizes[l + 1], sizes[l]).copy(),
             theta[boff[l]:boff[l] + sizes[l + 1]].copy()) for l in range(len(sizes) - 1)]


def train_epoch(state, X, Y, order):
    hp = state["hp"]
    _sgd_epoch(*_layout(state), state["D"], X, Y, np.asarray(order, dtype=np.int64),
               state["code"], hp.lr, hp.l2)


def predict(state, X):
    return _predict(*_layout(state), np.ascontiguousarray(X, dtype=np.float64), state["code"])


def gradients(state, X, Y):
    G = _gradients(*_layout(state), state["D"], X, Y, state["code"], state["hp"].l2)
    return to_numpy({**state, "theta": G})
