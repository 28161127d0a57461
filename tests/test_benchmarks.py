"""The asv suite: every benchmark's setup and body run once on tiny inputs, `asv check`
passes, and asv.conf.json pins the same engines as requirements.txt."""
import importlib
import inspect
import itertools
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MODULES = sorted(p.stem for p in (ROOT / "benchmarks").glob("bench_*.py"))
BODY = re.compile(r"^(time|track|peakmem|mem|timeraw)_")


@pytest.fixture(scope="module")
def suite():
    """Import the suite in tiny mode, leaving this process's thread pools alone."""
    mp = pytest.MonkeyPatch()
    mp.setenv("FFNBENCH_BENCH_TINY", "1")
    mp.setenv("FFNBENCH_BENCH_THREADS", "0")
    mp.syspath_prepend(str(ROOT))
    for name in [m for m in sys.modules if m == "benchmarks" or m.startswith("benchmarks.")]:
        mp.delitem(sys.modules, name)
    yield {name: importlib.import_module(f"benchmarks.{name}") for name in MODULES}
    mp.undo()


def _classes(module):
    return [c for _, c in inspect.getmembers(module, inspect.isclass)
            if c.__module__ == module.__name__ and any(BODY.match(n) for n in dir(c))]


def _run_class(cls):
    """setup_cache once, then setup + each body for every parameter combination."""
    cache = (cls().setup_cache(),) if hasattr(cls, "setup_cache") else ()
    bodies = [n for n in dir(cls) if BODY.match(n)]
    ran, skipped = {}, []
    for combo in itertools.product(*getattr(cls, "params", ())):
        for body in bodies:
            bench = cls()
            try:
                bench.setup(*cache, *combo)
            except NotImplementedError:
                skipped.append(combo)
                break
            ran[body, combo] = getattr(bench, body)(*cache, *combo)
    return ran, skipped


def test_the_suite_has_the_promised_benchmarks(suite):
    names = {f"{m}.{c.__name__}.{n}" for m, mod in suite.items() for c in _classes(mod)
             for n in dir(c) if BODY.match(n)}
    from ffnbench.studies import history  # the figures read these names
    assert {history.TIME_EPOCH, history.TIME_MINIBATCH, history.TEST_MSE,
            history.EPOCHS_TO_TARGET} <= names
    assert any(".peakmem_" in n for n in names)


@pytest.mark.parametrize("module", MODULES)
def test_every_benchmark_runs_once_on_tiny_inputs(suite, module):
    common = importlib.import_module("benchmarks._common")
    for cls in _classes(suite[module]):
        ran, skipped = _run_class(cls)
        assert ran, cls.__name__
        # only the documented skips: pure Python on the two deep nets, scikit-learn there
        # per sample (peakmem and quality train per sample; peakmem on the largest net)
        for combo in skipped:
            arch = combo[1] if len(combo) > 1 else common.LARGEST
            batch = combo[3] if len(combo) > 3 else 1
            assert common.slow(combo[0], arch, batch), (cls.__name__, combo)
        for (body, combo), value in ran.items():
            if body.startswith("track_"):
                assert isinstance(value, (int, float)), (cls.__name__, body, combo, value)
                assert math.isnan(value) or value >= 0, (cls.__name__, body, combo, value)


def test_quality_values_are_plausible(suite):
    """Tiny runs still give a finite test MSE, equal across backends to round-off."""
    quality = suite["bench_quality"].TrackQuality
    ran, _ = _run_class(quality)
    mse = {combo: v for (body, combo), v in ran.items() if body == "track_test_mse"}
    for arch in {c[1] for c in mse}:
        values = [v for c, v in mse.items() if c[1] == arch]
        assert all(math.isfinite(v) for v in values)
        assert max(values) - min(values) < 1e-9, (arch, values)


def test_a_backend_missing_at_a_commit_is_skipped_not_failed(suite, monkeypatch):
    """Older commits lack newer backends: their grid points are skips (NaN), not failures."""
    common, quality = importlib.import_module("benchmarks._common"), suite["bench_quality"]
    with pytest.raises(NotImplementedError, match="no backend 'nosuch'"):
        common.epoch_state(common.prepare_grid(["red"], ["10"]), "nosuch", "10", "red")
    monkeypatch.setattr(quality, "BACKENDS", ["nosuch"])
    monkeypatch.setattr(quality, "ARCHS", ["10"])
    runs = quality.TrackQuality().setup_cache()  # must not raise: the error is stored
    with pytest.raises(NotImplementedError):
        quality.TrackQuality().setup(runs, "nosuch", "10")


def _requirements():
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        if "==" in line and not line.lstrip().startswith("#"):
            name, version = line.split("==", 1)
            pins[name.strip().lower()] = version.split(";")[0].strip()
    return pins


def test_asv_matrix_pins_the_versions_of_requirements_txt():
    asv_util = pytest.importorskip("asv.util")
    conf = asv_util.load_json(str(ROOT / "asv.conf.json"), js_comments=True)
    pins = _requirements()
    for name, versions in conf["matrix"]["req"].items():
        assert versions == [pins[name.lower()]], (name, versions, pins.get(name.lower()))
    assert conf["results_dir"] == "results/asv" and conf["branches"] == ["main"]


