"""check_backend(name): the checks every backend must pass, whatever its engine.

In the spirit of scikit-learn's common estimator checks: tests/test_backends.py runs each
check for every registered backend, so a new backend is tested by registering it. Each
check raises AssertionError with a message that names the backend and the case. The data
are tiny and synthetic (no dataset needed), so the slowest backend stays fast.

    check_declaration        the module matches its DECLARATION and has the contract names
    check_round_trip         from_numpy -> to_numpy gives back the weights exactly
    check_hand_gradients     gradients() on 1-1-1 relu nets worked out by hand, quirks included
    check_sgd_step           one per-sample SGD step by hand (with and without L2)
    check_adam_step          Adam's first step by hand
    check_finite_differences gradients() against central differences of the objective
    check_gradients          gradients() against the reference's autograd, to 1e-12
    check_same_as_reference  3 epochs of a Case: the same weights as the reference to 1e-12,
                             or for a float32 Case to float32_tolerance (below)
    check_float32            float32 is float32: its weights are float32 numbers, not
                             float64's, and within float32_tolerance of them

A backend that declares it cannot express a feature (impls.Declaration.refuses: Adam, a
quirk, ...) is not checked on the cases that use it: a check whose cases are all refused
raises Refused (the tests skip it, with the reason), and one with some refused returns them
as [(what, why), ...], so a refusal is always said, never counted as a pass.
"""
import importlib
import math
from itertools import product
from typing import NamedTuple

import numpy as np

from .. import impls
from . import ACTIVATIONS, CONTRACT, LOSSES, HyperParams

TOL = 1e-12  # max |dW| against the reference after REF_EPOCHS epochs
REF_EPOCHS = 3
# float32 (HyperParams.dtype) against the reference in float32: two correct float32 backends
# differ by their round-off, which grows with the updates. Each update changes each weight by
# a float32 sum of products, rounded with relative error ~ EPS32 on values up to max|W|, in
# another order in each engine (BLAS blocking, fused multiply-adds, its own tanh and exp), and
# these differences add up like a random walk: after N updates about EPS32 sqrt(N) max|W|
# per weight. The tolerance is that with a margin C32 for the sums' lengths and what a few
# epochs of training amplify:
#     float32_tolerance(N, M) = C32 * EPS32 * sqrt(N) * max(1, M)
# (M: the reference's largest |weight|; N: the updates of the run). The common checks'
# float32 cases (3 epochs of 24 samples, N = 72 per-sample, 15 in batches of 5) give about
# 1e-5; float64 stays at TOL, 1e-12 (docs/backends.md lists what each backend measured).
EPS32 = float(np.finfo(np.float32).eps)  # 2^-23 = 1.19e-7
C32 = 10.0
N_SAMPLES, N_IN, HIDDEN = 24, 5, (4, 3)
N_OUT = {"mse": 2, "bce": 1, "ce": 3}
UPDATES = [("sgd", 1), ("sgd", 5), ("adam", 5)]  # crossed with every loss and activation
EXTRA_UPDATES = [("sgd", 0), ("adam", 1)]  # full batch, per-sample Adam: once each
QUIRK_SWITCHES = {  # HyperParams fields of the printed code's quirks, one case each
    "input_activation": {"input_activation": True},
    "grad_bug": {"grad_bug": True},
    "relu_grad0": {"relu_grad0": 1.0},
    "all_quirks": {"input_activation": True, "grad_bug": True, "relu_grad0": 1.0},
}


def _fail(name, what):
    raise AssertionError(f"backend '{name}': {what}")


class Refused(Exception):
    """Every case of a check uses a feature the backend refuses; args[0] says which and why,
    .skipped lists them as [(what, why), ...]."""

    def __init__(self, skipped):
        super().__init__("; ".join(dict.fromkeys(why for _, why in skipped)))
        self.skipped = skipped


def refused(name, hp, n_out, what, skipped):
    """True (and (what, why) added to skipped) where backend `name` refuses hp."""
    why = impls.refusal(name, hp, n_out)
    if why:
        skipped.append((what, why))
    return why is not None


def _skipped(skipped, ran):
    """A check's end: raise Refused if it checked nothing, else return what it skipped."""
    if skipped and not ran:
        raise Refused(skipped)
    return skipped


