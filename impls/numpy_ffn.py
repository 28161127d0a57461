"""NumPy backend: the same backpropagation, vectorised over each layer and each batch, in
float64 or float32 (hp.dtype: every array of the state in it, BLAS's d- or s- routines)."""
from math import sqrt

import numpy as np
# matrix-vector product and rank-1 update, with alpha, per dtype
from scipy.linalg.blas import dgemv, dger, sgemv, sger
from scipy.special import expit  # the logistic function in one call

from . import DELTA_SCALE, S_MIN, Declaration

DECLARATION = Declaration(
    name="numpy", devices=("cpu",), extra=None, packages=(), gradients="hand-written",
    sources=("numpy_ffn.py",), tools=(), refuses=(),
)


def _softmax(z, out=None):
    out = np.subtract(z, z.max(axis=1, keepdims=True), out=out)  # no overflow in exp
    np.exp(out, out=out)
    out /= out.sum(axis=1, keepdims=True)
    return out


def _relu(z, out=None):
    return np.maximum(z, 0.0, out=out)


def _linear(z, out=None):
    return z


def _sigmoid_prime(a, out):
    return np.multiply(np.subtract(1.0, a, out=out), a, out=out)


def _tanh_prime(a, out):
    return np.subtract(1.0, np.multiply(a, a, out=out), out=out)


def _relu_prime(a, out):  # relu'(0) = 0 as autograd has it (a = 0 for every z <= 0)
    return np.greater(a, 0.0, out=out)


ACT = {"sigmoid": expit, "tanh": np.tanh, "relu": _relu}  # f(z), in place when out=z
OUT = {"mse": _linear, "bce": expit, "ce": _softmax}  # output f_L per loss
DERIV = {"sigmoid": _sigmoid_prime, "tanh": _tanh_prime, "relu": _relu_prime}  # f'(z) from a
BLAS = {"float64": (dgemv, dger), "float32": (sgemv, sger)}  # hp.dtype -> (gemv, ger)


def _fprime_quirks(hp):
    """f'(z) from (a, z) into out: relu'(0) = hp.relu_grad0; the others from a alone."""
    if hp.activation == "relu" and hp.relu_grad0 != 0.0:
        g0 = hp.relu_grad0

        def relu_prime(a, z, out):
            np.greater(z, 0.0, out=out)
            out += g0 * (z == 0.0)
            return out
        return relu_prime
    fprime = DERIV[hp.activation]
    return lambda a, z, out: fprime(a, out=out)


def _blocks(buffer, sizes):
    """Per layer, the view of `buffer` holding [W | b]^T: C-contiguous (n_l-1 + 1, n_l)."""
    views, o = [], 0
    for nin, nout in zip(sizes[:-1], sizes[1:]):
        views.append(buffer[o:o + (nin + 1) * nout].reshape(nin + 1, nout))
        o += (nin + 1) * nout
    return views


