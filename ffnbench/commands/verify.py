"""`ffnbench verify NEW COMMITTED`: do freshly computed results match the committed ones?

Every CSV present in both trees (same relative path) is compared cell by cell, rows matched
by a key (so a subset run, e.g. a table of two settings, is checked against just those rows;
rows without a committed counterpart fail a full-size run and are listed for a partial one):

- timing cells (TIMING: seconds, ms, µs, ns, GFLOP/s, % of peak or bound, speed-ups, warm-up,
  slopes) depend on the machine and its load, and the ENVIRONMENT columns of a per-run
  runs.csv say which machine that was: they are shown side by side, never failing;
- round-off cells (ROUNDOFF, e.g. max |dW| between backends) must stay under their bound;
- family cells (FAMILY: Holm-corrected p-values and what is decided from them) depend on
  every comparison of their family, so a partial run (fewer rows than committed: a table of
  two settings corrects over those two) shows them and checks them only when it is whole;
- every other number must agree within RTOL (relative) / ATOL, i.e. to the 6 significant
  digits the CSVs are written with; text cells must be equal.

A markdown file with a CSV of the same stem beside it (table.md / table.csv) is rendered from
that CSV, so it is checked through it. Any other markdown file is compared line by line;
numbers may differ only where they are timings (a table column whose header names a time or
speed unit, or a prose line that does). Files under COMMITTED that the new tree lacks are
listed, not failed: a partial reproduction checks what it made.
"""
import math
import re
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from ..core.errors import UserError
from ..core.fileio import to_json

RTOL, ATOL = 1e-5, 1e-12  # one unit in the 6th significant digit of "%.6g"
TIMING = re.compile(  # column names (lower case) of machine-dependent measurements
    r"second|(^|_)(ms|us|ns|s)($|_)|gflop|peak|bound|speedup|speed_up|warm_?up|slope|time|per_sec",
    re.IGNORECASE)
TIMING_TEXT = re.compile(  # markdown headers and prose that carry timings
    r"\d\s*(ms|µs|us|s|min)\b|\b(ms|µs|seconds?|GFLOP/s|peak|warm-up|slope|faster|slower)\b|×",
    re.IGNORECASE)
ENVIRONMENT = {  # per-run columns (runs.csv) that say where a run ran, not what it computed
    "engine", "host", "cpu_model", "cpu_cores", "python", "numpy", "numba", "torch", "jax", "blas"}
ROUNDOFF = {"max_dw_vs_reference": 1e-10}  # column -> absolute bound both values must meet
FAMILY = re.compile(r"_p_holm$|^constant_level$|^verdict$")  # corrected over all rows of a family
KEYS = {  # file name -> the columns that identify a row (extended automatically if not unique)
    "table.csv": ("kind", "protocol", "dataset", "setting"),
    "speed.csv": ("backend", "hidden", "dataset", "batch_size"),
    "speed_scaling.csv": ("sweep", "backend", "hidden", "dataset", "batch_size"),
    "methods.csv": ("run", "dataset"),
}
SHOW = 5  # mismatching cells printed per file
NUMBER = re.compile(r"[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?")


@dataclass
class Verdict:
    path: str
    status: str  # "match", "MISMATCH", "derived", "new", "missing"
    detail: str = ""
    mismatches: list = field(default_factory=list)  # one text line per differing cell
    timings: list = field(default_factory=list)  # (key text, column, new, committed)


def _num(text):
    try:
        return float(text)
    except ValueError:
        return None


def cells_equal(new, ref, column="", bound=None):
    """Two CSV cells agree: same text, or numbers within the tolerance of `column` (bound:
    a round-off column's own bound instead of ROUNDOFF's)."""
    if new == ref:
        return True
    a, b = _num(new), _num(ref)
    if a is None or b is None:
        return False
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if column in ROUNDOFF:
        bound = ROUNDOFF[column] if bound is None else bound
        return abs(a) <= bound and abs(b) <= bound
    return abs(a - b) <= ATOL + RTOL * max(abs(a), abs(b))


def roundoff_bound(column, row_new, row_ref):
    """The bound of round-off column `column` in these rows: ROUNDOFF's, or the one the rows
    state (speed.csv's same_weights_tol: float32's grows with the updates) where both do."""
    stated = [_num(str(r.get("same_weights_tol", ""))) for r in (row_new, row_ref)]
    if column not in ROUNDOFF or any(t is None or math.isnan(t) for t in stated):
        return None
    return max(stated)


def is_timing(column):
    """A machine-dependent column: a measurement of time or speed, or where the run ran."""
    return column in ENVIRONMENT or bool(TIMING.search(column))


