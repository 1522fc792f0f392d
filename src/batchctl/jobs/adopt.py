"""The job a retry works on: the job a job id or a part's batch id names, or (for a batch submitted before
jobs existed) a one-part job built around the batch, when the journal knows the file it was made from.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from batchctl.errors import BatchctlError

if TYPE_CHECKING:
    from batchctl.api import BatchClient
    from batchctl.jobs.records import BatchRecord, Job
    from batchctl.jobs.store import Journal

UNLIMITED = 1 << 62


def job_for(journal: Journal, id_or_prefix: str, client_for: Callable[[str], BatchClient]) -> Job:
    """The job `id_or_prefix` names: a job id (or unique start), or a batch id of one of its parts."""
    found = journal.resolve(id_or_prefix)
    if not hasattr(found, "batch_id"):
        return found  # type: ignore[return-value]
    record: BatchRecord = found  # type: ignore[assignment]
    if record.job_id:
        job = journal.get_job(record.job_id)
        if job is not None:
            return job
    return adopt_batch(journal, record, client_for(record.batch_id))


def adopt_batch(journal: Journal, record: BatchRecord, client: BatchClient) -> Job:
    """A one-part job around a batch that has none, from its input file (as the journal recorded it)."""
    from batchctl.jobs.split import plan_parts

    path = Path(record.input_path) if record.input_path else None
    if path is None or not path.is_file():
        where = f"its input file {path} is not there" if path else "the journal does not know its input file"
        raise BatchctlError(
            f"cannot retry {record.batch_id}: {where}, and retry resends the original lines of it",
            "Submit the input again (batchctl submit FILE), or put the file back where it was submitted from.",
        )
    batch = client.batches.retrieve(record.batch_id)
    split = plan_parts(path, max_requests=UNLIMITED, max_file_bytes=UNLIMITED)
    if batch.request_counts.total and batch.request_counts.total != split.total_requests:
        raise BatchctlError(
            f"cannot retry {record.batch_id}: it has {batch.request_counts.total:,} requests but {path} now has "
            f"{split.total_requests:,}; the file changed since it was submitted",
            "Restore the original file, or submit the new one: batchctl submit FILE.",
        )
    job = journal.create_job(
        input_path=str(path.resolve()), input_sha256=split.sha256, input_size=split.size, input_lines=split.total_requests,
        profile=record.profile, base_url=record.base_url, provider=record.provider,
        options={"adopted_batch": record.batch_id}, channel=record.channel, endpoint=record.endpoint or batch.endpoint,
        model=record.model, completion_window=batch.completion_window, state="active",
    )  # fmt: skip
    journal.add_part(job.id, 0, first_line=1, last_line=split.lines, byte_start=0, byte_end=split.size,
                     request_count=split.total_requests)  # fmt: skip
    journal.update_part(job.id, 0, step="created", batch_id=batch.id, file_id=record.input_file_id or batch.input_file_id,
                        status=batch.status)  # fmt: skip
    journal.update_batch(record.batch_id, job_id=job.id, part=0)
    return job


def retried_job(journal: Journal, batch_id: str) -> Job | None:
    """The job a one-part job's batch id stands for once the job has retry parts (else None: the batch is itself)."""
    record = journal.lookup_batch(batch_id)
    if record is None or not record.job_id:
        return None
    parts = journal.parts(record.job_id)
    originals = [p for p in parts if p.retry_of is None]
    if len(originals) != 1 or originals[0].batch_id != batch_id or len(parts) == 1:
        return None
    return journal.get_job(record.job_id)