def from_numpy(params, hp, device="cpu"):
    # All weights and biases live in one vector theta, so an optimiser step is a few calls
    # on it rather than a few per tensor. Layer l is [W | b] (n_l, n_l-1 + 1), a Fortran-order
    # view: W is one contiguous block (scaling W is a fast ufunc, not a strided one), BLAS's
    # in-place rank-1 update takes it as is, and the per-sample loop treats b as the weight
    # of a constant input.
    sizes = [params[0][0].shape[1]] + [len(b) for _, b in params]
    dtype = np.dtype(hp.dtype)
    theta = np.empty(sum((nin + 1) * nout for nin, nout in zip(sizes[:-1], sizes[1:])), dtype)
    Wb = [T.T for T in _blocks(theta, sizes)]
    mask = np.zeros_like(theta)  # 1 on the weights, 0 on the biases (L2 is on weights only)
    for M, (W, b), K in zip(Wb, params, _blocks(mask, sizes)):
        M[:, :-1], M[:, -1] = W, b
        K[:-1] = 1.0
    grad = np.zeros_like(theta)  # dJ/dtheta of the current batch, same layout as theta
    state = {"hp": hp, "dtype": dtype, "theta": theta, "Wb": Wb, "params": [(M[:, :-1], M[:, -1]) for M in Wb],
             "l2_mask": hp.l2 * mask, "l2_term": np.empty_like(theta), "grad": grad,
             "grad_views": [(T[:-1], T[-1]) for T in _blocks(grad, sizes)],  # gW^T, gb
             "work": {}}  # batch size -> _work_arrays
    if hp.per_sample_sgd:  # buffers for the per-sample loop
        # a(l) and delta(l) with one extra slot: the constant input / the unused bias delta.
        # All [a(l), slot] are consecutive in one array (and f'(z(l)) at the same places in
        # another), so f' of every hidden layer is one or two array ops per sample.
        o = np.cumsum([0] + [n + 1 for n in sizes])  # layer l at o[l]:o[l + 1]
        Abuf, Fbuf = np.ones(o[-1], dtype), np.zeros(o[-1], dtype)
        state["buffers"] = {"A": [Abuf[i:j] for i, j in zip(o[:-1], o[1:])],
                            "F": [Fbuf[i:j - 1] for i, j in zip(o[:-1], o[1:])],
                            "hidden": (Abuf[o[1]:o[-2]], Fbuf[o[1]:o[-2]]),  # l = 1 .. L-1
                            "D": [np.zeros(n + 1, dtype) for n in sizes],
                            "Z": [np.ones(n + 1, dtype) for n in sizes]}  # [x 1], [z(l) 1]: quirks
    if hp.optimizer == "adam":  # first and second moments, same layout as theta
        state["adam"] = {"t": 0, "M": np.zeros_like(theta), "G": np.zeros_like(theta)}
    return state


def to_numpy(state):  # contiguous float64 copies of the views
    return [(W.astype(np.float64), b.astype(np.float64)) for W, b in state["params"]]


def _forward(params, X, f, f_out, out=None):
    """Activations a(0) = X, ..., a(L) = outputs; each (m, n_l), into out[l - 1] if given."""
    A, L = [X], len(params)
    for l, (W, b) in enumerate(params):
        z = np.matmul(A[-1], W.T, out=None if out is None else out[l])  # (m, n_l)
        z += b
        A.append((f if l < L - 1 else f_out)(z, out=z))
    return A


def _forward_quirks(params, X, hp):
    """The printed code's forward pass: (A, U, FP) with A the activations (a(0) = f(X) with
    input_activation), U[l] the input layer l + 1's weight gradient uses (A[l], or X and
    z(l) with grad_bug) and FP[l] = f'(z(l)) for the hidden layers (FP[0] unused)."""
    f, f_out = ACT[hp.activation], OUT[hp.loss]
    fprime = _fprime_quirks(hp)
    A, U, FP = [f(X) if hp.input_activation else X], [X], [None]
    for l, (W, b) in enumerate(params):
        z = A[-1] @ W.T  # (m, n_l)
        z += b
        if l == len(params) - 1:
            A.append(f_out(z, out=z))
        else:
            a = f(z)
            A.append(a)
            U.append(z)
            FP.append(fprime(a, z, np.empty_like(z)))
    return A, (U if hp.grad_bug else A[:-1]), FP


