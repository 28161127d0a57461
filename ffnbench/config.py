"""One frozen, validated record per training run."""
import math
from dataclasses import asdict, dataclass

from impls import ACTIVATIONS, BACKENDS, HyperParams

from .errors import UserError

DATASETS = ("red", "white")
INITS = ("auto", "glorot", "he", "uniform01")
SCALINGS = ("standard", "minmax", "none")
DEVICES = ("cpu", "cuda")


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


def _number(name, value, low, strict):
    ok = isinstance(value, (int, float)) and math.isfinite(value) and (
        value > low if strict else value >= low)
    if not ok:
        bound = f"greater than {low}" if strict else f"at least {low}"
        raise UserError(f"--{name} must be a finite number {bound}, got {value!r}")


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

    def __post_init__(self):
        _one_of("backend", self.backend, tuple(BACKENDS))
        _one_of("dataset", self.dataset, DATASETS)
        _one_of("activation", self.activation, ACTIVATIONS)
        _one_of("init", self.init, INITS)
        _one_of("scaling", self.scaling, SCALINGS)
        _one_of("device", self.device, DEVICES)
        if isinstance(self.hidden, str):
            object.__setattr__(self, "hidden", parse_hidden(self.hidden))
        if not self.hidden or not all(isinstance(n, int) and n >= 1 for n in self.hidden):
            raise UserError(f"--hidden must be one or more positive layer sizes, got {self.hidden!r}")
        object.__setattr__(self, "hidden", tuple(self.hidden))
        _number("lr", self.lr, 0, strict=True)
        _number("l2", self.l2, 0, strict=False)
        for name, low in (("epochs", 1), ("patience", 0), ("seed", 0)):
            value = getattr(self, name)
            if not isinstance(value, int) or value < low:
                raise UserError(f"--{name} must be a whole number of at least {low}, got {value!r}")

    @property
    def hp(self):
        return HyperParams(activation=self.activation, lr=float(self.lr), l2=float(self.l2))

    def to_dict(self):
        d = asdict(self)
        d["hidden"] = list(self.hidden)
        return d
