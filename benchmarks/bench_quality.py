"""Test error after a fixed number of epochs, and epochs to reach a validation target.

One training run per (backend, hidden) on red wine with the published defaults (tanh,
lr 0.01, l2 0.1, seed 0), exactly QUALITY_EPOCHS epochs of per-sample SGD, no early
stopping. All runs happen once in `setup_cache`; the two tracks read them. The backends
should agree to round-off, so a backend whose numbers move away from the others broke.
"""
import math

from ._common import (ARCHS, BACKENDS, QUALITY_DATASET, QUALITY_EPOCHS, TARGET_VAL_MSE,
                      TINY_EPOCHS, config, harness, shrink, slow, tiny)


def _train(backend, arch):
    epochs = TINY_EPOCHS if tiny() else QUALITY_EPOCHS
    cfg = config(backend, arch, QUALITY_DATASET, epochs=epochs, patience=0)  # may skip
    result, _ = harness.train(cfg, shrink(harness.prepare(cfg)))
    return {"test_mse": result["test_mse"], "val_mse": result["val_mse_history"]}


class TrackQuality:
    version = "1"  # see bench_epoch.EpochTiming.version
    params = (BACKENDS, ARCHS)
    param_names = ("backend", "hidden")
    timeout = 60

    def setup_cache(self):
        runs = {}
        for backend in BACKENDS:
            for arch in ARCHS:
                if slow(backend, arch):  # per-sample training
                    continue
                try:
                    runs[backend, arch] = _train(backend, arch)
                except Exception as e:  # reported by that combination's setup, not all
                    runs[backend, arch] = f"{type(e).__name__}: {e}"
        return runs

    setup_cache.timeout = 900  # ~1 min of training on the reference machine

    def setup(self, runs, backend, hidden):
        run = runs.get((backend, hidden))
        if run is None:
            raise NotImplementedError(f"{backend} on {hidden}: skipped, too slow to run per commit")
        if isinstance(run, str):
            if run.startswith("NotImplementedError"):  # no such backend at this commit
                raise NotImplementedError(run)
            raise RuntimeError(run)  # e.g. the engine is not installed: asv reports it
        self.run = run

    def track_test_mse(self, runs, backend, hidden):
        mse = self.run["test_mse"]
        return math.nan if mse is None else mse  # None: the run diverged

    track_test_mse.unit = "test MSE"

    def track_epochs_to_target(self, runs, backend, hidden):
        """First epoch whose validation MSE is <= TARGET_VAL_MSE; NaN if none was."""
        for epoch, mse in enumerate(self.run["val_mse"], start=1):
            if mse <= TARGET_VAL_MSE:
                return epoch
        return math.nan

    track_epochs_to_target.unit = "epochs"
