"""The numpy and pure-Python per-sample loops keep the weights as W = s V with one running
scale s (the weight decay); numpy also carries the bias by a constant input beside each
layer's activations and keeps f' of all hidden layers in one buffer. These cases reach the
parts the shared checks do not: s folded back into V mid-epoch (before it could underflow),
lr l2 >= 1 (no scale can carry a decay <= 0), no decay at all, no hidden layer, several
outputs. Reference: torch, per-sample SGD, 3 epochs."""
import numpy as np
import pytest

from ffnbench import impls

N = 360  # samples per epoch: with decay 0.1, s would underflow to 0 after ~324 samples


def _train(name, sizes, hp, X, Y, params):
    backend = impls.load(name)
    state = backend.from_numpy(params, hp)
    for epoch in range(3):
        backend.train_epoch(state, X, Y, np.random.default_rng(epoch).permutation(len(X)))
    return backend.to_numpy(state)


@pytest.mark.parametrize("backend", ["numpy", "python"])
@pytest.mark.parametrize("sizes,activation,loss,lr,l2", [
    ((11, 13, 9, 1), "tanh", "mse", 0.1, 9.0),  # decay 0.1: s folded back every 30 samples
    ((11, 13, 9, 1), "sigmoid", "mse", 0.1, 12.5),  # decay -0.25: the general loop
    ((11, 13, 9, 3), "relu", "ce", 0.05, 0.0),  # no decay: s stays 1
    ((11, 2), "tanh", "bce", 0.05, 0.1),  # no hidden layer
    ((11, 17, 5, 4), "sigmoid", "ce", 0.05, 0.2),  # several outputs, softmax
])
def test_per_sample_matches_torch(backend, sizes, activation, loss, lr, l2):
    rng = np.random.default_rng(5)
    X = rng.normal(size=(N, sizes[0]))
    if loss == "mse":
        Y = rng.normal(size=(N, sizes[-1]))
    else:
        Y = np.eye(sizes[-1])[rng.integers(0, sizes[-1], N)]
    params = [(rng.uniform(-0.6, 0.6, (o, i)), rng.uniform(-0.1, 0.1, o))
              for i, o in zip(sizes[:-1], sizes[1:])]
    hp = impls.HyperParams(activation, lr, l2, loss=loss)
    got, want = (_train(name, sizes, hp, X, Y, params) for name in (backend, "torch"))
    for (Wa, ba), (Wb, bb), (W0, _) in zip(got, want, params):
        assert np.isfinite(Wb).all() and not np.allclose(Wb, W0)  # it trained and stayed finite
        assert np.max(np.abs(Wa - Wb)) <= 1e-12 and np.max(np.abs(ba - bb)) <= 1e-12
