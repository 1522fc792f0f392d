"""A job as people and scripts see it: its parts' batches summed into one aggregate, and the journal
brought up to date with what the server said.

`aggregate` folds the parts' batches into one `Batch` whose id is the job id (status, summed counts,
earliest start, latest end), so everything that shows a batch (panels, exit codes) shows a job too.
Once a retry added parts, its counts are the job's requests, each once by its newest outcome
(`attempts.job_counts`, the rule `download JOB` merges by), not the attempts summed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from batchctl.jobs.records import Job, Part
from batchctl.urls import display_url

if TYPE_CHECKING:
    from batchctl.api import Batch, BatchClient
    from batchctl.jobs.attempts import JobCounts
    from batchctl.jobs.store import Journal

# The worst final state wins, as for the exit code of several batches.
_FINAL_ORDER = ("failed", "expired", "cancelled", "completed")
_RUNNING_ORDER = ("cancelling", "finalizing", "in_progress", "validating")


def aggregate_status(statuses: Sequence[str | None]) -> str:
    """`completed` when every part completed; while any runs, the most advanced running state; else the worst end."""
    known = [s for s in statuses if s]
    if len(known) < len(statuses) or not known:
        return "submitting"
    from batchctl.api.models import TERMINAL_STATUSES

    running = [s for s in known if s not in TERMINAL_STATUSES]
    if running:
        if "cancelling" in running:
            return "cancelling"
        return "in_progress" if any(s != "validating" for s in known) else "validating"
    for status in _FINAL_ORDER:
        if status in known:
            return status
    return known[0]


def aggregate(job: Job, batches: Sequence[Batch], parts: Sequence[Part] | None = None) -> Batch:
    """The job as one Batch: id = job id, summed request counts, combined status and times.

    With `parts` (the job's, in the order of `batches`) that include retry parts: `request_counts` are the
    job's requests (total = the original parts', each request once by its newest outcome: `job_counts`),
    and a job whose every request succeeded is `completed` whatever its earlier attempts ended as."""
    from batchctl.api.models import Batch, RequestCounts

    def total(attr: str) -> int:
        return sum(getattr(b.request_counts, attr) or 0 for b in batches)

    def first(attr: str) -> Any:
        values = [getattr(b, attr) for b in batches if getattr(b, attr) is not None]
        return min(values) if values else None

    status = aggregate_status([b.status for b in batches])
    counts = RequestCounts(total=total("total"), completed=total("completed"), failed=total("failed"))
    if parts is not None and any(p.retry_of is not None for p in parts):
        from batchctl.jobs.attempts import job_counts

        found = job_counts(parts, {b.id: b for b in batches})
        counts = RequestCounts(total=found.requests, completed=found.succeeded, failed=found.failed)
        if status in _FINAL_ORDER and found.succeeded == found.requests:
            status = "completed"  # every request has its answer: the attempts that failed are history
    ended = status in _FINAL_ORDER
    last = {attr: max((getattr(b, attr) for b in batches if getattr(b, attr)), default=None)
            for attr in ("completed_at", "failed_at", "expired_at", "cancelled_at", "finalizing_at")}
    outputs = [b.output_file_id for b in batches if b.output_file_id]
    errors = [b.error_file_id for b in batches if b.error_file_id]
    return Batch(
        id=job.id,
        object="job",
        endpoint=job.endpoint,
        model=job.model or next((b.model for b in batches if b.model), None),
        completion_window=job.completion_window,
        status=status,
        output_file_id=_files(outputs),
        error_file_id=_files(errors),
        created_at=first("created_at"),
        in_progress_at=first("in_progress_at"),
        expires_at=first("expires_at"),
        completed_at=last["completed_at"] if ended and status == "completed" else None,
        failed_at=last["failed_at"] if ended else None,
        expired_at=last["expired_at"] if ended else None,
        cancelled_at=last["cancelled_at"] if ended else None,
        finalizing_at=last["finalizing_at"],
        request_counts=counts,
        progress=_percent(batches),
        metadata=job.metadata or None,
    )


def _percent(batches: Sequence[Batch]) -> float | None:
    """The parts' mean percentage when they report one instead of counts (together), else None."""
    if not batches or any(b.request_counts.total or b.progress is None for b in batches):
        return None
    return sum(b.progress or 0.0 for b in batches) / len(batches)


def _files(ids: list[str]) -> str | None:
    """One part's file id, or how many parts have one (each part's own id is in its row)."""
    return ids[0] if len(ids) == 1 else f"{len(ids)} files, one per part" if ids else None


