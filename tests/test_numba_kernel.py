"""The numba per-sample kernel's padded, transposed layout on widths the shared checks do not
reach: layers wider than one SIMD register and not a multiple of it, rows left over after the
groups of four (forward) and two (backward), several outputs, every quirk. Reference: the
torch backend, per-sample SGD, 3 epochs."""
import numpy as np
import pytest

from ffnbench import impls

SIZES = (11, 13, 9, 17, 3)  # 13, 9, 17 padded to 16, 16, 24; 11 and 13 and 9 inputs: remainders


def padded_problem(loss):
    """(params, X, Y): 40 samples for the SIZES net, targets suited to `loss` (also used by
    test_numba_float32)."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(40, SIZES[0]))
    if loss == "mse":
        Y = rng.normal(size=(40, SIZES[-1]))
    else:
        Y = np.eye(SIZES[-1])[rng.integers(0, SIZES[-1], 40)]
    params = [(rng.uniform(-0.6, 0.6, (o, i)), rng.uniform(-0.1, 0.1, o))
              for i, o in zip(SIZES[:-1], SIZES[1:])]
    return params, X, Y


@pytest.mark.parametrize("activation,loss,quirks", [
    ("tanh", "ce", {}),
    ("sigmoid", "bce", {"input_activation": True}),
    ("relu", "mse", {"grad_bug": True, "relu_grad0": 0.5}),
    ("tanh", "mse", {"input_activation": True, "grad_bug": True}),
])
def test_padded_kernel_matches_torch(activation, loss, quirks):
    params, X, Y = padded_problem(loss)
    hp = impls.HyperParams(activation, 0.01, 0.01, loss=loss, **quirks)
    out = {}
    for name in ("numba", "torch"):
        backend = impls.load(name)
        state = backend.from_numpy(params, hp)
        for epoch in range(3):
            backend.train_epoch(state, X, Y, np.random.default_rng(epoch).permutation(40))
        out[name] = backend.to_numpy(state)
    for (Wa, ba), (Wb, bb) in zip(out["numba"], out["torch"]):
        assert np.isfinite(Wb).all()  # a run that trains, not one that diverged
        assert np.max(np.abs(Wa - Wb)) <= 1e-12 and np.max(np.abs(ba - bb)) <= 1e-12
    assert not np.allclose(out["numba"][0][0], params[0][0])  # it did train
