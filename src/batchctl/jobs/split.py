"""Cutting one input file into parts that each fit a provider's limits, and writing a part's bytes out.

`plan_parts` reads the file once, line by line (never more than one line in memory), and decides where
parts begin and end; it also hashes the file. `write_part` copies one planned byte range to a file.
Lines are never broken: a part is always whole lines of the input, in order.

Blank lines are not requests, but they are carried: each goes with the part being filled and counts
towards its bytes (the upload step drops them, as it does for a single-batch submit). So the parts'
byte ranges follow one another and together are the input byte for byte, except a UTF-8 BOM (never
in a part) and blank lines that fit in no part (whitespace past a full part at the very end, or in
front of a request that does not fit with it), which are left out.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from batchctl.errors import BatchctlError
from batchctl.providers import format_size
from batchctl.validation import BOM, iter_raw_lines

COPY_CHUNK = 1 << 20  # bytes per read when writing a part


class SplitError(BatchctlError):
    """The input cannot be split within the limits; `line` names the culprit when there is one."""

    def __init__(self, message: str, hint: str | None = None, *, line: int | None = None) -> None:
        super().__init__(message, hint)
        self.line = line


@dataclass(frozen=True)
class PartPlan:
    """One part: input lines first_line..last_line (1-based, inclusive), bytes [byte_start, byte_end)."""

    index: int  # 0-based
    first_line: int
    last_line: int
    byte_start: int
    byte_end: int
    request_count: int

    @property
    def bytes(self) -> int:
        return self.byte_end - self.byte_start


@dataclass(frozen=True)
class SplitResult:
    """What one pass over the input found: its parts, SHA-256, requests, bytes and physical lines."""

    path: str
    parts: list[PartPlan]
    sha256: str
    total_requests: int
    size: int
    lines: int


def is_blank(raw: bytes) -> bool:
    """Whether a line is blank: whitespace only, as the validator counts it (not a request)."""
    if raw[:1] == b"{":  # nearly every line: decide without scanning it
        return False
    if not raw.strip():
        return True
    if raw.isascii():
        return False
    try:
        return raw.decode().isspace()  # the validator also counts non-ASCII whitespace as blank
    except UnicodeDecodeError:
        return False


def _content_length(raw: bytes) -> int:
    """A line's bytes without its line ending: what a per-line limit is about."""
    if raw.endswith(b"\r\n"):
        return len(raw) - 2
    return len(raw) - 1 if raw.endswith(b"\n") else len(raw)


