"""Property-based tests (hypothesis) of the two doors bad input comes through: the CSV
reader and the `train` option parser. Every outcome is a sane result or one line on stderr
with a non-zero exit: never a traceback, never a non-finite number in JSON."""
import atexit
import contextlib
import io
import json
import math
import shutil
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ffnbench import cli
from ffnbench.core import data
from ffnbench.core.errors import UserError

FEW = settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))


# --- the CSV reader ---------------------------------------------------------------------------

def _number_text(x, style):
    return (repr(x), f"{x:.3f}", f"{x:e}", f" {x:g} ", f'"{x:g}"')[style]


feature = st.builds(_number_text, st.floats(0, 500, allow_nan=False), st.integers(0, 4))
grade = st.builds(str, st.integers(0, 10))
junk = st.one_of(st.sampled_from(["", " ", "inf", "-inf", "1e400", "nan", "NaN", "-1", "99",
                                  "5.5", "1e300", "abc", "0x10", '"', "7;7", "\x00", "é"]),
                 st.text(max_size=6))
MUTATIONS = ("permute", "no header", "junk cell", "extra column", "drop column", "blank lines")


@st.composite
def tables(draw):
    """(rows of cell texts incl. the header, mutations applied, encoding, newline)."""
    n = draw(st.one_of(st.integers(0, 40), st.integers(data.MIN_ROWS, 40)))
    rows = [list(data.COLUMNS)] + [draw(st.lists(feature, min_size=11, max_size=11)) + [draw(grade)]
                                   for _ in range(n)]
    done = draw(st.lists(st.sampled_from(MUTATIONS), max_size=draw(st.sampled_from([0, 0, 3]))))
    for m in done:
        if m == "permute" and rows:
            perm = draw(st.permutations(range(len(rows[0]))))
            rows = [[r[i] for i in perm] for r in rows]
        elif m == "no header":
            rows = rows[1:]
        elif m == "junk cell" and len(rows) > 1:
            r, c = draw(st.integers(1, len(rows) - 1)), draw(st.integers(0, len(rows[0]) - 1))
            rows[r][c] = draw(junk)
        elif m == "extra column":
            rows = [r + ["1"] for r in rows]
        elif m == "drop column" and rows and rows[0]:
            c = draw(st.integers(0, len(rows[0]) - 1))
            rows = [r[:c] + r[c + 1:] for r in rows]
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "latin-1", "cp1252", "utf-8", "utf-16"]))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    if "blank lines" in done:
        newline += newline
    return rows, done, encoding, newline


def _encode(rows, encoding, newline):
    text = newline.join(";".join(r) for r in rows) + newline
    return text.encode(encoding, errors="replace")


@FEW
@given(tables())
def test_csv_reader_gives_a_sane_table_or_one_line(table):
    rows, done, encoding, newline = table
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / data.FILES["red"][0]).write_bytes(_encode(rows, encoding, newline))
        data.load.cache_clear()
        try:
            X, y, cols = data.load("red", d, allow_unverified=True)
        except UserError as e:
            assert "\n" not in str(e) and str(e)
            clean = not done or done == ["blank lines"]
            assert not (clean and encoding != "utf-16" and len(rows) - 1 >= data.MIN_ROWS), e
            return
        finally:
            data.load.cache_clear()
    # accepted: the UCI columns in order, enough rows, finite cells, whole grades 0..10,
    # and exactly the numbers that were written
    assert cols == list(data.COLUMNS) and len(y) >= data.MIN_ROWS and X.shape == (len(y), 11)
    assert np.isfinite(X).all() and np.isfinite(y).all()
    assert ((y >= 0) & (y <= 10) & (y == np.round(y))).all()
    written = np.array([[float(c.strip().strip('"')) for c in r] for r in rows[1:]])
    assert np.array_equal(np.column_stack([X, y]), written)


# --- the option parser ---------------------------------------------------------------------------

