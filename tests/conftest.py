import shutil

import pytest

from ffnbench import impls
from ffnbench.core import data, harness
from ffnbench.impls import checks

BACKENDS = list(impls.BACKENDS)


def subset(prepared, n):
    """The same Prepared run with only the first n training samples (for pure Python)."""
    X = dict(prepared.X, train=prepared.X["train"][:n].copy())
    Y = dict(prepared.Y, train=prepared.Y["train"][:n].copy())
    return harness.Prepared(X, Y, prepared.params)


max_weight_diff = checks.max_diff  # max |dW| and |db| over the layers of two weight lists


@pytest.fixture
def data_dir(tmp_path):
    """A copy of the packaged CSVs in tmp_path, with data.load's cache cleared around the test."""
    for fname, _ in data.FILES.values():
        shutil.copy(data.PACKAGED / fname, tmp_path / fname)
    data.load.cache_clear()
    yield tmp_path
    data.load.cache_clear()


def disk_full_on(monkeypatch, module, name):
    """Make `module`'s atomic writes of a file called `name` fail as a full disk would;
    returns the function that puts the real writer back."""
    real = module.atomic_write

    def failing(path, mode="w"):
        if path.name == name:
            from ffnbench.core.errors import UserError
            raise UserError(f"{path}: cannot write (No space left on device)")
        return real(path, mode)
    monkeypatch.setattr(module, "atomic_write", failing)
    return lambda: monkeypatch.setattr(module, "atomic_write", real)


@pytest.fixture(scope="session")
def _baseline_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("baselines")


@pytest.fixture(autouse=True)
def shared_baselines(request, monkeypatch, _baseline_cache):
    """Every test of a pytest worker reads and fills one baseline cache (they are deterministic
    and keyed by what decides them), instead of fitting them again in each test's cache;
    test_baseline_cache.py tests the per-cache store itself."""
    if request.module.__name__.endswith("test_baseline_cache"):
        return
    from ffnbench.run.cache import Cache
    from ffnbench.studies import baselines
    monkeypatch.setattr(baselines, "store", lambda cache: Cache(_baseline_cache, cache.fresh,
                                                                check=baselines.check_entry))


@pytest.fixture(autouse=True)
def quiet_log():
    """cli.main configures the "ffnbench" logger for its command: undone after each test."""
    yield
    from ffnbench.core.log import LOG
    for handler in list(LOG.handlers):
        LOG.removeHandler(handler)
    LOG.setLevel("NOTSET")
