"""One frozen, validated record per training run, and the names every option chooses from
(kept free of numpy and pandas: the command line's parser reads them)."""
import math
from dataclasses import asdict, dataclass

from .. import impls
from ..impls import ACTIVATIONS, BACKENDS, DTYPES, LOSSES, OPTIMIZERS, HyperParams
from .errors import UserError

TASKS = {  # dataset -> task; the classification sets are built from the same two files
    "red": "regression", "white": "regression", "color": "binary",
    "red-quality-class": "multiclass", "white-quality-class": "multiclass",
}

DATASETS = tuple(TASKS)
REGRESSION_DATASETS = tuple(d for d, task in TASKS.items() if task == "regression")
TASK_LOSSES = {  # the losses that fit each task; the first is the default
    "regression": ("mse",),
    "binary": ("bce", "ce"),
    "multiclass": ("ce",),
}
INITS = ("auto", "glorot", "he", "uniform01")
SCALINGS = ("standard", "minmax", "none", "sample-maxmin")
# the most runs a table or sweep starts without --yes: beyond it a typo (seeds = 100000000) is
# likelier than a plan, and the run list alone would not fit in memory long before 10^8
RUN_LIMIT = 100_000
# `ffnbench precision`: float32 and float64 give "the same" test error when the interval of
# their mean difference lies inside +-PRECISION_MARGIN (why 0.001: studies/precision.py)
PRECISION_MARGIN = 0.001
EXECUTORS = ("local", "dask")  # --executor: a process pool here, or a Dask cluster
STOPS = ("patience", "first-rise")  # see harness.train
SPLITS = ("random", "grouped")  # see data.split
DEVICES = impls.devices()  # every device some backend declares
NETS = ((10,), (50, 30, 20, 10, 5), (50, 100, 60, 30, 20, 10))  # the hidden layers of every speed study
# The table's protocols: readings of the published code, as TrainConfig fields (docs/protocol.md);
# everything else (split, per-sample SGD, L2) is identical
PROTOCOLS = {
    "modern": {"init": "auto", "scaling": "standard"},
    "minmax-uniform": {"init": "uniform01", "scaling": "minmax"},
    "article": {"init": "uniform01", "scaling": "none", "input_activation": True,
                "grad_bug": True, "relu_grad0": 1.0, "stop": "first-rise"},
}
ALIASES = {"published": "minmax-uniform", "both": "modern,minmax-uniform", "all": ",".join(PROTOCOLS)}
OVERRIDES = ("scaling", "split", "stop", "input_activation", "grad_bug", "relu_grad0")  # table's options over every protocol


def parse_choices(text, name, allowed=None):
    """'a,b' -> ('a', 'b') for option --name: no empty item, no repeat, each in `allowed`."""
    items = tuple(x.strip() for x in str(text).split(","))
    if not all(items):
        raise UserError(f"--{name} {text!r}: empty item")
    for item in items if allowed is not None else ():
        if item not in allowed:
            raise UserError(f"--{name} {text!r}: unknown {item!r} (choose from {', '.join(allowed)})")
    if len(set(items)) != len(items):
        raise UserError(f"--{name} {text!r}: each may appear only once")
    return items


def parse_hidden(text):
    """'50,30,20' -> (50, 30, 20); anything else is a UserError naming the problem."""
    sizes = []
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            raise UserError(f"--hidden {text!r}: empty layer size (write sizes like 50,30,20)")
        try:
            n = int(part)
        except ValueError:
            raise UserError(f"--hidden {text!r}: {part!r} is not a whole number") from None
        if n < 1:
            raise UserError(f"--hidden {text!r}: layer sizes must be at least 1, got {n}")
        sizes.append(n)
    return tuple(sizes)


def _one_of(name, value, allowed):
    if value not in allowed:
        raise UserError(f"unknown {name} {value!r} (choose from {', '.join(allowed)})")


def _number(name, value, low, strict, below=None):
    ok = isinstance(value, (int, float)) and math.isfinite(value) and (
        value > low if strict else value >= low) and (below is None or value < below)
    if not ok:
        bound = f"greater than {low}" if strict else f"at least {low}"
        bound += f" and below {below}" if below is not None else ""
        raise UserError(f"--{name} must be a finite number {bound}, got {value!r}")