def row_key(name, ref):
    """Key columns for file `name`: the declared ones present, extended by the following
    non-timing columns until they identify every committed row (None: row position)."""
    declared = [c for c in KEYS.get(name, ()) if c in ref.columns]
    rest = [c for c in ref.columns if c not in declared and not is_timing(c)]
    key = list(declared)
    for column in [None, *rest]:
        if column is not None:
            key.append(column)
        if key and not ref.duplicated(subset=key).any():
            return key
    return None


def _read_csv(path):
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as e:
        raise UserError(f"{path}: not a readable CSV ({str(e).strip().splitlines()[0]})") from None


def compare_csv(rel, new_path, ref_path, complete=False):
    """complete: every committed row must be here too (a full rerun), not just a subset."""
    new, ref = _read_csv(new_path), _read_csv(ref_path)
    v = Verdict(rel, "match")
    missing = [c for c in ref.columns if c not in new.columns]
    if missing:
        v.mismatches.append(f"columns missing here: {', '.join(missing)}")
    key = row_key(Path(rel).name, ref)
    if key is None or any(c not in new.columns for c in key):
        if len(new) != len(ref):
            v.mismatches.append(f"{len(new)} rows here, {len(ref)} committed (no row key to match a subset)")
        pairs = [(f"row {i + 2}", new.iloc[i], ref.iloc[i]) for i in range(min(len(new), len(ref)))]
    else:
        if new.duplicated(subset=key).any():
            v.mismatches.append(f"rows repeat the key ({', '.join(key)})")
        committed = {tuple(r[key]): r for _, r in ref.iterrows()}
        pairs, unmatched = [], []
        for _, r in new.iterrows():
            k = tuple(r[key])
            label = " ".join(f"{c}={x}" for c, x in zip(key, k))
            (pairs.append((label, r, committed[k])) if k in committed else unmatched.append(label))
        if unmatched and len(new) >= len(ref):  # a full run must match row for row
            v.mismatches += [f"row {label}: not in the committed file" for label in unmatched]
        elif unmatched:  # a partial run (e.g. the best of 2 settings): nothing to check it against
            v.detail += f"; {len(unmatched)} row(s) not in the committed file, not checked (e.g. {unmatched[0]})"
    columns = [c for c in ref.columns if c in new.columns]
    checked, partial, family = 0, len(new) < len(ref), set()
    for label, r_new, r_ref in pairs:
        for c in columns:
            if partial and FAMILY.search(c):  # corrected over the rows run here, not all
                family.add(c)
            elif is_timing(c):
                v.timings.append((label, c, r_new[c], r_ref[c]))
            elif cells_equal(r_new[c], r_ref[c], c, roundoff_bound(c, r_new, r_ref)):
                checked += 1
            else:
                v.mismatches.append(f"row {label}, column {c}: {r_new[c] or '(empty)'} here, "
                                    f"{r_ref[c] or '(empty)'} committed")
    if not pairs:
        v.mismatches.append("no row in common with the committed file")
    elif complete and len(pairs) < len(ref):
        v.mismatches.append(f"{len(ref) - len(pairs)} committed row(s) missing here (--strict)")
    v.detail = (f"{len(pairs)} of {len(ref)} committed rows, {checked} cells equal"
                + (f", {len({c for _, c, *_ in v.timings})} timing column(s) not compared" if v.timings else "")
                + (f", {len(family)} column(s) corrected over their family not compared in a "
                   f"partial run ({', '.join(sorted(family))})" if family else "")
                + v.detail)
    if v.mismatches:
        v.status = "MISMATCH"
    return v


def _mask(text):
    return NUMBER.sub("#", text)


def _cells(line):
    return [c.strip() for c in line.strip().strip("|").split("|")]


def compare_markdown(rel, new_path, ref_path):
    """Line by line; numbers may differ only in timing columns or timing prose."""
    new, ref = new_path.read_text().splitlines(), ref_path.read_text().splitlines()
    v = Verdict(rel, "match")
    header = []
    for i, (a, b) in enumerate(zip(new, ref)):
        if b.startswith("|") and i + 1 < len(ref) and set(ref[i + 1]) <= set("|-: "):
            header = _cells(b)
        if a == b:
            continue
        where = f"line {i + 1}"
        if a.startswith("|") and b.startswith("|") and len(_cells(a)) == len(_cells(b)):
            for h, x, y in zip(header or [""] * len(_cells(b)), _cells(a), _cells(b)):
                if x == y:
                    continue
                if _mask(x) == _mask(y) and TIMING_TEXT.search(h):
                    v.timings.append((where, h, x, y))
                else:
                    v.mismatches.append(f"{where}, column {h!r}: {x!r} here, {y!r} committed")
        elif _mask(a) == _mask(b) and TIMING_TEXT.search(b):
            v.timings.append((where, "text", a.strip(), b.strip()))
        else:
            v.mismatches.append(f"{where}: {a.strip()!r} here, {b.strip()!r} committed")
    if len(new) != len(ref):
        v.mismatches.append(f"{len(new)} lines here, {len(ref)} committed")
    v.detail = f"{len(ref)} lines" + (f", {len(v.timings)} timing difference(s) not compared" if v.timings else "")
    if v.mismatches:
        v.status = "MISMATCH"
    return v


