"""Seconds per training epoch: per-sample SGD (as published) and mini-batch SGD.

asv re-runs `setup` before every timed sample, so each sample trains one epoch from the
same initial weights on the same sample order; the data are prepared once (`setup_cache`)
and JIT compilation happens in `setup` (harness.warm_up), never in the timed body.
"""
from ._common import (ARCHS, BACKENDS, BATCH_SIZES, DATASETS, LARGEST, epoch_state,
                      prepare_grid, skip_if_slow, synchronizer)


class EpochTiming:
    # What each timing measures; bump it only when that changes (docs/asv.md, "Benchmark
    # versions"): asv shows only results of the current version, so a bump hides the past.
    version = "1"
    # One epoch is 1 ms to 2 s here: one sample per call, 2 to 5 samples within ~2 s,
    # one round, no extra warm-up (setup already warmed the engine).
    number = 1
    repeat = (2, 5, 2.0)
    rounds = 1
    warmup_time = 0.0
    timeout = 120


class TimeEpoch(EpochTiming):
    """One epoch of per-sample SGD over the training part (batch size 1)."""

    params = (BACKENDS, ARCHS, DATASETS)
    param_names = ("backend", "hidden", "dataset")

    def setup_cache(self):
        return prepare_grid()

    def setup(self, grid, backend, hidden, dataset):
        skip_if_slow(backend, hidden)
        self.backend, self.state, self.X, self.Y, self.order = epoch_state(grid, backend, hidden, dataset)
        self.sync = synchronizer(self.backend)

    def time_epoch(self, grid, backend, hidden, dataset):
        self.backend.train_epoch(self.state, self.X, self.Y, self.order)
        self.sync(self.state)  # a device (GPU, JAX's async dispatch) finishes inside the timing


class TimeMiniBatchEpoch(EpochTiming):
    """One epoch of mini-batch SGD (skipped on commits before mini-batch training)."""

    params = (BACKENDS, ARCHS, DATASETS, BATCH_SIZES)
    param_names = ("backend", "hidden", "dataset", "batch_size")

    def setup_cache(self):
        return prepare_grid()

    def setup(self, grid, backend, hidden, dataset, batch_size):
        skip_if_slow(backend, hidden, batch_size)
        self.backend, self.state, self.X, self.Y, self.order = epoch_state(
            grid, backend, hidden, dataset, batch_size)
        self.sync = synchronizer(self.backend)

    def time_epoch(self, grid, backend, hidden, dataset, batch_size):
        self.backend.train_epoch(self.state, self.X, self.Y, self.order)
        self.sync(self.state)


class PeakMemEpoch:
    """Peak resident memory of a process that trains one epoch on the largest network
    (white wine, per-sample SGD). asv reports the whole process's maximum RSS, so the
    engine's import (torch: a few hundred MB) is included."""

    params = (BACKENDS,)
    param_names = ("backend",)
    version = "1"  # see EpochTiming.version
    timeout = 120

    def setup_cache(self):
        return prepare_grid(datasets=["white"], archs=[LARGEST])

    def setup(self, grid, backend):
        skip_if_slow(backend, LARGEST)
        self.backend, self.state, self.X, self.Y, self.order = epoch_state(grid, backend, LARGEST, "white")
        self.sync = synchronizer(self.backend)

    def peakmem_epoch(self, grid, backend):
        self.backend.train_epoch(self.state, self.X, self.Y, self.order)
        self.sync(self.state)
