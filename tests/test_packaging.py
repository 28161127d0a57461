"""A non-editable install (asv builds wheels) carries the data and the backends (ffnbench.impls)."""
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_carries_the_datasets_and_the_backends(tmp_path):
    # from a copy without build/: setuptools never deletes stale files there, so a wheel
    # built in place could carry a layout the sources no longer have
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
        "build", ".git", ".venv", ".cache", "results", "__pycache__", "*.egg-info", ".asv"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(tmp_path),
                    str(src)], check=True, capture_output=True)
    wheel, = tmp_path.glob("ffnbench-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for path in ("ffnbench/datasets/winequality-red.csv", "ffnbench/datasets/winequality-white.csv",
                 "ffnbench/reference/seed_table.csv", "ffnbench/impls/numba_ffn.py", "ffnbench/cli.py"):
        assert path in names, path
    from ffnbench import impls
    for name in impls.BACKENDS:  # every declared source, the C file included
        for source in impls.declaration(name).sources:
            assert f"ffnbench/impls/{source}" in names, (name, source)
    with zipfile.ZipFile(wheel) as z:
        assert z.read("ffnbench/datasets/winequality-red.csv") == (
            ROOT / "datasets/winequality-red.csv").read_bytes()
    assert "ffnbench/datasets/README.md" in names  # the licence travels with the data
    from ffnbench.report import asv_site  # asv's page offline: the files, licences, manifest
    for path in sorted(asv_site.ASSETS.iterdir()):
        assert f"ffnbench/report/asv_www/{path.name}" in names, path.name


@pytest.mark.parametrize("torch, message", [
    ("cpu", "TORCH=cpu: cannot reach http://127.0.0.1:9/whl within 10 s"),
    ("gpu", "TORCH=gpu: use TORCH=cpu or TORCH=pypi")])
def test_make_setup_with_a_torch_index_it_cannot_use_stops_before_the_venv(tmp_path, torch, message):
    """TORCH=cpu checks its index before pip (which would retry for minutes); nothing is made."""
    if shutil.which("make") is None:
        pytest.skip("no make")
    venv = tmp_path / "venv"
    done = subprocess.run(["make", "-C", str(ROOT), "setup", f"VENV={venv}", f"TORCH={torch}",
                           "TORCH_CPU_INDEX=http://127.0.0.1:9/whl"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and message in done.stderr and not venv.exists()
