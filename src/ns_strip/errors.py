"""Exceptions that end a command, each carrying the exit code the contract gives it.

Every error a user can cause is one of these, so the command line can print one line naming
the file and the problem and exit with a distinct code, never a traceback.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2
EXIT_BAD_INPUT = 3
EXIT_ROLLED_BACK = 4


class NsStripError(Exception):
    """Base of every error ns-strip reports to its user."""

    exit_code = EXIT_BAD_INPUT

    def __init__(self, message: str, path: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = path

    def __str__(self) -> str:
        if self.path:
            return f"{self.path}: {self.message}"
        return self.message


class UsageError(NsStripError):
    """The command line asks for something that cannot be done (exit 2)."""

    exit_code = EXIT_USAGE


class BadInputError(NsStripError):
    """A malformed or unsafe file; nothing was changed (exit 3)."""

    exit_code = EXIT_BAD_INPUT


class ApplyError(NsStripError):
    """An operation failed part-way and was rolled back, or left for the next run (exit 4)."""

    exit_code = EXIT_ROLLED_BACK


class ShippedJournalError(BadInputError):
    """A wheel member or RECORD row under ``.ns-strip-journal/`` (NS120): ns-strip's own journal,
    which no package may ship, since a planted journal would be taken for an interrupted run."""

    code = "NS120"

    def __init__(self, what: str, path: str | None = None) -> None:
        super().__init__(f"NS120 {what} is inside .ns-strip-journal/, ns-strip's own journal, which no package may "
                         "ship; refused", path)
