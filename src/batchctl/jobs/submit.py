"""The submit use case for a FILE: check it, split it into parts within the profile's limits, and take
each part through upload -> create, every step recorded in the journal before it runs.

Running the same submit again (same input content, server, profile and submission options) attaches to
the job it made: finished steps are not repeated, a cut-off upload is redone, and a create whose answer
never came is reconciled with the server first. One process at a time drives a job (a file lock).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from batchctl.errors import BatchctlError, interrupted_exit_code
from batchctl.jobs.steps import PartContext, advance_part, kill_point

if TYPE_CHECKING:
    from batchctl.api import Batch, BatchClient
    from batchctl.config import Settings
    from batchctl.downloading import Cleanup, DownloadOutcome
    from batchctl.jobs.records import Job, Part
    from batchctl.jobs.retry import RetryOutcome
    from batchctl.jobs.split import SplitResult
    from batchctl.jobs.store import Journal
    from batchctl.providers import ProviderSpec
    from batchctl.reporting import Reporter
    from batchctl.submitting import SubmitRequest

# `wait_for_all(batch_ids, resume_hint)` watches batches to their end (the CLI's watcher).
WaitForAll = Callable[[list[str], str], "list[Batch]"]
UNLIMITED = 1 << 62


@dataclass
class JobOutcome:
    """What `submit FILE` did: the job, its parts, and (with wait) how its batches ended and what was saved."""

    job: Job
    parts: list[Part]
    attached: bool = False  # an earlier job of the same submission was attached to
    batches: dict[str, Batch] = field(default_factory=dict)  # batch id -> as created or last fetched
    final: list[Batch] | None = None
    total: Batch | None = None  # the aggregate, once final
    download: DownloadOutcome | None = None
    cleanup: Cleanup | None = None
    retries: list[RetryOutcome] = field(default_factory=list)  # `--retry N`: the rounds run

    @property
    def batch_ids(self) -> list[str]:
        return [p.batch_id for p in self.parts if p.batch_id]

    @property
    def result_id(self) -> str:
        """What stdout gets: a one-part job's batch id (as before jobs), else the job id."""
        return self.parts[0].batch_id or self.job.id if len(self.parts) == 1 else self.job.id

    def to_dict(self) -> dict[str, Any]:
        from batchctl.jobs.view import JobView

        if len(self.parts) == 1 and self.parts[0].batch_id:
            final = {b.id: b for b in self.final or []}
            batch = final.get(self.parts[0].batch_id) or self.batches.get(self.parts[0].batch_id)
            if batch is not None:
                data = {**batch.model_dump(mode="json"), "job_id": self.job.id}
                if self.download is not None:  # with --wait: the files written and their counts
                    data["download"] = self.download.to_dict()
                return data
        batches = list({**self.batches, **{b.id: b for b in self.final or []}}.values())
        data = JobView(self.job, self.parts, batches, self.total).to_dict()
        if self.download is not None:
            data["download"] = self.download.to_dict()
        if self.retries:
            data["retries"] = [r.to_dict() for r in self.retries]
        return data


@contextmanager
def job_lock(data: Path, job_id: str) -> Iterator[None]:
    """One process drives a job at a time; another waits here, then finds the work done."""
    directory = data / "jobs" / job_id
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / "lock", "a") as handle:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX: no lock
            yield
            return
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def split_input(path: Path, spec: ProviderSpec, *, split: bool) -> SplitResult:
    """Plan the parts; with split=False a file that needs more than one batch is refused with the numbers."""
    from batchctl.jobs.split import plan_parts
    from batchctl.validation.report import check_limits

    result = plan_parts(path, max_requests=spec.max_requests, max_file_bytes=spec.max_file_bytes, max_line_bytes=spec.max_line_bytes)
    if not split and len(result.parts) > 1:
        problems = check_limits(result.total_requests, result.size, spec)
        reason = "; ".join(p.message for p in problems) or f"it needs {len(result.parts)} batches"
        raise BatchctlError(f"{path.name}: {reason}; nothing was uploaded", "Drop --no-split to submit it as a job of several batches.")
    return result


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts))