def _backward(params, A, Y, fprime, scale, out, U=None, FP=None, work=None):
    """Mean over the batch of the per-sample loss gradients (no L2 term), written into
    out = [(gW^T, gb) per layer] (the views state["grad_views"] of the flat gradient).
    With the quirks: U[l] replaces A[l] in the weight gradient, FP[l] is f'(z(l)).
    work: _work_arrays for this batch size, or None to allocate."""
    U = A if U is None else U
    D, F = (work["D"], work["F"]) if work else ([None] * len(params), [None] * len(params))
    ones = work["ones"] if work else np.ones(len(Y), A[-1].dtype)
    delta = np.subtract(A[-1], Y, out=D[-1])
    delta *= scale / len(Y)  # (m, n_L) = dL/dz(L) / m: the mean rides along with delta
    for l in range(len(params) - 1, -1, -1):
        gWT, gb = out[l]
        np.matmul(U[l].T, delta, out=gWT)  # (n_l-1, n_l)
        np.matmul(ones, delta, out=gb)  # (n_l,): the sum over the batch, in BLAS
        if l:
            delta = np.matmul(delta, params[l][0], out=D[l - 1])  # (m, n_l-1)
            delta *= fprime(A[l], out=np.empty_like(delta) if F[l] is None else F[l]) \
                if FP is None else FP[l]


def _work_arrays(state, m):
    """a(l), delta(l) and f'(z(l)) for a batch of m samples, made once per batch size and
    kept: fresh arrays of this size come from the system each time, page faults and all."""
    cache = state["work"]
    if m not in cache:
        sizes, dt = [W.shape[0] for W, _ in state["params"]], state["dtype"]  # n_1 .. n_L
        cache[m] = {"A": [np.empty((m, n), dt) for n in sizes],
                    "D": [np.empty((m, n), dt) for n in sizes],
                    "F": [np.empty((m, n), dt) for n in [0] + sizes[:-1]], "ones": np.ones(m, dt)}
    return cache[m]


def _batch_gradient(state, X, Y, work=None):
    """The (possibly quirky) loss gradient of the batch X, Y into state["grad_views"]."""
    hp, params = state["hp"], state["params"]
    f, f_out, fprime, scale = _functions(hp)
    if hp.quirky:
        A, U, FP = _forward_quirks(params, X, hp)
        _backward(params, A, Y, fprime, scale, state["grad_views"], U, FP)
    else:
        A = _forward(params, X, f, f_out, None if work is None else work["A"])
        _backward(params, A, Y, fprime, scale, state["grad_views"], work=work)


def _sgd(state):
    """theta <- theta - lr (g + l2 W), torch.optim.SGD's weight_decay, on the flat vector."""
    theta, g = state["theta"], state["grad"]
    g += np.multiply(state["l2_mask"], theta, out=state["l2_term"])
    g *= state["hp"].lr
    theta -= g


def _adam(state):
    """torch.optim.Adam's arithmetic, L2 added to the weight gradients (weight_decay)."""
    hp, adam, theta = state["hp"], state["adam"], state["theta"]
    adam["t"] += 1
    step = hp.lr / (1.0 - hp.beta1 ** adam["t"])
    sqrt_bc2 = sqrt(1.0 - hp.beta2 ** adam["t"])  # a Python float: keeps float32 float32
    g, M, G = state["grad"] + state["l2_mask"] * theta, adam["M"], adam["G"]
    M += (1.0 - hp.beta1) * (g - M)
    G *= hp.beta2
    G += (1.0 - hp.beta2) * g * g
    theta -= step * (M / (np.sqrt(G) / sqrt_bc2 + hp.eps))


UPDATE = {"sgd": _sgd, "adam": _adam}


def _functions(hp):
    return ACT[hp.activation], OUT[hp.loss], DERIV[hp.activation], DELTA_SCALE[hp.loss]




