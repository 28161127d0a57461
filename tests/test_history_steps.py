"""`ffnbench history --regressions` (asv's step detection over the history), benchmark versions
(results of another version are left out, as asv leaves them out), and one history in both
views: what `ffnbench history` reads equals what `asv publish` publishes, for every committed
result of every machine."""
import ast
import itertools
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ffnbench import cli
from ffnbench.studies import history
from test_history import result_file, write

ROOT = Path(__file__).resolve().parents[1]
ASV = ROOT / "results" / "asv"
BENCH = "bench_x.TimeX.time_x"


def one_value_file(commit, date_s, values, version="1"):
    """test_history's result file (the same values at every commit, so no step there) plus
    one benchmark with parameters (backend,) = numpy, numba."""
    data = result_file(commit, date_s, 1.0)
    data["results"][BENCH] = [list(values), [["'numpy'", "'numba'"]], version]
    return data


def machine(tmp_path, numpy, numba=None, versions=None):
    r = tmp_path / "asv"
    numba = numba or [1.0] * len(numpy)
    versions = versions or ["1"] * len(numpy)
    for i, (a, b, v) in enumerate(zip(numpy, numba, versions)):
        c = f"{i:x}" * 40
        write(r, "m", f"{c[:8]}-env.json", one_value_file(c[:40], 1_700_000_000 + i, (a, b), v))
    (r / "benchmarks.json").write_text(json.dumps({BENCH: {"version": "1"}, history.TIME_EPOCH: {
        "version": "v1"}, "version": 2}))
    return r


def test_a_step_is_named_at_the_commit_that_made_it(tmp_path):
    r = machine(tmp_path, [1.0, 1.02, 0.99, 1.01, 2.0, 2.02, 1.98, 2.01])
    _, runs = history.load_runs(r, "m")
    (step,) = history.all_steps(runs)
    assert (step.params, step.commit, step.before_commit, step.adjacent) == (
        ("numpy",), "4" * 40, "3" * 40, True)
    assert step.before == pytest.approx(1.0, abs=0.011) and step.ratio == pytest.approx(2, rel=0.02)


def test_a_single_spike_a_small_step_and_the_threshold(tmp_path):
    spike = [1.0, 1.01, 0.99, 5.0, 1.0, 1.01, 0.99, 1.0]
    small = [1.0, 1.001, 0.999, 1.0, 1.03, 1.031, 1.029, 1.03]
    _, runs = history.load_runs(machine(tmp_path, spike, small), "m")
    assert history.all_steps(runs) == []  # no level of one commit; 3 % < 5 %
    (step,) = history.all_steps(runs, threshold=0.02)
    assert step.params == ("numba",) and step.ratio == pytest.approx(1.03, rel=1e-3)


def test_a_step_across_a_noisy_point_names_the_range(tmp_path):
    _, runs = history.load_runs(machine(tmp_path, [1, 1, 1, 1, 1.6, 3, 3, 3, 3]), "m")
    (step,) = history.all_steps(runs)
    assert (step.before_commit, step.commit, step.adjacent) == ("3" * 40, "5" * 40, False)


def test_results_of_another_version_are_left_out_and_said(tmp_path):
    r = machine(tmp_path, [1.0, 1.0, 3.0, 3.0], versions=["0", "0", "1", "1"])
    with pytest.warns(UserWarning, match=f"2 results of {BENCH} .* another version"):
        _, runs = history.load_runs(r, "m")
    assert [BENCH in run.results for run in runs] == [False, False, True, True]
    assert history.all_steps(runs) == []  # the version change is not a step


def test_the_command_writes_and_prints_the_steps(tmp_path, capsys):
    r = machine(tmp_path, [1.0, 1.0, 1.0, 0.5, 0.5, 0.5], [1.0, 1.0, 1.0, 1.5, 1.5, 1.5])
    assert cli.main(["history", "--results", str(r), "--out", str(tmp_path / "o"),
                     "--regressions", "--json", "-q"]) == 0
    doc = json.loads(capsys.readouterr().out)
    steps = {s["params"][0]: s for s in doc["steps"]["m"]}
    assert steps["numpy"]["ratio"] == 0.5 and steps["numba"]["ratio"] == 1.5
    text = (tmp_path / "o" / "regressions.md").read_text()
    worse, better = text.split("### Improvements")
    assert "| `33333333` | TimeX.time_x | numba | 1000 ms | 1500 ms | 1.500 |  |" in worse  # no git
    assert "numpy" in better and "numpy" not in worse
    assert cli.main(["history", "--results", str(r), "--out", str(tmp_path / "o"),
                     "--regressions", "--threshold", "0"]) == 2
    assert "--threshold 0" in capsys.readouterr().err


