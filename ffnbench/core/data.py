"""The UCI wine data: checksummed loading, the seeded 70/15/15 split, and feature scaling."""
import csv
import hashlib
import io
import os
import stat
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from .config import TASKS
from .errors import UserError

# the CSVs live in the repository's top-level datasets/; a wheel maps them into the package
PACKAGED = next((d for d in (Path(__file__).parents[1] / "datasets", Path(__file__).parents[2] / "datasets")
                 if d.is_dir()), Path(__file__).parents[2] / "datasets")
FILES = {  # dataset -> (file name, sha256 of the original UCI file)
    "red": ("winequality-red.csv",
            "4a402cf041b025d4566d954c3b9ba8635a3a8a01e039005d97d6a710278cf05e"),
    "white": ("winequality-white.csv",
              "76c3f809815c17c07212622f776311faeb31e87610d52c26d87d6e361b169836"),
}
N_COLUMNS = 12  # 11 physicochemical inputs + quality
UCI_ROWS = {"red": 1599, "white": 4898}  # wines in each UCI file (pinned by its sha256)
COLUMNS = ("fixed acidity", "volatile acidity", "citric acid", "residual sugar", "chlorides",
           "free sulfur dioxide", "total sulfur dioxide", "density", "pH", "sulphates",
           "alcohol", "quality")  # the UCI header, in its order: columns are read by position
MAX_BYTES = 64 * 2**20  # a data file's size limit (the UCI files are 84 KB and 258 KB)
MIN_ROWS = 20  # a 70/15/15 split of 20 rows: 14 / 3 / 3
MAX_ABS = 1e6  # |cell| limit: the UCI maximum is 440; scaling sums squares of the cells
GRADES = (0, 10)  # quality is a whole-number grade in this range
SPLIT_STREAM = 0  # seed streams: the split, the initial weights and the epoch orders
                  # are drawn independently, so changing one never moves the others


def _read(path):
    """The bytes of a regular file below MAX_BYTES (a FIFO or device is never opened)."""
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            raise UserError(f"{path}: not a regular file")
        if st.st_size > MAX_BYTES:
            raise UserError(f"{path}: {st.st_size} bytes, more than the limit of {MAX_BYTES}")
        with open(path, "rb") as f:
            raw = f.read(MAX_BYTES + 1)  # the file may have grown since stat
    except OSError as e:
        raise UserError(f"{path}: cannot read ({e.strerror})") from None
    if len(raw) > MAX_BYTES:
        raise UserError(f"{path}: more than the limit of {MAX_BYTES} bytes")
    return raw


def _decode(raw, path):
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not UTF-8 text (byte {e.start})") from None
    if "\0" in text:
        raise UserError(f"{path}: not a text file (NUL byte at {text.index(chr(0))})")
    return text


def _norm(name):
    return " ".join(str(name).split()).lower()


def _check_header(columns, path):
    if [_norm(c) for c in columns] != [_norm(c) for c in COLUMNS]:
        raise UserError(f"{path}: expected the UCI columns {';'.join(COLUMNS)}, "
                        f"found {';'.join(map(str, columns))}"[:2000])


def _check_values(values, cells, path):
    """Finite, non-negative cells within MAX_ABS, whole-number grades in GRADES, MIN_ROWS rows
    (values: the parsed float64 (n, 12) of the text `cells`)."""
    def where(mask, what):
        r, c = map(int, np.argwhere(mask)[0])
        raise UserError(f"{path}: {what} {cells.iat[r, c].strip()!r} at data row {r + 1}, "
                        f"column {COLUMNS[c]!r}")
    with np.errstate(invalid="ignore"):
        if not np.isfinite(values).all():
            where(~np.isfinite(values), "non-finite cell")
        if (np.abs(values) > MAX_ABS).any():
            where(np.abs(values) > MAX_ABS, f"cell beyond ±{MAX_ABS:g}:")
        if (values < 0).any():  # concentrations, density, pH and grades are never negative
            where(values < 0, "negative cell")
    q = values[:, -1]
    bad = (q < GRADES[0]) | (q > GRADES[1]) | (q != np.round(q))
    if bad.any():
        r = int(np.flatnonzero(bad)[0])
        raise UserError(f"{path}: quality {cells.iat[r, -1].strip()!r} at data row {r + 1} is "
                        f"not a whole-number grade from {GRADES[0]} to {GRADES[1]}")
    if len(values) < MIN_ROWS:
        raise UserError(f"{path}: {len(values)} data rows; the 70/15/15 split needs at "
                        f"least {MIN_ROWS}")


def _parse(raw, path):
    """12 numeric columns, no missing cells, or a UserError saying where it is wrong."""
    try:
        df = pd.read_csv(io.StringIO(_decode(raw, path)), sep=";", dtype=str,
                         keep_default_na=False)
    except (ValueError, pd.errors.EmptyDataError, csv.Error) as e:  # ParserError is a ValueError
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise UserError(f"{path}: not a semicolon-separated table ({first})") from None
    if df.shape[1] != N_COLUMNS:
        raise UserError(f"{path}: expected {N_COLUMNS} columns, found {df.shape[1]}")
    _check_header(df.columns, path)
    if len(df) == 0:
        raise UserError(f"{path}: no data rows")
    values = df.apply(lambda col: pd.to_numeric(col.str.strip(), errors="coerce"))
    bad = values.isna().to_numpy()
    if bad.any():
        r, c = map(int, np.argwhere(bad)[0])
        cell = df.iat[r, c]
        what = "missing cell" if cell is None or not str(cell).strip() else f"non-numeric cell {cell!r}"
        raise UserError(f"{path}: {what} at data row {r + 1}, column {df.columns[c]!r}")
    table = values.to_numpy(dtype=np.float64)
    _check_values(table, df, path)
    return table, list(COLUMNS)


