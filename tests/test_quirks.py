"""The printed article code's maths quirks (impls.HyperParams input_activation, grad_bug,
relu_grad0): every backend agrees with the torch reference under each switch and each
combination, and the buggy gradient is what it says on a hand-checked net."""
import itertools

import numpy as np
import pytest

import impls
from ffnbench import harness
from ffnbench.config import TrainConfig

from conftest import HAND_WRITTEN, max_weight_diff, subset

SWITCHES = [dict(zip(("input_activation", "grad_bug", "relu_grad0"), v))
            for v in itertools.product((False, True), (False, True), (0.0, 1.0))][1:]  # all on/off but the textbook


def _ids(q):
    return "+".join(k for k, v in q.items() if v) or "none"


def _run_all(cfg, n_train):
    prepared = subset(harness.prepare(TrainConfig(**cfg)), n_train)
    ref = harness.train(TrainConfig(backend="torch", **cfg), prepared)[1]
    assert max_weight_diff(ref, prepared.params) > 1e-4  # training really moved them
    for backend in HAND_WRITTEN:
        w = harness.train(TrainConfig(backend=backend, **cfg), prepared)[1]
        assert max_weight_diff(w, ref) <= 1e-12, backend


@pytest.mark.parametrize("quirks", SWITCHES, ids=_ids)
@pytest.mark.parametrize("activation", impls.ACTIVATIONS)
def test_per_sample_sgd_agrees_under_every_quirk(activation, quirks):
    """3 epochs of per-sample SGD (each backend's fast path), 200 wines, two hidden layers."""
    _run_all(dict(dataset="red", hidden=(8, 5), activation=activation, lr=0.01, l2=0.1,
                  epochs=3, patience=0, seed=4, **quirks), 200)


@pytest.mark.parametrize("quirks", SWITCHES, ids=_ids)
@pytest.mark.parametrize("optimizer, batch_size", [("sgd", 16), ("adam", 8)])
def test_mini_batch_and_adam_agree_under_every_quirk(optimizer, batch_size, quirks):
    _run_all(dict(dataset="white", hidden=(6, 4, 3), activation="relu", optimizer=optimizer,
                  batch_size=batch_size, lr=0.01 if optimizer == "sgd" else 1e-3, l2=0.05,
                  epochs=3, patience=0, seed=5, **quirks), 120)


def test_raw_input_with_activation_agrees():
    """The article protocol's data: unscaled inputs through tanh, U[0, 1) weights and biases."""
    _run_all(dict(dataset="white", hidden=(7, 3), activation="tanh", lr=0.001, l2=0.1,
                  init="uniform01", scaling="none", epochs=3, patience=0, seed=1,
                  input_activation=True, grad_bug=True), 150)


@pytest.mark.parametrize("backend_name", list(impls.BACKENDS))
def test_grad_bug_by_hand(backend_name):
    """1-1-1-1 relu net, x = 2, y = 0, W = (0.5, 2, 3), b = (-1, 0, 0.5), relu'(0) = 1:
    z1 = 0.5 * 2 - 1 = 0, a1 = 0, z2 = 2 * 0 + 0 = 0, a2 = 0, yhat = 0.5, delta3 = 2 * 0.5 = 1.
    Buggy weight gradients use the input before its activation: dW3 = delta3 z2 = 0,
    delta2 = W3 delta3 relu'(0) = 3, dW2 = delta2 z1 = 0, delta1 = W2 delta2 relu'(0) = 6,
    dW1 = delta1 x = 12; db = delta = (6, 3, 1). With input activation too, z1 = 0.5 relu(2) - 1
    = 0 still, and dW1 still uses the raw x = 2 (not f(x), which here is also 2).
    With x = -2 and input activation: f(x) = 0, z1 = -1, z2 = 0, yhat = 0.5 again, delta2 = 3,
    dW2 = delta2 z1 = -3 (the true gradient, delta2 a1, is 0), delta1 = W2 delta2 relu'(-1) = 0."""
    backend = impls.load(backend_name)
    params = [(np.array([[0.5]]), np.array([-1.0])), (np.array([[2.0]]), np.array([0.0])),
              (np.array([[3.0]]), np.array([0.5]))]
    hp = impls.HyperParams(activation="relu", lr=0.1, l2=0.0, grad_bug=True, relu_grad0=1.0)
    g = backend.gradients(backend.from_numpy(params, hp), np.array([[2.0]]), np.array([[0.0]]))
    assert [(gW[0, 0], gb[0]) for gW, gb in g] == [(12.0, 6.0), (0.0, 3.0), (0.0, 1.0)]
    hp = hp._replace(input_activation=True)
    state = backend.from_numpy(params, hp)
    assert backend.predict(state, np.array([[-2.0]]))[0, 0] == 0.5  # relu(-2) = 0 in, z1 = -1
    g = backend.gradients(state, np.array([[-2.0]]), np.array([[0.0]]))
    assert [(gW[0, 0], gb[0]) for gW, gb in g] == [(0.0, 0.0), (-3.0, 3.0), (0.0, 1.0)]
    # the textbook gradient of the same net and sample differs: dW1 = delta1 a0 with relu'(0) = 0
    hp = impls.HyperParams(activation="relu", lr=0.1, l2=0.0)
    g = backend.gradients(backend.from_numpy(params, hp), np.array([[2.0]]), np.array([[0.0]]))
    assert [(gW[0, 0], gb[0]) for gW, gb in g] == [(0.0, 0.0), (0.0, 0.0), (0.0, 1.0)]