def test_the_committed_history_names_the_known_steps():
    """The steps the figures show: numpy's per-sample epoch halves at 0c3c9c6 and numba's
    drops at the merge of the speed work (c28b313) on the current machine; the per-sample
    numpy/numba step of 9ed74ee on the reference machine."""
    _, runs = history.load_runs(ASV, "ffnbench-zen5-2core")
    steps = [s for s in history.all_steps(runs) if s.benchmark == history.TIME_EPOCH]
    at = {(s.commit[:7], s.params[0]) for s in steps if s.adjacent and s.ratio < 0.6}
    assert {("0c3c9c6", "numpy"), ("c28b313", "numba")} <= at
    numpy = [s for s in steps if s.commit.startswith("0c3c9c6") and s.params[0] == "numpy"]
    assert len(numpy) == 6  # every net and dataset
    if (ROOT / ".git").exists():  # what the commit says it changed, for the report
        assert "numpy" in history.subjects(ASV, [numpy[0].commit])[numpy[0].commit].lower()
    _, runs = history.load_runs(ASV, "ffnbench-ref-2core")
    assert ("9ed74ee", "numpy") in {(s.commit[:7], s.params[0]) for s in history.all_steps(runs)}


def test_every_committed_result_has_the_suite_s_current_version():
    """Else asv publish hides it (docs/asv.md, "Benchmark versions")."""
    current = history.current_versions(ASV)
    for path in ASV.glob("*/*-*.json"):
        run = history.read_result_file(path)
        assert {b: current[b] for b in run.versions} == run.versions, path


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(),
                    reason="asv publish needs the git clone")
def test_asv_publish_shows_what_ffnbench_history_reads(tmp_path):
    html = tmp_path / "html"
    done = subprocess.run([sys.executable, "-m", "asv", "publish", "--html-dir", str(html)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    index = json.loads((html / "index.json").read_text())
    hashes = {int(k): v for k, v in index["revision_to_hash"].items()}
    published = {}  # (machine, benchmark, params, commit) -> value
    for graph in html.glob("graphs/**/machine-*/**/*.json"):
        machine = next(p for p in graph.parts if p.startswith("machine-"))[len("machine-"):]
        name = graph.stem
        if name == "summary" or name not in index["benchmarks"]:
            continue
        combos = list(itertools.product(*[[ast.literal_eval(v) for v in vs]
                                          for vs in index["benchmarks"][name]["params"]]))
        for revision, values in json.loads(graph.read_text()):
            values = values if isinstance(values, list) else [values]
            for combo, value in zip(combos, values):
                if value is not None and not math.isnan(value):
                    published[machine, name, combo, hashes[revision]] = value
    read = {}
    for name in history.recorded_machines(ASV):
        _, runs = history.load_runs(ASV, name)
        for run in runs:
            for bench, values in run.results.items():
                for combo, value in values.items():
                    if not math.isnan(value):
                        read[name, bench, combo, run.commit] = value
    assert {k[0] for k in published} == set(history.recorded_machines(ASV))
    assert published.keys() == read.keys()
    assert all(published[k] == pytest.approx(read[k], rel=1e-12) for k in read)


def test_one_machine_is_one_graph_in_asv():
    """asv draws one graph per distinct machine description (a result's params): all the
    committed results of a machine carry one description (older ones may lack the fields
    benchmarks.machine added later: then all of them do)."""
    for machine_dir in (d for d in ASV.iterdir() if d.is_dir()):
        keys = [k for k in json.loads((machine_dir / "machine.json").read_text()) if k != "version"]
        seen = {json.dumps({k: json.loads(p.read_text())["params"].get(k) for k in keys})
                for p in machine_dir.glob("*-*.json")}
        assert len(seen) == 1, (machine_dir.name, seen)


def test_the_machine_description_drops_what_changes_between_boots():
    from benchmarks.machine import described
    a = described({"os": "Linux 6.18.44-fc-v657", "ram": "25276510208", "cpu": "AMD EPYC"})
    b = described({"os": "Linux 6.18.44-fc-v1300", "ram": "25276182528", "cpu": "AMD EPYC"})
    assert a == b == {"os": "Linux 6.18.44", "ram": "23.5 GiB", "cpu": "AMD EPYC"}
    assert described({"os": "Darwin 24.1.0", "ram": ""})["os"] == "Darwin 24.1.0"
