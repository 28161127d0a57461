"""The asv results (results/asv) across commits, read and checked for the history figures.

asv writes one JSON file per commit and environment under <results>/<machine>/ (format
version 2): "result_columns" names the columns of each benchmark's row in "results",
column "result" holds one value per parameter combination (itertools.product order of
column "params", whose values are Python reprs), null for a failure and NaN for a skip.
The file is read here directly, so the figures need no asv installed.
"""
import ast
import itertools
import json
import math
import subprocess
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from .. import impls
from ..core.errors import UserError

TIME_EPOCH = "bench_epoch.TimeEpoch.time_epoch"  # (backend, hidden, dataset) -> seconds
TIME_MINIBATCH = "bench_epoch.TimeMiniBatchEpoch.time_epoch"  # (backend, hidden, dataset, batch)
TEST_MSE = "bench_quality.TrackQuality.track_test_mse"  # (backend, hidden) -> test MSE
EPOCHS_TO_TARGET = "bench_quality.TrackQuality.track_epochs_to_target"  # (backend, hidden)


@dataclass
class Run:
    """One commit's results in one environment on one machine."""

    commit: str
    date: datetime  # the commit's date, as asv records it
    env: str
    results: dict = field(default_factory=dict)  # benchmark -> {param tuple: float (NaN: none)}
    versions: dict = field(default_factory=dict)  # benchmark -> its version when measured

    @property
    def label(self):
        return f"{self.commit[:8]}  {self.date:%Y-%m-%d %H:%M}"


def _decode(param):
    """asv stores parameter values as their repr: "'numpy'" -> 'numpy', '32' -> 32."""
    try:
        return ast.literal_eval(param)
    except (ValueError, SyntaxError):
        return param


def _number(value):
    return math.nan if value is None else float(value)


def _parse_results(data):
    """{benchmark: {param tuple: value}} from one asv result file's "results"."""
    columns = data["result_columns"]
    out = {}
    for name, row in data["results"].items():
        row = dict(zip(columns, row))
        values, params = row.get("result"), row.get("params") or []
        if not params:  # an unparameterised benchmark: one value
            out[name] = {(): _number(values[0] if isinstance(values, list) else values)}
            continue
        combos = itertools.product(*[[_decode(p) for p in ps] for ps in params])
        values = values if isinstance(values, list) else [values] * math.prod(map(len, params))
        out[name] = {combo: _number(v) for combo, v in zip(combos, values)}
    return out


class BadResultFile(Exception):
    """Why an asv result file cannot be used (one line)."""


MAX_RESULT_BYTES = 2**26  # asv's files are tens of KB


def _require(ok, why):
    if not ok:
        raise BadResultFile(why)


def _check_results(data):
    """The shape _parse_results relies on: named columns, rows of them, params as lists of
    reprs, and one value per parameter combination."""
    columns = data.get("result_columns")
    _require(isinstance(columns, list) and all(isinstance(c, str) for c in columns)
             and "result" in columns, "'result_columns' is not a list of names with 'result'")
    _require(isinstance(data.get("results"), dict), "'results' is not an object")
    for name, row in data["results"].items():
        _require(isinstance(row, list), f"benchmark {name}: its row is not a list")
        row = dict(zip(columns, row))
        params, values = row.get("params") or [], row.get("result")
        _require(isinstance(params, list) and all(isinstance(ps, list) and ps and all(
            isinstance(p, str) for p in ps) for ps in params),
            f"benchmark {name}: 'params' is not a list of lists of values")
        ok = (lambda v: v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)
                                      and not math.isinf(v)))  # NaN: skipped; inf: never asv's
        if isinstance(values, list):
            _require(all(map(ok, values)), f"benchmark {name}: a result is not a number")
            _require(len(values) == math.prod(map(len, params)) if params else len(values) >= 1,
                     f"benchmark {name}: {len(values)} results for "
                     f"{math.prod(map(len, params))} parameter combinations")
        else:
            _require(ok(values), f"benchmark {name}: the result is not a number")


