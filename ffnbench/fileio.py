"""Atomic result files: write to a temporary file beside the target, then rename."""
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

from .errors import UserError


def check_writable_dir(path):
    """Fail before any work is done if `path`'s directory does not exist."""
    parent = Path(path).resolve().parent
    if not parent.is_dir():
        raise UserError(f"{path}: directory {parent} does not exist")


def check_dir_path(path, option):
    """Fail before any work if directory `path` could not be made: some part is a file."""
    p = Path(path).resolve()
    while not p.exists():
        p = p.parent
    if not p.is_dir():
        raise UserError(f"{option} {path}: {p} is not a directory")


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


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_write(path, mode="w"):
    """Open a temp file for writing; it replaces `path` only if the block succeeds."""
    path = Path(path)
    check_writable_dir(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; results are ordinary files
    try:
        with os.fdopen(fd, mode) as f:
            yield f
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
