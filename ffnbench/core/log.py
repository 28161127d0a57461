"""What a command says on stderr besides its errors and warnings, through the logger
"ffnbench": INFO is what it runs, its progress and what it wrote (hidden by -q); DEBUG is
the detail that -v adds (each finished run, Dask's worker events). Code that imports
ffnbench as a library sees none of it unless it configures logging itself."""
import logging
import sys

LOG = logging.getLogger("ffnbench")
LEVELS = {-1: logging.WARNING, 0: logging.INFO, 1: logging.DEBUG}  # -q, default, -v


class _Stderr(logging.StreamHandler):
    """Writes to sys.stderr as it is at each message, not as it was when configured."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


def configure(verbosity):
    """One handler on stderr at the level of `verbosity` (-1 quiet, 0, 1 verbose)."""
    for handler in list(LOG.handlers):
        LOG.removeHandler(handler)
    handler = _Stderr()
    handler.setFormatter(logging.Formatter("%(message)s"))
    LOG.addHandler(handler)
    LOG.setLevel(LEVELS[max(-1, min(1, verbosity))])
    LOG.propagate = False


def verbose():
    return LOG.isEnabledFor(logging.DEBUG)