def open_job(
    request: SubmitRequest, settings: Settings, spec: ProviderSpec, split: SplitResult, plan_endpoint: str,
    journal: Journal, reporter: Reporter,
) -> tuple[Job, bool]:
    """The job for this submission: a new one, or (unless `request.new`) the live one that already stands for it."""
    from batchctl.jobs.records import JobExists, options_key, submission_options

    options = submission_options(
        input_sha256=split.sha256, base_url=settings.base_url, profile=settings.profile_name, channel=settings.channel,
        endpoint=plan_endpoint, model=request.model, completion_window=request.completion_window,
        metadata=request.metadata, max_requests=spec.max_requests, max_file_bytes=spec.max_file_bytes,
        max_line_bytes=spec.max_line_bytes,
    )  # fmt: skip
    options.update(request.job_options or {})  # e.g. what `submit DATA --template` prepared the input from
    key = options_key(_keyed(options))
    if request.new:
        earlier = journal.find_job(key)
        if earlier is not None:  # it stays listed and reachable; it just no longer stands for this submission
            journal.update_job(earlier.id, options_key=f"{key}~{earlier.id}")
    assert request.file is not None
    try:
        job = journal.create_job(
            input_path=str(request.file.resolve()), input_sha256=split.sha256, input_size=split.size,
            input_lines=split.total_requests, profile=settings.profile_name, base_url=settings.base_url,
            provider=settings.provider, options=options, options_key=key, channel=settings.channel,
            endpoint=plan_endpoint, model=request.model, completion_window=request.completion_window,
            metadata=request.metadata, state="splitting",
        )  # fmt: skip
    except JobExists as exc:
        job = _note_data_sha256(journal, exc.job, options)
        if job.state in ("active", "completed"):
            reporter.info(f"already submitted as {job.id} on {_when(job.created_at)}: attaching; --new to submit again")
        else:
            reporter.info(f"{job.id} (started {_when(job.created_at)}) did not finish submitting: resuming it; --new to submit again")
        return job, True
    return job, False


def _keyed(options: dict[str, Any]) -> dict[str, Any]:
    """The options a re-run finds its job by: all but the data file's SHA-256 (`submit DATA --template`)."""
    from batchctl.preparing import DATA_SHA256

    prepared = options.get("prepare")
    if not isinstance(prepared, dict) or DATA_SHA256 not in prepared:
        return options
    return {**options, "prepare": {k: v for k, v in prepared.items() if k != DATA_SHA256}}


def _note_data_sha256(journal: Journal, job: Job, options: dict[str, Any]) -> Job:
    """A re-run that attaches to `job` from a data file whose content changed but whose requests did not
    (the same input, so every row has the same request in the same place, e.g. a re-saved table or an edited
    column the template does not use): the job records the file as it is now, for `download --join`."""
    from batchctl.preparing import DATA_SHA256

    now = (options.get("prepare") or {}).get(DATA_SHA256)
    prepared = (job.options or {}).get("prepare")
    if not now or not isinstance(prepared, dict) or prepared.get(DATA_SHA256) == now:
        return job
    return journal.update_job(job.id, options={**job.options, "prepare": {**prepared, DATA_SHA256: now}}) or job


