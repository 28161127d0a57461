"""The exception type for bad user input (the CLI prints it as one line, no traceback), and
the signals that stop a command: recorded as well as raised, because Python drops an
exception raised inside a finaliser (`__del__`, a weakref callback), where a signal handler
may happen to run; long waits call `check_stopped` so such a Ctrl-C still stops them."""


class UserError(Exception):
    """Bad input (option, file, data) that the user can fix."""


class Terminated(KeyboardInterrupt):
    """SIGTERM: unwinds like Ctrl-C, so workers and their semaphores are cleaned up."""


_STOPS = []  # the exception of each stopping signal received, in order


def stop(exc_type):
    """A signal handler's body: record the stop, then raise it."""
    _STOPS.append(exc_type)
    raise exc_type()


def check_stopped():
    """Raise the first recorded stop again (its first raise may have been dropped)."""
    if _STOPS:
        raise _STOPS[0]()


def clear_stops():
    _STOPS.clear()
