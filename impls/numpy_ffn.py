"""NumPy backend: the same backpropagation, vectorised over each layer (and each batch)."""
import numpy as np

NAME = "numpy"
DEVICES = ("cpu",)


def _sigmoid(z, out=None):
    out = np.negative(z, out=out)
    np.exp(out, out=out)
    out += 1.0
    return np.reciprocal(out, out=out)


ACT = {  # f(z), in place when out=z
    "sigmoid": _sigmoid,
    "tanh": lambda z, out=None: np.tanh(z, out=out),
    "relu": lambda z, out=None: np.maximum(z, 0.0, out=out),
}
DERIV = {  # f'(z) from the activation's output a; relu'(0) = 0 as autograd has it
    "sigmoid": lambda a: a * (1.0 - a),
    "tanh": lambda a: 1.0 - a * a,
    "relu": lambda a: (a > 0.0).astype(a.dtype),
}


def from_numpy(params, hp, device="cpu"):
    return {"hp": hp, "params": [(np.array(W, dtype=np.float64), np.array(b, dtype=np.float64))
                                 for W, b in params]}


def to_numpy(state):
    return [(W.copy(), b.copy()) for W, b in state["params"]]


def _forward(params, X, f):
    """Activations a(0) = X, ..., a(L) = outputs; each (m, n_l)."""
    A = [X]
    for W, b in params[:-1]:
        z = A[-1] @ W.T + b  # (m, n_l)
        A.append(f(z, out=z))
    W, b = params[-1]
    A.append(A[-1] @ W.T + b)  # linear output
    return A


def _backward(params, A, Y, fprime):
    """Mean over the batch of the per-sample gradients of L = sum_k (yhat_k - y_k)^2."""
    m = len(Y)
    delta = 2.0 * (A[-1] - Y)  # (m, n_L) = dL/dz(L) for a linear output
    grads = [None] * len(params)
    for l in range(len(params) - 1, -1, -1):
        grads[l] = (delta.T @ A[l] / m, delta.sum(axis=0) / m)  # (n_l, n_l-1), (n_l,)
        if l:
            delta = (delta @ params[l][0]) * fprime(A[l])  # (m, n_l-1)
    return grads


def train_epoch(state, X, Y, order):
    hp, params = state["hp"], state["params"]
    f, fprime = ACT[hp.activation], DERIV[hp.activation]
    for start in range(0, len(order), hp.batch_size):
        idx = order[start:start + hp.batch_size]
        for (W, b), (gW, gb) in zip(params, _backward(params, _forward(params, X[idx], f),
                                                      Y[idx], fprime)):
            W -= hp.lr * (gW + hp.l2 * W)
            b -= hp.lr * gb


def predict(state, X):
    return _forward(state["params"], X, ACT[state["hp"].activation])[-1]


def gradients(state, X, Y):
    hp, params = state["hp"], state["params"]
    A = _forward(params, X, ACT[hp.activation])
    grads = _backward(params, A, Y, DERIV[hp.activation])
    return [(gW + hp.l2 * W, gb) for (W, _), (gW, gb) in zip(params, grads)]