class Planner:
    """The splitting decisions, fed one line at a time; no I/O, so any line sequence can be tested."""

    def __init__(self, *, max_requests: int, max_file_bytes: int, max_line_bytes: int | None = None) -> None:
        for name, value in (("max_requests", max_requests), ("max_file_bytes", max_file_bytes)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a whole number of at least 1, not {value!r}")
        self.max_requests = max_requests
        self.max_file_bytes = max_file_bytes
        self.max_line_bytes = max_line_bytes or None
        self.parts: list[PartPlan] = []
        self.requests = 0
        self._start: int | None = None  # the open part's first byte; None before the first line
        self._end = self._first = self._last = self._count = 0

    def line(self, n: int, offset: int, raw: bytes) -> None:
        """Take input line `n`, whose bytes (ending included) start at `offset`."""
        size = len(raw)
        if self._start is None:
            self._open(n, offset)
        if is_blank(raw):
            if self._count and self._end - self._start + size > self.max_file_bytes:
                self._close()
                self._open(n, offset)
            self._last, self._end = n, offset + size
            return
        self._check(n, raw)
        if self._count:
            if self._count == self.max_requests or self._end - self._start + size > self.max_file_bytes:
                self._close()
                self._open(n, offset)
        elif self._end - self._start + size > self.max_file_bytes:
            self._open(n, offset)  # the blank lines in front do not fit with this request: left out
        self._count += 1
        self.requests += 1
        self._last, self._end = n, offset + size

    def finish(self) -> list[PartPlan]:
        """The parts, once every line is in. A trailing run of blank lines alone is not a part."""
        if self._count:
            self._close()
        if not self.parts:
            raise SplitError("the file has no requests: it is empty or has only blank lines")
        return self.parts

    def _open(self, n: int, offset: int) -> None:
        self._start, self._end, self._first, self._last, self._count = offset, offset, n, n - 1, 0

    def _close(self) -> None:
        assert self._start is not None
        self.parts.append(
            PartPlan(len(self.parts), self._first, self._last, self._start, self._end, self._count)
        )

    def _check(self, n: int, raw: bytes) -> None:
        limit = self.max_line_bytes
        if limit is not None and len(raw) > limit and _content_length(raw) > limit:
            length = _content_length(raw)
            raise SplitError(
                f"line {n} is {_size(length)}, over the limit of {_size(limit)} per line",
                "Shorten that request; a line cannot be split across batches.",
                line=n,
            )
        if len(raw) > self.max_file_bytes:
            raise SplitError(
                f"line {n} is {_size(len(raw))}, more than a whole batch file may hold ({_size(self.max_file_bytes)})",
                "Shorten that request; a line cannot be split across batches.",
                line=n,
            )


def _size(n: int) -> str:
    text = format_size(n)
    return text if text.endswith(" bytes") else f"{text} ({n:,} bytes)"


def plan_parts(
    path: str | os.PathLike[str], *, max_requests: int, max_file_bytes: int, max_line_bytes: int | None = None
) -> SplitResult:
    """Read `path` once and plan its parts (raises SplitError for a line that fits in no part).

    `max_line_bytes` None or 0: no per-line limit. The SHA-256 is of the whole file, BOM included.
    """
    planner = Planner(max_requests=max_requests, max_file_bytes=max_file_bytes, max_line_bytes=max_line_bytes)
    digest = hashlib.sha256()
    update, feed = digest.update, planner.line
    size = lines = 0
    for lines, offset, raw in iter_raw_lines(path):
        if offset != size:  # line 1 after a BOM that iter_raw_lines stripped
            update(BOM)
        update(raw)
        size = offset + len(raw)
        feed(lines, offset, raw)
    return SplitResult(os.fspath(path), planner.finish(), digest.hexdigest(), planner.requests, size, lines)


def write_part(path: str | os.PathLike[str], plan: PartPlan, target: str | os.PathLike[str]) -> Path:
    """Copy the part's bytes of `path` to `target` (owner-only), via `target.part` and a rename.

    A crash leaves at most a stray `.part` file, never a short file under the final name.
    """
    target = Path(target)
    temp = target.with_name(target.name + ".part")
    try:
        with open(path, "rb") as src, open(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as out:
            src.seek(plan.byte_start)
            remaining = plan.bytes
            while remaining:
                chunk = src.read(min(COPY_CHUNK, remaining))
                if not chunk:
                    raise SplitError(
                        f"{os.fspath(path)} changed after it was split: it ends before byte {plan.byte_end:,}, "
                        f"the end of part {plan.index + 1}",
                        "Submit the file again, as it is now.",
                    )
                out.write(chunk)
                remaining -= len(chunk)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return target


def describe_split(result: SplitResult, max_requests: int, max_file_bytes: int | None = None) -> str:
    """The announcement before submitting: "input has 120,000 requests: 3 batches of ≤ 50,000".

    With `max_file_bytes`, says so too when the size limit, not the request count, made the cut.
    """
    head = f"input has {result.total_requests:,} request{'s' if result.total_requests != 1 else ''}"
    count = len(result.parts)
    if count == 1:
        return f"{head}: 1 batch"
    text = f"{head}: {count:,} batches of ≤ {max_requests:,}"
    if max_file_bytes is not None and any(p.request_count < max_requests for p in result.parts[:-1]):
        text += f" requests and ≤ {format_size(max_file_bytes)}"
    return text
