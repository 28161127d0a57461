"""Atomic result files: write to a temporary file beside the target, then rename.

A target that exists must be a regular file (a device, FIFO or directory is never replaced),
and every file-system error is one UserError line naming the path."""
import json
import math
import os
import stat
import tempfile
from contextlib import contextmanager, suppress
from pathlib import Path

from .errors import UserError


def check_writable_dir(path, option=None):
    """Fail before any work is done if file `path` could not be written: its directory is
    missing or not writable, or `path` exists and is not a regular file."""
    name = f"{option} {path}" if option else str(path)
    if not str(path):
        raise UserError(f"{option or 'file name'}: empty file name")
    parent = Path(path).resolve().parent
    if not parent.is_dir():
        raise UserError(f"{name}: directory {parent} does not exist")
    check_target(path, option)
    probe_writable(parent, name)


def check_target(path, option=None):
    """A UserError unless `path` is absent or a regular file (which a rename may replace)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    except OSError as e:
        raise UserError(f"{option + ' ' if option else ''}{path}: {e.strerror}") from None
    if not stat.S_ISREG(mode):
        what = "a directory" if stat.S_ISDIR(mode) else "not a regular file"
        raise UserError(f"{option + ' ' if option else ''}{path}: {what}; it is never replaced")


def probe_writable(directory, name):
    """Create and delete a file in `directory` (access() says yes to root on a read-only dir)."""
    try:
        with tempfile.TemporaryFile(dir=directory, prefix=".ffnbench-probe."):
            pass
    except OSError as e:
        raise UserError(f"{name}: cannot write in {directory} ({e.strerror})") from None


def check_dir_path(path, option):
    """Fail before any work if directory `path` could not be made: some part is a file."""
    p = Path(path).resolve()
    while not p.exists():
        p = p.parent
    if not p.is_dir():
        raise UserError(f"{option} {path}: {p} is not a directory")
    probe_writable(p, f"{option} {path}")


def check_out_dir(path, names, option="--out"):
    """Before any work: directory `path` is there or can be made, and none of the files
    `names` it will get exists as anything but a regular file (those are never replaced)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserError(f"{option} {path}: not a directory")
    check_dir_path(path, option)
    for name in names:
        check_target(path / name, option)


def ensure_dir(path, option):
    """mkdir -p `path`, or one UserError line saying why it cannot be made."""
    try:
        Path(path).mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"{option} {path}: cannot create the directory ({e.strerror})") from None


def save_figure(fig, path, **savefig):
    """Write a matplotlib figure as PNG atomically (dpi 110), then close it."""
    import matplotlib.pyplot as plt
    ensure_dir(Path(path).parent, "figure directory")
    with atomic_write(path, "wb") as f:
        fig.savefig(f, format="png", dpi=110, **savefig)
    plt.close(fig)
    return path


def _finite_or_none(x):
    if isinstance(x, dict):
        return {k: _finite_or_none(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite_or_none(v) for v in x]
    if isinstance(x, float) or type(x).__name__.startswith("float"):  # numpy floats too
        return float(x) if math.isfinite(x) else None
    if type(x).__name__.startswith(("int", "uint")) and not isinstance(x, bool):
        return int(x)
    return x


def to_json(obj):
    """Valid JSON text: a number that is not finite (NaN, inf) is written as null."""
    return json.dumps(_finite_or_none(obj), indent=2, allow_nan=False)


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_write(path, mode="w"):
    """Open a temp file for writing; it replaces `path` only if the block succeeds."""
    path = Path(path)
    if not path.parent.is_dir():
        raise UserError(f"{path}: directory {path.parent} does not exist")
    check_target(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise UserError(f"{path}: cannot write ({e.strerror})") from None
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; results are ordinary files
    try:
        try:
            with os.fdopen(fd, mode) as f:
                yield f
            check_target(path)  # still: it may have been made a FIFO meanwhile
            os.replace(tmp, path)
        except OSError as e:  # full disk, file size limit, I/O error: the old file stays
            raise UserError(f"{path}: cannot write ({e.strerror or e})") from None
    except BaseException:
        with suppress(OSError):
            os.unlink(tmp)
        raise