def _sgd_epoch(state, X, Y, order):
    """Per-sample SGD at NumPy's call floor. At these sizes the cost is the number of calls
    (and the interpreter between them), not the arithmetic, so: every product goes through
    BLAS with its alpha (dgemv, dger, called positionally: keywords cost more than a small
    product), the ufuncs take `out` positionally, f'(z) of all hidden layers is one or two
    ufunc calls on the buffer that holds them all, and the weight decay is never a call of
    its own: the weights are kept as W = s V with one scale s for all layers, so
    W <- (1 - lr l2) W is s <- (1 - lr l2) s.
    The bias column of V is b itself; the constant input beside a(l-1) is 1/s in the forward
    pass (s V [a, 1/s] = W a + b) and s' in the update (the bias moves by -lr delta while
    V's weights move by -(lr/s') delta a^T). delta(L) is kept without DELTA_SCALE, which
    rides in the alphas. s is folded back into V at the end of the epoch (and whenever it
    falls below S_MIN), so the state holds the true weights between epochs."""
    hp, Wb, buf = state["hp"], state["Wb"], state["buffers"]
    lr, decay, L = hp.lr, 1.0 - hp.lr * hp.l2, len(Wb)
    if L < 2 or not decay > S_MIN:  # no hidden layer, or lr l2 ~ 1 or more (the weights
        return _sgd_epoch_quirks(state, X, Y, order)  # vanish or flip sign): the general loop
    A, D, F = buf["A"], buf["D"], buf["F"]
    dgemv, dger = BLAS[hp.dtype]  # (sgemv, sger) for float32
    Ah, Fh = buf["hidden"]  # [a(1) slot ... a(L-1) slot] and f'(z) at the same places
    one = np.ones_like(Ah)
    f, f_out, _, scale = _functions(hp)
    act = hp.activation
    mul, sub, greater = np.multiply, np.subtract, np.greater
    a = [v[:-1] for v in A]
    d = [v[:-1] for v in D]
    W = [V[:, :-1] for V in Wb]
    a1, aL, dL, d1, V1 = a[1], a[L], d[L], d[1], Wb[0]
    out = a[L][None, :] if f_out is not _linear else None  # 2-D view: softmax works on rows
    hidden = list(zip(Wb, A, a[1:]))[1:-1]  # forward, 1 < l < L: (V, [a(l-1), slot], a(l))
    VL, AL1 = Wb[L - 1], A[L - 1]
    down = [(Wb[l - 1], d[l], D[l - 1], A[l - 1], d[l - 1], F[l - 1])
            for l in range(L, 1, -1)]  # backward, layer l from L to 2; layer 1 after it
    tanh, relu = act == "tanh", act == "relu"
    Xe = np.empty((len(order), X.shape[1] + 1), state["dtype"])  # [x, slot] rows, in order
    Xe[:, :-1] = X[order]
    s = 1.0
    try:
        for A0, y in zip(Xe, Y[order]):
            inv = 1.0 / s
            A0[-1] = inv
            dgemv(s, V1, A0, 0.0, a1, 0, 1, 0, 1, 0, 1)
            f(a1, a1)  # a(1) = f(W x + b)
            for V, Ain, aout in hidden:
                Ain[-1] = inv
                f(dgemv(s, V, Ain, 0.0, aout, 0, 1, 0, 1, 0, 1), aout)
            AL1[-1] = inv
            dgemv(s, VL, AL1, 0.0, aL, 0, 1, 0, 1, 0, 1)
            if out is not None:
                f_out(out, out=out)
            sub(aL, y, dL)  # delta(L) / DELTA_SCALE
            if tanh:  # f'(z) = 1 - a^2 (and 1 - slot^2 beside it, not used)
                mul(Ah, Ah, Fh)
                sub(one, Fh, Fh)
            elif relu:  # 1 (z > 0), 0 otherwise: relu'(0) = 0 as autograd has it
                greater(Ah, 0.0, Fh)
            else:  # sigmoid: (1 - a) a
                sub(one, Ah, Fh)
                mul(Fh, Ah, Fh)
            s_new = s * decay
            if s_new < S_MIN:  # make V the weights again before V = W / s could overflow
                for Wl in W:
                    mul(Wl, s, Wl)
                s, s_new = 1.0, decay
            down_alpha, up_alpha = s * scale, -lr * scale / s_new
            for V, dl, Dprev, Aprev, dprev, Fprev in down:
                dgemv(down_alpha, V, dl, 0.0, Dprev, 0, 1, 0, 1, 1, 1)  # W^T delta, before update
                Aprev[-1] = s_new  # (Dprev's last slot, the bias's, is not used)
                dger(up_alpha, dl, Aprev, 1, 1, V, 1, 1, 1)  # V -= (lr/s') delta [a(l-1), s']^T
                mul(dprev, Fprev, dprev)  # delta(l-1) = W^T delta(l) f'(z(l-1))
                down_alpha, up_alpha = s, -lr / s_new
            A0[-1] = s_new
            dger(up_alpha, d1, A0, 1, 1, V1, 1, 1, 1)
            s = s_new
    finally:  # (also when interrupted): the state holds the true weights again
        if s != 1.0:
            for Wl in W:
                mul(Wl, s, Wl)