def max_diff(a, b):
    return max(max(float(np.max(np.abs(Wa - Wb))), float(np.max(np.abs(ba - bb))))
               for (Wa, ba), (Wb, bb) in zip(a, b))


def check_declaration(name):
    """The module's DECLARATION is the one the registry reads from its source, and it has
    every name of the contract (impls.Backend)."""
    declared = impls.declaration(name)  # BadDeclaration names a missing or extra field
    module = impls.load(name)
    if getattr(module, "DECLARATION", None) != declared:
        _fail(name, f"module DECLARATION {getattr(module, 'DECLARATION', None)} differs from "
                    f"the one read from its source {declared}")
    missing = [n for n in CONTRACT if not hasattr(module, n)]
    if missing:
        _fail(name, f"lacks {', '.join(missing)} of the contract")
    for n in CONTRACT[1:]:
        if not callable(getattr(module, n)):
            _fail(name, f"{n} is not callable")
    if importlib.import_module(impls.module_name(name)) is not module:
        _fail(name, "registry module and loaded module differ")


def check_round_trip(name):
    backend = impls.load(name)
    rng = np.random.default_rng(0)
    params = [(rng.normal(size=(4, 3)), rng.normal(size=4)), (rng.normal(size=(2, 4)), rng.normal(size=2))]
    back = backend.to_numpy(backend.from_numpy(params, HyperParams("tanh", 0.1, 0.0)))
    if [(W.shape, b.shape) for W, b in back] != [((4, 3), (4,)), ((2, 4), (2,))]:
        _fail(name, f"to_numpy shapes {[(W.shape, b.shape) for W, b in back]}")
    if not all(W.dtype == np.float64 and b.dtype == np.float64 for W, b in back):
        _fail(name, "to_numpy does not give float64")
    if max_diff(back, params) != 0.0:
        _fail(name, "from_numpy -> to_numpy changed the weights")


def _net(W1, b1, W2, b2):
    return [(np.array([[W1]], float), np.array([b1], float)), (np.array([[W2]], float), np.array([b2], float))]


# 1-1-1 relu nets, mse loss, l2 = 0: (quirks, x, y, W1, b1, W2, b2) -> (gW1, gb1, gW2, gb2)
HAND_GRADIENTS = [
    # z1 = -1 + 1 = 0 exactly: a1 = 0, yhat = 0, delta2 = 2 (0 - 1) = -2, gW2 = delta2 a1 = 0;
    # delta1 = W2 delta2 relu'(0) = -4 relu'(0), gW1 = delta1 x = 4 relu'(0), gb1 = delta1
    ({}, -1.0, 1.0, 1.0, 1.0, 2.0, 0.0, (0.0, 0.0, 0.0, -2.0)),
    ({"relu_grad0": 1.0}, -1.0, 1.0, 1.0, 1.0, 2.0, 0.0, (4.0, -4.0, 0.0, -2.0)),
    # a0 = relu(-1) = 0, z1 = 0.5, a1 = 0.5, yhat = 1, delta2 = 2, gW2 = 1; delta1 = 4,
    # gW1 = delta1 a0 = 0, or with grad_bug delta1 x = -4 (u(0) is the raw input)
    ({"input_activation": True}, -1.0, 0.0, 0.5, 0.5, 2.0, 0.0, (0.0, 4.0, 1.0, 2.0)),
    ({"input_activation": True, "grad_bug": True}, -1.0, 0.0, 0.5, 0.5, 2.0, 0.0, (-4.0, 4.0, 1.0, 2.0)),
    # z1 = -1, a1 = 0, yhat = 0.5, delta2 = 1: gW2 = delta2 a1 = 0, with grad_bug delta2 z1 = -1;
    # delta1 = 2 * 1 * relu'(-1) = 0
    ({}, 1.0, 0.0, -1.0, 0.0, 2.0, 0.5, (0.0, 0.0, 0.0, 1.0)),
    ({"grad_bug": True}, 1.0, 0.0, -1.0, 0.0, 2.0, 0.5, (0.0, 0.0, -1.0, 1.0)),
]


