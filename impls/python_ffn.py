"""Pure-Python backend: lists and floats only, written for CPython's fast paths
(`map` over builtins, `zip`, local names) rather than for looks."""
from itertools import repeat
from math import exp, sqrt, tanh
from operator import add, mul, sub

from . import DELTA_SCALE, S_MIN, Declaration

DECLARATION = Declaration(
    name="python", devices=("cpu",), extra=None, packages=(), gradients="hand-written",
    sources=("python_ffn.py",), tools=(),
    refuses=(("float32", "a Python float is a C double: the interpreter has no float32 arithmetic"),),
)


def _sigmoid(z):
    if z >= 0.0:
        return 1.0 / (1.0 + exp(-z))
    e = exp(z)  # never exp(+large): no OverflowError on a diverging run
    return e / (1.0 + e)


def _softmax(z):
    top = max(z)
    e = [exp(v - top) for v in z]
    s = sum(e)
    return [v / s for v in e]


ACT = {"sigmoid": _sigmoid, "tanh": tanh, "relu": lambda z: z if z > 0.0 else 0.0}
DERIV = {  # f'(z) from the activation's output a; relu'(0) = 0 as autograd has it
    "sigmoid": lambda a: a * (1.0 - a),
    "tanh": lambda a: 1.0 - a * a,
    "relu": lambda a: 1.0 if a > 0.0 else 0.0,
}
OUT = {"mse": lambda z: z, "bce": lambda z: list(map(_sigmoid, z)), "ce": _softmax}


def _zeros_like(layers):
    return [([[0.0] * len(W[0]) for _ in W], [0.0] * len(b)) for W, b in layers]


def from_numpy(params, hp, device="cpu"):
    # W as a list of rows: row j holds the fan_in weights into unit j
    layers = [([list(map(float, row)) for row in W], list(map(float, b))) for W, b in params]
    state = {"hp": hp, "layers": layers}
    if hp.optimizer == "adam":
        state["adam"] = {"t": 0, "M": _zeros_like(layers), "G": _zeros_like(layers)}
    return state


def to_numpy(state):
    import numpy as np  # only to hand weights back to the harness
    return [(np.array(W, dtype=np.float64), np.array(b, dtype=np.float64))
            for W, b in state["layers"]]


def _forward(layers, x, f, f_out, s=1.0):
    """Activations [a(0) = x, a(1), ..., a(L)], each a list of floats; the weights are s W."""
    acts = [x]
    for W, b in layers[:-1]:
        a = acts[-1]
        acts.append([f(s * sum(map(mul, row, a)) + bj) for row, bj in zip(W, b)])
    W, b = layers[-1]
    a = acts[-1]
    acts.append(f_out([s * sum(map(mul, row, a)) + bj for row, bj in zip(W, b)]))
    return acts


def _forward_quirks(layers, x, fn, hp, s=1.0):
    """The printed code's forward pass: (acts, us, fps) with a(0) = f(x) under
    input_activation, us[l] the input layer l + 1's weight gradient uses (x and z(l) under
    grad_bug, else acts[l]) and fps[l] = f'(z(l)) for the hidden layers (fps[0] unused)."""
    f, f_out, fprime, _ = fn
    g0 = hp.relu_grad0 if hp.activation == "relu" else 0.0
    acts, zs, fps = [list(map(f, x)) if hp.input_activation else x], [x], [None]
    for W, b in layers[:-1]:
        a = acts[-1]
        z = [s * sum(map(mul, row, a)) + bj for row, bj in zip(W, b)]
        acts.append(list(map(f, z)))
        zs.append(z)
        fps.append([(1.0 if v > 0.0 else (g0 if v == 0.0 else 0.0)) for v in z] if g0
                   else list(map(fprime, acts[-1])))
    W, b = layers[-1]
    a = acts[-1]
    acts.append(f_out([s * sum(map(mul, row, a)) + bj for row, bj in zip(W, b)]))
    return acts, (zs if hp.grad_bug else acts), fps


def _pass(layers, x, fn, quirks, s=1.0):
    """(acts, us, fps): the forward pass and what the backward pass multiplies by."""
    if quirks is None:
        acts = _forward(layers, x, fn[0], fn[1], s)
        return acts, acts, None
    return _forward_quirks(layers, x, fn, quirks, s)


def _sgd_step(layers, x, y, fn, lr, decay, s, quirks=None):
    """One per-sample SGD step on weights kept as s W (one running scale s for all layers),
    so the decay W <- (1 - lr l2) W is s <- (1 - lr l2) s and the update of each weight is
    one multiply and one subtract: W <- W - (lr / s') delta a^T. Returns s'. The backward
    pass updates each layer as it goes. Dot products are sum(map(mul, ...)); the update is a
    list comprehension, which CPython 3.11 runs faster than any map() chain we tried.
    quirks: the HyperParams when the printed code's quirks are on, else None."""
    f, f_out, fprime, scale = fn
    acts, us, fps = _pass(layers, x, fn, quirks, s)
    delta = [scale * (o - t) for o, t in zip(acts[-1], y)]  # dL/dz(L)
    s_new = s * decay
    fold = not s_new >= S_MIN  # V = W / s could overflow (or lr l2 ~ 1 or more): fold s in now
    for l in range(len(layers) - 1, -1, -1):
        W, b = layers[l]
        a = us[l]
        if l:  # W(l)^T delta, summed before W(l) changes
            back = [s * sum(map(mul, col, delta)) for col in zip(*W)]
        ks = [lr * dj for dj in delta]
        if fold:
            W[:] = [[w * s_new - k * ai for w, ai in zip(row, a)] for row, k in zip(W, ks)]
        else:
            W[:] = [[w - c * ai for w, ai in zip(row, a)] for row, c in
                    zip(W, [k / s_new for k in ks])]
        b[:] = map(sub, b, ks)
        if l:
            delta = list(map(mul, back, map(fprime, a) if fps is None else fps[l]))
    return 1.0 if fold else s_new


