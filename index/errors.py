"""The exceptions the CLI turns into a one-line message (never a traceback)."""


class InputError(ValueError):
    """Raised for malformed or inconsistent input files; the message names the file and line (exit code 2)."""


class RunFailed(RuntimeError):
    """A run stopped for a reason other than its input, such as a worker that died (exit code 1); what
    it finished is kept and ``--resume`` continues it."""
