"""Pure-Python backend: lists and floats only, written for CPython's fast paths
(`map` over builtins, `zip`, local names) rather than for looks."""
from itertools import repeat
from math import exp, tanh
from operator import add, mul

NAME = "python"
DEVICES = ("cpu",)


def _sigmoid(z):
    if z >= 0.0:
        return 1.0 / (1.0 + exp(-z))
    e = exp(z)  # never exp(+large): no OverflowError on a diverging run
    return e / (1.0 + e)


ACT = {"sigmoid": _sigmoid, "tanh": tanh, "relu": lambda z: z if z > 0.0 else 0.0}
DERIV = {  # f'(z) from the activation's output a; relu'(0) = 0 as autograd has it
    "sigmoid": lambda a: a * (1.0 - a),
    "tanh": lambda a: 1.0 - a * a,
    "relu": lambda a: 1.0 if a > 0.0 else 0.0,
}


def from_numpy(params, hp, device="cpu"):
    # W as a list of rows: row j holds the fan_in weights into unit j
    return {"hp": hp, "layers": [([list(map(float, row)) for row in W], list(map(float, b)))
                                 for W, b in params]}


def to_numpy(state):
    import numpy as np  # only to hand weights back to the harness
    return [(np.array(W, dtype=np.float64), np.array(b, dtype=np.float64))
            for W, b in state["layers"]]


def _forward(layers, x, f):
    """Activations [a(0) = x, a(1), ..., a(L)], each a list of floats."""
    acts = [x]
    for W, b in layers[:-1]:
        a = acts[-1]
        acts.append([f(sum(map(mul, row, a), bj)) for row, bj in zip(W, b)])
    W, b = layers[-1]
    a = acts[-1]
    acts.append([sum(map(mul, row, a), bj) for row, bj in zip(W, b)])  # linear output
    return acts


def _sgd_step(layers, x, y, f, fprime, lr, l2):
    """One per-sample SGD step; the backward pass updates each layer as it goes."""
    acts = _forward(layers, x, f)
    delta = [2.0 * (o - t) for o, t in zip(acts[-1], y)]  # dL/dz(L), linear output
    for l in range(len(layers) - 1, -1, -1):
        W, b = layers[l]
        a = acts[l]
        back = [0.0] * len(a)  # W(l)^T delta, summed before W(l) changes
        for j, dj in enumerate(delta):
            row = W[j]
            if l:
                back = list(map(add, back, map(mul, row, repeat(dj))))
            W[j] = [w - lr * (dj * ai + l2 * w) for w, ai in zip(row, a)]
            b[j] -= lr * dj
        if l:
            delta = list(map(mul, back, map(fprime, a)))


def train_epoch(state, X, Y, order):
    hp = state["hp"]
    f, fprime, lr, l2, layers = ACT[hp.activation], DERIV[hp.activation], hp.lr, hp.l2, state["layers"]
    rows, targets = X.tolist(), Y.tolist()
    for i in order.tolist():
        _sgd_step(layers, rows[i], targets[i], f, fprime, lr, l2)


def predict(state, X):
    import numpy as np
    f, layers = ACT[state["hp"].activation], state["layers"]
    return np.array([_forward(layers, x, f)[-1] for x in X.tolist()], dtype=np.float64)


def gradients(state, X, Y):
    """dJ/dtheta: mean of per-sample backprop gradients, plus l2 * W on weights."""
    hp, layers = state["hp"], state["layers"]
    f, fprime = ACT[hp.activation], DERIV[hp.activation]
    gW = [[[0.0] * len(W[0]) for _ in W] for W, _ in layers]
    gb = [[0.0] * len(b) for _, b in layers]
    for x, y in zip(X.tolist(), Y.tolist()):
        acts = _forward(layers, x, f)
        delta = [2.0 * (o - t) for o, t in zip(acts[-1], y)]
        for l in range(len(layers) - 1, -1, -1):
            W, a = layers[l][0], acts[l]
            for j, dj in enumerate(delta):
                gW[l][j] = list(map(add, gW[l][j], map(mul, a, repeat(dj))))
                gb[l][j] += dj
            if l:
                back = [sum(map(mul, col, delta)) for col in zip(*W)]
                delta = list(map(mul, back, map(fprime, a)))
    import numpy as np
    m = len(X)
    return [(np.array([[g / m + hp.l2 * w for g, w in zip(grow, wrow)]
                       for grow, wrow in zip(gW[l], W)]), np.array([g / m for g in gb[l]]))
            for l, (W, _) in enumerate(layers)]
