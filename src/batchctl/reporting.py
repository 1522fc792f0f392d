"""What a long use case may tell people while it runs, without knowing who listens.

The CLI's Output is a Reporter; library callers and tests pass `SilentReporter()`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol

ProgressUpdate = Callable[[int, int], None]  # (done, total) in bytes; total 0 when unknown


class Reporter(Protocol):
    def info(self, message: str) -> None: ...

    def warn(self, message: str) -> None: ...

    def success(self, message: str) -> None: ...

    def progress(self, label: str, total: int | None) -> AbstractContextManager[ProgressUpdate]: ...


class SilentReporter:
    """A Reporter that keeps everything to itself (messages are kept in `messages` for tests)."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, str]] = []

    def info(self, message: str) -> None:
        self.messages.append(("info", message))

    def warn(self, message: str) -> None:
        self.messages.append(("warn", message))

    def success(self, message: str) -> None:
        self.messages.append(("success", message))

    @contextmanager
    def progress(self, label: str, total: int | None) -> Iterator[ProgressUpdate]:
        yield lambda done, total: None
