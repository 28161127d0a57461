import numpy as np
import pytest

import impls
from ffnbench import harness
from ffnbench.config import TrainConfig

BACKENDS = list(impls.BACKENDS)
HAND_WRITTEN = [b for b in BACKENDS if b != "torch"]


def subset(prepared, n):
    """The same Prepared run with only the first n training samples (for pure Python)."""
    X = dict(prepared.X, train=prepared.X["train"][:n].copy())
    Y = dict(prepared.Y, train=prepared.Y["train"][:n].copy())
    return harness.Prepared(X, Y, prepared.params)


def max_weight_diff(a, b):
    return max(max(np.max(np.abs(Wa - Wb)), np.max(np.abs(ba - bb)))
               for (Wa, ba), (Wb, bb) in zip(a, b))


@pytest.fixture(scope="session")
def red_config():
    return TrainConfig(dataset="red", hidden=(10,), activation="tanh", epochs=3, patience=0)
