"""`batchctl retry JOB|BATCH`: resubmit, into the same job, the requests that have no successful answer yet.

For each part the failed, expired, cancelled or missing requests come from, a retry part holds those
original input lines (read from the job's input, checked against its SHA-256), written to
`<data dir>/jobs/<job>/retry-NNN.jsonl` and kept there (it says which requests the part was asked).
`parts.retry_of` links it to that part. Upload and create are the same recorded, reconciled steps as
any part's (`jobs.steps`), so a retry killed half-way is resumed by running it again.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from batchctl.errors import EXIT_NOT_FINISHED, BatchctlError
from batchctl.jobs.attempts import Attempts, asked_by_retries, assess, fetch_results
from batchctl.jobs.steps import PartContext, advance_part, kill_point
from batchctl.scratch import scratch_beside

if TYPE_CHECKING:
    from batchctl.api import Batch, BatchClient
    from batchctl.jobs.records import Job, Part
    from batchctl.jobs.store import Journal
    from batchctl.jobs.submit import WaitForAll
    from batchctl.reporting import Reporter


@dataclass
class RetryOutcome:
    """What `retry` did: the new parts (none when there was nothing to retry) and the requests' state."""

    job: Job
    before: Attempts  # the requests as they stood when the retry was planned
    parts: list[Part] = field(default_factory=list)  # the retry parts made (or resumed) now
    resumed: bool = False  # an earlier retry was cut off: its parts were finished instead
    after: Attempts | None = None  # with --wait: the requests once the retry parts ended
    only_codes: list[str] | None = None
    batches: list[Batch] = field(default_factory=list)  # with --wait: the retry parts' batches as they ended

    @property
    def nothing_to_retry(self) -> bool:
        return not self.parts

    def to_dict(self) -> dict[str, Any]:
        from batchctl.jobs.view import part_dict

        return {
            "job_id": self.job.id,
            "object": "job.retry",
            "only_codes": self.only_codes,
            "resumed": self.resumed,
            "retried": self.before.to_retry,
            "retried_codes": dict(sorted(self.before.retry_codes.items())),
            "kept_codes": dict(sorted(self.before.kept.items())),
            "before": self.before.summary(),
            "after": self.after.summary() if self.after is not None else None,
            "parts": [part_dict(p) for p in self.parts],
        }


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_input(job: Job) -> Path:
    """The job's input file, refused unless it is still the content that was submitted."""
    from batchctl.jobs.file_id import is_file_id_job

    if is_file_id_job(job):  # `submit --input-file-id`: the lines are on the server, not in a local file
        raise BatchctlError(
            f"{job.id} was created from the uploaded file {job.input_path}, and retry resends lines of a local input",
            "Download the results (batchctl download " + job.id + "), then submit the failed requests as a FILE.",
        )
    path = Path(job.input_path)
    if not path.is_file():
        raise BatchctlError(
            f"{job.id}: its input {path} is gone; retry resends lines of it",
            "Put the original file back at that path, then retry again.",
        )
    if sha256_of(path) != job.input_sha256:
        raise BatchctlError(
            f"{job.id}: {path} changed since it was submitted (its SHA-256 no longer matches); "
            "retry resends the original lines and cannot find them in a changed file",
            "Restore the original file (or submit the new one as a new job: batchctl submit FILE --new).",
        )
    return path


def _finished_batches(journal: Journal, job: Job, parts: Sequence[Part], client: BatchClient) -> list[Batch]:
    from batchctl.jobs.view import aggregate, note_batches

    batches = [client.batches.retrieve(p.batch_id) for p in parts if p.batch_id]
    note_batches(journal, job, batches)
    running = [b for b in batches if not b.is_terminal]
    if running:
        total = aggregate(job, batches, parts)
        raise BatchctlError(
            f"{job.id} is {total.status} ({len(running)} of its batches still running): retry takes the requests "
            "of finished batches only",
            f"Wait for it: batchctl status --watch {job.id}; then batchctl retry {job.id}.",
            EXIT_NOT_FINISHED,
        )
    return batches


def assess_job(
    journal: Journal, job: Job, client: BatchClient, *, only_codes: Collection[str] | None = None, out_dir: Path | None = None
) -> Attempts:
    """Fetch every finished part's results and walk the input: what succeeded, what to retry."""
    parts = journal.parts(job.id)
    missing = [p.index + 1 for p in parts if not p.batch_id]
    if missing or not parts:
        raise BatchctlError(
            f"{job.id} is not fully submitted (no batch yet for part {', '.join(map(str, missing))})",
            f"Finish it first: run the same submit again (input {job.input_path}).",
        )
    batches = _finished_batches(journal, job, parts, client)
    path = check_input(job)
    base = out_dir if out_dir is not None else Path(tempfile.gettempdir())
    base.mkdir(parents=True, exist_ok=True)
    with scratch_beside(base, "retry") as scratch:
        results = fetch_results(client, parts, batches, Path(scratch))
        statuses = {p.index: b.status for p, b in zip(parts, batches)}
        return assess(path, parts, results, statuses, asked_by_retries(parts, client), only_codes=only_codes, out_dir=out_dir)


