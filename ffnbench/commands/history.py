"""`ffnbench history`: figures of the asv results (results/asv) across commits; nothing is
measured (studies/history.py reads, report/history.py draws)."""
import math
from pathlib import Path

from ..core.config import parse_choices
from ..core.errors import UserError
from ..core.fileio import atomic_write, check_writable_dir, ensure_dir, to_json
from ..report.history import FIGURES
from ..studies.history import (all_steps, load_runs, param_combos, recorded_machines as recorded,
                               subjects)


def draw(results_dir, out_dir, machine=None):
    """Draw every figure the results allow, machines one above the other ('a,b'; None: every machine
    recorded); returns ({machine: runs}, the paths written)."""
    if machine is None:
        names = recorded(Path(results_dir)) if Path(results_dir).is_dir() else [None]
        names = names or [None]  # None: load_runs says what is missing
    else:
        names = list(parse_choices(machine, "machine"))
    machines = dict(load_runs(results_dir, name) for name in names)
    for _, benchmark, _, required in FIGURES:
        for name, runs in machines.items():
            if required and not param_combos(runs, benchmark):
                raise UserError(f"{results_dir}: no results of {benchmark} for machine '{name}'")
    out_dir = Path(out_dir)
    ensure_dir(out_dir, "--out")
    for name, *_ in FIGURES:  # before drawing: a FIFO or a read-only directory is one line
        check_writable_dir(out_dir / name, "--out")
    written = []
    for fname, benchmark, plot, _ in FIGURES:
        if any(not math.isnan(v) for runs in machines.values() for run in runs
               for v in run.results.get(benchmark, {}).values()):
            written.append(plot(machines, out_dir / fname))
    return machines, written


def regressions(machines, threshold, results_dir, out_dir):
    """Name the steps of every machine's history in OUT/regressions.md; returns
    ({machine: [Step, ...]}, the markdown)."""
    from ..report.regressions import markdown
    if not 0 < threshold < 10:
        raise UserError(f"--threshold {threshold}: give a relative step, e.g. 0.05 for 5 %")
    found = {machine: (runs, all_steps(runs, threshold)) for machine, runs in machines.items()}
    text = markdown(found, threshold, results_dir,
                    subjects(results_dir, [s.commit for _, steps in found.values() for s in steps]))
    with atomic_write(Path(out_dir) / "regressions.md") as f:
        f.write(text)
    return {machine: steps for machine, (_, steps) in found.items()}, text


def _step_json(s):
    return {"benchmark": s.benchmark, "params": list(s.params), "commit": s.commit,
            "before_commit": s.before_commit, "adjacent": s.adjacent, "before": s.before,
            "after": s.after, "ratio": s.ratio}


def main(args):
    if getattr(args, "site", None):  # asv's web page of the results, offline; no figures
        from ..report.asv_site import publish
        pages = publish(args.site, args.results)
        if args.json:
            print(to_json({"site": str(args.site), "localised": [str(p) for p in pages]}))
        else:
            print(f"wrote {args.site} (asv's page, offline): view it with "
                  f"python -m http.server -d {args.site}, then http://localhost:8000")
        return
    machines, written = draw(args.results, args.out, args.machine)
    steps, text = ({}, None)
    if args.regressions:
        steps, text = regressions(machines, args.threshold, args.results, args.out)
        written.append(Path(args.out) / "regressions.md")
    if args.json:  # the values the figures draw, per machine and commit
        doc = {"figures": [str(p) for p in written], "machines": {
            machine: [{"commit": run.commit, "date": run.date.isoformat(), "env": run.env,
                       "results": {bench: [{"params": list(params), "value": value}
                                           for params, value in values.items()]
                                   for bench, values in run.results.items()}}
                      for run in runs] for machine, runs in machines.items()}}
        if args.regressions:
            doc["steps"] = {m: [_step_json(s) for s in found] for m, found in steps.items()}
        print(to_json(doc))
        return
    if text:
        print(text)
    for machine, runs in machines.items():
        print(f"{len(runs)} commits of machine '{machine}' "
              f"({runs[0].commit[:8]} .. {runs[-1].commit[:8]}):")
    for path in written:
        print(f"  wrote {path}")
