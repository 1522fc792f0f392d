"""Why requests failed: failed lines by error code and HTTP status, the most common messages, what next.

Streams output and error files once. A failed line is one with an `error`, or a response whose
`status_code` is 400 or more (`results.result_failed`); its code is `error.code`, else the response
body's `error.code` / `error.type`, else `http_<status>`. Distinct messages are counted up to
`MESSAGE_SLOTS` (constant memory whatever the file size); later new ones count as "other".
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from batchctl.results import iter_result_lines, parse_result, result_failed

# Codes worth sending again as they are: limits, timeouts, server trouble, expiry. Others need the
# request fixed first (invalid_request_error, context_length_exceeded, content filters, ...).
RETRYABLE_CODES = frozenset({
    "rate_limit_exceeded", "rate_limit_error", "insufficient_quota_temporarily", "server_error", "internal_error",
    "internal_server_error", "service_unavailable", "timeout", "request_timeout", "batch_expired", "expired",
    "batch_cancelled", "cancelled", "overloaded", "engine_overloaded",
    # DashScope
    "Throttling", "Throttling.RateQuota", "Throttling.AllocationQuota", "InternalError", "InternalError.Algo",
    "InternalError.Timeout", "ServiceUnavailable", "RequestTimeOut",
})  # fmt: skip
RETRYABLE_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})
MESSAGE_SLOTS = 1000
TOP_MESSAGES = 3
UNREADABLE = "unreadable_line"


def is_retryable(code: str | None, status: int | None) -> bool:
    return code in RETRYABLE_CODES or status in RETRYABLE_STATUSES or (code or "").startswith("http_5")


def _error_of(result: dict[str, Any]) -> tuple[str, int | None, str]:
    """(code, HTTP status, message) of a failed result line."""
    response = result.get("response")
    status = response.get("status_code") if isinstance(response, dict) else None
    status = status if isinstance(status, int) and not isinstance(status, bool) else None
    error = result.get("error")
    if not isinstance(error, dict):
        body = response.get("body") if isinstance(response, dict) else None
        error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        code = error.get("code") or error.get("type")
        message = error.get("message")
    else:
        code, message = None, error if isinstance(error, str) else None
    if not code:
        code = f"http_{status}" if status else "no_response"
    return str(code), status, str(message or (f"HTTP {status}" if status else "no response"))


@dataclass
class ErrorGroup:
    code: str
    status: int | None
    count: int = 0
    retryable: bool = False

    def to_dict(self) -> dict:
        return {"code": self.code, "status": self.status, "count": self.count, "retryable": self.retryable}


@dataclass
class FailureSummary:
    """Failed requests of a batch (or a job's batches) and what to do about them."""

    lines: int = 0
    succeeded: int = 0
    failed: int = 0
    groups: dict[tuple[str, int | None], ErrorGroup] = field(default_factory=dict)
    messages: Counter[str] = field(default_factory=Counter)
    example_of: dict[str, str | None] = field(default_factory=dict)
    batch_ids: list[str] = field(default_factory=list)  # for the retry hint: batch ids, and job ids for a job's

    def add_success(self) -> None:
        """Count a result line known to be a success."""
        self.add_successes(1)

    def add_successes(self, count: int) -> None:
        """Count `count` result lines known to be successes."""
        self.lines += count
        self.succeeded += count

    def add_line(self, result: dict[str, Any] | None) -> None:
        if result is not None and not result_failed(result):
            self.add_success()
            return
        self.lines += 1
        self.failed += 1
        if result is None:
            code, status, message, custom_id = UNREADABLE, None, "the line is not a JSON object", None
        else:
            code, status, message = _error_of(result)
            custom_id = result.get("custom_id") if isinstance(result.get("custom_id"), str) else None
        group = self.groups.get((code, status))
        if group is None:
            group = self.groups[(code, status)] = ErrorGroup(code, status, retryable=is_retryable(code, status))
        group.count += 1
        if message not in self.messages and len(self.messages) >= MESSAGE_SLOTS:
            message = "(other messages)"
        self.messages[message] += 1
        self.example_of.setdefault(message, custom_id)

    @property
    def retryable(self) -> int:
        return sum(g.count for g in self.groups.values() if g.retryable)

    @property
    def no_success(self) -> bool:
        """Finished with lines but not one successful: a problem even if the batch says completed."""
        return self.lines > 0 and self.succeeded == 0

    def top_messages(self, n: int = TOP_MESSAGES) -> list[dict]:
        return [
            {"message": m, "count": c, "example_custom_id": self.example_of.get(m)} for m, c in self.messages.most_common(n)
        ]

    def next_step(self) -> str | None:
        """What to do next, in words with the command, or None when nothing failed."""
        if not self.failed:
            return None
        # `retry` takes one JOB|BATCH: one command per id (a job's batches are named by the job).
        ids = list(dict.fromkeys(self.batch_ids)) or ["BATCH_ID"]
        target = "; batchctl retry ".join(ids)
        fixed = self.failed - self.retryable
        if self.retryable and not fixed:
            return f"All {self.failed} failures are retryable: batchctl retry {target}"
        if self.retryable:
            return (
                f"{self.retryable} failures are retryable (batchctl retry {target}); fix the other {fixed} "
                "requests (see the errors file) and submit them again"
            )
        return "Fix the failed requests (see the errors file and the messages above) and submit them again"

    def to_dict(self) -> dict:
        groups = sorted(self.groups.values(), key=lambda g: (-g.count, g.code))
        return {
            "lines": self.lines,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "retryable": self.retryable,
            "no_success": self.no_success,
            "by_code": [g.to_dict() for g in groups],
            "top_messages": self.top_messages(),
            "next_step": self.next_step(),
        }


def summarize_failure_lines(lines: Iterable[bytes], summary: FailureSummary | None = None) -> FailureSummary:
    summary = summary if summary is not None else FailureSummary()
    for line in lines:
        summary.add_line(parse_result(line))
    return summary


def summarize_failures(paths: Sequence[str | os.PathLike[str]], *, batch_ids: Sequence[str] = ()) -> FailureSummary:
    """Failures in result files (output and error files alike), streamed; `batch_ids` name the retry."""
    summary = summarize_failure_lines(iter_result_lines([Path(p) for p in paths]))
    summary.batch_ids = list(batch_ids)
    return summary
