"""The C backend's build: compiled once per source/compiler/flags, rebuilt on an edit,
race-safe, and one clear line where it cannot be built. Its maths is checked with every
other backend's in tests/test_backends.py."""
import shutil
import threading

import pytest

from ffnbench import cli, impls

c_ffn = pytest.importorskip("ffnbench.impls.c_ffn", exc_type=impls.BackendUnavailable)


@pytest.fixture
def source(tmp_path, monkeypatch):
    """A private copy of ffn.c and an empty library cache."""
    copy = tmp_path / "ffn.c"
    shutil.copy(c_ffn.SOURCE, copy)
    monkeypatch.setattr(c_ffn, "SOURCE", copy)
    monkeypatch.setenv("FFNBENCH_CACHE", str(tmp_path / "cache"))
    return copy


def test_the_library_is_cached_and_rebuilt_when_the_source_changes(source):
    first = c_ffn.build()
    mtime = first.stat().st_mtime_ns
    assert c_ffn.build() == first and first.stat().st_mtime_ns == mtime  # not rebuilt
    source.write_text(source.read_text() + "\n/* edited */\n")
    second = c_ffn.build()
    assert second != first and second.exists()


def test_parallel_builds_leave_one_whole_library(source):
    paths, errors = [], []

    def build():
        try:
            paths.append(c_ffn.build())
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=build) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(set(paths)) == 1
    assert [p.name for p in paths[0].parent.iterdir()] == [paths[0].name]  # no temporary left
    import ctypes
    ctypes.CDLL(str(paths[0])).ffn_predict  # loads, and has the kernels


def test_a_source_that_does_not_compile_is_one_line(source):
    source.write_text("this is not C\n")
    with pytest.raises(impls.BackendUnavailable, match=r"^backend 'c': .* could not compile ffn.c"):
        c_ffn.build()


def test_no_compiler_is_one_line_and_the_other_backends_still_work(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("CC", str(tmp_path / "no-such-cc"))
    assert cli.main(["train", "--backend", "c", "--epochs", "1", "--hidden", "3"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "backend 'c' needs the program 'cc'" in err
    assert cli.main(["train", "--backend", "numpy", "--epochs", "1", "--hidden", "3"]) == 0


def test_an_unwritable_cache_is_one_line(source, tmp_path, monkeypatch):
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("FFNBENCH_CACHE", str(tmp_path / "file" / "cache"))
    with pytest.raises(impls.BackendUnavailable, match="cannot write its compiled library.*FFNBENCH_CACHE"):
        c_ffn.build()
