"""`batchctl submit FILE`: validate, upload, create the batch, remember it; with --wait, watch and download."""

from __future__ import annotations

import sys
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from batchctl.cli.commands.download import resume_command
from batchctl.cli.context import AppState
from batchctl.cli.options import (
    DebugOpt,
    DeleteRemoteOpt,
    EndpointOpt,
    ErrorsOutputOpt,
    ForceOpt,
    IntervalOpt,
    JsonOpt,
    OutputOpt,
    WaitOpt,
)
from batchctl.errors import EXIT_ERROR, EXIT_INTERRUPTED, BatchctlError

if TYPE_CHECKING:
    from batchctl.api import Batch, BatchClient, FileObject
    from batchctl.config import Settings
    from batchctl.cli.output import Output
    from batchctl.providers import ProviderSpec
    from batchctl.results import DownloadResult
    from batchctl.submission import UploadFile
    from batchctl.validation import ValidationReport

EPILOG = (
    "Exit codes: 0 submitted (with --wait: completed); 1 invalid input or an error (nothing is uploaded "
    "when the file is invalid); with --wait 3 failed, 4 expired, 5 cancelled; 130 interrupted (the batch "
    "keeps running). --cleanup deletes FILE only after a fully successful run: the batch completed, every "
    "result file was written, and no request failed."
)

InputFileArg = Annotated[
    Path | None,
    typer.Argument(
        help="Batch input file (JSONL). Omit it with --input-file-id.",
        show_default=False,
        dir_okay=False,
        exists=True,
        metavar="FILE",
    ),
]
CompletionWindowOpt = Annotated[
    str,
    typer.Option(
        "--completion-window",
        help="How long the provider may take: 24h for OpenAI; DashScope 24h to 336h (or 1d to 14d).",
    ),
]
MetadataOpt = Annotated[
    list[str] | None,
    typer.Option("--metadata", metavar="KEY=VALUE", help="key=value to attach to the batch; repeat for more (DashScope: ds_name, ds_description)."),
]
ModelOpt = Annotated[
    str | None,
    typer.Option("--model", "-m", help="Set body.model on every line (in a temporary copy; FILE is not changed)."),
]
NoValidateOpt = Annotated[bool, typer.Option("--no-validate", help="Upload without validating the file first.")]
NoCheckOpt = Annotated[
    bool,
    typer.Option(
        "--no-check",
        help="New-API: skip the pre-flight channel check (channel exists, is enabled, serves the model).",
    ),
]
InputFileIdOpt = Annotated[
    str | None,
    typer.Option(
        "--input-file-id",
        help="Create the batch from a file already uploaded (e.g. after a failed create), instead of FILE. Needs --endpoint.",
    ),
]
CleanupOpt = Annotated[
    bool,
    typer.Option(
        "--cleanup", help="With --wait: delete FILE after a fully successful run (completed, all saved, no failed request)."
    ),
]


@dataclass
class SubmitPlan:
    """What pre-flight settled: the file to upload (or an uploaded one), endpoint, model, window, metadata."""

    source: Path | None
    upload: UploadFile | None
    endpoint: str
    model: str | None
    completion_window: str
    metadata: dict[str, str] | None
    input_file_id: str | None = None
    report: ValidationReport | None = None
    output: Path | None = None
    errors_output: Path | None = None
    notes: list[str] = field(default_factory=list)


def _refuse_invalid(out: Output, report: ValidationReport, display: str) -> None:
    from batchctl.cli.commands.validate import SHOWN_PROBLEMS, invalid_error_message, show_problems

    show_problems(out, report, limit=SHOWN_PROBLEMS, to_stdout=False)
    out.error(
        invalid_error_message(report, display) + "; nothing was uploaded",
        f"Fix the lines listed above (batchctl validate {display} shows them all), or skip the check with --no-validate.",
    )
    raise typer.Exit(EXIT_ERROR)


