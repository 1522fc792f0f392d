"""Which requests of a job still need an answer, after every attempt so far (its parts and their retries).

The newest successful result of a `custom_id` counts; a failure in a newer part never hides an older
success (`merging.ResultIndex` with the part index as rank). A request without a success is retried
from the part that was asked for it last, with the code of that attempt: the result's error code
(`error.code`, else `response.body.error.code`, else the HTTP status), or, when that part returned
nothing for it, `batch_expired` / `batch_cancelled` by the batch's status, else `missing_result`.

Everything streams: the index holds `custom_id -> (file, offset)`, never the results themselves.
"""

from __future__ import annotations

import bisect
import os
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from batchctl.results import MISSING_RESULT_CODE, parse_result
from batchctl.validation import iter_raw_lines
from batchctl.validation.jsonl import decode_json

if TYPE_CHECKING:
    from batchctl.api import Batch, BatchClient
    from batchctl.jobs.records import Part

EXPIRED_CODE = "batch_expired"
CANCELLED_CODE = "batch_cancelled"
_NO_RESULT_CODES = {"expired": EXPIRED_CODE, "cancelled": CANCELLED_CODE}


def failure_codes(result: Mapping[str, Any] | None) -> tuple[str, ...]:
    """The codes a failed result line answers to: its error code, then its HTTP status (as text)."""
    if not result:
        return ("unreadable_result",)
    codes: list[str] = []
    error = result.get("error")
    if isinstance(error, dict) and error.get("code"):
        codes.append(str(error["code"]))
    response = result.get("response")
    if isinstance(response, dict):
        body = response.get("body")
        inner = body.get("error") if isinstance(body, dict) else None
        if isinstance(inner, dict) and inner.get("code") and not codes:
            codes.append(str(inner["code"]))
        status = response.get("status_code")
        if isinstance(status, int) and status >= 400:
            codes.append(str(status))
    return tuple(codes) or ("error",)


@dataclass
class Attempts:
    """The job's requests after every attempt: how many succeeded, and what failed with which code."""

    requests: int = 0
    succeeded: int = 0
    failed: Counter[str] = field(default_factory=Counter)  # code -> requests whose last attempt failed so
    retry: dict[int, int] = field(default_factory=dict)  # source part -> requests written to its retry file
    retry_codes: Counter[str] = field(default_factory=Counter)  # code -> requests chosen for retry
    kept: Counter[str] = field(default_factory=Counter)  # code -> failures left alone (--only-codes)
    spans: dict[int, tuple[int, int]] = field(default_factory=dict)  # source part -> (first, last) input line

    @property
    def missing(self) -> int:
        return self.failed.get(MISSING_RESULT_CODE, 0)

    @property
    def to_retry(self) -> int:
        return sum(self.retry.values())

    def summary(self) -> dict[str, Any]:
        failed = sum(self.failed.values())
        return {"requests": self.requests, "succeeded": self.succeeded, "failed": failed - self.missing,
                "missing": self.missing, "codes": dict(sorted(self.failed.items()))}  # fmt: skip


@dataclass(frozen=True)
class JobCounts:
    """A job's requests, each counted once by its newest outcome (`job_counts`)."""

    requests: int  # the original parts' requests: the job's input
    succeeded: int  # some attempt succeeded
    failed: int  # ended without a success (failed, expired, cancelled, no result)
    pending: int  # still asked of a batch that has not ended (or of a part with no batch yet)


def job_counts(parts: Sequence[Part], batches: Mapping[str, Batch] | None = None) -> JobCounts:
    """The job's requests by their newest outcome, from the parts' request counts alone (no result file read).

    The rule above, counted: a retry part asks only requests with no success yet, so a request succeeds in
    at most one attempt and the successes of all parts add up; a request is pending while the newest part
    asked for it runs (retry waits for every part to end first, so only the newest attempt can be running);
    every other request ended without a success: failed. `batches`: batch id -> the batch as just fetched,
    else the counts last noted in the part."""
    from batchctl.api.models import TERMINAL_STATUSES

    requests = sum(p.request_count for p in parts if p.retry_of is None)
    succeeded = pending = 0
    for part in parts:
        batch = (batches or {}).get(part.batch_id or "")
        if batch is not None:
            status, total = batch.status, batch.request_counts.total
            completed, failed = batch.request_counts.completed, batch.request_counts.failed
        else:
            status, total, completed, failed = part.status, part.total, part.completed or 0, part.failed or 0
        succeeded += completed
        if not part.batch_id or status not in TERMINAL_STATUSES:
            pending += max((total or part.request_count) - completed - failed, 0)
    succeeded = min(succeeded, requests)
    pending = min(pending, requests - succeeded)
    return JobCounts(requests, succeeded, requests - succeeded - pending, pending)