@lru_cache(maxsize=8)
def load(name, data_dir=None, allow_unverified=False):
    """(X (n, 11), y (n,), column names) for dataset `name`, verified by sha256."""
    fname, expected = FILES[name]
    path = (Path(data_dir) if data_dir else PACKAGED) / fname
    raw = _read(path)
    digest = hashlib.sha256(raw).hexdigest()
    if digest != expected and not allow_unverified:
        raise UserError(f"{path}: sha256 {digest[:16]}... does not match the UCI file "
                        f"({expected[:16]}...); --allow-unverified accepts other content")
    table, columns = _parse(raw, path)
    return table[:, :-1], table[:, -1], columns


def load_task(name, data_dir=None, allow_unverified=False):
    """(X (n, 11), target (n,), classes): quality for regression, else class indices
    into `classes` (color: red = 0, white = 1; quality-class: the grades present)."""
    if TASKS[name] == "regression":
        X, y, _ = load(name, data_dir, allow_unverified)
        return X, y, None
    if name == "color":
        parts = [load(c, data_dir, allow_unverified)[0] for c in ("red", "white")]
        return np.vstack(parts), np.repeat([0, 1], [len(p) for p in parts]), ("red", "white")
    X, quality, _ = load(name.split("-")[0], data_dir, allow_unverified)
    grades, labels, counts = np.unique(quality, return_inverse=True, return_counts=True)
    _check_strata(name, grades, counts)
    return X, labels, tuple(int(g) for g in grades)


def _check_strata(name, grades, counts):
    """The stratified split cuts each class 70/15/15: a class needs 2 wines to reach the
    training part, and the validation and test parts must not be empty."""
    if counts.min() < 2:
        g = int(grades[counts.argmin()])
        raise UserError(f"dataset {name}: grade {g} has {counts.min()} wine; the stratified "
                        f"split needs at least 2 per grade (merge or drop that grade)")
    sizes = [sum(len(part) for part in parts) for parts in zip(*(_cut(np.arange(k)) for k in counts))]
    if min(sizes) == 0:
        raise UserError(f"dataset {name}: the stratified 70/15/15 split of grades "
                        f"{dict(zip(map(int, grades), map(int, counts)))} leaves a part empty")


def _cut(perm):
    n_train, n_val = int(0.7 * len(perm)), int(0.15 * len(perm))
    return perm[:n_train], perm[n_train:n_train + n_val], perm[n_train + n_val:]


def duplicate_groups(X, target):
    """One group id per row: rows with identical inputs and target share it."""
    return np.unique(np.column_stack([X, target]), axis=0, return_inverse=True)[1].ravel()


def _cut_groups(idx, groups, rng):
    """idx cut into (train, val, test) with every group whole: the groups in a seeded
    random order, each cut at the group boundary nearest int(0.7 n), int(0.7 n) + int(0.15 n)."""
    _, inverse, counts = np.unique(groups[idx], return_inverse=True, return_counts=True)
    rank = np.empty(len(counts), dtype=np.int64)
    rank[rng.permutation(len(counts))] = np.arange(len(counts))  # group -> its place
    ends = np.cumsum(counts[np.argsort(rank)])  # rows up to and including each place
    n = len(idx)
    c1 = int(np.argmin(np.abs(ends - int(0.7 * n)))) + 1
    c2 = max(c1, int(np.argmin(np.abs(ends - (int(0.7 * n) + int(0.15 * n))))) + 1)
    r = rank[inverse.ravel()]
    o = np.argsort(r, kind="stable")
    idx, r = idx[o], r[o]
    return idx[r < c1], idx[(r >= c1) & (r < c2)], idx[r >= c2]


def split(n, seed, labels=None, groups=None):
    """Index arrays (train, val, test): sizes int(0.7 n), int(0.15 n) and the rest, or
    stratified (that cut within each class) when class labels are given. With `groups`
    (e.g. duplicate_groups), rows of one group always land in the same part."""
    rng = np.random.default_rng([seed, SPLIT_STREAM])
    if groups is not None:
        classes = [np.arange(n)] if labels is None else [np.flatnonzero(labels == c)
                                                         for c in np.unique(labels)]
        cuts = [_cut_groups(idx, groups, rng) for idx in classes]
        return tuple(np.concatenate(part) for part in zip(*cuts))
    if labels is None:
        return _cut(rng.permutation(n))
    cuts = [_cut(rng.permutation(np.flatnonzero(labels == c))) for c in np.unique(labels)]
    return tuple(np.concatenate(part) for part in zip(*cuts))


def _standard(X):
    sd = X.std(axis=0)
    return X.mean(axis=0), np.where(sd > 0, sd, 1.0)


def _minmax(X):
    lo, span = X.min(axis=0), np.ptp(X, axis=0)
    return lo, np.where(span > 0, span, 1.0)


SCALERS = {  # fitted on the training part only: X -> (X - shift) / scale
    "standard": _standard,
    "minmax": _minmax,
    "none": lambda X: (np.zeros(X.shape[1]), np.ones(X.shape[1])),
}


def fit_scaler(kind, X_train):
    """(shift, scale) such that (X - shift) / scale is the scaled X."""
    return SCALERS[kind](X_train)


def scale(kind, X_train, X):
    """X scaled by `kind` (config.SCALINGS) fitted on X_train; sample-maxmin fits nothing:
    each row is mapped to [0, 1] by its own min and max over the 11 features."""
    if kind == "sample-maxmin":
        lo, span = X.min(axis=1, keepdims=True), np.ptp(X, axis=1, keepdims=True)
        return (X - lo) / np.where(span > 0, span, 1.0)
    shift, s = fit_scaler(kind, X_train)
    return (X - shift) / s
