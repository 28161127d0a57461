"""JAX backend: jax.grad computes the gradients, the update is written out; one compiled
loop (lax.fori_loop) runs a whole epoch, so no Python runs per sample or per batch.

float64 needs JAX's x64 mode, which this module switches on for the process; a float32
run (hp.dtype) keeps every array and number of its state in float32, so nothing promotes
it to float64 (a Python scalar is weakly typed and does not). The maths
quirks are custom VJPs: relu'(0) (relu_grad0) and the printed code's weight gradient
(grad_bug, dW(l) = delta(l) u(l-1)^T with u = the layer input before its activation).
An epoch's compiled code depends only on the shapes of X and Y and the batch size, not on
the number of samples in the order: the harness's warm-up (two samples of the full X)
compiles exactly what the timed epochs run.
"""
import warnings
from functools import partial
from typing import NamedTuple

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402  (after x64 is on)
import numpy as np  # noqa: E402
from jax import lax  # noqa: E402

from . import Declaration  # noqa: E402

DECLARATION = Declaration(
    name="jax", devices=("cpu", "cuda"), extra="jax", packages=("jax", "jaxlib"),
    gradients="autograd", sources=("jax_ffn.py",), tools=(), refuses=(),
)


class Spec(NamedTuple):
    """What changes the compiled code (static); the numbers (lr, l2, relu_grad0, and
    input_activation as 0/1) are traced, so they share one compilation."""

    activation: str
    loss: str
    optimizer: str
    grad_bug: bool


@jax.custom_vjp
def _relu(z, slope0):
    return jnp.maximum(z, 0.0)


def _relu_fwd(z, slope0):
    return jnp.maximum(z, 0.0), (z, slope0)


def _relu_bwd(res, g):
    z, slope0 = res  # relu'(z) = 1 (z > 0), slope0 (z == 0), 0 (z < 0)
    return g * jnp.where(z > 0.0, 1.0, jnp.where(z == 0.0, slope0, 0.0)), jnp.zeros_like(slope0)


_relu.defvjp(_relu_fwd, _relu_bwd)


def _activation(name, relu_grad0):
    if name == "relu":
        return lambda z: _relu(z, relu_grad0)
    return {"sigmoid": jax.nn.sigmoid, "tanh": jnp.tanh}[name]


@jax.custom_vjp
def _dense_bug(W, b, a, u):
    """z = a W^T + b, whose weight gradient takes u instead of a (grad_bug)."""
    return a @ W.T + b


def _dense_bug_fwd(W, b, a, u):
    return a @ W.T + b, (W, u)


def _dense_bug_bwd(res, g):
    W, u = res  # g: dJ/dz (m, n_out); u: (m, n_in)
    return g.T @ u, g.sum(axis=0), g @ W, jnp.zeros_like(u)


_dense_bug.defvjp(_dense_bug_fwd, _dense_bug_bwd)


def _logits(params, X, spec, nums):
    """z(L) for the rows of X: (m, n_out)."""
    f = _activation(spec.activation, nums["relu_grad0"])
    a = jnp.where(nums["input_activation"] != 0.0, f(X), X)
    u = X  # grad_bug's layer input: x first
    for l, (W, b) in enumerate(params):
        z = _dense_bug(W, b, a, u) if spec.grad_bug else a @ W.T + b
        if l == len(params) - 1:
            return z
        a, u = f(z), z


LOSS = {  # per-sample loss from the logits, summed over outputs: (m,)
    "mse": lambda z, Y: jnp.sum((z - Y) ** 2, axis=1),
    "bce": lambda z, Y: jnp.sum(jnp.logaddexp(0.0, z) - Y * z, axis=1),
    "ce": lambda z, Y: -jnp.sum(Y * jax.nn.log_softmax(z, axis=1), axis=1),
}
OUT = {"mse": lambda z: z, "bce": jax.nn.sigmoid, "ce": partial(jax.nn.softmax, axis=1)}


def _objective(params, X, Y, mask, count, spec, nums):
    """J = mean over the batch's real samples (mask) of L + (l2 / 2) sum W^2."""
    L = jnp.where(mask, LOSS[spec.loss](_logits(params, X, spec, nums), Y), 0.0)
    return L.sum() / count + 0.5 * nums["l2"] * sum(jnp.sum(W * W) for W, _ in params)


_grad = jax.grad(_objective)


def _sgd(params, opt, g, nums):
    return jax.tree.map(lambda p, gp: p - nums["lr"] * gp, params, g), opt