def read_result_file(path):
    """One asv result file as a Run, or BadResultFile saying what is wrong with it."""
    try:
        _require(path.is_file(), "not a regular file")
        _require(path.stat().st_size <= MAX_RESULT_BYTES, f"larger than {MAX_RESULT_BYTES} bytes")
        data = json.loads(path.read_bytes())
    except OSError as e:
        raise BadResultFile(f"cannot read: {e.strerror}") from None
    except (ValueError, RecursionError) as e:
        raise BadResultFile(f"not JSON: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    _require(isinstance(data, dict), "not a JSON object")
    commit, date, env = data.get("commit_hash"), data.get("date"), data.get("env_name")
    _require(isinstance(commit, str) and commit, "'commit_hash' is not a text")
    _require(isinstance(env, str) and env, "'env_name' is not a text")
    _require(isinstance(date, (int, float)) and not isinstance(date, bool), "'date' is not a number")
    try:
        when = datetime.fromtimestamp(date / 1000, timezone.utc)
    except (OverflowError, OSError, ValueError):
        raise BadResultFile(f"'date' {date!r} is not a time in milliseconds") from None
    _check_results(data)
    columns = data["result_columns"]
    versions = {name: dict(zip(columns, row)).get("version") for name, row in data["results"].items()}
    return Run(commit, when, env, _parse_results(data), versions)


def current_versions(results_dir):
    """benchmark -> version from <results>/benchmarks.json (asv's record of the suite), or
    None where there is no such file (then every version is shown)."""
    path = Path(results_dir) / "benchmarks.json"
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    return {name: b.get("version") for name, b in data.items() if isinstance(b, dict)}


def drop_old_versions(runs, versions):
    """Remove, as `asv publish` does, each benchmark's results measured under another version
    than the suite's current one; returns {benchmark: [commits whose results were dropped]}."""
    dropped = {}
    if versions is None:
        return dropped
    for run in runs:
        for name in list(run.results):
            if name in versions and run.versions.get(name) != versions[name]:
                del run.results[name]
                dropped.setdefault(name, []).append(run.commit)
    return dropped


def recorded_machines(results_dir):
    return sorted(d.name for d in results_dir.iterdir()
                  if d.is_dir() and any(f.name != "machine.json" for f in d.glob("*.json")))


def _git_order(results_dir, commits):
    """commit -> position in git's topological order (oldest first), or {} without git."""
    try:
        out = subprocess.run(["git", "-C", str(results_dir), "rev-list", "--topo-order",
                              "--reverse", "--all"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return {}
    order = {c: i for i, c in enumerate(out.stdout.split())} if out.returncode == 0 else {}
    return order if all(c in order for c in commits) else {}


def subjects(results_dir, commits):
    """commit -> the first line of its message, from git where results_dir is in a clone of
    the repository (else {}): what a step's commit says it changed."""
    if not commits:
        return {}
    try:
        out = subprocess.run(["git", "-C", str(results_dir), "show", "-s", "--format=%H %s",
                              *sorted(set(commits))], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return {}
    if out.returncode:
        return {}
    return dict(line.split(" ", 1) for line in out.stdout.splitlines() if " " in line)


def _record_hint():
    """How to get asv results, in terms that work where the command is run."""
    if Path("Makefile").is_file() and Path("asv.conf.json").is_file():  # in a clone
        return "record them first: make history, see docs/asv.md"
    return ("run it in a clone of the ffnbench repository, which holds them in results/asv, "
            "or point --results at an asv results directory")


def load_runs(results_dir, machine=None):
    """(machine name, [Run, ...] in commit order) from an asv results directory.

    Several environments for one machine: the one with the most commits is used.
    """
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise UserError(f"{results_dir}: no such directory ({_record_hint()})")
    machines = recorded_machines(results_dir)
    if not machines:
        raise UserError(f"{results_dir}: holds no asv results ({_record_hint()})")
    if machine is None:
        if len(machines) > 1:
            raise UserError(f"{results_dir} holds results of several machines "
                            f"({', '.join(machines)}): choose one with --machine")
        machine = machines[0]
    elif machine not in machines:
        raise UserError(f"{results_dir}: no results for machine '{machine}' "
                        f"(there are: {', '.join(machines)})")
    runs, bad = [], []
    for path in sorted((results_dir / machine).glob("*.json")):
        if path.name == "machine.json":
            continue
        try:
            runs.append(read_result_file(path))
        except BadResultFile as e:
            bad.append(f"{path}: not an asv result file ({e})")
    if not runs:
        more = f" (and {len(bad) - 1} more such files)" if len(bad) > 1 else ""
        raise UserError(bad[0] + more)
    for line in bad:  # one damaged file does not hide the others' history
        warnings.warn(line + "; skipped")
    envs = {}
    for run in runs:
        envs.setdefault(run.env, []).append(run)
    runs = max(envs.values(), key=len)
    for name, commits in drop_old_versions(runs, current_versions(results_dir)).items():
        warnings.warn(f"{machine}: {len(commits)} results of {name} were measured under another "
                      f"version of the benchmark than {results_dir}/benchmarks.json names; left "
                      "out, as asv publish leaves them out (docs/asv.md, \"Benchmark versions\")")
    order = _git_order(results_dir, [r.commit for r in runs])
    runs.sort(key=lambda r: (order.get(r.commit, 0), r.date, r.commit))
    return machine, runs


def series(runs, benchmark, params):
    """The values of one benchmark at one parameter combination, one per run (NaN: none)."""
    return [run.results.get(benchmark, {}).get(tuple(params), math.nan) for run in runs]


def param_combos(runs, benchmark):
    """All parameter combinations of `benchmark` seen in the runs, in first-seen order."""
    seen = {}
    for run in runs:
        for combo in run.results.get(benchmark, {}):
            seen.setdefault(combo, None)
    return list(seen)


def axis_values(combos, i):
    return list(dict.fromkeys(c[i] for c in combos))


def backends(runs, benchmark):
    """The registered backends first, then any other the results hold (e.g. a removed one)."""
    return list(dict.fromkeys([*impls.BACKENDS, *(c[0] for c in param_combos(runs, benchmark))]))


THRESHOLD = 0.05  # relative size of a step worth naming: asv publish's default
MIN_LEVEL = 2  # commits a level must hold to count (asv's min_size for regressions)


@dataclass
class Step:
    """A change of level of one benchmark at one parameter combination."""

    benchmark: str
    params: tuple
    before_commit: str  # the last commit of the old level
    commit: str  # the first commit of the new level
    adjacent: bool  # nothing measured between the two: `commit` made the step
    before: float  # the old level (asv's segment value: the median of its commits)
    after: float

    @property
    def ratio(self):
        return self.after / self.before


def _detect_steps():
    try:
        from asv.step_detect import detect_steps
    except ImportError:
        raise UserError("naming steps uses asv's step detection: pip install 'ffnbench[history]' "
                        "(or asv)") from None
    return detect_steps


def steps(runs, benchmark, params, threshold=THRESHOLD, min_level=MIN_LEVEL):
    """Where one series changes level by more than `threshold` (relative, either way), by asv's
    own step detection (asv.step_detect.detect_steps: the piecewise-constant fit that asv
    publish uses to find regressions). A level held by fewer than `min_level` measured commits
    (one noisy point) is no level: the step is named across it."""
    y = series(runs, benchmark, params)
    valid = [i for i, v in enumerate(y) if not math.isnan(v)]
    if len(valid) < 2 * min_level:
        return []
    levels = []
    for left, right, value, *_ in _detect_steps()(y):
        inside = [i for i in valid if left <= i < right]
        if len(inside) >= min_level and value > 0:
            levels.append((inside[0], inside[-1], value))
    out = []
    for (_, last, before), (first, _, after) in zip(levels, levels[1:]):
        if abs(math.log(after / before)) > math.log1p(threshold):
            between = [i for i in valid if last < i < first]
            out.append(Step(benchmark, tuple(params), runs[last].commit, runs[first].commit,
                            not between and first == last + 1, before, after))
    return out


def all_steps(runs, threshold=THRESHOLD):
    """Every step of every benchmark and parameter combination, in commit order."""
    position = {run.commit: i for i, run in enumerate(runs)}
    names = sorted({name for run in runs for name in run.results})
    found = [s for name in names for combo in param_combos(runs, name)
             for s in steps(runs, name, combo, threshold)]
    return sorted(found, key=lambda s: (position[s.commit], s.benchmark, str(s.params)))
