"""The one exception type for bad user input: the CLI prints it as one line, no traceback."""


class UserError(Exception):
    """Bad input (option, file, data) that the user can fix."""