def preflight(
    state: AppState,
    spec: ProviderSpec,
    plan: SubmitPlan,
    *,
    validate: bool,
    wait: bool,
    output: Path | None,
    errors_output: Path | None,
    force: bool,
    content_format: str | None = None,
    check_channel: bool = True,
) -> None:
    """Every check that can refuse the submission runs here, before anything is uploaded.

    Order: completion window, the file (model rewrite, validation, blank lines), endpoint, result
    files (with --wait). Provider-specific checks (e.g. a New-API channel check) belong here too.
    """
    from batchctl.cli.commands.validate import SHOWN_PROBLEMS, summary_line
    from batchctl.results import check_overwrite, resolve_targets
    from batchctl.submission import first_request, needs_normalizing
    from batchctl.validation import validate_file

    out = state.out
    problem = spec.check_completion_window(plan.completion_window)
    if problem:
        raise BatchctlError(problem, "Pass another --completion-window.")

    if plan.upload is not None and plan.source is not None:
        display = str(plan.source)
        if plan.model is not None:
            plan.upload.rewrite(model=plan.model)  # line numbers kept: problems name the user's lines
        if validate:
            report = validate_file(plan.upload.path, spec=spec, endpoint=plan.endpoint or None, max_problems=SHOWN_PROBLEMS)
            report.path = display
            plan.report = report
            if not report.ok:
                _refuse_invalid(out, report, display)
            for warning in report.warnings:
                out.warn(warning.message)
            out.info(summary_line(report, display))
            if needs_normalizing(report):
                plan.upload.rewrite(drop_blank_lines=True)
                plan.notes.append("blank lines and the byte order mark are left out of the upload")
            plan.endpoint = plan.endpoint or report.endpoint or ""
            plan.model = plan.model or report.model
        else:
            first = first_request(plan.upload.path) or {}
            body = first.get("body") if isinstance(first.get("body"), dict) else {}
            url = first.get("url")
            plan.endpoint = plan.endpoint or (url if isinstance(url, str) else "")
            plan.model = plan.model or (body.get("model") if isinstance(body.get("model"), str) else None)

    if not plan.endpoint:
        raise BatchctlError(
            "no endpoint for the batch: the file gives no url", "Pass --endpoint, e.g. --endpoint /v1/chat/completions."
        )

    if check_channel:
        from batchctl.submission import preflight_channel

        preflight_channel(
            state.settings(),
            plan.model,
            info=out.info,
            warn=out.warn,
            debug_log=out.debug if state.debug else None,
        )

    if wait:
        plan.output, plan.errors_output = resolve_targets(
            output, errors_output, model=plan.model, content_format=content_format
        )
        check_overwrite([plan.output, plan.errors_output], force=force)


def upload_with_progress(state: AppState, client: BatchClient, path: Path, display: str) -> FileObject:
    """Upload with a Rich progress bar of bytes on stderr (only on a terminal; CI logs get one line)."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

    from batchctl.cli.output import is_interactive
    from batchctl.submission import upload_input

    size = path.stat().st_size
    with Progress(
        TextColumn("Uploading {task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=state.out.err,
        transient=True,
        disable=not is_interactive(sys.stderr),
    ) as progress:
        task = progress.add_task(display, total=size)

        def on_progress(sent: int, total: int) -> None:
            progress.update(task, completed=sent, total=total or None)

        return upload_input(client, path, progress=on_progress)


def submit(
    ctx: typer.Context,
    file: InputFileArg = None,
    endpoint: EndpointOpt = None,
    completion_window: CompletionWindowOpt = "24h",
    metadata: MetadataOpt = None,
    model: ModelOpt = None,
    no_validate: NoValidateOpt = False,
    input_file_id: InputFileIdOpt = None,
    wait: WaitOpt = False,
    interval: IntervalOpt = None,
    output: OutputOpt = None,
    errors_output: ErrorsOutputOpt = None,
    cleanup: CleanupOpt = False,
    delete_remote: DeleteRemoteOpt = False,
    no_check: NoCheckOpt = False,
    force: ForceOpt = False,
    json_: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Validate a Batch input file, upload it and create the batch; print its id and how to watch it.

    Invalid files are refused with every problem listed, and nothing is uploaded. With --wait, watch
    the batch to the end and download the results (output, and errors beside it).

    Example: batchctl submit examples/chat.jsonl --model qwen-plus --wait --cleanup
    """
    from batchctl.cli.commands.validate import provider_spec
    from batchctl.submission import UploadFile, create_batch, parse_metadata

    state = AppState.get(ctx, json_=json_, debug=debug)
    out = state.out
    if (file is None) == (input_file_id is None):
        raise typer.BadParameter("give either FILE or --input-file-id ID", param_hint="FILE")
    if input_file_id is not None and model is not None:
        raise typer.BadParameter("--model rewrites FILE; it cannot change an uploaded file", param_hint="--model")
    if (output or errors_output) and not wait:
        raise typer.BadParameter(
            "the results are written with --wait only (or later: batchctl download BATCH_ID -o PATH)",
            param_hint="--output",
        )
    if cleanup and (not wait or file is None):
        raise typer.BadParameter("--cleanup needs FILE and --wait (it deletes FILE after a successful run)", param_hint="--cleanup")
    if delete_remote and not wait:
        raise typer.BadParameter(
            "--delete-remote needs --wait: the server needs the input until the batch has finished "
            "(later: batchctl download BATCH_ID --delete-remote)",
            param_hint="--delete-remote",
        )

    spec = provider_spec(state)
    settings = state.settings()
    with UploadFile(file) if file is not None else nullcontext() as upload:
        plan = SubmitPlan(
            source=file,
            upload=upload,
            endpoint=endpoint or "",
            model=model,
            completion_window=completion_window,
            metadata=parse_metadata(metadata or []),
            input_file_id=input_file_id,
        )
        preflight(
            state,
            spec,
            plan,
            validate=not no_validate,
            wait=wait,
            output=output,
            errors_output=errors_output,
            force=force,
            check_channel=not no_check,
        )
        client = state.client()
        if upload is not None:
            display = file.name if file is not None else "input"
            uploaded = upload_with_progress(state, client, upload.path, display)
            plan.input_file_id = uploaded.id
            changed = []
            if upload.models_rewritten:
                changed.append(f"model set to {plan.model} on {upload.models_rewritten:,} lines")
            if upload.blank_lines_dropped:
                n = upload.blank_lines_dropped
                changed.append(f"{n:,} blank line{'s' if n != 1 else ''} left out")
            out.success(f"Uploaded {display} as {uploaded.id}" + (f" ({'; '.join(changed)})" if changed else ""))
    # The temporary copy is gone; from here on only the uploaded file matters.
    assert plan.input_file_id is not None
    try:
        batch = create_batch(
            client,
            input_file_id=plan.input_file_id,
            endpoint=plan.endpoint,
            completion_window=plan.completion_window,
            metadata=plan.metadata,
        )
    except KeyboardInterrupt:
        from batchctl.submission import retry_command

        retry = retry_command(plan.input_file_id, plan.endpoint, plan.completion_window, plan.metadata)
        raise BatchctlError(
            f"interrupted while creating the batch from the uploaded file {plan.input_file_id}",
            f"The server may have created it: check `batchctl list` first. If not, create it without "
            f"uploading again: {retry}",
            EXIT_INTERRUPTED,
        ) from None
    try:
        _after_create(state, settings, client, batch, plan, file=file, wait=wait, cleanup=cleanup,
                      interval=interval, delete_remote=delete_remote)  # fmt: skip
    except KeyboardInterrupt:
        # Between steps (the watcher handles its own Ctrl+C): the batch runs on; say how to go on.
        out.info(f"Stopped; batch {batch.id} keeps running on the server.")
        if wait and plan.output is not None and plan.errors_output is not None:
            out.info(resume_command(batch.id, plan.output, plan.errors_output))
        else:
            out.info(f"Watch it: batchctl status --watch {batch.id}")
        raise typer.Exit(EXIT_INTERRUPTED) from None


