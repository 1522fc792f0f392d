"""The submit use case: every check before anything is uploaded, then upload, create once, remember;
with `wait`, see the batch through to its results.

`submit_batch` drives the steps of `batchctl.submission`; what people see along the way goes to a
`Reporter`, and waiting is the caller's (`wait_for`), so the CLI decides how both look.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from batchctl.downloading import DownloadRequest
from batchctl.errors import BatchctlError, interrupted_exit_code

if TYPE_CHECKING:
    from batchctl.api import Batch, BatchClient
    from batchctl.config import Settings
    from batchctl.downloading import Cleanup, DownloadOutcome, WaitFor
    from batchctl.jobs.store import Journal
    from batchctl.jobs.submit import JobOutcome, WaitForAll
    from batchctl.providers import ProviderSpec
    from batchctl.reporting import Reporter
    from batchctl.submission import UploadFile
    from batchctl.validation import ValidationReport

@dataclass
class SubmitRequest:
    """What the user asked for: the input (a file, or one already uploaded) and how to submit it."""

    file: Path | None = None
    input_file_id: str | None = None
    endpoint: str | None = None
    completion_window: str = "24h"
    metadata: dict[str, str] | None = None
    model: str | None = None
    validate: bool = True
    check_channel: bool = True
    wait: bool = False
    download: DownloadRequest = field(default_factory=DownloadRequest)
    cleanup: bool = False
    max_cost: float | None = None  # refuse before uploading when the estimate may cost more
    confirm: Callable[[str], bool] | None = None  # asks above the profile's threshold; None: never asks
    split: bool = True  # False: refuse a file over the limits instead of making a job of several batches
    new: bool = False  # True: a new job even when the same submission has one already
    prepare: Any = None  # a preparing.PrepareRequest: FILE is a table of rows to turn into requests first
    job_options: dict[str, Any] | None = None  # more to record in the job's options (the prepare settings)
    retry: int = 0  # with wait: up to this many rounds of `retry` for the requests that failed


@dataclass
class SubmitPlan:
    """What pre-flight settled: the endpoint, the model, the report, and (with wait) the result paths."""

    endpoint: str
    model: str | None
    report: ValidationReport | None = None
    output: Path | None = None
    errors_output: Path | None = None


@dataclass
class SubmitOutcome:
    batch: Batch  # as created
    final: Batch | None = None  # with wait: as it ended
    download: DownloadOutcome | None = None
    cleanup: Cleanup | None = None

    def to_dict(self) -> dict[str, Any]:
        data = (self.final or self.batch).model_dump(mode="json")
        if self.download is not None:  # with --wait: the files written and their counts
            data["download"] = self.download.to_dict()
        return data


def _refuse_invalid(report: ValidationReport, display: str, reporter: Reporter) -> BatchctlError:
    from batchctl.validation import invalid_error_message, problem_lines

    for line in problem_lines(report):
        reporter.info(line)
    for warning in report.warnings:
        reporter.warn(warning.message)
    hint = f"Fix the lines listed above (batchctl validate {display} shows them all), or skip the check with --no-validate."
    if report.over_one_batch:  # only over one batch's limits (--no-split): no line to fix, nothing to skip
        hint = "Every line is valid: without --no-split, submit makes it a job of several batches."
    elif report.no_requests:  # nothing to fix line by line, and nothing --no-validate could send
        from batchctl.validation.report import EMPTY_FILE_HINT

        hint = EMPTY_FILE_HINT
    return BatchctlError(invalid_error_message(report, display) + "; nothing was uploaded", hint)


def preflight(
    request: SubmitRequest,
    settings: Settings,
    spec: ProviderSpec,
    upload: UploadFile | None,
    reporter: Reporter,
    *,
    debug_log: Callable[[str], None] | None = None,
) -> SubmitPlan:
    """Every check that can refuse the submission runs here, before anything is uploaded.

    Order: completion window, the file (model rewrite, validation, blank lines), endpoint, the New-API
    channel, result files (with wait).
    """
    from batchctl.submission import preflight_channel
    from batchctl.submission import first_request, needs_normalizing
    from batchctl.validation import SHOWN_PROBLEMS, summary_line, validate_file

    from batchctl.validation import check_input_file, check_model_name

    problem = spec.check_completion_window(request.completion_window)
    if problem:
        raise BatchctlError(problem, "Pass another --completion-window.")
    if request.model is not None:
        check_model_name(request.model)  # before it is written into every line
    if request.file is not None:
        check_input_file(request.file)  # a FIFO, a device or a directory is refused before it is read

    plan = SubmitPlan(endpoint=request.endpoint or "", model=request.model)
    tally = None
    if upload is not None and request.file is not None:
        display = str(request.file)
        if request.model is not None:
            upload.rewrite(model=request.model)  # line numbers kept: problems name the user's lines
        if request.validate:
            from batchctl.cost.estimate import EstimateTally

            tally = EstimateTally(request.file, model_override=request.model)  # the estimate, in this pass
            report = validate_file(upload.path, spec=spec, endpoint=plan.endpoint or None, max_problems=SHOWN_PROBLEMS,
                                   tally=tally)  # fmt: skip
            report.path = display
            plan.report = report
            if not report.ok:
                raise _refuse_invalid(report, display, reporter)
            for warning in report.warnings:
                reporter.warn(warning.message)
            reporter.info(summary_line(report, display))
            if needs_normalizing(report):
                upload.rewrite(drop_blank_lines=True)
            plan.endpoint = plan.endpoint or report.endpoint or ""
            plan.model = plan.model or report.model
        else:
            first = first_request(upload.path) or {}
            body = first.get("body") if isinstance(first.get("body"), dict) else {}
            url = first.get("url")
            plan.endpoint = plan.endpoint or (url if isinstance(url, str) else "")
            plan.model = plan.model or (body.get("model") if isinstance(body.get("model"), str) else None)

    if request.file is not None and request.validate:
        from batchctl.cost.estimate import check_before_submit, estimate_line

        estimate = check_before_submit(
            request.file, endpoint=plan.endpoint or None, model_override=request.model,
            profile=settings.profile_name, max_cost=request.max_cost, confirm=request.confirm, tally=tally,
        )  # fmt: skip
        reporter.info("Estimate: " + estimate_line(estimate))
    if not plan.endpoint:
        raise BatchctlError(
            "no endpoint for the batch: the file gives no url", "Pass --endpoint, e.g. --endpoint /v1/chat/completions."
        )
    if request.check_channel:
        preflight_channel(settings, plan.model, info=reporter.info, warn=reporter.warn, debug_log=debug_log)
    if request.wait:
        plan.output, plan.errors_output = request.download.targets(plan.model)
    return plan


def _upload(client: BatchClient, upload: UploadFile, display: str, reporter: Reporter, plan: SubmitPlan) -> str:
    from batchctl.submission import describe_changes, upload_input

    with reporter.progress(f"Uploading {display}", upload.path.stat().st_size) as update:
        uploaded = upload_input(client, upload.path, progress=update)
    reporter.success(f"Uploaded {display} as {uploaded.id}" + describe_changes(upload, plan.model))
    return uploaded.id


def _create(client: BatchClient, request: SubmitRequest, plan: SubmitPlan, input_file_id: str) -> Batch:
    from batchctl.submission import create_batch, retry_command

    try:
        return create_batch(
            client,
            input_file_id=input_file_id,
            endpoint=plan.endpoint,
            completion_window=request.completion_window,
            metadata=request.metadata,
            uploaded=request.input_file_id is None,
        )
    except KeyboardInterrupt as exc:
        retry = retry_command(input_file_id, plan.endpoint, request.completion_window, request.metadata)
        raise BatchctlError(
            f"interrupted while creating the batch from the uploaded file {input_file_id}",
            f"The server may have created it: check `batchctl list` first. If not, create it without "
            f"uploading again: {retry}",
            interrupted_exit_code(exc),
        ) from None


def tell_next_steps(reporter: Reporter, result_id: str) -> None:
    """What to type after a submit that does not wait: watch it, then download it."""
    reporter.info(f"Watch it: batchctl status --watch {result_id}")
    reporter.info(f"Then download the results: batchctl download {result_id}")


def submit_batch(
    request: SubmitRequest,
    *,
    settings: Settings,
    spec: ProviderSpec,
    client_factory: Callable[[], BatchClient],
    reporter: Reporter,
    on_created: Callable[[Batch], None] | None = None,
    wait_for: WaitFor | None = None,
    debug_log: Callable[[str], None] | None = None,
    journal: Journal | None = None,
    on_id: Callable[[str], None] | None = None,
    wait_for_all: WaitForAll | None = None,
) -> SubmitOutcome | JobOutcome:
    """Check, upload, create the batch once and remember it; with `request.wait`, `wait_for` it, then
    download its results and (with `cleanup`) delete the input after a fully successful run.

    A FILE with a `journal` is a job (`batchctl.jobs.submit`): split within the limits, resumable,
    attached to when submitted again; `on_id` gets the id to print, `wait_for_all` watches its batches.
    An `input_file_id` with a `journal` is a one-part job whose upload is done (`batchctl.jobs.file_id`):
    its create is reconciled after an ambiguous answer or a crash, and attached to when submitted again.
    `client_factory` is called once the checks have passed (it may start the local server);
    `on_created(batch)` runs as soon as the batch exists.
    """
    from batchctl.submission import UploadFile, record_submission

    if not spec.wire.serves_files and (request.file is not None or request.wait):
        from batchctl.api.errors import FilesNotServedError

        action = "uploading the input" if request.file is not None else "submit --wait (it downloads the results)"
        raise FilesNotServedError(action, spec.wire.files_hint, spec.name)
    if request.prepare is not None:  # submit DATA --template: the requests are prepared into a temporary file
        from batchctl.preparing import prepared_input

        with prepared_input(request, spec, reporter) as prepared:
            outcome = submit_batch(
                request, settings=settings, spec=spec, client_factory=client_factory, reporter=reporter,
                on_created=on_created, wait_for=wait_for, debug_log=debug_log, journal=journal, on_id=on_id,
                wait_for_all=wait_for_all,
            )  # fmt: skip
            prepared.settle(outcome)
            return outcome
    if request.file is not None and journal is not None:
        from batchctl.jobs.submit import submit_job

        return submit_job(
            request, settings=settings, spec=spec, client_factory=client_factory, reporter=reporter,
            journal=journal, on_id=on_id, wait_for_all=wait_for_all, debug_log=debug_log,
        )  # fmt: skip

    with UploadFile(request.file) if request.file is not None else nullcontext() as upload:
        plan = preflight(request, settings, spec, upload, reporter, debug_log=debug_log)
        client = client_factory()
        input_file_id = request.input_file_id
        if upload is not None:
            input_file_id = _upload(client, upload, request.file.name if request.file else "input", reporter, plan)
    # The temporary copy is gone; from here on only the uploaded file matters.
    assert input_file_id is not None
    journaled = request.input_file_id is not None and journal is not None
    if journaled:
        # A one-part job whose upload is done: the create is journaled, tagged and reconciled as for a FILE.
        from batchctl.jobs.file_id import create_from_file_id

        batch = create_from_file_id(request, settings=settings, endpoint=plan.endpoint, client=client, journal=journal,
                                    reporter=reporter).batch  # fmt: skip
    else:
        batch = _create(client, request, plan, input_file_id)
    outcome = SubmitOutcome(batch)
    try:
        if not journaled:  # a journaled create recorded its batch (with its job) as it adopted it
            record_submission(
                settings, client, batch, input_path=request.file, input_file_id=input_file_id,
                endpoint=plan.endpoint, model=plan.model or batch.model,
            )  # fmt: skip
            reporter.success(f"Created batch {batch.id} ({batch.status})")  # a journaled create said what it did
        if on_created is not None:
            on_created(batch)
        if not request.wait or wait_for is None:
            tell_next_steps(reporter, batch.id)
            return outcome
        _wait_and_download(client, request, plan, outcome, wait_for, input_file_id)
    except KeyboardInterrupt as exc:
        # Between steps (the watcher handles its own Ctrl+C): the batch runs on; say how to go on.
        from batchctl.downloading import resume_command

        hint = (
            resume_command(batch.id, plan.output, plan.errors_output)
            if request.wait and plan.output is not None and plan.errors_output is not None
            else f"Watch it: batchctl status --watch {batch.id}"
        )
        raise BatchctlError(
            f"stopped; batch {batch.id} keeps running on the server", hint, interrupted_exit_code(exc)
        ) from None
    return outcome


def _wait_and_download(
    client: BatchClient,
    request: SubmitRequest,
    plan: SubmitPlan,
    outcome: SubmitOutcome,
    wait_for: WaitFor,
    input_file_id: str,
) -> None:
    from batchctl import journal
    from batchctl.downloading import clean_up_input, resume_command, save_finished

    assert plan.output is not None and plan.errors_output is not None
    batch = outcome.batch
    outcome.final = wait_for(batch.id, resume_command(batch.id, plan.output, plan.errors_output))
    outcome.download = save_finished(
        client, outcome.final, request.download, output=plan.output, errors_output=plan.errors_output,
        input_file_id=input_file_id,
    )  # fmt: skip
    if outcome.download.result.files:
        journal.update(batch.id, output_path=str(plan.output.resolve()))
    if request.cleanup and request.file is not None:
        outcome.cleanup = clean_up_input(request.file, outcome.download)
