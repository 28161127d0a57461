"""The contestants: one module per backend, each with the same public names.

Contract (see README, "How to add a backend"):

    NAME                                  registry key
    DEVICES                               devices the backend can run on
    from_numpy(params, hp, device="cpu")  [(W, b), ...] float64 + HyperParams -> engine state
    to_numpy(state)                       engine state -> [(W, b), ...] float64 copies
    train_epoch(state, X, Y, order)       one pass over X[order], updates state in place
    predict(state, X)                     network outputs, numpy (m, n_out)
    gradients(state, X, Y)                gradient of the objective J, [(gW, gb), ...]

The state owns its HyperParams (predict needs the activation; optimiser state is made
with them). The objective of one update over a batch B is
    J = mean over B of L + (l2 / 2) * sum of squared weights (not biases),
with the per-sample loss L and output f_L fixed by hp.loss (LOSSES below); its output
error is delta(L) = DELTA_SCALE[loss] * (yhat - y). SGD: theta <- theta - lr * dJ/dtheta;
Adam: as torch.optim.Adam with weight_decay = l2 on the weights only.

Canonical weights: W(l) has shape (fan_out, fan_in), b(l) has shape (fan_out,), so that
z(l) = W(l) a(l-1) + b(l) as in docs/protocol.md. X is (m, n_in), Y is (m, n_out), float64.
Backends import only their engine: no data loading, shuffling, seeding, timing or printing.
"""
import importlib
from typing import NamedTuple

BACKENDS = {  # name -> module, imported on first use so a missing engine is a clear error
    "python": "impls.python_ffn",
    "numpy": "impls.numpy_ffn",
    "numba": "impls.numba_ffn",
    "torch": "impls.torch_ffn",
}
ACTIVATIONS = ("sigmoid", "tanh", "relu")
OPTIMIZERS = ("sgd", "adam")
LOSSES = {  # loss -> output activation; each pair has the simple output error yhat - y
    "mse": "linear",  # L = sum_k (yhat_k - y_k)^2, delta = 2 (yhat - y)
    "bce": "sigmoid",  # L = -(y log a + (1 - y) log(1 - a)), delta = a - y
    "ce": "softmax",  # L = -sum_k y_k log r_k (one-hot y), delta = r - y
}
DELTA_SCALE = {"mse": 2.0, "bce": 1.0, "ce": 1.0}


class HyperParams(NamedTuple):
    """What a backend needs to know to train: the maths, not the experiment."""

    activation: str  # hidden layers: sigmoid | tanh | relu
    lr: float
    l2: float  # weight decay on weights only: W <- W - lr * (dJ/dW + l2 * W)
    loss: str = "mse"  # mse | bce | ce, which also fixes the output activation
    batch_size: int = 1  # samples per update; 1 = per-sample SGD as published, 0 = full batch
    optimizer: str = "sgd"  # sgd | adam
    beta1: float = 0.9  # Adam only
    beta2: float = 0.999
    eps: float = 1e-8
    # The printed article code's quirks (off = the textbook maths above):
    input_activation: bool = False  # a(0) = f(x): the hidden activation applied to the input too
    grad_bug: bool = False  # dJ/dW(l) = delta(l) u(l-1)^T with u = the layer input *before* its
                            # activation: x for l = 1, z(l-1) above (the true gradient uses a(l-1))
    relu_grad0: float = 0.0  # relu'(0): 0 as autograd has it, 1 in the printed code

    @property
    def per_sample_sgd(self):
        """The published update: plain SGD, one sample at a time (each backend's fast path)."""
        return self.optimizer == "sgd" and self.batch_size == 1

    def batch(self, n):
        """Samples per update in an epoch of n samples (batch_size 0 = the full batch)."""
        return self.batch_size or n


class BackendUnavailable(ImportError):
    """The backend's engine (numba, torch) is not installed."""


def load(name):
    """Import backend `name`; a missing engine raises BackendUnavailable naming it."""
    try:
        return importlib.import_module(BACKENDS[name])
    except ModuleNotFoundError as e:
        raise BackendUnavailable(
            f"backend '{name}' needs the package '{e.name}', which is not installed "
            f"(pip install 'ffnbench[{name}]')") from None
