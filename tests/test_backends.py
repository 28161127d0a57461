"""The four backends compute the same thing: same weights, same gradients, hand-checked steps."""
import numpy as np
import pytest

import impls
from ffnbench import harness
from ffnbench.config import TrainConfig

from conftest import BACKENDS, max_weight_diff, subset

HAND_WRITTEN = [n for n, d in impls.declarations().items() if d.gradients == "hand-written"]

NETS = [(10,), (50, 30, 20, 10, 5)]
PYTHON_SUBSET = 300  # training samples for the pure-Python runs (and their reference)


@pytest.mark.parametrize("dataset", ["red", "white"])
@pytest.mark.parametrize("hidden", NETS, ids=lambda h: "-".join(map(str, h)))
@pytest.mark.parametrize("activation", impls.ACTIVATIONS)
def test_all_backends_end_with_the_same_weights(dataset, hidden, activation):
    """3 epochs of per-sample SGD from the same seed: max |dW| <= 1e-12 against torch."""
    cfg = dict(dataset=dataset, hidden=hidden, activation=activation, lr=0.01, l2=0.1,
               epochs=3, patience=0, seed=1)
    prepared = harness.prepare(TrainConfig(**cfg))
    ref = harness.train(TrainConfig(backend="torch", **cfg), prepared)[1]
    for backend in ("numpy", "numba"):
        w = harness.train(TrainConfig(backend=backend, **cfg), prepared)[1]
        assert max_weight_diff(w, ref) <= 1e-12, backend
        assert max_weight_diff(w, prepared.params) > 1e-3  # training really moved them
    small = subset(prepared, PYTHON_SUBSET)
    small_ref = harness.train(TrainConfig(backend="torch", **cfg), small)[1]
    w = harness.train(TrainConfig(backend="python", **cfg), small)[1]
    assert max_weight_diff(w, small_ref) <= 1e-12


LOSS_OF_OUTPUT = {  # per-sample loss from the network's output (after f_L), summed over k
    "mse": lambda P, Y: np.sum((P - Y) ** 2, axis=1),
    "bce": lambda P, Y: -np.sum(Y * np.log(P) + (1 - Y) * np.log(1 - P), axis=1),
    "ce": lambda P, Y: -np.sum(Y * np.log(P), axis=1),
}


def _objective(backend, state, X, Y, hp):
    """J = mean of L + (l2 / 2) * sum W^2, from predict alone."""
    return np.mean(LOSS_OF_OUTPUT[hp.loss](backend.predict(state, X), Y)) + 0.5 * hp.l2 * sum(
        np.sum(W * W) for W, _ in backend.to_numpy(state))


def _finite_differences(backend, params, hp, X, Y, h=1e-6):
    grads = []
    for l, (W, b) in enumerate(params):
        g = []
        for arr in (W, b):
            ga = np.zeros_like(arr)
            for idx in np.ndindex(arr.shape):
                J = []
                for sign in (1, -1):
                    p = [(Wk.copy(), bk.copy()) for Wk, bk in params]
                    (p[l][0] if arr is W else p[l][1])[idx] += sign * h
                    J.append(_objective(backend, backend.from_numpy(p, hp), X, Y, hp))
                ga[idx] = (J[0] - J[1]) / (2 * h)
            g.append(ga)
        grads.append(tuple(g))
    return grads


UPDATES = [("sgd", 1), ("sgd", 32), ("sgd", "full"), ("adam", 1), ("adam", 32)]


@pytest.mark.parametrize("optimizer, batch_size", UPDATES, ids=lambda v: str(v))
@pytest.mark.parametrize("loss", impls.LOSSES)
@pytest.mark.parametrize("activation", impls.ACTIVATIONS)
def test_every_optimizer_and_loss_gives_the_same_weights(optimizer, batch_size, loss, activation):
    """3 epochs on 300 training samples; every backend within 1e-12 of torch.optim."""
    cfg = dict(dataset=LOSS_DATASETS[loss], loss=loss, hidden=(12, 6), activation=activation,
               optimizer=optimizer, batch_size=batch_size, lr=0.01 if optimizer == "sgd" else 1e-3,
               l2=0.05, epochs=3, patience=0, seed=2)
    prepared = subset(harness.prepare(TrainConfig(**cfg)), PYTHON_SUBSET)
    ref = harness.train(TrainConfig(backend="torch", **cfg), prepared)[1]
    assert max_weight_diff(ref, prepared.params) > 1e-4  # training really moved them
    for backend in HAND_WRITTEN:
        w = harness.train(TrainConfig(backend=backend, **cfg), prepared)[1]
        assert max_weight_diff(w, ref) <= 1e-12, backend


@pytest.mark.parametrize("backend_name", BACKENDS)
def test_one_adam_step_by_hand(backend_name):
    """Adam's first step moves every parameter by lr * sign(g) (up to eps): with
    M = (1 - b1) g, G = (1 - b2) g^2, M / (1 - b1) = g and sqrt(G / (1 - b2)) = |g|."""
    backend = impls.load(backend_name)
    hp = impls.HyperParams(activation="relu", lr=0.1, l2=0.0, optimizer="adam", eps=0.0)
    params = [(np.array([[0.5]]), np.array([0.0])), (np.array([[2.0]]), np.array([0.0]))]
    state = backend.from_numpy(params, hp)
    backend.train_epoch(state, np.array([[1.0]]), np.array([[0.0]]), np.array([0]))
    (W1, b1), (W2, b2) = backend.to_numpy(state)  # all gradients are positive (see above)
    assert (W1[0, 0], b1[0], W2[0, 0], b2[0]) == pytest.approx((0.4, -0.1, 1.9, -0.1), abs=1e-15)