def has_quirks(hp_fields):
    return any(hp_fields.get(k, HyperParams._field_defaults[k]) != HyperParams._field_defaults[k]
               for k in ("input_activation", "grad_bug", "relu_grad0"))


def _wanted(quirk_case, quirks):
    """quirks: None runs every case, False the textbook ones, True the quirk ones."""
    return quirks is None or has_quirks(quirk_case) == quirks


def check_hand_gradients(name, quirks=None):
    backend, skipped, ran = impls.load(name), [], 0
    for case, x, y, W1, b1, W2, b2, want in HAND_GRADIENTS:
        if not _wanted(case, quirks):
            continue
        hp = HyperParams(activation="relu", lr=0.1, l2=0.0, **case)
        if refused(name, hp, 1, f"hand gradients {case or 'no quirks'}, x={x}", skipped):
            continue
        ran += 1
        (gW1, gb1), (gW2, gb2) = backend.gradients(backend.from_numpy(_net(W1, b1, W2, b2), hp),
                                                   np.array([[x]]), np.array([[y]]))
        got = (gW1[0, 0], gb1[0], gW2[0, 0], gb2[0])
        if not np.allclose(got, want, rtol=0, atol=1e-15):
            _fail(name, f"gradients {case or 'no quirks'}, x={x}, y={y}: got {got}, want {want}")
    return _skipped(skipped, ran)


def check_sgd_step(name):
    """1-1-1 relu net, x = 1, y = 0, W1 = 0.5, W2 = 2, biases 0, lr = 0.1:
    a1 = 0.5, yhat = 1, delta2 = 2 (yhat - y) = 2, dW2 = delta2 a1 = 1, db2 = 2,
    delta1 = W2 delta2 relu'(z1) = 4, dW1 = 4, db1 = 4; W <- W - lr (dW + l2 W), b <- b - lr db."""
    backend = impls.load(name)
    for l2, W1_new, W2_new in ((0.0, 0.1, 1.9), (0.1, 0.095, 1.88)):
        hp = HyperParams(activation="relu", lr=0.1, l2=l2)
        state = backend.from_numpy(_net(0.5, 0.0, 2.0, 0.0), hp)
        yhat = backend.predict(state, np.array([[1.0]]))[0, 0]
        if abs(yhat - 1.0) > 1e-15:
            _fail(name, f"predict gives {yhat}, want 1")
        backend.train_epoch(state, np.array([[1.0]]), np.array([[0.0]]), np.array([0]))
        backend.synchronize(state)
        (W1, b1), (W2, b2) = backend.to_numpy(state)
        got, want = (W1[0, 0], b1[0], W2[0, 0], b2[0]), (W1_new, -0.4, W2_new, -0.2)
        if not np.allclose(got, want, rtol=0, atol=1e-15):
            _fail(name, f"one SGD step with l2 {l2}: got {got}, want {want}")


def check_adam_step(name):
    """Adam's first step moves every parameter by lr * sign(g) (eps = 0): with
    M = (1 - b1) g, G = (1 - b2) g^2, M / (1 - b1) = g and sqrt(G / (1 - b2)) = |g|."""
    hp = HyperParams(activation="relu", lr=0.1, l2=0.0, optimizer="adam", eps=0.0)
    skipped = []
    if refused(name, hp, 1, "one Adam step", skipped):
        raise Refused(skipped)
    backend = impls.load(name)
    state = backend.from_numpy(_net(0.5, 0.0, 2.0, 0.0), hp)
    backend.train_epoch(state, np.array([[1.0]]), np.array([[0.0]]), np.array([0]))
    backend.synchronize(state)
    (W1, b1), (W2, b2) = backend.to_numpy(state)  # all gradients are positive (see above)
    got = (W1[0, 0], b1[0], W2[0, 0], b2[0])
    if not np.allclose(got, (0.4, -0.1, 1.9, -0.1), rtol=0, atol=1e-15):
        _fail(name, f"one Adam step: got {got}, want (0.4, -0.1, 1.9, -0.1)")


