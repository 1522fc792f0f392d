"""The bill of finished batches: token usage, its cost, the saving, and why requests failed.

Use cases for `batchctl usage`, and the calls `download` and `status` make
after a batch ends: `bill_for_files` (local result files), `bill_for_batches` (batch ids: a job is a list of
batches), `bill_for_download` (the files a download just saved), `failures_for_batch` (status).
Result lines are streamed once, through the usage and the failure counters together.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from batchctl.cost.failures import FailureSummary, summarize_failure_lines
from batchctl.cost.prices import PriceTable
from batchctl.cost.usage import Usage, usage_from_batch
from batchctl.results import iter_result_lines, parse_result

if TYPE_CHECKING:
    from batchctl.api import BatchClient
    from batchctl.api.models import Batch
    from batchctl.jobs.records import Part
    from batchctl.results import DownloadResult


@dataclass
class Bill:
    """Usage, cost and failures of one or more batches (or result files)."""

    usage: Usage = field(default_factory=Usage)
    failures: FailureSummary = field(default_factory=FailureSummary)
    batches: list[dict[str, Any]] = field(default_factory=list)  # id, status, request counts
    files: list[str] = field(default_factory=list)
    prices_as_of: list[str] = field(default_factory=list)

    @property
    def problem(self) -> str | None:
        """A finished batch without one successful request, said in words (None when all is well)."""
        # A part of a job counts only when none of its job's requests succeeded (a retry part whose every
        # request failed again is not the job: its other parts' successes stand).
        succeeded_in: dict[str, int] = {}  # job id -> requests that succeeded in any of its parts
        for b in self.batches:
            if b.get("job_id"):
                succeeded_in[b["job_id"]] = succeeded_in.get(b["job_id"], 0) + (b.get("completed") or 0)
        completed_empty = [b["id"] for b in self.batches if b.get("status") == "completed" and b.get("total")
                           and not b.get("completed") and not succeeded_in.get(b.get("job_id"))]  # fmt: skip
        if completed_empty or self.failures.no_success:
            return "no request succeeded" + (f" (batch {', '.join(completed_empty)} says completed)" if completed_empty else "")
        return None

    def totals(self) -> dict[str, Any] | None:
        """What the journal keeps of the bill (`jobs` shows it): tokens, cost at batch prices, currency,
        saving. None until every batch in it has finished (a partial download has no bill yet)."""
        from batchctl.api.models import TERMINAL_STATUSES

        if not self.batches or any(b.get("status") not in TERMINAL_STATUSES for b in self.batches):
            return None
        usage = self.usage.to_dict()
        keys = ("input_tokens", "output_tokens", "total_tokens", "currency", "cost", "realtime_cost", "saving", "unknown_models")
        return {**{key: usage[key] for key in keys}, "prices_as_of": self.prices_as_of}

    def to_dict(self) -> dict:
        return {
            "batches": self.batches,
            "files": self.files,
            "usage": self.usage.to_dict(),
            "failures": self.failures.to_dict(),
            "problem": self.problem,
            "prices_as_of": self.prices_as_of,
        }


def _feed(lines: Iterable[bytes], bill: Bill, *, count_usage: bool = True) -> None:
    """One pass over result lines through both counters."""
    for line in lines:
        result = parse_result(line)
        if count_usage:
            bill.usage.add_line(result)
        bill.failures.add_line(result)


def _finish(bill: Bill, prices: PriceTable) -> Bill:
    bill.usage.price_with(prices)
    bill.prices_as_of = sorted({p.as_of for p in bill.usage.prices.values() if p is not None})
    return bill


def bill_for_files(paths: Sequence[str | os.PathLike[str]], *, prices: PriceTable) -> Bill:
    """The bill of local result files (output and error files), streamed once."""
    bill = Bill(files=[str(p) for p in paths])
    _feed(iter_result_lines([Path(p) for p in paths]), bill)
    return _finish(bill, prices)


def iter_stream_lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Non-blank lines of a byte stream (a file's content from the API), memory flat per line."""
    pending = b""
    for chunk in chunks:
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            if line.strip():
                yield line.rstrip(b"\r")
    if pending.strip():
        yield pending.rstrip(b"\r")