def test_the_suite_times_every_registered_backend(suite):
    """A new backend missing from the suite's spelled-out list would never be measured."""
    from ffnbench import impls
    _common = importlib.import_module("benchmarks._common")
    assert _common.BACKENDS == list(impls.BACKENDS)


DISTRIBUTIONS = {"sklearn": "scikit-learn"}  # import name -> what pip installs, where they differ


def test_asv_installs_every_package_a_backend_declares():
    """Without its engine in the matrix (or pinned beside the wheel in the install command,
    which keeps the environment's name and so one history per machine), asv could not run a
    backend at all; a pin beside the wheel is requirements.txt's."""
    from ffnbench import impls
    asv_util = pytest.importorskip("asv.util")
    conf = asv_util.load_json(str(ROOT / "asv.conf.json"), js_comments=True)
    beside = dict(word.split("==") for word in " ".join(conf["install_command"]).split() if "==" in word)
    pins = _requirements()
    for name, d in impls.declarations().items():
        for package in d.packages:
            dist = DISTRIBUTIONS.get(package, package)
            assert package in conf["matrix"]["req"] or dist in beside, (name, package)
            if dist in beside:
                assert beside[dist] == pins[dist.lower()], (dist, beside[dist])


def test_a_backend_that_cannot_run_is_an_error_not_a_skip(suite, monkeypatch):
    """asv reports it, so a missing engine is never mistaken for an older commit."""
    from ffnbench import impls
    _common = importlib.import_module("benchmarks._common")
    monkeypatch.setattr(impls, "unavailable", lambda name: f"backend '{name}' needs 'x'")
    with pytest.raises(RuntimeError, match="needs 'x'"):
        _common.config("numpy")


def test_asv_check_passes():
    """`asv check` discovers the suite in this environment and checks every signature."""
    pytest.importorskip("asv")
    out = subprocess.run([sys.executable, "-m", "asv", "check", "--python=same"], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and "No problems found" in out.stdout, out.stdout + out.stderr


def test_machine_registration_refuses_another_computers_name(tmp_path, monkeypatch):
    """`make history` must not file this computer's timings under the reference machine's
    name when this is another computer (python -m benchmarks.machine NAME)."""
    pytest.importorskip("asv")
    monkeypatch.setenv("HOME", str(tmp_path))  # asv keeps its machine list in ~/.asv-machine.json
    (tmp_path / "asv" / "ref").mkdir(parents=True)
    (tmp_path / "asv" / "ref" / "machine.json").write_text(
        '{"machine": "ref", "arch": "no-such-arch", "cpu": "x", "num_cpu": "1"}')
    run = lambda name: subprocess.run([sys.executable, "-m", "benchmarks.machine", name,
                                       str(tmp_path / "asv")], cwd=ROOT, capture_output=True,
                                      text=True, timeout=120)
    refused = run("ref")
    assert refused.returncode == 1 and "this computer is not 'ref'" in refused.stderr
    assert not (tmp_path / ".asv-machine.json").exists()
    ok = run("mine")
    assert ok.returncode == 0, ok.stderr
    assert "mine" in (tmp_path / ".asv-machine.json").read_text()


@pytest.mark.parametrize("field, value", [("cpu_model", "999"), ("cpu_family", "1"),
                                          ("cpu_isa", "avx2 fma avx sse4_2"),
                                          ("blas", "openblas Zen"), ("cpu", "Other CPU")])
def test_machine_check_refuses_another_cpu_model_or_instruction_set(tmp_path, monkeypatch, field, value):
    """A machine.json that records this very computer is accepted; change one identifying
    field (CPU model, family, vector ISA, BLAS kernels, model name) and it is refused."""
    pytest.importorskip("asv")
    from asv.machine import Machine

    from benchmarks import machine
    monkeypatch.setenv("HOME", str(tmp_path))
    here = dict(Machine.get_defaults(), machine="ref", **machine.identity())
    (tmp_path / "asv" / "ref").mkdir(parents=True)
    record = tmp_path / "asv" / "ref" / "machine.json"
    record.write_text(json.dumps(here))
    machine.main("ref", str(tmp_path / "asv"))  # the same computer: accepted
    assert "ref" in (tmp_path / ".asv-machine.json").read_text()
    record.write_text(json.dumps(dict(here, **{field: value})))
    with pytest.raises(SystemExit) as refused:
        machine.main("ref", str(tmp_path / "asv"))
    message = str(refused.value.code)
    assert message.startswith("this computer is not 'ref'") and f"recorded {value!r}" in message
    assert "ASV_MACHINE=" in message and "\n" not in message


def test_machine_identity_reads_cpuinfo():
    from benchmarks import machine
    info = machine.identity({"cpu family": "25", "model": "17",
                             "flags": "fpu sse4_2 avx avx2 fma avx512f avx512bw"})
    assert (info["cpu_family"], info["cpu_model"]) == ("25", "17")
    assert info["cpu_isa"] == "avx512f avx2 fma avx sse4_2"
    assert machine.identity({"flags": "sse4_2 avx avx2 fma"})["cpu_isa"] == "avx2 fma avx sse4_2"
