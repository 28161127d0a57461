"""Bad input and faults (issue 12): every case is one clear line and a non-zero exit, never a
traceback, a silent wrong number or a lost run."""
import json
import os
import stat

import numpy as np
import pytest

from ffnbench import cli, data
from ffnbench.errors import UserError

QUICK = ["--dataset", "red", "--hidden", "5", "--epochs", "2", "--patience", "0"]
HEADER = ";".join(f'"{c}"' for c in data.COLUMNS)


def _red(data_dir):
    return data_dir / data.FILES["red"][0]


def _rows(data_dir, n):
    """The header and the first n data rows of the red-wine file."""
    return _red(data_dir).read_text().splitlines()[: n + 1]


def _write(data_dir, lines):
    _red(data_dir).write_text("\n".join(lines) + "\n")
    return str(data_dir)


def train(capsys, *argv):
    code = cli.main(["train", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err):
    return err.count("\n") == 1 and "Traceback" not in err and err.startswith("ffnbench")


# --- class 1: data that is not finite or not sane --------------------------------------

def _edit_cell(data_dir, row, col, text, n=60):
    lines = _rows(data_dir, n)
    cells = lines[row].split(";")
    cells[col] = text
    lines[row] = ";".join(cells)
    return _write(data_dir, lines)


@pytest.mark.parametrize("row, col, text, message", [
    (3, 0, "inf", "non-finite cell 'inf' at data row 3, column 'fixed acidity'"),
    (50, 4, "-inf", "non-finite cell '-inf' at data row 50, column 'chlorides'"),
    (60, 10, "1e400", "non-finite cell '1e400' at data row 60, column 'alcohol'"),
    (2, 11, "1e400", "non-finite cell '1e400' at data row 2, column 'quality'"),
    (7, 6, "1e300", "beyond ±1e+06: '1e300' at data row 7, column 'total sulfur dioxide'"),
    (1, 11, "-1", "quality '-1' at data row 1 is not a whole-number grade from 0 to 10"),
    (9, 11, "99", "quality '99' at data row 9"),
    (4, 11, "5.5", "quality '5.5' at data row 4"),
])
def test_insane_cells_name_file_row_and_column(data_dir, row, col, text, message):
    d = _edit_cell(data_dir, row, col, text)
    with pytest.raises(UserError, match=message.replace("+", r"\+")) as e:
        data.load("red", d, allow_unverified=True)
    assert str(_red(data_dir)) in str(e.value)


@pytest.mark.parametrize("n", [1, 2, 6, data.MIN_ROWS - 1])
def test_too_few_rows_is_refused(capsys, data_dir, n):
    code, out, err = train(capsys, *QUICK, "--data-dir", _write(data_dir, _rows(data_dir, n)),
                           "--allow-unverified")
    assert code == 2 and out == "" and one_line(err)
    assert f"{n} data rows; the 70/15/15 split needs at least {data.MIN_ROWS}" in err


def test_minimum_rows_train(capsys, data_dir):
    d = _write(data_dir, _rows(data_dir, data.MIN_ROWS))
    code, out, err = train(capsys, *QUICK, "--data-dir", d, "--allow-unverified", "--json")
    r = json.loads(out)
    assert code == 0 and (r["n_train"], r["n_val"], r["n_test"]) == (14, 3, 3)


def test_a_grade_with_one_wine_is_refused(capsys, data_dir):
    lines = _rows(data_dir, 100)
    lines[5] = lines[5].rsplit(";", 1)[0] + ";9"  # the only wine of grade 9
    d = _write(data_dir, lines)
    code, out, err = train(capsys, *QUICK, "--dataset", "red-quality-class", "--data-dir", d,
                           "--allow-unverified")
    assert code == 2 and one_line(err) and "grade 9 has 1 wine" in err


def _strict(text):
    """json.loads that refuses NaN and Infinity (which are not JSON)."""
    def bad(name):
        raise ValueError(f"non-finite number {name} in JSON")
    return json.loads(text, parse_constant=bad)


def test_json_is_valid_even_with_non_finite_numbers():
    doc = {"a": float("inf"), "b": [float("nan"), 1.0, {"c": -float("inf")}], "d": np.float64("nan")}
    assert _strict(cli.to_json(doc)) == {"a": None, "b": [None, 1.0, {"c": None}], "d": None}


def test_diverged_run_prints_valid_json(capsys):
    code, out, _ = train(capsys, "--backend", "numpy", *QUICK, "--lr", "1e6", "--json")
    r = _strict(out)
    assert code == 0 and r["diverged"] is True and r["test_mse"] is None


# --- class 2: columns trusted by position -----------------------------------------------

def test_permuted_columns_are_refused(data_dir):
    lines = [";".join([c.split(";")[-1], *c.split(";")[:-1]]) for c in _rows(data_dir, 40)]
    with pytest.raises(UserError, match="expected the UCI columns fixed acidity;.*quality, "
                                        'found quality;fixed acidity'):
        data.load("red", _write(data_dir, lines), allow_unverified=True)


def test_a_file_without_header_is_refused(data_dir):
    with pytest.raises(UserError, match="found 7.4;0.7;0;1.9"):
        data.load("red", _write(data_dir, _rows(data_dir, 40)[1:]), allow_unverified=True)


def test_header_spelling_and_quoting_may_vary(data_dir):
    lines = _rows(data_dir, 40)
    lines[0] = ";".join(c.upper() for c in data.COLUMNS)
    X, y, cols = data.load("red", _write(data_dir, lines), allow_unverified=True)
    assert X.shape == (40, 11) and cols == list(data.COLUMNS)


# --- class 3: special files --------------------------------------------------------------

def test_fifo_is_refused_without_opening_it(data_dir):
    _red(data_dir).unlink()
    os.mkfifo(_red(data_dir))  # opening it would block forever
    with pytest.raises(UserError, match="not a regular file"):
        data.load("red", str(data_dir))


def test_link_to_a_device_is_refused(data_dir):
    _red(data_dir).unlink()
    _red(data_dir).symlink_to("/dev/zero")
    with pytest.raises(UserError, match="not a regular file"):
        data.load("red", str(data_dir))


def test_file_over_the_size_limit_is_refused(data_dir, monkeypatch):
    monkeypatch.setattr(data, "MAX_BYTES", 1000)
    with pytest.raises(UserError, match="more than the limit of 1000"):
        data.load("red", str(data_dir))


@pytest.mark.parametrize("raw, message", [
    (b"\xff\xfe" + HEADER.encode("utf-16-le"), "not UTF-8 text"),
    (HEADER.encode() + b"\n7.4\x00;0.7\n", "not a text file"),
])
def test_binary_or_foreign_encodings_are_one_line(data_dir, raw, message):
    _red(data_dir).write_bytes(raw)
    with pytest.raises(UserError, match=message):
        data.load("red", str(data_dir), allow_unverified=True)