def synthetic(loss, seed=0):
    """(params, X, Y) of the checks: N_SAMPLES samples, net N_IN-HIDDEN-N_OUT[loss]. The first
    hidden unit starts with zero weights and bias, so its z is exactly 0 and relu'(0) matters."""
    rng = np.random.default_rng([seed, list(LOSSES).index(loss)])
    X = rng.normal(size=(N_SAMPLES, N_IN))
    k = N_OUT[loss]
    Y = {"mse": lambda: rng.normal(size=(N_SAMPLES, k)),
         "bce": lambda: rng.integers(0, 2, (N_SAMPLES, k)).astype(float),
         "ce": lambda: np.eye(k)[rng.integers(0, k, N_SAMPLES)]}[loss]()
    sizes = (N_IN, *HIDDEN, k)
    params = [(rng.uniform(-0.8, 0.8, (o, i)), rng.uniform(-0.1, 0.1, o)) for i, o in zip(sizes[:-1], sizes[1:])]
    params[0][0][0], params[0][1][0] = 0.0, 0.0
    return params, X, Y


def _objective(backend, state, X, Y, hp):
    """J = mean of L + (l2 / 2) * sum W^2, from predict alone."""
    P = backend.predict(state, X)
    L = {"mse": lambda: np.sum((P - Y) ** 2, axis=1),
         "bce": lambda: -np.sum(Y * np.log(P) + (1 - Y) * np.log(1 - P), axis=1),
         "ce": lambda: -np.sum(Y * np.log(P), axis=1)}[hp.loss]()
    return np.mean(L) + 0.5 * hp.l2 * sum(np.sum(W * W) for W, _ in backend.to_numpy(state))


def check_finite_differences(name, quirks=None, h=1e-6):
    """gradients() against central differences on a 3-3-2-k net and 5 samples, each loss
    once (with another activation), and with input_activation (still the true gradient);
    never with grad_bug (not a gradient). check_gradients covers the other combinations."""
    backend, skipped, ran = impls.load(name), [], 0
    cases = [(loss, a, {}) for loss, a in zip(LOSSES, ("tanh", "relu", "sigmoid"))]
    cases += [("mse", "relu", {"input_activation": True})]
    for loss, activation, case in cases:
        if not _wanted(case, quirks):
            continue
        hp = HyperParams(activation=activation, lr=0.1, l2=0.1, loss=loss, **case)
        if refused(name, hp, N_OUT[loss], f"finite differences, {loss} {activation} {case}", skipped):
            continue
        ran += 1
        params, X, Y = synthetic(loss, seed=1)
        # + 0.3 on the first layer: no z exactly 0 (relu'(0) has no finite difference)
        params = [(params[0][0][:3, :3] + 0.3, params[0][1][:3]), (params[1][0][:2, :3], params[1][1][:2]),
                  (params[2][0][:, :2], params[2][1])]
        X, Y = X[:5, :3], Y[:5]
        grads = backend.gradients(backend.from_numpy(params, hp), X, Y)
        fd = []
        for l, (W, b) in enumerate(params):
            pair = []
            for which, arr in enumerate((W, b)):
                g = np.zeros_like(arr)
                for idx in np.ndindex(arr.shape):
                    J = []
                    for sign in (1, -1):
                        p = [(Wk.copy(), bk.copy()) for Wk, bk in params]
                        p[l][which][idx] += sign * h
                        J.append(_objective(backend, backend.from_numpy(p, hp), X, Y, hp))
                    g[idx] = (J[0] - J[1]) / (2 * h)
                pair.append(g)
            fd.append(tuple(pair))
        scale = max(max(np.max(np.abs(gW)), np.max(np.abs(gb))) for gW, gb in fd)
        err = max_diff(grads, fd) / scale
        if not err <= 1e-6 or scale == 0:
            _fail(name, f"gradients vs finite differences, {loss} {activation} {case}: "
                        f"relative error {err:.2e}")
    return _skipped(skipped, ran)