def _batch_entry(batch: Batch) -> dict[str, Any]:
    counts = batch.request_counts
    return {
        "id": batch.id, "status": batch.status, "model": batch.model, "endpoint": batch.endpoint,
        "total": counts.total, "completed": counts.completed, "failed": counts.failed,
    }  # fmt: skip


def add_batch(bill: Bill, client: BatchClient, batch: Batch) -> None:
    """Add a batch to the bill: its own `usage` when the provider gives one (then the output file is
    read only for failures if the counts say there are some), else its output file's lines; and
    its error file for the failures. Files are streamed from the API, never saved."""
    bill.batches.append(_batch_entry(batch))
    bill.failures.batch_ids.append(batch.id)
    reported = usage_from_batch(batch)
    if reported is not None:
        bill.usage.merge(reported)
    if batch.output_file_id and (reported is None or batch.request_counts.failed):
        with client.files.content(batch.output_file_id) as stream:
            _feed(iter_stream_lines(stream), bill, count_usage=reported is None)
    if batch.error_file_id:
        with client.files.content(batch.error_file_id) as stream:
            _feed(iter_stream_lines(stream), bill, count_usage=False)


def bill_for_batches(
    client_for: Callable[[str], BatchClient], batch_ids: Sequence[str], *, prices: PriceTable
) -> Bill:
    """`batchctl usage BATCH_ID...`: one bill over the batches (a job's parts are its batches)."""
    bill = Bill()
    for batch_id in batch_ids:
        client = client_for(batch_id)
        add_batch(bill, client, client.batches.retrieve(batch_id))
    return _finish(bill, prices)


def add_job(bill: Bill, client: BatchClient, job_id: str, parts: Sequence[Part]) -> None:
    """Add a job's batches to the bill, the retry hint naming the job (`retry` takes one JOB).

    The tokens are every attempt's (each was billed). With retry parts the failures are each request's
    newest outcome, as `download JOB` merges them (`merging.ResultIndex` ranked by part: a success in any
    attempt wins, else the newest failure): a request retried twice is one request, not three."""
    import tempfile

    from batchctl.jobs.attempts import fetch_results
    from batchctl.merging import ResultIndex

    with_batch = [p for p in parts if p.batch_id]
    batches = [client.batches.retrieve(p.batch_id) for p in with_batch]  # type: ignore[arg-type]  # filtered
    retried = any(p.retry_of is not None for p in parts)
    attempts = Bill() if retried else bill
    for batch in batches:
        add_batch(attempts, client, batch)
    entries = attempts.batches[-len(batches):] if batches else []
    for entry in entries:
        entry["job_id"] = job_id
    if retried:
        bill.batches += attempts.batches
        failures = bill.failures
        before = failures.lines, failures.succeeded, failures.failed
        with tempfile.TemporaryDirectory(prefix=".batchctl-usage-") as scratch:
            results = fetch_results(client, with_batch, batches, Path(scratch))
            index = ResultIndex([path for _, path in results], [rank for rank, _ in results])
            try:
                summarize_failure_lines(index.iter_chosen(range(len(results))), failures)  # into the bill's
            finally:
                index.close()
        # The requests, each once (the tokens stay every attempt's).
        usage = attempts.usage
        usage.lines, usage.succeeded, usage.failed = (failures.lines - before[0], failures.succeeded - before[1],
                                                      failures.failed - before[2])  # fmt: skip
        bill.usage.merge(usage)
    elif batches:
        del bill.failures.batch_ids[-len(batches):]
    bill.failures.batch_ids.append(job_id)


