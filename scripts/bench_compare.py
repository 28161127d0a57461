"""`make bench-compare BASE=REV`: the work tree against a revision, by `asv continuous`.

    python scripts/bench_compare.py BASE [--factor 1.15] [--bench REGEX] [--machine NAME]

Both sides are built and measured in asv's own environments (asv.conf.json), the work tree as
a commit object made by `git stash create` (tracked files, staged or not; a new file counts
once it is `git add`ed), kept alive by a temporary ref. Results go to a scratch results
directory (build/bench-compare/), never into results/asv, so the committed history stays
first-parent commits of main. Exit 0: nothing slower than the factor allows; 1: something
is (asv's table lists it); 2: bad input, one line.
"""
import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REF = "refs/ffnbench/bench-compare"
OUT = ROOT / "build" / "bench-compare"


class Refused(Exception):
    """Why the comparison cannot start (one line)."""


def git(*args, root=ROOT):
    done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True)
    if done.returncode:
        raise Refused(f"git {' '.join(args)}: {(done.stderr.strip().splitlines() or ['failed'])[-1]}")
    return done.stdout.strip()


def resolve(rev, root=ROOT):
    try:
        return git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}", root=root)
    except Refused:
        raise Refused(f"BASE={rev}: not a commit of this repository") from None


def work_tree_commit(root=ROOT):
    """(a commit holding the work tree's tracked files, untracked files left out)."""
    made = git("stash", "create", "ffnbench bench-compare: the work tree", root=root)
    head = git("rev-parse", "HEAD", root=root)
    untracked = [line[3:] for line in git("status", "--porcelain", root=root).splitlines()
                 if line.startswith("?? ") and line[3:].startswith(("ffnbench/", "impls/", "benchmarks/"))]
    return made or head, untracked


def scratch_config(out, root=ROOT):
    """asv.conf.json with its paths made absolute and the results sent to `out`."""
    from asv.util import load_json  # asv's reader: the file has comments
    conf = load_json(str(root / "asv.conf.json"), js_comments=True)
    for key in ("repo", "benchmark_dir", "env_dir"):
        conf[key] = str((root / conf[key]).resolve())
    conf["results_dir"], conf["html_dir"] = str(out / "results"), str(out / "html")
    out.mkdir(parents=True, exist_ok=True)
    path = out / "asv.conf.json"
    path.write_text(json.dumps(conf, indent=4))
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base", help="the revision to compare the work tree with, e.g. main or HEAD~3")
    parser.add_argument("--factor", type=float, default=1.15,
                        help="slower than this many times BASE fails (default %(default)s)")
    parser.add_argument("--bench", help="only benchmarks matching this regular expression")
    parser.add_argument("--machine", default="bench-compare",
                        help="asv machine name for the scratch results (default %(default)s)")
    args = parser.parse_args(argv)
    try:
        if not args.factor > 1:
            raise Refused(f"--factor {args.factor}: give a factor above 1, e.g. 1.15")
        base = resolve(args.base)
        tree, untracked = work_tree_commit()
        if untracked:
            print(f"bench-compare: not included (untracked; git add them): {', '.join(untracked)}",
                  file=sys.stderr)
        config = scratch_config(OUT)
    except (Refused, OSError) as e:
        print(f"bench-compare: {e}", file=sys.stderr)
        return 2
    asv = [sys.executable, "-m", "asv"]
    if subprocess.run([*asv, "machine", "--yes", "--machine", args.machine, "--config",
                       str(config)], capture_output=True).returncode:
        print(f"bench-compare: asv machine --machine {args.machine} failed", file=sys.stderr)
        return 2
    git("update-ref", REF, tree)
    slower = False
    try:
        with subprocess.Popen([*asv, "continuous", "--config", str(config), "--machine",
                               args.machine, "--factor", str(args.factor), "--split",
                               *(["--bench", args.bench] if args.bench else []), base, tree],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env={**os.environ, "PYTHONUNBUFFERED": "1"}) as run:
            for line in run.stdout:  # shown as it comes; asv's verdict read from it
                print(line, end="", flush=True)
                slower = slower or "PERFORMANCE DECREASED" in line
    finally:
        git("update-ref", "-d", REF)
    if slower:
        print(f"bench-compare: slower than {args.factor}x {args.base} (the table above)", file=sys.stderr)
        return 1
    if run.returncode:
        print(f"bench-compare: asv continuous failed (exit {run.returncode}; see above)", file=sys.stderr)
        return 2
    print(f"bench-compare: nothing slower than {args.factor}x {args.base}", file=sys.stderr)
    return 0

if __name__ == "__main__":
    sys.exit(main())