def _adam(params, opt, g, nums):
    """torch.optim.Adam's arithmetic (L2 is already in g, as its weight_decay)."""
    M, G, t = opt
    t = t + 1.0
    b1, b2 = nums["beta1"], nums["beta2"]
    step = nums["lr"] / (1.0 - b1 ** t)
    sqrt_bc2 = jnp.sqrt(1.0 - b2 ** t)
    M = jax.tree.map(lambda m, gp: m + (1.0 - b1) * (gp - m), M, g)
    G = jax.tree.map(lambda v, gp: v * b2 + (1.0 - b2) * gp * gp, G, g)
    params = jax.tree.map(lambda p, m, v: p - step * (m / (jnp.sqrt(v) / sqrt_bc2 + nums["eps"])),
                          params, M, G)
    return params, (M, G, t)


UPDATE = {"sgd": _sgd, "adam": _adam}


@partial(jax.jit, static_argnums=(0, 1))
def _epoch(spec, B, params, opt, X, Y, order, n, nums):
    """ceil(n / B) updates on batches order[kB : kB + B]; order is padded by B entries,
    and the last batch's padding is masked out of the mean."""
    def body(k, carry):
        params, opt = carry
        idx = lax.dynamic_slice(order, (k * B,), (B,))
        count = jnp.minimum(B, n - k * B)
        g = _grad(params, X[idx], Y[idx], jnp.arange(B) < count, count, spec, nums)
        return UPDATE[spec.optimizer](params, opt, g, nums)

    return lax.fori_loop(0, (n + B - 1) // B, body, (params, opt))


@partial(jax.jit, static_argnums=(0,))
def _predict(spec, params, X, nums):
    return OUT[spec.loss](_logits(params, X, spec, nums))


@partial(jax.jit, static_argnums=(0,))
def _gradients(spec, params, X, Y, nums):
    m = X.shape[0]
    return _grad(params, X, Y, jnp.ones(m, dtype=bool), m, spec, nums)


def _device(requested):
    """The JAX device: cuda falls back to cpu, with a warning, where JAX has no GPU."""
    if requested == "cuda":
        try:
            return jax.devices("gpu")[0]
        except RuntimeError:
            warnings.warn("JAX has no GPU on this machine; the jax backend runs on cpu",
                          RuntimeWarning, stacklevel=3)
    return jax.devices("cpu")[0]


def from_numpy(params, hp, device="cpu"):
    dev, dtype = _device(device), np.dtype(hp.dtype)
    put = partial(jax.device_put, device=dev)
    theta = tuple((put(np.array(W, dtype=dtype)), put(np.array(b, dtype=dtype)))
                  for W, b in params)
    opt = ()
    if hp.optimizer == "adam":
        zeros = jax.tree.map(jnp.zeros_like, theta)
        opt = (zeros, zeros, put(dtype.type(0.0)))
    nums = {k: put(dtype.type(getattr(hp, k))) for k in ("lr", "l2", "beta1", "beta2", "eps",
                                                         "relu_grad0", "input_activation")}
    spec = Spec(hp.activation, hp.loss, hp.optimizer, bool(hp.grad_bug))
    return {"hp": hp, "spec": spec, "params": theta, "opt": opt, "nums": nums, "put": put,
            "dtype": dtype, "device": "cpu" if dev.platform == "cpu" else "cuda"}


def to_numpy(state):
    return [(np.array(W, dtype=np.float64), np.array(b, dtype=np.float64))
            for W, b in state["params"]]


def train_epoch(state, X, Y, order):
    """Queues the epoch and returns; synchronize(state) waits for it."""
    put, B = state["put"], state["hp"].batch_size or len(X)
    padded = np.zeros(len(X) + B, dtype=np.int64)  # same shape for any order length
    padded[:len(order)] = order
    state["params"], state["opt"] = _epoch(
        state["spec"], B, state["params"], state["opt"], put(np.asarray(X, state["dtype"])),
        put(np.asarray(Y, state["dtype"])), put(padded), put(np.int64(len(order))), state["nums"])


def synchronize(state):
    jax.block_until_ready(state["params"])


def predict(state, X):
    return np.asarray(_predict(state["spec"], state["params"],
                               state["put"](np.asarray(X, state["dtype"])), state["nums"]),
                      dtype=np.float64)


def gradients(state, X, Y):
    put = state["put"]
    g = _gradients(state["spec"], state["params"], put(np.asarray(X, state["dtype"])),
                   put(np.asarray(Y, state["dtype"])), state["nums"])
    return [(np.array(gW, dtype=np.float64), np.array(gb, dtype=np.float64)) for gW, gb in g]
