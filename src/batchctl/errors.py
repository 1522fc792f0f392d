"""Errors a person reads, and the exit codes the CLI maps them to.

Domain modules raise `BatchctlError` (or a subclass) with a message saying what happened and a hint
saying what to do next; `batchctl.cli.errors` turns it into one `Error: ...` line and an exit code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    from batchctl.api.models import Batch

# Exit codes are part of the interface scripts rely on; docs/cli.md and `--help` list them.
EXIT_OK = 0
EXIT_ERROR = 1  # an error, or invalid input (`validate`)
EXIT_USAGE = 2  # bad command-line usage (Typer's own code)
EXIT_BATCH_FAILED = 3
EXIT_BATCH_EXPIRED = 4
EXIT_BATCH_CANCELLED = 5
EXIT_NOT_FINISHED = 6  # the batch is not in a terminal state yet
EXIT_INTERRUPTED = 130  # Ctrl+C; SIGTERM 143, SIGHUP 129 (128 + the signal's number)

EXIT_CODE_BY_STATUS = {
    "completed": EXIT_OK,
    "failed": EXIT_BATCH_FAILED,
    "expired": EXIT_BATCH_EXPIRED,
    "cancelled": EXIT_BATCH_CANCELLED,
}

# Which final state is "worst" when several batches end differently: failed (nothing usable)
# before expired (partial results may exist) before cancelled (someone chose to stop it).
EXIT_PRECEDENCE = ("failed", "expired", "cancelled")


def nothing_succeeded(batch: Batch) -> bool:
    """A batch that completed with every request failed: a failure, whatever its status says."""
    counts = batch.request_counts
    return batch.status == "completed" and counts.total > 0 and counts.completed == 0 and counts.failed > 0


def effective_status(batch: Batch) -> str:
    """The status the exit code follows: `failed` for a batch that completed with no request succeeding."""
    return "failed" if nothing_succeeded(batch) else batch.status


def exit_code_for_batches(batches: Sequence[Batch]) -> int:
    """`exit_code_for_statuses` of the batches' effective statuses (0 of N succeeded counts as failed)."""
    return exit_code_for_statuses([effective_status(b) for b in batches])


def exit_code_for_statuses(statuses: Sequence[str]) -> int:
    """0 when every batch completed; else the code of the worst final state (failed 3 > expired 4 >
    cancelled 5); 6 if one is not finished (or in a state this tool does not know)."""
    codes = set(statuses)
    for status in EXIT_PRECEDENCE:
        if status in codes:
            return EXIT_CODE_BY_STATUS[status]
    return EXIT_OK if codes <= {"completed"} else EXIT_NOT_FINISHED


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


class WatchGaveUp(BatchctlError):
    """Polling failed transiently (connection, 5xx, 429) for longer than the budget; `since`: unix seconds.
    The CLI adds the command that resumes as the hint."""

    def __init__(self, failure: str, since: float, budget: float) -> None:
        import time

        stamp = time.strftime("%H:%M:%S", time.localtime(since))
        super().__init__(f"server unreachable since {stamp} ({failure}); gave up watching after {budget:g} s")
        self.since = since


class StuckInUnknownStatus(BatchctlError):
    """A batch stayed in a status this tool does not know for too long: stop watching, exit 6."""

    def __init__(self, batch_id: str, status: str, duration: str) -> None:
        super().__init__(
            f"batch {batch_id} has been in the unknown status {status!r} for {duration}; stopped watching",
            None,
            EXIT_NOT_FINISHED,
        )


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised where the program is so the cleanup Ctrl+C runs runs too (`.part`
    files removed, temporary copies deleted); the exit code is 128 + the signal's number."""

    def __init__(self, signum: int) -> None:
        import signal

        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.name = signal.Signals(signum).name


def interrupted_exit_code(exc: BaseException | None = None) -> int:
    """130 for Ctrl+C; 128 + the signal's number for a `Terminated` (SIGTERM 143, SIGHUP 129)."""
    return 128 + exc.signum if isinstance(exc, Terminated) else EXIT_INTERRUPTED