def _accumulate(layers, x, y, fn, grads, quirks=None):
    """Add one sample's loss gradient to grads [(gW rows, gb), ...]."""
    f, f_out, fprime, scale = fn
    acts, us, fps = _pass(layers, x, fn, quirks)
    delta = [scale * (o - t) for o, t in zip(acts[-1], y)]
    for l in range(len(layers) - 1, -1, -1):
        W, a = layers[l][0], us[l]
        gW, gb = grads[l]
        for j, dj in enumerate(delta):
            gW[j] = list(map(add, gW[j], map(mul, a, repeat(dj))))
            gb[j] += dj
        if l:
            back = [sum(map(mul, col, delta)) for col in zip(*W)]
            delta = list(map(mul, back, map(fprime, a) if fps is None else fps[l]))


def _batch_gradients(state, rows, targets, fn):
    """dJ/dtheta over a batch: mean loss gradient, plus l2 * W on the weights."""
    grads, quirks = _zeros_like(state["layers"]), _quirks(state["hp"])
    for x, y in zip(rows, targets):
        _accumulate(state["layers"], x, y, fn, grads, quirks)
    m, l2 = len(rows), state["hp"].l2
    return [([[g / m + l2 * w for g, w in zip(grow, wrow)] for grow, wrow in zip(gW, W)],
             [g / m for g in gb]) for (gW, gb), (W, _) in zip(grads, state["layers"])]


def _sgd(state, grads):
    lr = state["hp"].lr
    for (W, b), (gW, gb) in zip(state["layers"], grads):
        for j, (row, grow) in enumerate(zip(W, gW)):
            W[j] = [w - lr * g for w, g in zip(row, grow)]
        b[:] = [v - lr * g for v, g in zip(b, gb)]


def _adam_update(p, g, M, G, b1, b2, step, sqrt_bc2, eps):
    """One Adam step on a list of floats, in place (torch.optim.Adam's arithmetic)."""
    for k, gk in enumerate(g):
        M[k] += (1.0 - b1) * (gk - M[k])
        G[k] = G[k] * b2 + (1.0 - b2) * gk * gk
        p[k] -= step * (M[k] / (sqrt(G[k]) / sqrt_bc2 + eps))


def _adam(state, grads):
    hp, adam = state["hp"], state["adam"]
    adam["t"] += 1
    step = hp.lr / (1.0 - hp.beta1 ** adam["t"])
    sqrt_bc2 = sqrt(1.0 - hp.beta2 ** adam["t"])
    for (W, b), (gW, gb), (MW, Mb), (GW, Gb) in zip(state["layers"], grads, adam["M"], adam["G"]):
        for row, grow, Mrow, Grow in zip(W, gW, MW, GW):
            _adam_update(row, grow, Mrow, Grow, hp.beta1, hp.beta2, step, sqrt_bc2, hp.eps)
        _adam_update(b, gb, Mb, Gb, hp.beta1, hp.beta2, step, sqrt_bc2, hp.eps)


UPDATE = {"sgd": _sgd, "adam": _adam}


def _quirks(hp):
    """hp when any of the printed code's quirks is on (the slower path), else None."""
    return hp if hp.quirky else None


def _functions(hp):
    return ACT[hp.activation], OUT[hp.loss], DERIV[hp.activation], DELTA_SCALE[hp.loss]


def train_epoch(state, X, Y, order):
    hp, fn = state["hp"], _functions(state["hp"])
    rows, targets, order = X.tolist(), Y.tolist(), order.tolist()
    if hp.per_sample_sgd:  # the published per-sample loop
        decay, quirks, s = 1.0 - hp.lr * hp.l2, _quirks(hp), 1.0
        try:
            for i in order:
                s = _sgd_step(state["layers"], rows[i], targets[i], fn, hp.lr, decay, s, quirks)
        finally:  # (also when interrupted): the state holds the true weights again
            if s != 1.0:
                for W, _ in state["layers"]:
                    W[:] = [[w * s for w in row] for row in W]
        return
    B, update = hp.batch(len(order)), UPDATE[hp.optimizer]
    for start in range(0, len(order), B):
        idx = order[start:start + B]
        update(state, _batch_gradients(state, [rows[i] for i in idx], [targets[i] for i in idx], fn))


def predict(state, X):
    import numpy as np
    hp = state["hp"]
    f, f_out = ACT[hp.activation], OUT[hp.loss]
    rows = [list(map(f, x)) for x in X.tolist()] if hp.input_activation else X.tolist()
    return np.array([_forward(state["layers"], x, f, f_out)[-1] for x in rows],
                    dtype=np.float64)


def gradients(state, X, Y):
    import numpy as np
    grads = _batch_gradients(state, X.tolist(), Y.tolist(), _functions(state["hp"]))
    return [(np.array(gW, dtype=np.float64), np.array(gb, dtype=np.float64)) for gW, gb in grads]


def synchronize(state):
    """Nothing to wait for: the work is done when train_epoch returns."""
