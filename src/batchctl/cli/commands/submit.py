"""`batchctl submit FILE`: validate, upload, create the batch, remember it; with --wait, watch and download."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from batchctl.cli.context import AppState
from batchctl.cli.options import (
    DebugOpt,
    DeleteRemoteOpt,
    EndpointOpt,
    ErrorsOutputOpt,
    ForceOpt,
    GiveUpAfterOpt,
    IntervalOpt,
    JsonOpt,
    OutputOpt,
    WaitOpt,
    YesOpt,
)
from batchctl.cli.prepare_options import (
    AllowEmptyOpt,
    BodyExtraOpt,
    DataFormatOpt,
    DelimiterOpt,
    EncodingOpt,
    IdColumnOpt,
    JsonSchemaOpt,
    MaxTokensOpt,
    SystemOpt,
    TemperatureOpt,
    TemplateOpt,
)

EPILOG = (
    "Exit codes: 0 submitted (with --wait: completed); 1 invalid input or an error (nothing is uploaded "
    "when the file is invalid); with --wait 3 failed (or no request succeeded), 4 expired, 5 cancelled; 130 interrupted (the batch "
    "keeps running). --cleanup deletes FILE only after a fully successful run: the batch completed, every "
    "result file was written, and no request failed."
)

InputFileArg = Annotated[
    Path | None,
    typer.Argument(
        help="Batch input file (JSONL); with --template, a table of rows (CSV/TSV, JSONL, Parquet). Omit it with --input-file-id.",
        show_default=False,
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
MaxCostOpt = Annotated[
    float | None,
    typer.Option(
        "--max-cost",
        metavar="AMOUNT",
        min=0,
        help="Refuse, before uploading anything, when the estimated cost may exceed AMOUNT (in the price table's "
        "currency: USD for OpenAI models, CNY for DashScope's; see docs/cost.md).",
    ),
]
InputFileIdOpt = Annotated[
    str | None,
    typer.Option(
        "--input-file-id",
        help="Create the batch from a file already uploaded, instead of FILE. Needs --endpoint. The same command again "
             "attaches to the batch it made (--new: another).",
    ),
]
CleanupOpt = Annotated[
    bool,
    typer.Option(
        "--cleanup", help="With --wait: delete FILE after a fully successful run (completed, all saved, no failed request)."
    ),
]
NoSplitOpt = Annotated[
    bool,
    typer.Option("--no-split", help="Refuse a file over the profile's limits instead of submitting it as a job of several batches."),
]
RetryOpt = Annotated[
    int,
    typer.Option("--retry", metavar="N", min=0,
                 help="With --wait: retry the failed, expired and missing requests up to N rounds (each watched) "
                      "before downloading; the results keep each request's newest success."),  # fmt: skip
]
NewOpt = Annotated[
    bool,
    typer.Option("--new", help="Submit as a new job even if the same input was already submitted with the same options."),
]


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
    give_up_after: GiveUpAfterOpt = None,
    output: OutputOpt = None,
    errors_output: ErrorsOutputOpt = None,
    cleanup: CleanupOpt = False,
    delete_remote: DeleteRemoteOpt = False,
    no_check: NoCheckOpt = False,
    no_split: NoSplitOpt = False,
    new: NewOpt = False,
    retry: RetryOpt = 0,
    force: ForceOpt = False,
    template: TemplateOpt = None,
    system: SystemOpt = None,
    max_tokens: MaxTokensOpt = None,
    temperature: TemperatureOpt = None,
    json_schema: JsonSchemaOpt = None,
    id_column: IdColumnOpt = None,
    body_extra: BodyExtraOpt = None,
    delimiter: DelimiterOpt = None,
    encoding: EncodingOpt = None,
    allow_empty: AllowEmptyOpt = False,
    data_format: DataFormatOpt = None,
    max_cost: MaxCostOpt = None,
    yes: YesOpt = False,
    json_: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Validate a Batch input file, upload it and create the batch; print its id and how to watch it.

    Invalid files are refused with every problem listed, and nothing is uploaded. A file over the
    profile's limits (the provider's, or `profile add … --max-requests N --max-file-mb MB` of your own)
    becomes a job (job_…) of several batches; the same submission again attaches to
    its job (or resumes it after a crash) instead of uploading again. With --wait, watch the batches
    to the end and download the results (output, and errors beside it).

    With --template, FILE is a table: each row becomes a request (as `batchctl prepare` makes them, in a
    temporary file), and the job records the table so `download JOB --join` needs no arguments.
    The estimate (tokens, and the cost where the model's price is known) is shown first; on a terminal,
    a cost above the profile's threshold asks for confirmation (--yes does not ask).

    Example: batchctl submit examples/chat.jsonl --model qwen-plus --wait --cleanup
    """
    from batchctl.cli.reports import exit_for_final_state, show_download
    from batchctl.cli.prepare_options import prepare_request
    from batchctl.cli.watch import wait_for_batch, watch_batches
    from batchctl.downloading import DownloadRequest
    from batchctl.submission import parse_metadata
    from batchctl.submitting import SubmitRequest, submit_batch

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
    if retry and (not wait or file is None):
        raise typer.BadParameter("--retry needs FILE and --wait (it retries the job's failed requests, then downloads)",
                                 param_hint="--retry")  # fmt: skip
    request = SubmitRequest(
        file=file,
        input_file_id=input_file_id,
        endpoint=endpoint,
        completion_window=completion_window,
        metadata=parse_metadata(metadata or []),
        model=model,
        validate=not no_validate,
        check_channel=not no_check,
        wait=wait,
        download=DownloadRequest(output=output, errors_output=errors_output, force=force, delete_remote=delete_remote),
        cleanup=cleanup,
        split=not no_split,
        new=new,
        prepare=prepare_request(
            file, template=template, model=model, endpoint=endpoint, system=system, max_tokens=max_tokens,
            temperature=temperature, json_schema=json_schema, id_column=id_column, body_extra=body_extra,
            delimiter=delimiter, encoding=encoding, allow_empty=allow_empty, data_format=data_format,
        ),  # None without --template
        max_cost=max_cost,
        confirm=None if yes else out.confirm_if_interactive,
        retry=retry,
    )
    outcome = submit_batch(
        request,
        settings=state.settings(),
        spec=state.provider_spec(),
        client_factory=state.client,
        reporter=out,
        on_created=lambda batch: out.result_line(batch.id),  # the id, as soon as it exists
        wait_for=lambda batch_id, resume_hint: wait_for_batch(
            state, batch_id, interval=interval, resume_hint=resume_hint, give_up_after=give_up_after
        ),
        debug_log=out.debug if state.debug else None,
        journal=state.journal(),
        on_id=out.result_line,
        wait_for_all=lambda ids, resume_hint: watch_batches(
            state, ids, interval=interval, download_hint=False, progress_to_stderr=True, resume_hint=resume_hint,
            give_up_after=give_up_after,
        ),  # fmt: skip
    )
    if outcome.download is not None:
        from batchctl.cost.bill import settle_download

        show_download(out, outcome.download)
        # Recorded so `batchctl jobs` shows the cost; `batchctl usage ID` prints it (stdout keeps the id).
        settle_download(state.journal(), outcome.download.result, outcome.download.batch, profile=state.settings().profile_name)
    if outcome.cleanup is not None:
        if outcome.cleanup.deleted:
            out.info(f"Deleted the input file {outcome.cleanup.path} (--cleanup).")
        else:
            out.info(f"Kept the input file {outcome.cleanup.path}: {outcome.cleanup.reason}.")
    out.result(outcome)
    if outcome.download is not None:
        exit_for_final_state(out, outcome.download.batch, saved_files=bool(outcome.download.result.files))
