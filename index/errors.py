"""The exceptions the CLI turns into a one-line message (never a traceback)."""
import zipfile

#: What reading a damaged or foreign file raises (a truncated .npz is a bad zip file): loaders turn
#: these into an InputError that names the file.
UNREADABLE = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile)


class InputError(ValueError):
    """Raised for malformed or inconsistent input files; the message names the file and line (exit code 2)."""


class RunFailed(RuntimeError):
    """A run stopped for a reason other than its input, such as a worker that died (exit code 1); what
    it finished is kept and ``--resume`` continues it."""


def require_fingerprint(what: str, found: str | None, expected: str, remedy: str) -> None:
    """Refuse an artefact that another model made: ``what`` (e.g. "index DIR") records ``found``
    where the loaded model's fingerprint is ``expected``; ``remedy`` says how to rebuild it."""
    if found != expected:
        raise InputError(f"{what} was built by model {found}, not by the loaded model ({expected}); {remedy}")
