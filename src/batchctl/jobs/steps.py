"""The steps of one part of a job, each announced in the journal before it runs.

upload: the part's slice (the `--model` rewrite and blank-line drop applied, as for a single batch)
is uploaded; the file id is recorded. create: the batch is created from it, tagged with the job, the
part and a fresh attempt token; a create whose answer never came is reconciled before any new one.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from batchctl.errors import BatchctlError
from batchctl.jobs import new_token
from batchctl.jobs.reconcile import UNTAGGED_STEP, find_tagged, tags

if TYPE_CHECKING:
    from batchctl.api import Batch, BatchClient
    from batchctl.jobs.records import Job, Part
    from batchctl.jobs.store import Journal
    from batchctl.reporting import Reporter

KILL_ENV = "BATCHCTL_TEST_KILL_AFTER"
_seen: dict[str, int] = {}


def kill_point(name: str) -> None:
    """Test hook: `BATCHCTL_TEST_KILL_AFTER=<step>[:<n>]` SIGKILLs this process after the n-th `<step>`."""
    wanted = os.environ.get(KILL_ENV)
    if not wanted:
        return
    step, _, count = wanted.partition(":")
    if step != name:
        return
    _seen[name] = _seen.get(name, 0) + 1
    if _seen[name] == int(count or 1):
        os.kill(os.getpid(), signal.SIGKILL)


@dataclass
class PartContext:
    """What every part of one run shares: the journal, the client, the job and how to shape uploads."""

    journal: Journal
    client: BatchClient
    job: Job
    reporter: Reporter
    input_path: Path
    parts_dir: Path
    input_size: int
    count: int  # parts in the job
    model: str | None = None  # the model the requests name (after --model), for the journal
    again: str = "run the same submit again"  # the command that takes this run up where it stopped, in words

    def label(self, part: Part) -> str:
        if part.retry_of is not None:
            return f"retry part {part.index + 1} (of part {part.retry_of + 1})"
        return f"part {part.index + 1}/{self.count}" if self.count > 1 else self.input_path.name


def reload(journal: Journal, job_id: str, index: int) -> Part:
    return next(p for p in journal.parts(job_id) if p.index == index)


def part_file(ctx: PartContext, part: Part) -> Path:
    """The bytes to upload for `part`: the input itself for a one-part job, else its slice, written once."""
    from batchctl.jobs.split import PartPlan, write_part

    if part.retry_of is not None and part.path:  # a retry's lines, written (and kept) by `jobs.retry`
        return Path(part.path)
    if ctx.count == 1:
        return ctx.input_path
    target = ctx.parts_dir / f"part-{part.index + 1:03d}.jsonl"
    if not target.exists():  # written atomically: a file under this name is whole
        ctx.parts_dir.mkdir(parents=True, exist_ok=True)
        plan = PartPlan(part.index, part.first_line, part.last_line, part.byte_start, part.byte_end, part.request_count)
        write_part(ctx.input_path, plan, target)
    return target


def _needs_cleaning(ctx: PartContext, part: Part) -> bool:
    """Blank lines in the slice, or (the whole input) a BOM or trailing blanks beyond the last request."""
    if part.retry_of is not None:  # written clean, one request a line
        return False
    if part.last_line - part.first_line + 1 != part.request_count:
        return True
    return ctx.count == 1 and (part.byte_start != 0 or part.byte_end != ctx.input_size)


def upload_part(ctx: PartContext, part: Part) -> Part:
    """Upload the part (again, when a previous upload was cut off) and record its file id."""
    from batchctl.submission import UploadFile, describe_changes, upload_input

    if part.step == "uploading":
        ctx.reporter.warn(f"{ctx.label(part)}: the last upload was cut off before it was recorded; uploading it again")
    path = part_file(ctx, part)
    step = ctx.journal.begin_step(
        ctx.job.id, "upload", part=part.index, token=new_token(),
        part_changes={"step": "uploading", "path": str(path)},
    )  # fmt: skip
    sent = 0

    def note(done: int, total: int) -> None:
        nonlocal sent
        sent = max(sent, done)
        update(done, total)

    try:
        with UploadFile(path) as upload:
            if ctx.job.model is not None:
                upload.rewrite(model=ctx.job.model)
            if _needs_cleaning(ctx, part):
                upload.rewrite(drop_blank_lines=True)
            with ctx.reporter.progress(f"Uploading {ctx.label(part)}", upload.path.stat().st_size) as update:
                uploaded = upload_input(ctx.client, upload.path, progress=note)
            changed = describe_changes(upload, ctx.job.model)
    except Exception as exc:
        if not sent or not _ambiguous(exc):
            # Not a byte left (connection refused), or the server answered no: no file was made, and the
            # next run starts this upload afresh rather than calling it cut off.
            ctx.journal.finish_step(step, "error", detail=str(exc)[:200], part_changes={"step": "planned"})
        raise
    kill_point("upload-sent")
    done = ctx.journal.finish_step(step, detail=uploaded.id, part_changes={"step": "uploaded", "file_id": uploaded.id})
    what = ctx.input_path.name if ctx.count == 1 else f"{ctx.label(part)} (lines {part.first_line:,}-{part.last_line:,})"
    if part.retry_of is not None:
        what = f"{ctx.label(part)} ({part.request_count:,} requests)"
    ctx.reporter.success(f"Uploaded {what} as {uploaded.id}{changed}")
    kill_point("upload")
    return reload(ctx.journal, done.job_id, part.index)


# How a provider that takes no `metadata` says so; not OpenAI's `Invalid 'metadata': …` (a value too long, too
# many keys): that is this metadata refused, not the field, and creating without it would drop the user's.
_UNKNOWN_FIELD = ("unknown", "unrecognized", "unrecognised", "not supported", "unsupported", "not permitted",
                  "extra inputs", "extra field", "additional propert", "cannot find field", "no such field")  # fmt: skip


def _refuses_metadata(exc: Exception) -> bool:
    """A 4xx that names the `metadata` field as one it does not know: a provider whose create takes none
    (Google's layers refuse fields they do not know: `Unknown name "metadata"`)."""
    status = getattr(exc, "status", None)
    if status is None or not 400 <= status < 500 or status in (401, 403, 404, 429):
        return False
    text = str(getattr(exc, "message", "") or exc).lower()
    return "metadata" in text and any(words in text for words in _UNKNOWN_FIELD)


def _ambiguous(exc: Exception) -> bool:
    """A failure after which the batch may exist: 5xx, no answer, or an answer that could not be read."""
    from batchctl.api import errors as api

    if isinstance(exc, (api.APIConnectionError, api.APIResponseValidationError)):
        return True
    status = getattr(exc, "status", None)
    return status is None or status >= 500


def adopt(ctx: PartContext, part: Part, batch: Batch, how: str) -> Part:
    """Record `batch` as the part's batch (the batch record first: it is what routes every later call)."""
    from batchctl.jobs.records import BatchRecord

    job = ctx.journal.get_job(ctx.job.id) or ctx.job
    ctx.journal.record_batch(
        BatchRecord(
            batch_id=batch.id, profile=job.profile, base_url=job.base_url, provider=job.provider, channel=job.channel,
            input_path=job.input_path, input_file_id=part.file_id or batch.input_file_id, endpoint=job.endpoint,
            model=ctx.model or job.model or batch.model, job_id=job.id, part=part.index,
        )  # fmt: skip
    )
    counts = batch.request_counts
    retry = part.retry_of is not None  # a retry part's file stays: it says which requests the part was asked
    step = ctx.journal.begin_step(job.id, "record", part=part.index, token=part.token, detail=how)
    ctx.journal.finish_step(
        step, detail=batch.id,
        part_changes={"step": "created", "batch_id": batch.id, "status": batch.status, "total": counts.total,
                      "completed": counts.completed, "failed": counts.failed, "path": part.path if retry else None},
    )  # fmt: skip
    if not retry and ctx.count > 1 and part.path and Path(part.path).parent == ctx.parts_dir:
        Path(part.path).unlink(missing_ok=True)  # uploaded and created: the slice has served
    return reload(ctx.journal, job.id, part.index)


def reconcile_part(ctx: PartContext, part: Part) -> Part | None:
    """Before creating again: the part's batch if the server has one tagged for it (adopted), else None."""
    untagged = [s.started_at for s in ctx.journal.steps(ctx.job.id) if s.name == UNTAGGED_STEP and s.part == part.index]

    def owner_of(batch_id: str) -> tuple[str | None, int | None] | None:
        record = ctx.journal.lookup_batch(batch_id)
        return None if record is None else (record.job_id, record.part)

    found = find_tagged(ctx.client, ctx.job, part, untagged_since=min(untagged) if untagged else None, owner_of=owner_of)
    if found is None:
        ctx.reporter.info(f"{ctx.label(part)}: the server lists no batch tagged for it, so the earlier create made none")
        return None
    ctx.reporter.info(f"{ctx.label(part)}: found {found.id} on the server, tagged for it by the earlier create; adopting it")
    return adopt(ctx, part, found, "reconciled")


def create_part(ctx: PartContext, part: Part) -> tuple[Part, Batch | None]:
    """Create the part's batch once: a fresh token, the intent recorded, then the POST; an ambiguous
    failure is reconciled at once, and the error then says what is known."""
    from batchctl.api import errors as api

    job = ctx.job
    token = new_token()
    step = ctx.journal.begin_step(job.id, "create", part=part.index, token=token, part_changes={"step": "creating", "token": token})
    part.token, part.step = token, "creating"

    def create(metadata: dict[str, str] | None) -> Batch:
        return ctx.client.batches.create(
            input_file_id=part.file_id, endpoint=job.endpoint or "", completion_window=job.completion_window or "24h",
            metadata=metadata,
        )  # fmt: skip

    try:
        try:
            batch = create(tags(job, part, token))
        except api.APIStatusError as exc:
            if not _refuses_metadata(exc):
                raise
            # A clear refusal made no batch: create it again without the tags (and the user's metadata).
            ctx.reporter.warn(f"{ctx.label(part)}: the server refuses batch metadata (HTTP {exc.status}: {exc.message}); "
                              "creating the batch without it, so a create cut off from here on cannot be matched by its tags")  # fmt: skip
            # Recorded first: a create cut off from here on is looked for among the file's untagged batches.
            ctx.journal.finish_step(ctx.journal.begin_step(job.id, UNTAGGED_STEP, part=part.index, token=token))
            batch = create(None)
    except (api.APIError, ValueError) as exc:
        reason = f"HTTP {exc.status}: {exc.message}" if getattr(exc, "status", None) else str(exc)
        if not _ambiguous(exc):
            ctx.journal.finish_step(step, "error", detail=reason, part_changes={"step": "uploaded"})
            raise BatchctlError(
                f"{ctx.label(part)} of {job.id}: the server refused to create the batch ({reason}); no batch was created",
                f"Fix the cause, then {ctx.again}: it reuses the uploaded file {part.file_id}.",
            ) from None
        ctx.journal.finish_step(step, "unknown", detail=reason)
        ctx.reporter.warn(f"{ctx.label(part)}: creating the batch failed ({reason}); asking the server whether it was created")
        adopted = reconcile_part(ctx, part)
        if adopted is not None:
            return adopted, None
        raise BatchctlError(
            f"{ctx.label(part)} of {job.id}: creating the batch failed ({reason}), and the server lists no batch "
            "tagged for it: it was not created",
            f"{ctx.again[0].upper()}{ctx.again[1:]}: it reuses the uploaded file {part.file_id} and checks the server first.",
        ) from None
    kill_point("create-sent")
    part = adopt(ctx, part, batch, "created")
    ctx.reporter.success(f"Created batch {batch.id} ({batch.status})" + (f" for {ctx.label(part)}" if ctx.count > 1 else ""))
    kill_point("create")
    return part, batch


def advance_part(ctx: PartContext, part: Part) -> tuple[Part, Batch | None]:
    """Take one part as far as a created batch, from wherever the journal says it stopped."""
    if part.batch_id:
        return part, None
    if part.step == "creating":
        adopted = reconcile_part(ctx, part)
        if adopted is not None:
            return adopted, None
    if not part.file_id:
        part = upload_part(ctx, part)
    return create_part(ctx, part)