def bill_for(
    targets: Sequence[str], *, client_for: Callable[[str], BatchClient], prices: PriceTable,
    jobs: Mapping[str, Sequence[Part]] | None = None,
) -> Bill:
    """`batchctl usage TARGET...`: local result files (a path that exists), batch ids and (`jobs`: job id ->
    its parts) job ids, one bill."""
    files = [t for t in targets if Path(t).is_file()]
    bill = Bill(files=files)
    _feed(iter_result_lines([Path(p) for p in files]), bill)
    for batch_id in (t for t in targets if t not in files):
        parts = (jobs or {}).get(batch_id)
        if parts is not None:
            first = next((p.batch_id for p in parts if p.batch_id), None)
            if first is not None:
                add_job(bill, client_for(first), batch_id, parts)
            continue
        client = client_for(batch_id)
        add_batch(bill, client, client.batches.retrieve(batch_id))
    return _finish(bill, prices)


def bill_for_download(
    result: DownloadResult, batch: Batch, *, profile: str | None = None, prices: PriceTable | None = None
) -> Bill:
    """The bill after `download` saved `result`'s files: from the counts the download made of them as
    they arrived (`result.tally`), else read back from disk; never a second download. Prices: `prices`, else the built-in table with `profile`'s overrides.

    A `--content` file has no usage left in it: the batch's own `usage` is used then (else none), unless
    the download counted the answers' results as it wrote them (`result.tally_is_answers`: a job's).
    """
    bill = Bill(batches=[_batch_entry(batch)])
    bill.failures.batch_ids.append(batch.id)
    saved = {f.kind: f.path for f in result.files}
    answers_only = "content" in saved and not (result.tally_is_answers and result.tally is not None)
    reported = usage_from_batch(batch)
    if reported is not None:
        bill.usage.merge(reported)
    if "merged" in saved:  # one line per request, the failures included
        paths = [saved["merged"]]
    elif answers_only:  # the failures come from the error file, successes from the counts
        paths = [saved["error"]] if "error" in saved else []
        bill.failures.lines += batch.request_counts.completed
        bill.failures.succeeded += batch.request_counts.completed
    else:
        paths = [saved[kind] for kind in ("output", "error") if kind in saved]
    count_usage = reported is None and not answers_only
    if result.tally is not None:  # those lines, counted as they were saved: nothing is read back
        if count_usage:
            bill.usage.merge(result.tally.usage)
        failures = result.tally.failures
        failures.lines += bill.failures.lines
        failures.succeeded += bill.failures.succeeded
        failures.batch_ids = bill.failures.batch_ids
        bill.failures = failures
    else:
        for path in paths:
            _feed(iter_result_lines([path]), bill, count_usage=count_usage and path != saved.get("error"))
    if answers_only and not bill.usage.lines:
        # No usage in the batch object (moderations report no tokens; some providers none at all) and
        # none left in the answers: the requests are still counted, from the batch's own counts.
        counts = batch.request_counts
        bill.usage.source = "batch object"
        bill.usage.succeeded, bill.usage.failed = counts.completed, counts.failed
        bill.usage.lines = counts.completed + counts.failed
    bill.files = [str(p) for p in paths]
    return _finish(bill, prices if prices is not None else _price_table(profile))


def _price_table(profile: str | None) -> PriceTable:
    from batchctl.cost.prices import price_table

    return price_table(profile)


def failures_for_batch(client: BatchClient, batch: Batch) -> FailureSummary | None:
    """`status` of a finished batch with failures (or none succeeded): its failure summary, read from
    the error file (and the output file, where some servers put failures). None when there is nothing to say."""
    counts = batch.request_counts
    if not batch.is_terminal or not (counts.failed or (counts.total and not counts.completed)):
        return None
    bill = Bill()
    bill.failures.batch_ids.append(batch.id)
    for file_id in (batch.output_file_id, batch.error_file_id):
        if file_id:
            with client.files.content(file_id) as stream:
                _feed(iter_stream_lines(stream), bill, count_usage=False)
    return bill.failures


def settle_download(journal: Any, result: DownloadResult, batch: Batch, *, profile: str | None = None) -> Bill:
    """The bill of a download just saved (`bill_for_download`), recorded in the journal against the batch
    (and its job) so `batchctl jobs` can show what it cost."""
    bill = bill_for_download(result, batch, profile=profile)
    journal.record_bill(batch.id, bill.totals())
    return bill
