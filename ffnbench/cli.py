"""The `ffnbench` command: parse (parser.py), import the one command asked for, run it, and
turn what can go wrong into one line and an exit status (2: bad input, 130: Ctrl-C, 143:
SIGTERM, 141: a closed pipe)."""
import errno
import importlib
import os
import signal
import sys
import warnings

try:  # Ctrl-C during the imports is one line too
    from .core.errors import Terminated, UserError, clear_stops, stop
    from .core.log import configure as configure_log
    from .parser import build_parser
except KeyboardInterrupt:
    print("ffnbench: interrupted", file=sys.stderr)
    sys.exit(130)


_WARNED = set()


def _warning_line(message, category, *_args, **_kw):
    """Each warning once, as one line (the same warning may come from several call sites)."""
    if str(message) not in _WARNED:
        _WARNED.add(str(message))
        print(f"ffnbench: warning: {message}", file=sys.stderr)


def _terminate(signum, frame):
    stop(Terminated)


def _interrupt(signum, frame):
    stop(KeyboardInterrupt)


_OUTPUT_ERRNOS = {errno.ENOSPC, errno.EIO, errno.EFBIG, errno.EDQUOT, errno.EBADF}


def _quiet_stdout():
    """Point stdout at /dev/null so the interpreter's final flush cannot fail again."""
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # stdout is not a file (tests) or closed
        pass


def main(argv=None):
    as_command = argv is None  # the console script, not a call from Python (tests)
    argv = sys.argv[1:] if argv is None else argv
    if not argv:  # a bare call: what the command can do, not one error line
        build_parser().print_help(sys.stderr)
        return 2
    try:
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as e:  # usage errors (one line, see Parser) and --help
            return e.code
        configure_log(getattr(args, "verbose", False) - getattr(args, "quiet", False))
        warnings.showwarning = _warning_line
        _WARNED.clear()  # once per command
        if sys.stdout is None:  # `>&-`: Python would drop every line printed, silently
            print("ffnbench: error: standard output is closed", file=sys.stderr)
            return 1
        clear_stops()
        if as_command and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:  # the command
            signal.signal(signal.SIGTERM, _terminate)
        if as_command and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            signal.signal(signal.SIGINT, _interrupt)
        try:
            command = importlib.import_module(f"{__package__}.commands.{args.command}")
            code = command.main(args)
            sys.stdout.flush()  # a write error on stdout shows here, not at exit
        except UserError as e:
            print(f"ffnbench: error: {e}", file=sys.stderr)
            return 2
    except Terminated:
        print("ffnbench: terminated", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print("ffnbench: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `ffnbench ... | head`: the reader has gone; end quietly
        _quiet_stdout()
        return 141
    except OSError as e:  # files are UserErrors (fileio, data): this is stdout failing
        if e.filename is not None or e.errno not in _OUTPUT_ERRNOS:
            raise
        _quiet_stdout()
        print(f"ffnbench: error: cannot write the output ({e.strerror})", file=sys.stderr)
        return 1
    return code or 0


if __name__ == "__main__":
    sys.exit(main())
