"""The contestants: one module per backend, each with the same public names.

Contract (the Backend protocol below; docs/backends.md says how to add one):

    DECLARATION                           what the backend is and needs (Declaration)
    from_numpy(params, hp, device="cpu")  [(W, b), ...] float64 + HyperParams -> engine state
    to_numpy(state)                       engine state -> [(W, b), ...] float64 copies
    train_epoch(state, X, Y, order)       one pass over X[order], updates state
    synchronize(state)                    returns when the engine's queued work is done
    predict(state, X)                     network outputs, numpy float64 (m, n_out)
    gradients(state, X, Y)                gradient of the objective J, [(gW, gb), ...] float64

The state owns its HyperParams (predict needs the activation; optimiser state is made
with them). The objective of one update over a batch B is
    J = mean over B of L + (l2 / 2) * sum of squared weights (not biases),
with the per-sample loss L and output f_L fixed by hp.loss (LOSSES below); its output
error is delta(L) = DELTA_SCALE[loss] * (yhat - y). SGD: theta <- theta - lr * dJ/dtheta;
Adam: as torch.optim.Adam with weight_decay = l2 on the weights only.

Canonical weights: W(l) has shape (fan_out, fan_in), b(l) has shape (fan_out,), so that
z(l) = W(l) a(l-1) + b(l) as in docs/protocol.md. X is (m, n_in), Y is (m, n_out), float64
or already in hp.dtype (the harness casts them once for a float32 run).
Arithmetic precision: hp.dtype, float64 (the default, the exact comparison) or float32;
from_numpy casts the float64 params to it, and the float64 that to_numpy, predict and
gradients return are copies of the state's values, so a float32 run's numbers are float32's.
Backends import only their engine: no data loading, shuffling, seeding, timing or printing.

Each backend module states its DECLARATION once, as the first statement after its imports
of impls, written with literal values only: the registry reads it from the source without
importing the module (and so without importing its engine), and everything else that knows
about backends (CLI choices, device validation, tests, cache fingerprint, asv) asks here.
What a backend's engine cannot express (FEATURES, e.g. Adam or a quirk) it declares in
`refuses`: refusal() says so in one line, TrainConfig stops there and the checks skip it.
"""
import ast
import importlib
import importlib.util
import os
import shutil
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple, Protocol

BACKENDS = {  # name -> its module in this package, imported on first use (a missing engine
    # is then a clear error)
    "python": "python_ffn",
    "numpy": "numpy_ffn",
    "numba": "numba_ffn",
    "torch": "torch_ffn",
    "jax": "jax_ffn",
    "c": "c_ffn",
    "sklearn": "sklearn_ffn",
}

ACTIVATIONS = ("sigmoid", "tanh", "relu")
OPTIMIZERS = ("sgd", "adam")
LOSSES = {  # loss -> output activation; each pair has the simple output error yhat - y
    "mse": "linear",  # L = sum_k (yhat_k - y_k)^2, delta = 2 (yhat - y)
    "bce": "sigmoid",  # L = -(y log a + (1 - y) log(1 - a)), delta = a - y
    "ce": "softmax",  # L = -sum_k y_k log r_k (one-hot y), delta = r - y
}
DELTA_SCALE = {"mse": 2.0, "bce": 1.0, "ce": 1.0}
# The per-sample SGD paths of python and numpy carry the weight decay as one running scale s
# (W = s V) and fold it back into V below this value, so V = W / s stays far from overflow.
# It suits float32 too: 1e-30 and 1 / 1e-30 are normal float32 numbers (1.2e-38 .. 3.4e38),
# and V = W / s overflows only for weights beyond 3e8.
S_MIN = 1e-30
DTYPES = ("float64", "float32")  # HyperParams.dtype; the first is the default


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
    dtype: str = "float64"  # the arithmetic: float64 (the exact comparison) or float32 (DTYPES)

    @property
    def per_sample_sgd(self):
        """The published update: plain SGD, one sample at a time (each backend's fast path)."""
        return self.optimizer == "sgd" and self.batch_size == 1

    @property
    def quirky(self):
        """Any of the printed code's quirks on (each backend's slower, general path)."""
        return self.input_activation or self.grad_bug or self.relu_grad0 != 0.0

    def batch(self, n):
        """Samples per update in an epoch of n samples (batch_size 0 = the full batch)."""
        return self.batch_size or n