def _tiny_data_dir():
    d = Path(tempfile.mkdtemp(prefix="ffnbench-props-"))
    atexit.register(shutil.rmtree, d, True)
    for name, (fname, _) in data.FILES.items():
        lines = (data.PACKAGED / fname).read_text().splitlines()
        (d / fname).write_text("\n".join(lines[:61]) + "\n")  # 60 wines
    return d


TINY = _tiny_data_dir()


def mostly(valid, *junk):
    """Valid values three times in four, else junk: most examples get past the parser."""
    return st.sampled_from([True, True, True, False]).flatmap(
        lambda ok: valid if ok else st.one_of(*junk, st.text(max_size=8)))


number = mostly(st.sampled_from(["1e-3", "0.01", "0.1", "0", "0.5"]),
                st.floats(allow_nan=True, allow_infinity=True).map(repr),
                st.sampled_from(["1e300", "-0", "nan", "inf", "1e6", "-1"]))
whole = mostly(st.integers(0, 3).map(str), st.integers(-3, -1).map(str),  # small: each
               st.sampled_from(["2**70", "1.5", "", "1e3"]))  # example trains in milliseconds
OPTIONS = {
    "--backend": mostly(st.sampled_from(["numpy", "python"]), st.sampled_from(["fortran", "torch "])),
    "--dataset": mostly(st.sampled_from(list(data.TASKS)), st.sampled_from(["rose", "RED"])),
    "--hidden": mostly(st.lists(st.integers(1, 12), min_size=1, max_size=3).map(
        lambda h: ",".join(map(str, h))), st.sampled_from(["100000,100000", "3000000000", "4,,4",
                                                             "1e3", "0", "-2,3"])),
    "--activation": mostly(st.sampled_from(["sigmoid", "tanh", "relu"]), st.just("swish")),
    "--lr": number, "--l2": number, "--beta1": number, "--beta2": number, "--eps": number,
    "--seed": mostly(st.integers(0, 2**40).map(str), st.integers(-2, 0).map(str)),
    "--epochs": whole, "--patience": whole, "--seeds": whole,
    "--init": mostly(st.sampled_from(["auto", "glorot", "he", "uniform01"]), st.just("zeros")),
    "--scaling": mostly(st.sampled_from(["standard", "minmax", "none"]), st.just("max")),
    "--device": st.sampled_from(["cpu", "cpu", "cuda", "tpu"]),
    "--loss": mostly(st.sampled_from(["mse", "bce", "ce"]), st.just("hinge")),
    "--optimizer": mostly(st.sampled_from(["sgd", "adam"]), st.just("rmsprop")),
    "--batch-size": mostly(st.sampled_from(["1", "4", "full", "1000"]), st.sampled_from(["0", "-1", "half"])),
}


def _strict_json(text):
    def bad(name):
        raise AssertionError(f"non-finite number {name} in the JSON output")
    return json.loads(text, parse_constant=bad)


@FEW
@given(st.dictionaries(st.sampled_from(sorted(OPTIONS)), st.none(), max_size=5), st.data())
def test_any_option_values_give_a_result_or_one_line(chosen, draw):
    argv = ["train", "--data-dir", str(TINY), "--allow-unverified", "--json",
            "--epochs", "2", "--backend", "numpy"]
    for option in chosen:
        argv += [f"{option}={draw.draw(OPTIONS[option], label=option)}"]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(argv)
    out, err = out.getvalue(), err.getvalue()
    assert "Traceback" not in err
    if code == 0:
        doc = _strict_json(out)
        runs = doc["runs"] if "runs" in doc else [doc]
        for r in runs:
            keys = (("train_mse", "test_mse") if r["task"] == "regression"
                    else ("train_log_loss", "test_log_loss"))
            assert r["diverged"] or all(math.isfinite(r[k]) for k in keys)
        assert all(line.startswith("ffnbench: warning:") for line in err.splitlines())
    else:
        assert code == 2 and out == "", (argv, out)
        assert err.count("\n") == 1 and err.startswith("ffnbench") and "error" in err, (argv, err)