@dataclass
class JobView:
    """A job, its parts and (when fetched) their batches and the aggregate: what `status JOB` shows."""

    job: Job
    parts: list[Part]
    batches: list[Batch] = field(default_factory=list)
    total: Batch | None = None
    bill: dict[str, Any] | None = None  # the totals of its last download's bill (Bill.totals)

    @property
    def batch_ids(self) -> list[str]:
        return [p.batch_id for p in self.parts if p.batch_id]

    @property
    def requests(self) -> JobCounts:
        """The job's requests by their newest outcome (retry parts' attempts counted once), as last seen."""
        from batchctl.jobs.attempts import job_counts

        return job_counts(self.parts, {b.id: b for b in self.batches})

    def to_dict(self) -> dict[str, Any]:
        by_id = {b.id: b for b in self.batches}
        counts = self.requests
        return {
            **job_dict(self.job),
            "requests": {"total": counts.requests, "succeeded": counts.succeeded, "failed": counts.failed,
                         "pending": counts.pending},  # fmt: skip
            "aggregate": self.total.model_dump(mode="json") if self.total is not None else None,
            "parts": [part_dict(p, by_id.get(p.batch_id or "")) for p in self.parts],
            "bill": self.bill,
        }


def job_dict(job: Job) -> dict[str, Any]:
    return {
        "job_id": job.id,
        "object": "job",
        "state": job.state,
        "created_at": int(job.created_at),
        "input_path": job.input_path,
        "input_sha256": job.input_sha256,
        "input_size": job.input_size,
        "input_requests": job.input_lines,
        "profile": job.profile,
        "base_url": display_url(job.base_url),
        "provider": job.provider,
        "channel": job.channel,
        "endpoint": job.endpoint,
        "model": job.model,
        "completion_window": job.completion_window,
        "metadata": job.metadata,
    }


def part_dict(part: Part, batch: Batch | None = None) -> dict[str, Any]:
    counts = batch.request_counts if batch is not None else None
    return {
        "part": part.index,
        "first_line": part.first_line,
        "last_line": part.last_line,
        "requests": part.request_count,
        "file_id": part.file_id,
        "batch_id": part.batch_id,
        "step": part.step,
        "status": batch.status if batch is not None else part.status,
        "request_counts": {
            "total": counts.total if counts else part.total,
            "completed": counts.completed if counts else part.completed,
            "failed": counts.failed if counts else part.failed,
        },
        "output_file_id": batch.output_file_id if batch is not None else part.output_file_id,
        "error_file_id": batch.error_file_id if batch is not None else part.error_file_id,
        "retry_of": part.retry_of,
    }


def note_batches(journal: Journal, job: Job, batches: Sequence[Batch]) -> Job:
    """Write what the server said about the job's batches into its parts, and the job's state once all ended."""
    from batchctl.api.models import TERMINAL_STATUSES

    by_id = {b.id: b for b in batches}
    parts = journal.parts(job.id)
    for part in parts:
        batch = by_id.get(part.batch_id or "")
        if batch is None:
            continue
        counts = batch.request_counts
        journal.update_part(
            job.id, part.index, status=batch.status, total=counts.total, completed=counts.completed,
            failed=counts.failed, output_file_id=batch.output_file_id, error_file_id=batch.error_file_id,
        )  # fmt: skip
    statuses = [by_id[p.batch_id].status if p.batch_id in by_id else p.status for p in parts]
    if job.state in ("active", "completed", "failed", "cancelled") and all(s in TERMINAL_STATUSES for s in statuses):
        final = aggregate_status(statuses)
        state = final if final in ("completed", "failed", "cancelled") else "failed"
        job = journal.update_job(job.id, state=state) or job
    return job


def load_view(journal: Journal, job: Job, client_for: Callable[[str], BatchClient] | None = None) -> JobView:
    """The job and its parts from the journal; with `client_for`, each part's batch fetched and noted."""
    view = JobView(job, journal.parts(job.id), bill=journal.bill(job.id))
    if client_for is None:
        return view
    view.batches = [client_for(batch_id).batches.retrieve(batch_id) for batch_id in view.batch_ids]
    view.job = note_batches(journal, job, view.batches)
    view.parts = journal.parts(job.id)
    view.total = aggregate(view.job, view.batches, view.parts)
    return view


def list_jobs(journal: Journal) -> list[JobView]:
    """Every job the journal knows, newest first, with its parts as last seen (no network)."""
    return [JobView(job, journal.parts(job.id), bill=journal.bill(job.id)) for job in journal.jobs()]


def watch_job(
    journal: Journal, job: Job, client_for: Callable[[str], BatchClient], watch: Callable[[list[str]], Sequence[Batch]]
) -> JobView:
    """Watch every part of a job to its end (`watch(batch_ids)`), then the job with its aggregate."""
    view = JobView(job, journal.parts(job.id), bill=journal.bill(job.id))
    if not view.batch_ids:
        from batchctl.errors import BatchctlError

        raise BatchctlError(f"{job.id} has no batch yet", f"Finish submitting it: run the same submit again ({job.input_path}).")
    view.batches = list(watch(view.batch_ids))
    view.job = note_batches(journal, job, view.batches)
    view.parts = journal.parts(job.id)
    view.total = aggregate(view.job, view.batches, view.parts)
    return view
