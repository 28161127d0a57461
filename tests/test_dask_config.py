"""--executor dask finds a running cluster the way Dask users hand one around: the
DASK_SCHEDULER_ADDRESS variable (dask's config) or a scheduler file."""
import pytest

distributed = pytest.importorskip("distributed")
dask = pytest.importorskip("dask")

from ffnbench.core.errors import UserError  # noqa: E402
from ffnbench.run import executors  # noqa: E402


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as c:
        yield c


def _address(executor):
    try:
        return executor.client.scheduler.address
    finally:
        executor.shutdown()


def test_dask_scheduler_address_is_used(cluster, monkeypatch):
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", cluster.scheduler_address)
    dask.config.refresh()
    try:
        executor, _ = executors.open_executor("dask")
        assert _address(executor) == cluster.scheduler_address
    finally:
        monkeypatch.delenv("DASK_SCHEDULER_ADDRESS")
        dask.config.refresh()


def test_scheduler_file_is_used(cluster, tmp_path):
    path = tmp_path / "scheduler.json"
    with distributed.Client(cluster) as c:
        c.write_scheduler_file(str(path))
    executor, _ = executors.open_executor("dask", scheduler_file=path)
    assert _address(executor) == cluster.scheduler_address


def test_a_missing_scheduler_file_is_one_line(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        executors.open_executor("dask", scheduler_file=tmp_path / "none.json")


def test_scheduler_options_need_dask():
    with pytest.raises(UserError, match="need --executor dask"):
        executors.open_executor("local", scheduler_file="x.json")