GRADIENTS = ("hand-written", "autograd")  # autograd: the engine differentiates the loss
# What a backend may declare it cannot express (Declaration.refuses): feature -> (the option
# that asks for it, whether training with HyperParams hp and n_out outputs uses it; n_out is
# None where it is not known yet, as in a config before the data are read).
FEATURES = {
    "adam": ("--optimizer adam", lambda hp, n_out: hp.optimizer == "adam"),
    "input_activation": ("--input-activation", lambda hp, n_out: hp.input_activation),
    "grad_bug": ("--grad-bug", lambda hp, n_out: hp.grad_bug),
    "relu_grad0": ("--relu-grad0 1 with relu",  # relu'(0) only matters for relu
                   lambda hp, n_out: hp.activation == "relu" and hp.relu_grad0 != 0.0),
    "softmax2": ("--loss ce with two outputs (a binary task)",
                 lambda hp, n_out: hp.loss == "ce" and n_out == 2),
    "float32": ("--dtype float32", lambda hp, n_out: hp.dtype == "float32"),
}


class Declaration(NamedTuple):
    """What a backend is and needs; every field is required, so a lost line is an error."""

    name: str  # its key in BACKENDS and on the command line (--backend NAME)
    devices: tuple  # where it runs: "cpu", "cuda"
    extra: str | None  # the pip extra that installs its engine (pip install 'ffnbench[extra]')
    packages: tuple  # modules it imports beyond the core dependencies (numpy, scipy)
    gradients: str  # "hand-written" backpropagation, or "autograd" by the engine
    sources: tuple  # files under impls/ that define it: their bytes key the result cache
    tools: tuple  # programs it runs, found on PATH; $NAME (e.g. $CC for cc) overrides
    refuses: tuple  # ((feature, why), ...): the FEATURES it cannot express, each with its reason


class Backend(Protocol):
    """The contract every backend module follows (see the module docstring)."""

    DECLARATION: Declaration

    def from_numpy(self, params: list, hp: "HyperParams", device: str = "cpu") -> object: ...
    def to_numpy(self, state: object) -> list: ...
    def train_epoch(self, state: object, X, Y, order) -> None: ...
    def synchronize(self, state: object) -> None: ...
    def predict(self, state: object, X): ...
    def gradients(self, state: object, X, Y) -> list: ...


CONTRACT = (*Backend.__annotations__,  # the names a backend module must have
            *(n for n, v in vars(Backend).items() if callable(v) and not n.startswith("_")))
HERE = Path(__file__).parent


class BackendUnavailable(ImportError):
    """The backend cannot run here: its engine is not installed, or a tool it needs is missing."""


class BadDeclaration(ValueError):
    """A backend module's DECLARATION is missing, incomplete or not literal."""


def module_name(name):
    """The full import name of backend `name`'s module (ffnbench.impls.numba_ffn, say)."""
    return f"{__name__}.{BACKENDS[name]}"


def _module_path(name):
    return HERE / (BACKENDS[name] + ".py")


@lru_cache(maxsize=None)
def declaration(name):
    """Backend `name`'s Declaration, read from its source file without importing it."""
    path = _module_path(name)
    if not path.is_file():
        raise BadDeclaration(f"backend '{name}' is registered but impls/{path.name} does not exist")
    for node in ast.parse(path.read_text(), str(path)).body:
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["DECLARATION"]:
            call = node.value
            if not (isinstance(call, ast.Call) and getattr(call.func, "id", None) == "Declaration"):
                raise BadDeclaration(f"{path.name}: DECLARATION must be Declaration(field=literal, ...)")
            try:
                fields = {k.arg: ast.literal_eval(k.value) for k in call.keywords}
            except ValueError:
                raise BadDeclaration(f"{path.name}: DECLARATION fields must be literals") from None
            missing = [f for f in Declaration._fields if f not in fields]
            unknown = [f for f in fields if f not in Declaration._fields]
            if missing or unknown:
                raise BadDeclaration(f"{path.name}: DECLARATION "
                                     + (f"lacks {', '.join(missing)}" if missing else "")
                                     + ("; " if missing and unknown else "")
                                     + (f"has unknown {', '.join(unknown)}" if unknown else ""))
            return _checked(Declaration(**fields), name, path.name)
    raise BadDeclaration(f"{path.name}: no DECLARATION = Declaration(...) at module level")