def _after_create(
    state: AppState,
    settings: Settings,
    client: BatchClient,
    batch: Batch,
    plan: SubmitPlan,
    *,
    file: Path | None,
    wait: bool,
    cleanup: bool,
    interval: float | None,
    delete_remote: bool,
) -> None:
    """Remember the batch, say where it is, and with --wait see it through to the results."""
    from batchctl.submission import record_submission

    out = state.out
    record_submission(
        settings,
        client,
        batch,
        input_path=file,
        input_file_id=plan.input_file_id,
        endpoint=plan.endpoint,
        model=plan.model or batch.model,
    )
    out.success(f"Created batch {batch.id} ({batch.status})")
    if not state.json:
        out.line(batch.id)
    if not wait:
        out.info(f"Watch it: batchctl status --watch {batch.id}")
        out.info(f"Then download the results: batchctl download {batch.id}")
        if state.json:
            out.json(batch)
        return

    _wait_download_cleanup(state, client, batch, plan, cleanup=cleanup, interval=interval, delete_remote=delete_remote)


def _wait_download_cleanup(
    state: AppState,
    client: BatchClient,
    batch: Batch,
    plan: SubmitPlan,
    *,
    cleanup: bool,
    interval: float | None,
    delete_remote: bool = False,
) -> None:
    from batchctl import journal
    from batchctl.cli.commands.download import (
        delete_remote_after_download,
        exit_for_final_state,
        save_and_report,
        wait_until_finished,
    )

    out = state.out
    assert plan.output is not None and plan.errors_output is not None
    final = wait_until_finished(
        state, client, batch.id, interval=interval, resume_hint=resume_command(batch.id, plan.output, plan.errors_output)
    )
    result = save_and_report(state, client, final, output=plan.output, errors_output=plan.errors_output)
    if result.files:
        journal.update(final.id, output_path=str(plan.output.resolve()))
    if delete_remote:
        delete_remote_after_download(state, client, final)
    if cleanup and plan.source is not None:
        reason = cleanup_refusal(final, result)
        if reason is None:
            plan.source.unlink(missing_ok=True)
            out.info(f"Deleted the input file {plan.source} (--cleanup).")
        else:
            out.info(f"Kept the input file {plan.source}: {reason}.")
    if state.json:
        out.json(final)
    exit_for_final_state(state, final, result)


def cleanup_refusal(batch: Batch, result: DownloadResult) -> str | None:
    """Why --cleanup must keep the input, or None for a fully successful run:
    the batch completed, its output was saved, and no request failed."""
    if batch.status != "completed":
        return f"the batch ended {batch.status}"
    if not any(f.kind == "output" for f in result.files):
        return "there is no output file"
    failed = max(result.failed_requests, batch.request_counts.failed)
    if failed:
        return f"{failed:,} request{'s' if failed != 1 else ''} failed (resubmit them from it)"
    return None