def _rel_err(a, b):
    scale = max(max(np.max(np.abs(W)), np.max(np.abs(bb))) for W, bb in b)
    return max_weight_diff(a, b) / max(scale, 1e-300)


LOSS_DATASETS = {"mse": "red", "bce": "color", "ce": "red-quality-class"}


@pytest.mark.parametrize("backend_name", HAND_WRITTEN)
@pytest.mark.parametrize("activation", impls.ACTIVATIONS)
@pytest.mark.parametrize("loss", impls.LOSSES)
def test_gradients_match_finite_differences_and_autograd(backend_name, activation, loss):
    cfg = TrainConfig(dataset=LOSS_DATASETS[loss], loss=loss, hidden=(6, 4),
                      activation=activation, l2=0.1, seed=3)
    prepared = harness.prepare(cfg)
    X, Y = prepared.X["train"][:7], prepared.Y["train"][:7]
    backend, torch_ffn = impls.load(backend_name), impls.load("torch")
    grads = backend.gradients(backend.from_numpy(prepared.params, cfg.hp), X, Y)
    fd = _finite_differences(backend, prepared.params, cfg.hp, X, Y)
    auto = torch_ffn.gradients(torch_ffn.from_numpy(prepared.params, cfg.hp), X, Y)
    assert _rel_err(grads, fd) <= 1e-6
    assert _rel_err(grads, auto) <= 1e-12
    assert max_weight_diff(grads, [(0 * W, 0 * b) for W, b in grads]) > 0


@pytest.mark.parametrize("backend_name", BACKENDS)
@pytest.mark.parametrize("l2, W1_new, W2_new", [(0.0, 0.1, 1.9), (0.1, 0.095, 1.88)])
def test_one_sgd_step_by_hand(backend_name, l2, W1_new, W2_new):
    """1-1-1 relu net, x = 1, y = 0, W1 = 0.5, W2 = 2, biases 0, lr = 0.1:
    a1 = 0.5, yhat = 1, delta2 = 2 (yhat - y) = 2, dW2 = delta2 a1 = 1, db2 = 2,
    delta1 = W2 delta2 relu'(z1) = 4, dW1 = 4, db1 = 4;
    W <- W - lr (dW + l2 W), b <- b - lr db."""
    backend = impls.load(backend_name)
    hp = impls.HyperParams(activation="relu", lr=0.1, l2=l2)
    params = [(np.array([[0.5]]), np.array([0.0])), (np.array([[2.0]]), np.array([0.0]))]
    state = backend.from_numpy(params, hp)
    assert backend.predict(state, np.array([[1.0]]))[0, 0] == pytest.approx(1.0, abs=1e-15)
    backend.train_epoch(state, np.array([[1.0]]), np.array([[0.0]]), np.array([0]))
    (W1, b1), (W2, b2) = backend.to_numpy(state)
    assert W1[0, 0] == pytest.approx(W1_new, abs=1e-15)
    assert b1[0] == pytest.approx(-0.4, abs=1e-15)
    assert W2[0, 0] == pytest.approx(W2_new, abs=1e-15)
    assert b2[0] == pytest.approx(-0.2, abs=1e-15)


@pytest.mark.parametrize("backend_name", BACKENDS)
def test_relu_derivative_at_zero_is_zero(backend_name):
    """A unit with z = 0 exactly passes no gradient, as autograd has it."""
    backend = impls.load(backend_name)
    hp = impls.HyperParams(activation="relu", lr=0.1, l2=0.0)
    params = [(np.array([[1.0]]), np.array([-1.0])), (np.array([[3.0]]), np.array([0.5]))]
    (gW1, gb1), _ = backend.gradients(backend.from_numpy(params, hp),
                                      np.array([[1.0]]), np.array([[0.0]]))
    assert gW1[0, 0] == 0.0 and gb1[0] == 0.0


@pytest.mark.parametrize("backend_name", BACKENDS)
def test_state_round_trips_the_canonical_weights(backend_name):
    backend = impls.load(backend_name)
    rng = np.random.default_rng(0)
    params = [(rng.normal(size=(4, 3)), rng.normal(size=4)), (rng.normal(size=(1, 4)), rng.normal(size=1))]
    back = backend.to_numpy(backend.from_numpy(params, impls.HyperParams("tanh", 0.1, 0.0)))
    assert [(W.shape, b.shape) for W, b in back] == [((4, 3), (4,)), ((1, 4), (1,))]
    assert max_weight_diff(back, params) == 0.0


def test_numba_vectorised_tanh_matches_numpy():
    """The numba kernels' written-out exp: tanh within 4e-16 of numpy's over the whole range,
    saturating at +-1, and nan in gives nan out (so a diverging run is still caught)."""
    pytest.importorskip("numba")
    from numba import njit
    from impls.numba_ffn import _tanh

    @njit(error_model="numpy")
    def tanh_(z):
        _tanh(z, np.empty(z.shape[0], np.int64))

    rng = np.random.default_rng(0)
    z = np.concatenate([rng.normal(0.0, 4.0, 20000), rng.normal(0.0, 1e-6, 1000),
                        np.linspace(-25.0, 25.0, 5001), [0.0, -0.0, 1e-300, 700.0, -700.0]])
    got = z.copy()
    tanh_(got)
    assert np.max(np.abs(got - np.tanh(z))) <= 4e-16
    special = np.array([np.inf, -np.inf, np.nan])
    tanh_(special)
    assert special[0] == 1.0 and special[1] == -1.0 and np.isnan(special[2])