def _sgd_epoch_quirks(state, X, Y, order):
    """_sgd_epoch with the printed code's quirks (hp.input_activation, grad_bug,
    relu_grad0): z(l) is kept in Z, and [x 1] / [z(l) 1] replace [a(l) 1] in the update
    under grad_bug. A separate loop, so the textbook one pays nothing for them."""
    hp, Wb, buf = state["hp"], state["Wb"], state["buffers"]
    A, D, F, Z = buf["A"], buf["D"], buf["F"], buf["Z"]
    f, f_out, _, scale = _functions(hp)
    fprime = _fprime_quirks(hp)
    dger = BLAS[hp.dtype][1]
    lr, decay, L = hp.lr, 1.0 - hp.lr * hp.l2, len(Wb)
    U = Z if hp.grad_bug else A  # [u(l) 1]: what the weight gradient multiplies delta by
    a, z, d = ([v[:-1] for v in B] for B in (A, Z, D))
    W = [W for W, _ in state["params"]]
    out = a[L][None, :]
    for n in order:
        z[0][:] = X[n]
        if hp.input_activation:
            f(z[0], out=a[0])
        else:
            a[0][:] = z[0]
        for l in range(L - 1):
            f(np.dot(Wb[l], A[l], out=z[l + 1]), out=a[l + 1])
        np.dot(Wb[L - 1], A[L - 1], out=a[L])
        f_out(out, out=out)
        np.subtract(a[L], Y[n], out=d[L])
        d[L] *= scale
        for l in range(L, 0, -1):
            if l > 1:
                np.dot(d[l], Wb[l - 1], out=D[l - 1])
            if decay != 1.0:
                W[l - 1] *= decay
            dger(-lr, d[l], U[l - 1], a=Wb[l - 1], overwrite_a=1)  # [W | b] -= lr delta [u 1]^T
            if l > 1:
                d[l - 1] *= fprime(a[l - 1], z[l - 1], F[l - 1])


def train_epoch(state, X, Y, order):
    hp = state["hp"]
    X, Y = (np.asarray(A, state["dtype"]) for A in (X, Y))  # as they are where they match
    if hp.per_sample_sgd:
        return (_sgd_epoch_quirks if hp.quirky else _sgd_epoch)(state, X, Y, order)
    B, update = hp.batch(len(order)), UPDATE[hp.optimizer]
    X, Y = X[order], Y[order]  # the batches are slices
    for start in range(0, len(order), B):
        m = min(B, len(order) - start)
        _batch_gradient(state, X[start:start + m], Y[start:start + m], _work_arrays(state, m))
        update(state)


def predict(state, X):
    hp = state["hp"]
    X = np.asarray(X, state["dtype"])
    if hp.input_activation:
        X = ACT[hp.activation](X)
    P = _forward(state["params"], X, ACT[hp.activation], OUT[hp.loss])[-1]
    return P.astype(np.float64, copy=False)


def gradients(state, X, Y):
    hp, params = state["hp"], state["params"]
    _batch_gradient(state, *(np.asarray(A, state["dtype"]) for A in (X, Y)))
    return [((gWT.T + hp.l2 * W).astype(np.float64, copy=False), gb.astype(np.float64))
            for (W, _), (gWT, gb) in zip(params, state["grad_views"])]


def synchronize(state):
    """Nothing to wait for: the work is done when train_epoch returns."""