def _plan_parts(journal: Journal, job: Job, attempts: Attempts, parts_dir: Path) -> list[Part]:
    """Name the written retry files after their new parts and record the parts (one transaction)."""
    from batchctl.jobs.db import write_transaction

    first = len(journal.parts(job.id))
    planned: list[tuple[int, int, Path]] = []
    for n, source in enumerate(sorted(attempts.retry)):
        target = parts_dir / f"retry-{first + n + 1:03d}.jsonl"
        os.replace(parts_dir / f".retry-{source}.tmp", target)
        planned.append((first + n, source, target))
    step = journal.begin_step(job.id, "retry", detail=f"{attempts.to_retry} requests in {len(planned)} parts")
    with write_transaction(journal.conn):
        made = [
            journal.add_part(
                job.id, index, first_line=attempts.spans[source][0], last_line=attempts.spans[source][1],
                byte_start=0, byte_end=target.stat().st_size, request_count=attempts.retry[source],
                path=str(target), retry_of=source,
            )  # fmt: skip
            for index, source, target in planned
        ]
    journal.finish_step(step)
    journal.update_job(job.id, state="active")
    kill_point("retry-plan")
    return made


def retry_job(
    journal: Journal,
    job: Job,
    *,
    client: BatchClient,
    reporter: Reporter,
    only_codes: Collection[str] | None = None,
    wait_for_all: WaitForAll | None = None,
) -> RetryOutcome:
    """Make (or finish) the retry parts of a finished job; with `wait_for_all`, watch them to their end."""
    from batchctl.config import data_dir
    from batchctl.jobs.submit import job_lock

    data = data_dir()
    parts_dir = data / "jobs" / job.id
    with job_lock(data, job.id):
        job = journal.get_job(job.id) or job
        pending = [p for p in journal.parts(job.id) if not p.batch_id and p.retry_of is not None]
        if pending:
            reporter.info(f"an earlier retry of {job.id} was cut off: finishing its {len(pending)} part(s)")
            outcome = RetryOutcome(job, Attempts(), resumed=True, only_codes=sorted(only_codes) if only_codes else None)
            new = pending
        else:
            before = assess_job(journal, job, client, only_codes=only_codes, out_dir=parts_dir)
            outcome = RetryOutcome(job, before, only_codes=sorted(only_codes) if only_codes else None)
            if not before.retry:
                return outcome
            new = _plan_parts(journal, job, before, parts_dir)
        count = len(journal.parts(job.id))
        ctx = PartContext(journal, client, job, reporter, Path(job.input_path), parts_dir, job.input_size, count, job.model,
                          f"run batchctl retry {job.id} again")  # fmt: skip
        outcome.parts = [advance_part(ctx, part)[0] for part in new]
    if wait_for_all is not None:
        from batchctl.jobs.view import note_batches

        ids = [p.batch_id for p in outcome.parts if p.batch_id]
        outcome.batches = list(wait_for_all(ids, f"batchctl status --watch {job.id}"))
        note_batches(journal, job, outcome.batches)
        outcome.after = assess_job(journal, journal.get_job(job.id) or job, client)
        outcome.parts = [p for p in journal.parts(job.id) if p.index in {q.index for q in outcome.parts}]
    outcome.job = journal.get_job(job.id) or job
    return outcome


def retry_rounds(
    journal: Journal, job: Job, rounds: int, *, client: BatchClient, reporter: Reporter, wait_for_all: WaitForAll,
    on_round: Callable[[int, RetryOutcome], None] | None = None,
) -> list[RetryOutcome]:
    """`submit --wait --retry N`: up to `rounds` retries, each watched to its end, while requests still fail."""
    done: list[RetryOutcome] = []
    for round_ in range(1, rounds + 1):
        outcome = retry_job(journal, job, client=client, reporter=reporter, wait_for_all=wait_for_all)
        if outcome.nothing_to_retry:
            break
        done.append(outcome)
        if outcome.after is not None:
            now = outcome.after
            reporter.info(f"retry {round_}/{rounds}: {outcome.before.to_retry:,} requests resubmitted; "
                          f"{now.succeeded:,} of {now.requests:,} have succeeded now")  # fmt: skip
        if on_round is not None:
            on_round(round_, outcome)
        if outcome.after is not None and not outcome.after.to_retry:
            break
    return done


def retry(
    journal: Journal,
    id_or_prefix: str,
    *,
    client_for: Callable[[str], BatchClient],
    reporter: Reporter,
    only_codes: Collection[str] | None = None,
    wait_for_all: WaitForAll | None = None,
) -> RetryOutcome:
    """`batchctl retry JOB|BATCH`: the job it names (a batch without one gets one), then `retry_job`."""
    from batchctl.jobs.adopt import job_for

    job = job_for(journal, id_or_prefix, client_for)
    first = next((p.batch_id for p in journal.parts(job.id) if p.batch_id), None)
    if first is None:
        raise BatchctlError(f"{job.id} has no batch yet", f"Finish submitting it: run the same submit again ({job.input_path}).")
    return retry_job(journal, job, client=client_for(first), reporter=reporter, only_codes=only_codes,
                     wait_for_all=wait_for_all)  # fmt: skip
