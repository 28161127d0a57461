"""scripts/bench_compare.py (make bench-compare): what it measures and where it writes, and one
line for bad input. The comparison itself runs asv for minutes; docs/asv.md shows a run."""
import importlib.util
import json
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("bench_compare", ROOT / "scripts" / "bench_compare.py")
bench_compare = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench_compare)


def _git(repo, *args):
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path):
    r = tmp_path / "repo"
    (r / "ffnbench").mkdir(parents=True)
    (r / "ffnbench" / "a.py").write_text("x = 1\n")
    _git(r.parent, "init", "-q", str(r))
    _git(r, "add", ".")
    _git(r, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one")
    return r


def test_the_work_tree_is_measured_as_it_is(repo):
    head = _git(repo, "rev-parse", "HEAD")
    assert bench_compare.work_tree_commit(repo) == (head, [])  # clean: HEAD itself
    (repo / "ffnbench" / "a.py").write_text("x = 2\n")
    (repo / "ffnbench" / "new.py").write_text("y = 1\n")
    tree, untracked = bench_compare.work_tree_commit(repo)
    assert tree != head and untracked == ["ffnbench/new.py"]
    assert _git(repo, "show", f"{tree}:ffnbench/a.py") == "x = 2"  # the edit, not HEAD's
    assert _git(repo, "status", "--porcelain") != ""  # the work tree itself is untouched


def test_a_revision_that_is_no_commit_is_one_line(repo):
    assert bench_compare.resolve("HEAD", repo) == _git(repo, "rev-parse", "HEAD")
    with pytest.raises(bench_compare.Refused, match="BASE=nope: not a commit"):
        bench_compare.resolve("nope", repo)


def test_results_go_to_a_scratch_directory(tmp_path):
    path = bench_compare.scratch_config(tmp_path / "out")
    conf = json.loads(path.read_text())
    assert conf["results_dir"] == str(tmp_path / "out" / "results")
    assert all(Path(conf[k]).is_absolute() for k in ("repo", "benchmark_dir", "env_dir"))
    assert Path(conf["repo"]) == ROOT and conf["matrix"]  # the rest is asv.conf.json's


@pytest.mark.parametrize("argv, says", [(["nope"], "BASE=nope: not a commit"),
                                        (["HEAD", "--factor", "0.9"], "--factor 0.9")])
def test_bad_input_exits_2_with_one_line(argv, says, capsys):
    assert bench_compare.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and says in err[0]