def check_gradients(name, reference="torch"):
    """gradients() equal the reference's (autograd) to 1e-12, every loss x activation."""
    backend, ref, skipped, ran = impls.load(name), impls.load(reference), [], 0
    for loss, activation in product(LOSSES, ACTIVATIONS):
        hp = HyperParams(activation=activation, lr=0.1, l2=0.1, loss=loss)
        if refused(name, hp, N_OUT[loss], f"gradients, {loss} {activation}", skipped):
            continue
        ran += 1
        params, X, Y = synthetic(loss, seed=2)
        params[0][0][0] += 0.3  # no z exactly 0: relu'(0) is a quirk case
        got = backend.gradients(backend.from_numpy(params, hp), X[:7], Y[:7])
        want = ref.gradients(ref.from_numpy(params, hp), X[:7], Y[:7])
        scale = max(max(np.max(np.abs(gW)), np.max(np.abs(gb))) for gW, gb in want)
        if not max_diff(got, want) <= 1e-12 * scale:
            _fail(name, f"gradients, {loss} {activation}: max |dg| against {reference} "
                        f"{max_diff(got, want):.2e} (scale {scale:.2e})")
    return _skipped(skipped, ran)


def float32_tolerance(updates, max_weight):
    """How far two correct float32 trainings of `updates` updates may end apart, with the
    reference's largest |weight| max_weight (see C32 above)."""
    return C32 * EPS32 * math.sqrt(updates) * max(1.0, float(max_weight))


def max_abs(params):
    """The largest |weight| or |bias| of [(W, b), ...]."""
    return max(max(float(np.max(np.abs(W))), float(np.max(np.abs(b)))) for W, b in params)


