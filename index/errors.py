"""The one exception type for bad user input; the CLI turns it into a one-line message."""


class InputError(ValueError):
    """Raised for malformed or inconsistent input files; the message names the file and line."""
