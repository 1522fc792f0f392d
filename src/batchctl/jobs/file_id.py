"""`submit --input-file-id`: a batch created from a file already on the server, as a one-part job whose
upload is done before it starts.

The create goes through the same steps as a part of `submit FILE` (`batchctl.jobs.steps`): the intent
is recorded in the journal before the POST, the batch is tagged with the job, the part and an attempt
token, an ambiguous answer (5xx, reset, timeout) is reconciled at once with the server's batch list, and
a create cut off by a crash is reconciled by the next run. The same command again (same file id, server,
profile and options) attaches to the batch it made instead of creating another, unless `--new`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from batchctl.errors import BatchctlError, interrupted_exit_code
from batchctl.jobs.steps import PartContext, advance_part, reload

if TYPE_CHECKING:
    from batchctl.api import Batch, BatchClient
    from batchctl.config import Settings
    from batchctl.jobs.records import Job, Part
    from batchctl.jobs.store import Journal
    from batchctl.reporting import Reporter
    from batchctl.submitting import SubmitRequest

# The job option that marks a job made from an uploaded file (its input_path is that file id, not a path).
FILE_ID_OPTION = "input_file_id"


@dataclass
class FileIdContext(PartContext):
    """A one-part job whose part is the file id: messages name the file id, not a local file."""

    file_id: str = ""

    def label(self, part: Part) -> str:
        return self.file_id


@dataclass
class FileIdCreate:
    """What happened to the create: `how` is "created" (answered in this run), "adopted" (a create whose
    answer was lost, in this run or a killed one, had made it) or "attached" (an earlier run had made it)."""

    batch: Batch
    job: Job
    how: str


def file_id_options(request: SubmitRequest, settings: Settings, endpoint: str) -> dict[str, Any]:
    """The options that make two `--input-file-id` submissions "the same" (never equal to a FILE job's)."""
    return {
        FILE_ID_OPTION: request.input_file_id,
        "base_url": settings.base_url.rstrip("/"),
        "profile": settings.profile_name,
        "channel": settings.channel,
        "endpoint": endpoint,
        "completion_window": request.completion_window,
        "metadata": dict(sorted((request.metadata or {}).items())),
    }


def is_file_id_job(job: Job) -> bool:
    return bool((job.options or {}).get(FILE_ID_OPTION))


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts))


def _open(request: SubmitRequest, settings: Settings, endpoint: str, journal: Journal, reporter: Reporter) -> tuple[Job, bool]:
    """A new job for this submission, or (unless `request.new`) the live one that already stands for it."""
    from batchctl.jobs.records import JobExists, options_key

    file_id = request.input_file_id
    assert file_id is not None
    options = file_id_options(request, settings, endpoint)
    key = options_key(options)
    if request.new:
        earlier = journal.find_job(key)
        if earlier is not None:  # it stays listed and reachable; it just no longer stands for this submission
            journal.update_job(earlier.id, options_key=f"{key}~{earlier.id}")
    try:
        job = journal.create_job(
            input_path=file_id, input_sha256="", input_size=0, input_lines=0, profile=settings.profile_name,
            base_url=settings.base_url, provider=settings.provider, options=options, options_key=key,
            channel=settings.channel, endpoint=endpoint, model=None, completion_window=request.completion_window,
            metadata=request.metadata, state="submitting",
        )  # fmt: skip
    except JobExists as exc:
        job = exc.job
        batch_id = next((p.batch_id for p in journal.parts(job.id) if p.batch_id), None)
        if batch_id:
            reporter.info(f"{file_id} was already submitted with these options as {batch_id} ({job.id}) on "
                          f"{_when(job.created_at)}: attaching; --new to create another batch from it")  # fmt: skip
        else:
            reporter.info(f"{job.id} (started {_when(job.created_at)}) did not finish creating the batch from "
                          f"{file_id}: resuming it; --new to create another")  # fmt: skip
        return job, True
    return job, False


def _the_part(journal: Journal, job: Job, file_id: str) -> Part:
    """The job's one part, planned (once) as uploaded already: its file is the given file id."""
    parts = journal.parts(job.id)
    part = parts[0] if parts else journal.add_part(job.id, 0, first_line=0, last_line=0, byte_start=0, byte_end=0,
                                                   request_count=0)  # fmt: skip
    if not part.file_id:  # also when a crash came between planning the part and recording its file
        part = journal.update_part(job.id, 0, step="uploaded", file_id=file_id) or part
    return part


def _refused(journal: Journal, job: Job, part: Part, file_id: str) -> BatchctlError | None:
    """The error for a create the server refused outright (a 4xx: no batch), or None when the answer was
    ambiguous (the part is still `creating`, or reconciling found nothing: a re-run checks again)."""
    steps = [s for s in journal.steps(job.id) if s.name == "create"]
    if part.step != "uploaded" or not steps or steps[-1].outcome != "error":
        return None
    reason = steps[-1].detail or "refused"
    journal.forget_job(job.id)  # no batch and nothing uploaded by us: the same command again starts afresh
    if reason.startswith("HTTP 404"):
        hint = "Check the file id: batchctl files list shows the files on the server."
    else:
        hint = "Fix the cause, then run the same command again."
    return BatchctlError(f"creating the batch from {file_id} failed: {reason}", hint)


def create_from_file_id(
    request: SubmitRequest,
    *,
    settings: Settings,
    endpoint: str,
    client: BatchClient,
    journal: Journal,
    reporter: Reporter,
) -> FileIdCreate:
    """Get the batch for `request.input_file_id` created exactly once, or find the one already made."""
    from batchctl.config import data_dir
    from batchctl.jobs.submit import job_lock

    file_id = request.input_file_id
    assert file_id is not None
    job, attached = _open(request, settings, endpoint, journal, reporter)
    data = data_dir()
    with job_lock(data, job.id):
        job = journal.get_job(job.id) or job
        part = _the_part(journal, job, file_id)
        had_batch = bool(part.batch_id)
        ctx = FileIdContext(journal, client, job, reporter, Path(file_id), data / "jobs" / job.id, 0, 1, None,
                            file_id=file_id)  # fmt: skip
        try:
            part, batch = advance_part(ctx, part)
        except BatchctlError:
            refused = _refused(journal, job, reload(journal, job.id, 0), file_id)
            if refused is not None:
                raise refused from None
            raise
        except KeyboardInterrupt as exc:
            raise BatchctlError(
                f"interrupted while creating the batch from {file_id}",
                "The server may have created it: run the same command again; it asks the server first and "
                "adopts that batch instead of creating another.",
                interrupted_exit_code(exc),
            ) from None
        if job.state in ("splitting", "submitting"):
            job = journal.update_job(job.id, state="active") or job
    assert part.batch_id is not None
    journal.update_batch(part.batch_id, input_path=None)  # the input is on the server: no local file to name
    if batch is not None:
        return FileIdCreate(batch, job, "created")
    how = "attached" if had_batch else "adopted"  # adopted: reconciled in this run (a crash or an ambiguous answer)
    return FileIdCreate(client.batches.retrieve(part.batch_id), job, how)