def submit_job(
    request: SubmitRequest,
    *,
    settings: Settings,
    spec: ProviderSpec,
    client_factory: Callable[[], BatchClient],
    reporter: Reporter,
    journal: Journal,
    on_id: Callable[[str], None] | None = None,
    wait_for_all: WaitForAll | None = None,
    debug_log: Callable[[str], None] | None = None,
) -> JobOutcome:
    """Check FILE, split it, and get every part created exactly once; with `request.wait`, watch the
    parts to their end and save the job's results as one output and one error file."""
    from batchctl.submission import UploadFile
    from batchctl.submitting import preflight, tell_next_steps

    assert request.file is not None
    # The whole file is validated first; its file-level limits are the split's business (unless --no-split).
    check_spec = spec if not request.split else dataclasses.replace(spec, max_requests=UNLIMITED, max_file_bytes=UNLIMITED)
    with UploadFile(request.file) as upload:
        plan = preflight(request, settings, check_spec, upload, reporter, debug_log=debug_log)
    # -o or --errors-output given: the results go there, whatever was saved before
    named = request.download.output is not None or request.download.errors_output is not None
    if request.wait:  # the result paths were settled (and checked) before anything is uploaded
        request.download = dataclasses.replace(request.download, output=plan.output, errors_output=plan.errors_output)
    split = split_input(request.file, spec, split=request.split)
    job, attached = open_job(request, settings, spec, split, plan.endpoint, journal, reporter)
    outcome = _drive(request, spec, split, plan, job, attached, journal, client_factory, reporter, on_id)
    try:
        if len(outcome.parts) == 1 and on_id is not None:
            on_id(outcome.result_id)
        if attached and not outcome.batches and len(outcome.parts) == 1:
            outcome.batches[outcome.result_id] = client_factory().batches.retrieve(outcome.result_id)
        if not request.wait or wait_for_all is None:
            tell_next_steps(reporter, outcome.result_id)
            return outcome
        from batchctl.jobs.download import wait_and_download

        wait_and_download(outcome, request, journal, client_factory, wait_for_all, reporter,
                          reuse_saved=attached and not named and not request.download.force)  # fmt: skip
    except KeyboardInterrupt as exc:
        # Between steps (the watcher handles its own Ctrl+C): the batches run on; say how to go on.
        from batchctl.downloading import resume_command

        output, errors_output = request.download.output, request.download.errors_output
        hint = (
            resume_command(outcome.result_id, output, errors_output)
            if request.wait and output is not None and errors_output is not None
            else f"Watch it: batchctl status --watch {outcome.result_id}"
        )
        raise BatchctlError(
            f"stopped; {outcome.result_id} keeps running on the server", hint, interrupted_exit_code(exc)
        ) from None
    return outcome


def resume_hint(request: SubmitRequest, job: Job) -> str:
    """How to resume `job`, cut off while submitting: the same submit finds it by its input and options, except
    with --new (that starts yet another job). Said for the job only while it still stands for them."""
    if request.new:
        return (f"Run the same submit without --new: it resumes {job.id} where this one stopped (with --new it would "
                f"start another job and upload everything again; batchctl jobs forget {job.id} drops this one).")  # fmt: skip
    return f"Run the same submit again: it resumes {job.id} where this one stopped."


def _drive(
    request: SubmitRequest, spec: ProviderSpec, split: SplitResult, plan: Any, job: Job, attached: bool,
    journal: Journal, client_factory: Callable[[], BatchClient], reporter: Reporter, on_id: Callable[[str], None] | None,
) -> JobOutcome:
    """Under the job's lock: plan the parts (once), then take each to a created batch from where it stopped."""
    from batchctl.config import data_dir
    from batchctl.jobs.split import describe_split

    assert request.file is not None
    data = data_dir()
    with job_lock(data, job.id):
        job = journal.get_job(job.id) or job
        parts = journal.parts(job.id)
        if not parts:
            step = journal.begin_step(job.id, "split", detail=f"{len(split.parts)} parts")
            parts = journal.add_parts(job.id, split.parts)
            journal.finish_step(step)
            journal.update_job(job.id, state="submitting")
            kill_point("split")
        if len(parts) > 1 and not attached:
            reporter.info(describe_split(split, spec.max_requests, spec.max_file_bytes) + f" ({job.id})")
        if len(parts) > 1 and on_id is not None:
            on_id(job.id)
        outcome = JobOutcome(job, parts, attached=attached)
        try:
            if any(not p.batch_id for p in parts):
                again = "run the same submit without --new" if request.new else "run the same submit again"
                ctx = PartContext(journal, client_factory(), job, reporter, request.file, data / "jobs" / job.id,
                                  split.size, len(parts), plan.model, again)  # fmt: skip
                for n, part in enumerate(parts):
                    parts[n], batch = advance_part(ctx, part)
                    if batch is not None:
                        outcome.batches[batch.id] = batch
            if job.state in ("splitting", "submitting"):
                job = journal.update_job(job.id, state="active") or job
        except KeyboardInterrupt as exc:
            raise BatchctlError(f"interrupted while submitting {job.id}", resume_hint(request, job), interrupted_exit_code(exc)) from None
    outcome.job, outcome.parts = job, journal.parts(job.id)
    return outcome
