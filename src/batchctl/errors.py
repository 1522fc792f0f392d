"""Errors a person reads, and the exit codes the CLI maps them to.

Domain modules raise `BatchctlError` (or a subclass) with a message saying what happened and a hint
saying what to do next; `batchctl.cli.errors` turns it into one `Error: ...` line and an exit code.
"""

from __future__ import annotations

# Exit codes are part of the interface scripts rely on; docs/cli.md and `--help` list them.
EXIT_OK = 0
EXIT_ERROR = 1  # an error, or invalid input (`validate`)
EXIT_USAGE = 2  # bad command-line usage (Typer's own code)
EXIT_BATCH_FAILED = 3
EXIT_BATCH_EXPIRED = 4
EXIT_BATCH_CANCELLED = 5
EXIT_NOT_FINISHED = 6  # the batch is not in a terminal state yet
EXIT_INTERRUPTED = 130  # Ctrl+C

EXIT_CODE_BY_STATUS = {
    "completed": EXIT_OK,
    "failed": EXIT_BATCH_FAILED,
    "expired": EXIT_BATCH_EXPIRED,
    "cancelled": EXIT_BATCH_CANCELLED,
}


class BatchctlError(Exception):
    """An error with a message for people, a hint of what to do next, and an exit code."""

    def __init__(self, message: str, hint: str | None = None, exit_code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message


class ConfigError(BatchctlError):
    """The config file or a profile is missing, broken or inconsistent."""
