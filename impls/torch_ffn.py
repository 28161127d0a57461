"""PyTorch reference: autograd computes the gradients, torch.optim applies the update."""
import warnings

import numpy as np
import torch
import torch.nn.functional as F

from . import Declaration

DECLARATION = Declaration(
    name="torch", devices=("cpu", "cuda"), extra="torch", packages=("torch",),
    gradients="autograd", sources=("torch_ffn.py",), tools=(), refuses=(),
)
ACT = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu}
LOSS = {  # per-sample loss from the logits z(L), summed over outputs: (m,)
    "mse": lambda z, Y: ((z - Y) ** 2).sum(dim=1),
    "bce": lambda z, Y: F.binary_cross_entropy_with_logits(z, Y, reduction="none").sum(dim=1),
    "ce": lambda z, Y: -(Y * F.log_softmax(z, dim=1)).sum(dim=1),
}
OUT = {"mse": lambda z: z, "bce": torch.sigmoid, "ce": lambda z: torch.softmax(z, dim=1)}
OPTIMIZERS = {
    "sgd": lambda groups, hp: torch.optim.SGD(groups, lr=hp.lr),
    "adam": lambda groups, hp: torch.optim.Adam(groups, lr=hp.lr, betas=(hp.beta1, hp.beta2),
                                                eps=hp.eps),
}


def _device(requested):
    """The torch device to use: cuda falls back to cpu, with a warning, where it is absent."""
    if requested == "cuda" and not torch.cuda.is_available():
        warnings.warn("CUDA is not available on this machine; the torch backend runs on cpu",
                      RuntimeWarning, stacklevel=3)
        return torch.device("cpu")
    return torch.device(requested)


DTYPE = {"float64": torch.float64, "float32": torch.float32}  # hp.dtype -> torch's


def from_numpy(params, hp, device="cpu"):
    dev, dtype = _device(device), DTYPE[hp.dtype]
    Ws = [torch.tensor(W, dtype=dtype, device=dev, requires_grad=True) for W, _ in params]
    bs = [torch.tensor(b, dtype=dtype, device=dev, requires_grad=True) for _, b in params]
    # weight decay on weights only, as the published update rule has it
    groups = [{"params": Ws, "weight_decay": hp.l2}, {"params": bs, "weight_decay": 0.0}]
    return {"hp": hp, "W": Ws, "b": bs, "opt": OPTIMIZERS[hp.optimizer](groups, hp), "device": dev,
            "dtype": dtype}


def _float64(t):
    """A float64 numpy copy of tensor t."""
    return t.detach().cpu().numpy().astype(np.float64)


def to_numpy(state):
    return [(_float64(W), _float64(b)) for W, b in zip(state["W"], state["b"])]


class _GradBugLinear(torch.autograd.Function):
    """z = a W^T + b whose weight gradient is delta^T u for a given u instead of delta^T a:
    the printed code's gradient bug (u = the layer input before its activation)."""

    @staticmethod
    def forward(ctx, a, u, W, b):
        ctx.save_for_backward(u, W)
        return a @ W.T + b

    @staticmethod
    def backward(ctx, delta):
        u, W = ctx.saved_tensors
        return delta @ W, None, delta.T @ u, delta.sum(dim=0)


class _ReLU(torch.autograd.Function):
    """relu whose derivative at z = 0 is `grad0` (autograd's torch.relu has 0 there)."""

    @staticmethod
    def forward(ctx, z, grad0):
        ctx.save_for_backward(z)
        ctx.grad0 = grad0
        return torch.relu(z)

    @staticmethod
    def backward(ctx, g):
        (z,) = ctx.saved_tensors
        return g * ((z > 0).to(g.dtype) + ctx.grad0 * (z == 0).to(g.dtype)), None


def _activation(hp):
    if hp.activation == "relu" and hp.relu_grad0 != 0.0:
        return lambda z: _ReLU.apply(z, hp.relu_grad0)
    return ACT[hp.activation]


def _logits(state, X):
    """z(L): (m, n_L), with the quirks of hp (impls.HyperParams) emulated."""
    hp = state["hp"]
    f = _activation(hp)
    a = f(X) if hp.input_activation else X  # a(0)
    u = X  # under grad_bug, the input the weight gradient of the next layer sees
    for W, b in zip(state["W"][:-1], state["b"][:-1]):
        z = _GradBugLinear.apply(a, u, W, b) if hp.grad_bug else a @ W.T + b  # (m, n_l)
        u, a = z.detach(), f(z)
    W, b = state["W"][-1], state["b"][-1]
    return _GradBugLinear.apply(a, u, W, b) if hp.grad_bug else a @ W.T + b


def _loss(state, X, Y):
    """Mean over samples of the per-sample loss (no L2: the optimiser adds it)."""
    return LOSS[state["hp"].loss](_logits(state, X), Y).mean()


def _tensor(state, A):
    return torch.as_tensor(A, dtype=state["dtype"], device=state["device"])


def train_epoch(state, X, Y, order):
    X, Y, opt = _tensor(state, X), _tensor(state, Y), state["opt"]
    B = state["hp"].batch(len(order))
    order = torch.as_tensor(order, device=state["device"])
    for start in range(0, len(order), B):
        idx = order[start:start + B]
        opt.zero_grad()
        _loss(state, X[idx], Y[idx]).backward()
        opt.step()


def predict(state, X):
    with torch.no_grad():
        return _float64(OUT[state["hp"].loss](_logits(state, _tensor(state, X))))


def gradients(state, X, Y):
    """dJ/dtheta by autograd, J including the L2 term (l2 / 2) * sum W^2."""
    params = state["W"] + state["b"]
    J = _loss(state, _tensor(state, X), _tensor(state, Y))
    J = J + 0.5 * state["hp"].l2 * sum((W ** 2).sum() for W in state["W"])
    g = torch.autograd.grad(J, params)
    L = len(state["W"])
    return [(_float64(g[l]), _float64(g[L + l])) for l in range(L)]


def synchronize(state):
    """Wait for the device's queued kernels (CUDA runs them asynchronously)."""
    if state["device"].type == "cuda":
        torch.cuda.synchronize(state["device"])
