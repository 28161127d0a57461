"""What every benchmark class shares: the grid, the data preparation, the skip rules.

The suite runs against *each* commit's installed ffnbench, so it uses only API that has
existed since the first commit (TrainConfig, harness.prepare/load_backend/epoch_orders/
warm_up/train and the backend contract), found in either layout (the imports below), and
checks for later additions (batch_size, impls.unavailable, the backends' synchronize).

FFNBENCH_BENCH_TINY=1 shrinks the data and the epoch counts so that tests can run every
benchmark body once in seconds (tests/test_benchmarks.py); asv never sets it.
"""
import dataclasses
import os
import sys

try:  # the layout since the package split: ffnbench.core, and the backends as ffnbench.impls
    from ffnbench import impls
    from ffnbench.core import harness
    from ffnbench.core.config import TrainConfig
    from ffnbench.core.errors import UserError
except ImportError:  # older commits: a flat ffnbench/ and a top-level impls package
    import impls
    from ffnbench import harness
    from ffnbench.config import TrainConfig
    from ffnbench.errors import UserError

from . import THREADS

# Spelled out, not impls.BACKENDS: asv runs this suite (from the checkout) against every
# older commit, whose registry may lack a newer backend; that backend is then a skip.
# tests/test_benchmarks.py checks that this is the current registry, in its order.
BACKENDS = ["python", "numpy", "numba", "torch", "jax", "c", "sklearn"]
ARCHS = ["10", "50-30-20-10-5", "50-100-60-30-20-10"]  # hidden layer sizes, as asv shows them
LARGEST = ARCHS[-1]
DATASETS = ["red", "white"]
BATCH_SIZES = [32, 256]

QUALITY_DATASET = "red"
QUALITY_EPOCHS = 20  # test MSE after exactly this many epochs (no early stopping, seed 0)
TARGET_VAL_MSE = 0.43  # epochs-to-target: first epoch whose validation MSE is <= this
TINY_TRAIN = 48  # training samples per part in tiny mode
TINY_EPOCHS = 2

# Too slow to repeat for every commit (results/speed.md has them): pure Python on the two
# deep nets at any batch size (0.4-8 s per epoch), scikit-learn there per sample (0.3-1.7 s:
# its per-batch overhead, paid per sample; its mini-batch epochs take milliseconds).
DEEP = ("50-30-20-10-5", "50-100-60-30-20-10")
SLOW = {("python", arch) for arch in DEEP}
SLOW_PER_SAMPLE = {("sklearn", arch) for arch in DEEP}

# Import the engines once here: with asv's forkserver launch method (asv.conf.json) every
# benchmark process is forked from one that already imported numba and torch.
for _name in BACKENDS:
    try:
        impls.load(_name)
    except Exception:  # a missing engine is reported by the benchmarks that need it
        pass
if THREADS:  # see benchmarks/__init__.py
    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(THREADS)  # numpy's OpenBLAS was loaded before the suite
    except ImportError:  # an environment without threadpoolctl: only the variables apply
        pass
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(THREADS)


def tiny():
    return os.environ.get("FFNBENCH_BENCH_TINY") == "1"


def hidden_sizes(arch):
    """'50-30-20' -> (50, 30, 20)"""
    return tuple(int(n) for n in arch.split("-"))


def has_batch_size():
    """Mini-batch training arrived with the optimiser commit; older commits lack it."""
    return "batch_size" in {f.name for f in dataclasses.fields(TrainConfig)}


def check_backend(backend):
    """A backend added after this commit is a skip (NotImplementedError). One that this
    commit has but that cannot run in this environment (engine or compiler missing) is an
    error that asv reports, never a silent skip: asv.conf.json installs every engine."""
    if backend not in impls.BACKENDS:
        raise NotImplementedError(f"this commit has no backend '{backend}'")
    reason = getattr(impls, "unavailable", lambda name: None)(backend)  # older commits lack it
    if reason:
        raise RuntimeError(reason)


def synchronizer(module):
    """The backend's synchronize(state), a no-op on commits from before it existed."""
    return getattr(module, "synchronize", lambda state: None)


def config(backend="numpy", arch="10", dataset="red", batch_size=1, **kw):
    """The published-table defaults (tanh, lr 0.01, l2 0.1, seed 0) for one grid point."""
    check_backend(backend)
    if batch_size != 1:
        if not has_batch_size():
            raise NotImplementedError("this commit has no mini-batch training (no TrainConfig.batch_size)")
        kw["batch_size"] = batch_size
    return TrainConfig(backend=backend, dataset=dataset, hidden=hidden_sizes(arch), **kw)


def slow(backend, arch, batch_size=1):
    return (backend, arch) in SLOW or (batch_size == 1 and (backend, arch) in SLOW_PER_SAMPLE)


def skip_if_slow(backend, arch, batch_size=1):
    if slow(backend, arch, batch_size):
        raise NotImplementedError(f"{backend} on {arch}: skipped, too slow to run per commit")


def shrink(prepared):
    """In tiny mode keep only the first few samples of every part."""
    if not tiny():
        return prepared
    X = {k: v[:TINY_TRAIN].copy() for k, v in prepared.X.items()}
    Y = {k: v[:TINY_TRAIN].copy() for k, v in prepared.Y.items()}
    return dataclasses.replace(prepared, X=X, Y=Y)


def prepare_grid(datasets=DATASETS, archs=ARCHS):
    """Scaled training data, initial weights and first-epoch order for every grid point.

    Plain dicts and arrays, so asv can pickle them once (setup_cache) for all processes.
    """
    out = {}
    for dataset in datasets:
        for arch in archs:
            p = shrink(harness.prepare(config(arch=arch, dataset=dataset)))
            order = next(harness.epoch_orders(0, len(p.X["train"])))
            out[dataset, arch] = {"X": p.X["train"], "Y": p.Y["train"], "params": p.params,
                                  "order": order}
    return out


def epoch_state(grid, backend, arch, dataset, batch_size=1):
    """(backend module, fresh engine state, X, Y, order) for one epoch, JIT already warm."""
    cfg = config(backend, arch, dataset, batch_size)
    try:
        module = harness.load_backend(cfg)
    except UserError as e:  # on an older commit, whose registry had no unavailable()
        raise RuntimeError(str(e)) from None
    g = grid[dataset, arch]
    harness.warm_up(module, g["params"], cfg.hp, g["X"], g["Y"], cfg.device)
    return module, module.from_numpy(g["params"], cfg.hp, cfg.device), g["X"], g["Y"], g["order"]