def fetch_results(client: BatchClient, parts: Sequence[Part], batches: Sequence[Batch], scratch: Path) -> list[tuple[int, Path]]:
    """Download every part's output and error file into `scratch`: (part index, path), in part order."""
    from batchctl.api.errors import NotFoundError
    from batchctl.result_checks import file_gone

    files: list[tuple[int, Path]] = []
    for part, batch in zip(parts, batches):
        for kind, file_id in (("output", batch.output_file_id), ("error", batch.error_file_id)):
            if file_id:
                path = scratch / f"{kind}-{part.index}.jsonl"
                try:
                    client.files.download_to(file_id, path)
                except NotFoundError as exc:  # deleted on the server (--delete-remote, files delete) or expired
                    raise file_gone(
                        f"part {part.index + 1} (batch {batch.id})", kind, file_id,
                        "Without it, which of its requests failed is unknown: nothing was retried. "
                        f"batchctl status {batch.id} shows the batch.",
                    ) from exc
                files.append((part.index, path))
    return files


def asked_by_retries(parts: Sequence[Part], client: BatchClient | None = None) -> dict[str, int]:
    """custom_id -> the newest retry part that was asked for it (from the retry parts' input files).

    A retry file deleted by hand is fetched back from the server (the part's uploaded file) when a client is given.
    """
    asked: dict[str, int] = {}
    for part in parts:
        if part.retry_of is None or not part.path:
            continue
        path = Path(part.path)
        if not path.exists() and client is not None and part.file_id:
            path.parent.mkdir(parents=True, exist_ok=True)
            client.files.download_to(part.file_id, path)
        if not path.exists():
            continue
        for _, _, raw in iter_raw_lines(path):
            cid = _custom_id(raw)
            if cid is not None:
                asked[cid] = part.index
    return asked


def _custom_id(raw: bytes) -> str | None:
    if not raw.strip():
        return None
    try:
        obj = decode_json(raw.decode())
    except ValueError:
        return None
    cid = obj.get("custom_id") if isinstance(obj, dict) else None
    return cid if isinstance(cid, str) else None


def assess(
    input_path: Path,
    parts: Sequence[Part],
    results: Sequence[tuple[int, Path]],
    statuses: Mapping[int, str | None],
    asked: Mapping[str, int],
    *,
    only_codes: Collection[str] | None = None,
    out_dir: Path | None = None,
) -> Attempts:
    """Walk the input once: count what succeeded and, with `out_dir`, write the lines to retry (verbatim)
    to `out_dir/.retry-<source part>.tmp`, one file per part they are retried from.

    `statuses`: part index -> its batch's final status. `only_codes`: retry only failures with one of these
    codes (an error code or an HTTP status); the others are counted in `kept`.
    """
    from batchctl.merging import ResultIndex

    originals = [p for p in parts if p.retry_of is None]
    starts = [p.first_line for p in originals]
    index = ResultIndex([path for _, path in results], [rank for rank, _ in results])
    outcome = Attempts()
    handles: dict[int, IO[bytes]] = {}
    try:
        for number, _, raw in iter_raw_lines(input_path):
            cid = _custom_id(raw)
            if cid is None:
                continue
            outcome.requests += 1
            best = index.best(cid)
            if best is not None and best[3]:
                outcome.succeeded += 1
                continue
            at = bisect.bisect_right(starts, number) - 1
            source = asked.get(cid, originals[at].index if at >= 0 else 0)
            if best is not None and index.rank(best[0]) >= source:
                codes = failure_codes(parse_result(index.read(cid) or b""))
            else:
                codes = (_NO_RESULT_CODES.get(statuses.get(source) or "", MISSING_RESULT_CODE),)
            outcome.failed[codes[0]] += 1
            if only_codes is not None and not set(codes) & set(only_codes):
                outcome.kept[codes[0]] += 1
                continue
            outcome.retry_codes[codes[0]] += 1
            outcome.retry[source] = outcome.retry.get(source, 0) + 1
            first, _ = outcome.spans.get(source, (number, number))
            outcome.spans[source] = (first, number)
            if out_dir is not None:
                if source not in handles:
                    handles[source] = open(out_dir / f".retry-{source}.tmp", "wb")
                handles[source].write(raw.rstrip(b"\r\n") + b"\n")
    finally:
        index.close()
        for handle in handles.values():
            handle.flush()
            os.fsync(handle.fileno())
            handle.close()
    return outcome