def _files(root):
    return {p.relative_to(root).as_posix() for p in root.rglob("*")
            if p.is_file() and p.suffix in (".csv", ".md") and not any(
                part.startswith(".") for part in p.relative_to(root).parts)}


def verify(new_dir, ref_dir, strict=False, expect=()):
    """A Verdict per result file of either tree, CSVs before the markdown derived from them.
    strict: a CSV in common must hold every committed row; expect: files (relative paths) the
    new tree must have, each a MISMATCH where it is missing."""
    new_dir, ref_dir = Path(new_dir), Path(ref_dir)
    for d, what in ((new_dir, "NEW"), (ref_dir, "COMMITTED")):
        if not d.is_dir():
            raise UserError(f"{what} {d}: not a directory")
    new, ref = _files(new_dir), _files(ref_dir)
    verdicts = {}
    for rel in sorted(new & ref, key=lambda r: (r.endswith(".md"), r)):
        if rel.endswith(".csv"):
            verdicts[rel] = compare_csv(rel, new_dir / rel, ref_dir / rel, complete=strict)
            continue
        source = rel[:-3] + ".csv"
        if source in verdicts:
            ok = verdicts[source].status == "match"
            verdicts[rel] = Verdict(rel, "derived" if ok else "MISMATCH",
                                    f"rendered from {Path(source).name}, checked there")
        else:
            verdicts[rel] = compare_markdown(rel, new_dir / rel, ref_dir / rel)
    for rel in sorted(new - ref):
        verdicts[rel] = Verdict(rel, "new", "no committed file of that name, not checked")
    for rel in sorted(ref - new):
        verdicts[rel] = Verdict(rel, "missing", "not made by this run, not checked")
    for rel in expect:
        if rel not in new:
            verdicts[rel] = Verdict(rel, "MISMATCH", "expected from this run, but it is not there")
    return list(verdicts.values())


def _timing_lines(v, full):
    if full:
        return [f"      {k}, {c}: {a} here, {b} committed" for k, c, a, b in v.timings]
    ratios = {}
    for _, c, a, b in v.timings:
        x, y = _num(a) if a else None, _num(b) if b else None
        if x is not None and y not in (None, 0.0) and math.isfinite(x) and math.isfinite(y):
            ratios.setdefault(c, []).append(x / y)
    return [f"      {c}: here / committed = {sorted(r)[len(r) // 2]:.2f} (median; "
            f"{min(r):.2f}–{max(r):.2f} over {len(r)} rows)" for c, r in ratios.items()]


def report(verdicts, new_dir, ref_dir, timings=False, out=None):
    """Print one verdict line per file (and the first differing cells); True if all matched."""
    out = out or sys.stdout
    print(f"ffnbench verify: {new_dir} against {ref_dir} (numbers within {RTOL:g} relative; "
          "timings shown, never compared)", file=out)
    for v in verdicts:
        print(f"  {v.status:<9} {v.path}: {v.detail}", file=out)
        for line in v.mismatches[:SHOW]:
            print(f"      {line}", file=out)
        if len(v.mismatches) > SHOW:
            print(f"      ... and {len(v.mismatches) - SHOW} more", file=out)
        if v.timings and v.status != "MISMATCH":
            print("\n".join(_timing_lines(v, timings)), file=out)
    bad = [v for v in verdicts if v.status == "MISMATCH"]
    checked = [v for v in verdicts if v.status in ("match", "derived")]
    if bad:
        first = next((v for v in bad if v.mismatches), bad[0])
        print(f"verify: {len(bad)} file(s) differ from the committed results; first: {first.path}: "
              f"{first.mismatches[0] if first.mismatches else first.detail}", file=out)
        return False
    if not checked:
        print("verify: no result file in common, nothing was checked", file=out)
        return False
    print(f"verify: all {len(checked)} file(s) in common match the committed results", file=out)
    return True


def main(args):
    expect = () if args.expect is None else tuple(x.strip() for x in args.expect.split(",") if x.strip())
    verdicts = verify(args.new, args.committed, args.strict, expect)
    if args.json:
        ok = passed(verdicts)
        print(to_json({"new": str(args.new), "committed": str(args.committed), "ok": ok,
                       "files": [asdict(v) for v in verdicts]}))
    else:
        ok = report(verdicts, args.new, args.committed, args.timings)
    return 0 if ok else 1


def passed(verdicts):
    """True if no file differs and at least one was checked."""
    return not any(v.status == "MISMATCH" for v in verdicts) and any(
        v.status in ("match", "derived") for v in verdicts)
