"""The memory a run will need, estimated before anything is allocated, so a configuration
that cannot fit is one clear line instead of a MemoryError deep inside a backend."""
import os
import resource

import numpy as np

from .errors import UserError

HARNESS_COPIES = 3  # float64 whatever the run: the initial weights, each epoch's copy, the best
ENGINE_COPIES = 3  # in the run's dtype: the backend's state, the gradient and the update step
ADAM_COPIES = 2  # the two moment estimates (the run's dtype)
OBJECT_FACTOR = {"python": 5}  # pure Python: a list slot and a float object per number
BUFFERS = 3  # z, a and delta for each row of a batch


def estimate_bytes(config, sizes, n_rows):
    """Bytes that training `config` with layer `sizes` (inputs first) on parts of `n_rows`
    (e.g. {"train": 1119, "val": 239, "test": 241}) holds at its peak: the harness's float64
    copies of the weights, and the engine's state and buffers in the run's dtype."""
    weights = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    width = sum(sizes)
    n_train = n_rows.get("train", 0)
    batch = n_train if config.batch_size == "full" else min(config.batch_size, max(n_train, 1))
    engine = ENGINE_COPIES + (ADAM_COPIES if config.optimizer == "adam" else 0)
    predict_rows = max(n_rows.values(), default=0)  # predictions run over a whole part
    size = np.dtype(config.dtype).itemsize
    nbytes = (8 * weights * HARNESS_COPIES
              + size * (weights * engine + BUFFERS * batch * width + 2 * predict_rows * width))
    return nbytes * OBJECT_FACTOR.get(config.backend, 1)


def available_bytes():
    """Memory this process may still take: MemAvailable, or the address-space limit."""
    free = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    free = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    if free is None:
        try:
            free = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            return None
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    return free if soft == resource.RLIM_INFINITY else min(free, soft)


def _gb(n):
    if n >= 1e11:
        return f"{n / 1e9:,.0f} GB"
    return f"{n / 1e9:.3g} GB" if n >= 1e8 else f"{n / 1e6:.3g} MB"


def check(config, sizes, n_rows, available=None):
    """A UserError if the run's estimate exceeds the memory available."""
    need = estimate_bytes(config, sizes, n_rows)
    have = available_bytes() if available is None else available
    if have is not None and need > have:
        raise UserError(f"--hidden {','.join(map(str, config.hidden))} with {config.backend}: "
                        f"training needs about {_gb(need)} of memory (weights, their copies "
                        f"and the batch buffers), more than the {_gb(have)} available")
    return need