class Case(NamedTuple):
    """One training configuration of check_same_as_reference."""

    optimizer: str
    batch_size: int
    loss: str
    activation: str
    quirks: str = ""  # a QUIRK_SWITCHES key, or "" for the textbook maths
    dtype: str = "float64"

    @property
    def id(self):
        return "-".join(map(str, (self.optimizer, self.batch_size or "full", self.loss,
                                  self.activation, self.quirks or "plain"))) + (
            "" if self.dtype == "float64" else f"-{self.dtype}")

    @property
    def updates(self):
        """The updates of REF_EPOCHS epochs on the N_SAMPLES synthetic samples."""
        return REF_EPOCHS * -(-N_SAMPLES // (self.batch_size or N_SAMPLES))

    def hp(self):
        return HyperParams(activation=self.activation, lr=0.05 if self.optimizer == "sgd" else 0.01,
                           l2=0.05, loss=self.loss, batch_size=self.batch_size,
                           optimizer=self.optimizer, dtype=self.dtype,
                           **QUIRK_SWITCHES.get(self.quirks, {}))

    def tolerance(self, reference_weights):
        """max |dW| allowed against the reference: TOL, or float32_tolerance."""
        if self.dtype == "float64":
            return TOL
        return float32_tolerance(self.updates, max_abs(reference_weights))


def cases():
    """Every optimiser x loss x activation (per-sample and mini-batch), full batch and
    per-sample Adam once each, and each quirk switch with every loss and activation (relu'(0)
    only where it can matter: relu), all quirks at once with Adam for each loss."""
    out = [Case(o, B, loss, a) for (o, B), loss, a in product(UPDATES, LOSSES, ACTIVATIONS)]
    out += [Case(o, B, "mse", "tanh") for o, B in EXTRA_UPDATES]
    for quirks, loss, a in product(QUIRK_SWITCHES, LOSSES, ACTIVATIONS):
        if quirks != "relu_grad0" or a == "relu":
            out.append(Case("sgd", 1, loss, a, quirks))
    out += [Case("adam", 5, loss, a, "all_quirks") for loss, a in zip(LOSSES, ACTIVATIONS[::-1])]
    return out


FLOAT32_UPDATES = [("sgd", 1), ("sgd", 5), ("adam", 5)]


def float32_cases():
    """The float32 cases: per-sample and mini-batch SGD for every loss x activation,
    mini-batch Adam once, and once each the other code paths of a hand-written backend, where
    a stray float64 constant would hide as well: full batch, per-sample Adam, all quirks with
    per-sample SGD (relu'(0) = 1 used) and with Adam."""
    return [Case(o, B, loss, a, dtype="float32")
            for (o, B), loss, a in product(FLOAT32_UPDATES[:2], LOSSES, ACTIVATIONS)] + [
        Case(*FLOAT32_UPDATES[2], "mse", "tanh", dtype="float32"),
        Case("sgd", 0, "ce", "sigmoid", dtype="float32"),
        Case("adam", 1, "bce", "relu", dtype="float32"),
        Case("sgd", 1, "mse", "relu", "all_quirks", dtype="float32"),
        Case("adam", 5, "bce", "tanh", "all_quirks", dtype="float32")]


def train(name, case, epochs=REF_EPOCHS):
    """Final weights of `epochs` epochs of `case` on the synthetic data, fixed sample orders."""
    backend = impls.load(name)
    params, X, Y = synthetic(case.loss)
    state = backend.from_numpy(params, case.hp())
    rng = np.random.default_rng(7)
    for _ in range(epochs):
        backend.train_epoch(state, X, Y, rng.permutation(N_SAMPLES))
    backend.synchronize(state)
    return backend.to_numpy(state), params


def check_same_as_reference(name, case, reference="torch", reference_weights=None):
    """`case` trained by backend `name` and by `reference` ends with the same weights
    (Refused where `name` cannot express it)."""
    skipped = []
    if refused(name, case.hp(), N_OUT[case.loss], case.id, skipped):
        raise Refused(skipped)
    w, start = train(name, case)
    ref = reference_weights if reference_weights is not None else train(reference, case)[0]
    if not max_diff(ref, start) > 1e-4:
        _fail(reference, f"{case.id}: training did not move the weights")
    d, tol = max_diff(w, ref), case.tolerance(ref)
    if not d <= tol:
        _fail(name, f"{case.id}: max |dW| against {reference} is {d:.2e} > {tol:.3g}")


def _is_float32(params):
    return all(np.array_equal(A.astype(np.float32).astype(np.float64), A) and A.dtype == np.float64
               for W, b in params for A in (W, b))


def check_float32(name):
    """--dtype float32 really trains in float32: from_numpy rounds the weights to float32 and
    to_numpy gives them back as float64; predict and gradients give float64 arrays; and 3
    epochs of per-sample SGD end with weights that are float32 numbers, different from the
    float64 run's, but by at most float32_tolerance (the float64 run is the exact one)."""
    case64 = Case("sgd", 1, "mse", "tanh")
    case = case64._replace(dtype="float32")
    skipped = []
    if refused(name, case.hp(), N_OUT[case.loss], "float32 against float64", skipped):
        raise Refused(skipped)
    backend = impls.load(name)
    params, X, Y = synthetic(case.loss)
    state = backend.from_numpy(params, case.hp())
    back = backend.to_numpy(state)
    want = [(W.astype(np.float32).astype(np.float64), b.astype(np.float32).astype(np.float64))
            for W, b in params]
    if not _is_float32(back) or max_diff(back, want) != 0.0:
        _fail(name, "float32: from_numpy -> to_numpy is not the weights rounded to float32, "
                    "as float64")
    P, grads = backend.predict(state, X), backend.gradients(state, X, Y)
    if P.dtype != np.float64 or not all(g.dtype == np.float64 for pair in grads for g in pair):
        _fail(name, "float32: predict or gradients do not give float64 arrays")
    w32, w64 = train(name, case)[0], train(name, case64)[0]
    if not _is_float32(w32):
        _fail(name, "float32: the trained weights are not float32 numbers")
    d, tol = max_diff(w32, w64), float32_tolerance(case.updates, max_abs(w64))
    if not 0.0 < d <= tol:
        _fail(name, f"float32: max |dW| against its float64 run is {d:.2e}, not in (0, {tol:.3g}]")


CHECKS = [check_declaration, check_round_trip, check_hand_gradients, check_sgd_step,
          check_adam_step, check_finite_differences, check_gradients, check_float32]


def check_backend(name, reference="torch"):
    """Every check on backend `name`; the first failure raises AssertionError. Returns what
    was not checked because the backend refuses it: [(what, why), ...]."""
    skipped = []
    checks = [(check, ()) for check in CHECKS]
    if name != reference:
        checks += [(check_same_as_reference, (case, reference))
                   for case in cases() + float32_cases()]
    for check, args in checks:
        try:
            skipped += check(name, *args) or []
        except Refused as e:
            skipped += e.skipped
    return skipped