def _checked(d, name, fname):
    problems = []
    if d.name != name:
        problems.append(f"name {d.name!r} is not its registry key {name!r}")
    if not d.devices or not set(d.devices) <= {"cpu", "cuda"}:
        problems.append(f"devices {d.devices!r} must be some of 'cpu', 'cuda'")
    if d.gradients not in GRADIENTS:
        problems.append(f"gradients {d.gradients!r} must be one of {', '.join(GRADIENTS)}")
    if fname not in d.sources:
        problems.append(f"sources must include {fname}")
    problems += [f"source {s} does not exist" for s in d.sources if not (HERE / s).is_file()]
    if d.packages and not d.extra:
        problems.append("packages need an extra that installs them")
    for entry in d.refuses:
        if not (isinstance(entry, tuple) and len(entry) == 2 and entry[0] in FEATURES
                and isinstance(entry[1], str) and entry[1]):
            problems.append(f"refuses entry {entry!r} must be (feature, why) with a feature of "
                            f"{', '.join(FEATURES)}")
    if problems:
        raise BadDeclaration(f"{fname}: DECLARATION {'; '.join(problems)}")
    return d


def declarations():
    """{name: Declaration} of every registered backend, in registry order."""
    return {name: declaration(name) for name in BACKENDS}


def devices():
    """Every device some backend runs on, cpu first."""
    return tuple(dict.fromkeys(dev for d in declarations().values() for dev in d.devices))


def source_paths(name):
    """The files whose bytes decide backend `name`'s numbers: the registry and its sources."""
    return [HERE / "__init__.py", *(HERE / s for s in declaration(name).sources)]


def find_tool(tool):
    """The program `tool` (e.g. cc) as $TOOL names it or as found on PATH; None if absent."""
    return shutil.which(os.environ.get(tool.upper()) or tool)


def unavailable(name):
    """Why backend `name` cannot run here (one line), or None; imports nothing."""
    d = declaration(name)
    for package in d.packages:
        if importlib.util.find_spec(package) is None:
            return (f"backend '{name}' needs the package '{package}', which is not installed "
                    f"(pip install 'ffnbench[{d.extra}]')")
    for tool in d.tools:
        if find_tool(tool) is None:
            return (f"backend '{name}' needs the program '{tool}' (set ${tool.upper()} or put it "
                    "on PATH), which was not found")
    return None


def features(hp, n_out=None):
    """The FEATURES that training with HyperParams hp (and n_out outputs, where known) uses."""
    return tuple(f for f, (_, uses) in FEATURES.items() if uses(hp, n_out))


def refusal(name, hp, n_out=None):
    """Why backend `name` cannot train with hp (one line), or None; imports nothing."""
    why = dict(declaration(name).refuses)
    refused = [f for f in features(hp, n_out) if f in why]
    if not refused:
        return None
    return (f"backend '{name}' cannot express "
            + "; nor ".join(f"{FEATURES[f][0]}: {why[f]}" for f in refused))


def load(name):
    """Import backend `name`; if it cannot run here, BackendUnavailable says why in one line."""
    reason = unavailable(name)
    if reason:
        raise BackendUnavailable(reason)
    try:
        return importlib.import_module(module_name(name))
    except ModuleNotFoundError as e:  # an undeclared dependency: still one line
        raise BackendUnavailable(
            f"backend '{name}' needs the package '{e.name}', which is not installed "
            f"(pip install 'ffnbench[{declaration(name).extra or name}]')") from None
