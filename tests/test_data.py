"""Loading the UCI files: checksums, validation and clear errors."""
import numpy as np
import pytest

from ffnbench.core import data
from ffnbench.core.errors import UserError


def _red(data_dir):
    return data_dir / data.FILES["red"][0]


def test_packaged_files_load_with_the_published_shapes():
    for name, n, grades in (("red", 1599, range(3, 9)), ("white", 4898, range(3, 10))):
        X, y, cols = data.load(name)
        assert X.shape == (n, 11) and y.shape == (n,) and cols[-1] == "quality"
        assert set(np.unique(y)) == set(map(float, grades))


def test_data_dir_with_the_original_files(data_dir):
    X, _, _ = data.load("red", str(data_dir))
    assert np.array_equal(X, data.load("red")[0])


def test_checksum_mismatch_is_refused(data_dir):
    text = _red(data_dir).read_text().replace("7.4;0.7;0", "7.5;0.7;0", 1)
    _red(data_dir).write_text(text)
    with pytest.raises(UserError, match="sha256 .* does not match"):
        data.load("red", str(data_dir))
    X, _, _ = data.load("red", str(data_dir), allow_unverified=True)
    assert X[0, 0] == 7.5


def test_truncated_csv(data_dir):
    raw = _red(data_dir).read_bytes()
    _red(data_dir).write_bytes(raw[: len(raw) // 2])
    with pytest.raises(UserError, match="sha256"):
        data.load("red", str(data_dir))
    with pytest.raises(UserError, match="missing cell at data row"):
        data.load("red", str(data_dir), allow_unverified=True)


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.replace("7.4;0.7;0", "7.4;abc;0", 1), "non-numeric cell 'abc' at data row 1, column 'volatile acidity'"),
    (lambda t: t.replace("7.4;0.7;0", "7.4;;0", 1), "missing cell at data row 1"),
    (lambda t: "\n".join(";".join(line.split(";")[:-1]) for line in t.splitlines()), "expected 12 columns, found 11"),
    (lambda t: t.splitlines()[0] + "\n", "no data rows"),
    (lambda t: "", "not a semicolon-separated table"),
])
def test_malformed_csv_gets_a_clear_error(data_dir, edit, message):
    _red(data_dir).write_text(edit(_red(data_dir).read_text()))
    with pytest.raises(UserError, match=message.replace("(", r"\(")):
        data.load("red", str(data_dir), allow_unverified=True)


def test_missing_file(tmp_path):
    with pytest.raises(UserError, match="cannot read"):
        data.load("white", str(tmp_path))