def parse_batch_size(text):
    """'full' or a whole number of samples per update (1 = per-sample SGD)."""
    if str(text).strip() == "full":
        return "full"
    try:
        return int(text)
    except ValueError:
        raise UserError(f"--batch-size must be a whole number or 'full', got {text!r}") from None


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a run's numbers (defaults: a published table row)."""

    backend: str = "numpy"
    dataset: str = "red"
    hidden: tuple = (50, 30, 20, 10, 5)
    activation: str = "tanh"
    lr: float = 0.01
    l2: float = 0.1
    seed: int = 0
    epochs: int = 200  # maximum
    patience: int = 10  # 0 = train exactly `epochs` epochs
    init: str = "auto"
    scaling: str = "standard"
    device: str = "cpu"
    data_dir: str | None = None
    allow_unverified: bool = False
    loss: str | None = None  # None: the task's default (mse, bce or ce)
    optimizer: str = "sgd"
    batch_size: int | str = 1  # samples per update, or "full" (full-batch gradient descent)
    beta1: float = 0.9  # Adam's moment decay rates and epsilon
    beta2: float = 0.999
    eps: float = 1e-8
    # the printed article code's maths quirks (impls.HyperParams) and its data handling
    input_activation: bool = False
    grad_bug: bool = False
    relu_grad0: float = 0.0
    stop: str = "patience"  # patience | first-rise (stop when the validation error rises)
    split: str = "random"  # random | grouped (identical rows stay in one part)
    dtype: str = "float64"  # the arithmetic: float64 (the exact comparison) | float32

    def __post_init__(self):
        _one_of("backend", self.backend, tuple(BACKENDS))
        _one_of("dataset", self.dataset, DATASETS)
        _one_of("activation", self.activation, ACTIVATIONS)
        _one_of("init", self.init, INITS)
        _one_of("scaling", self.scaling, SCALINGS)
        _one_of("device", self.device, DEVICES)
        devices = impls.declaration(self.backend).devices
        if self.device not in devices:
            raise UserError(f"backend '{self.backend}' runs on {', '.join(devices)} only, "
                            f"not on {self.device}")
        _one_of("stop", self.stop, STOPS)
        _one_of("split", self.split, SPLITS)
        _one_of("dtype", self.dtype, DTYPES)
        for name in ("input_activation", "grad_bug"):
            if not isinstance(getattr(self, name), bool):
                raise UserError(f"--{name.replace('_', '-')} must be true or false, got {getattr(self, name)!r}")
        if self.relu_grad0 not in (0, 1) or isinstance(self.relu_grad0, bool):
            raise UserError(f"--relu-grad0 must be 0 or 1, got {self.relu_grad0!r}")
        object.__setattr__(self, "relu_grad0", float(self.relu_grad0))  # one cache key for 1 and 1.0
        if isinstance(self.hidden, str):
            object.__setattr__(self, "hidden", parse_hidden(self.hidden))
        if not self.hidden or not all(isinstance(n, int) and n >= 1 for n in self.hidden):
            raise UserError(f"--hidden must be one or more positive layer sizes, got {self.hidden!r}")
        object.__setattr__(self, "hidden", tuple(self.hidden))
        _number("lr", self.lr, 0, strict=True)
        _number("l2", self.l2, 0, strict=False)
        _one_of("optimizer", self.optimizer, OPTIMIZERS)
        _number("beta1", self.beta1, 0, strict=False, below=1)
        _number("beta2", self.beta2, 0, strict=False, below=1)
        _number("eps", self.eps, 0, strict=True)
        if isinstance(self.batch_size, str):
            object.__setattr__(self, "batch_size", parse_batch_size(self.batch_size))
        if self.batch_size != "full" and not (isinstance(self.batch_size, int) and self.batch_size >= 1):
            raise UserError(f"--batch-size must be at least 1 or 'full', got {self.batch_size!r}")
        self._check_loss()
        for name, low in (("epochs", 1), ("patience", 0), ("seed", 0)):
            value = getattr(self, name)
            if not isinstance(value, int) or value < low:
                raise UserError(f"--{name} must be a whole number of at least {low}, got {value!r}")
        reason = impls.refusal(self.backend, self.hp, self.n_outputs)  # Declaration.refuses
        if reason:
            raise UserError(reason)

    def _check_loss(self):
        task = TASKS[self.dataset]
        allowed = TASK_LOSSES[task]
        if self.loss is None:
            object.__setattr__(self, "loss", allowed[0])
        _one_of("loss", self.loss, tuple(LOSSES))
        if self.loss not in allowed:
            raise UserError(
                f"--loss {self.loss} ({LOSSES[self.loss]} output) does not fit dataset "
                f"'{self.dataset}', a {task} task: use --loss {' or '.join(allowed)}")

    @property
    def task(self):
        return TASKS[self.dataset]

    @property
    def n_outputs(self):
        """The network's outputs where the config decides them; None for a multiclass task
        (one per grade present in the data)."""
        return {"regression": 1, "binary": 2 if self.loss == "ce" else 1}.get(self.task)

    @property
    def hp(self):
        return HyperParams(
            activation=self.activation, lr=float(self.lr), l2=float(self.l2), loss=self.loss,
            batch_size=0 if self.batch_size == "full" else self.batch_size,
            optimizer=self.optimizer, beta1=float(self.beta1), beta2=float(self.beta2),
            eps=float(self.eps), input_activation=self.input_activation,
            grad_bug=self.grad_bug, relu_grad0=float(self.relu_grad0), dtype=self.dtype)

    def to_dict(self):
        d = asdict(self)
        d["hidden"] = list(self.hidden)
        return d
