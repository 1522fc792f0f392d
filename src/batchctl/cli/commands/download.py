"""`batchctl download BATCH_ID`: save a finished batch's output and error files (merged or as answers on request)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from batchctl.cli.context import AppState
from batchctl.cli.options import (
    BatchIdArg,
    DebugOpt,
    DeleteRemoteOpt,
    ErrorsOutputOpt,
    ForceOpt,
    IntervalOpt,
    JsonOpt,
    OutputOpt,
    WaitOpt,
)
from batchctl.errors import EXIT_NOT_FINISHED, BatchctlError

if TYPE_CHECKING:
    from batchctl.api import Batch, BatchClient
    from batchctl.results import DownloadResult

EPILOG = (
    "Files: the output goes to --output (default results_<model>_<YYYYMMDD-HHMMSS>.jsonl, .csv with "
    "--content --format csv), the error file beside it as <name>.errors.jsonl (--errors-output); each is "
    "written to <name>.part and renamed when complete. Exit codes: 0 completed; 3 failed; 4 expired; "
    "5 cancelled (whatever partial results exist are still saved); 6 not finished yet (without --wait); "
    "1 error; 130 interrupted."
)

MergeOpt = Annotated[
    Path | None,
    typer.Option(
        "--merge",
        help="The batch's input file: write one result per input line, in input order (joined by custom_id), "
        "reporting missing and failed ids.",
        dir_okay=False,
        exists=True,
    ),
]
ContentOpt = Annotated[
    bool,
    typer.Option(
        "--content",
        help="Write just custom_id + the answer (assistant text, completion text or embedding) + error, "
        "instead of the full result envelopes.",
    ),
]
FormatOpt = Annotated[
    str, typer.Option("--format", help="Format of the --content file: jsonl or csv.", case_sensitive=False)
]


def wait_until_finished(
    state: AppState, client: BatchClient, batch_id: str, *, interval: float | None, resume_hint: str | None = None
) -> Batch:
    """Watch a batch to a terminal state with progress on stderr (quietly under --json: the result is
    all stdout gets); Ctrl+C says how to resume (`resume_hint`) and exits 130."""
    from batchctl.cli.watch import watch_batches

    return watch_batches(
        state,
        [batch_id],
        interval=interval,
        clients={batch_id: client},
        download_hint=False,
        progress_to_stderr=True,
        quiet=state.json,
        resume_hint=resume_hint,
    )[0]


def resume_command(batch_id: str, output: Path, errors_output: Path) -> str:
    """The command that finishes an interrupted `--wait`: wait again, then download to the same files."""
    import shlex

    from batchctl.results import errors_path_for

    command = f"batchctl download {batch_id} --wait -o {shlex.quote(str(output))}"
    if errors_output != errors_path_for(output):
        command += f" --errors-output {shlex.quote(str(errors_output))}"
    return f"Resume with: {command}"


def not_finished_error(batch: Batch) -> BatchctlError:
    return BatchctlError(
        f"batch {batch.id} is {batch.status}, not finished yet: nothing to download",
        f"Wait for it: batchctl download {batch.id} --wait (or watch it: batchctl status --watch {batch.id}).",
        EXIT_NOT_FINISHED,
    )


def save_and_report(
    state: AppState,
    client: BatchClient,
    batch: Batch,
    *,
    output: Path,
    errors_output: Path,
    merge_input: Path | None = None,
    content_format: str | None = None,
) -> DownloadResult:
    """Download a terminal batch's files and tell people where they went (stderr)."""
    from batchctl.results import save_results

    out = state.out
    if not batch.output_file_id and not batch.error_file_id and merge_input is None:
        reasons = "; ".join(e.message or e.code or "" for e in (batch.errors.data if batch.errors else []))
        out.warn(f"batch {batch.id} is {batch.status} and has no output or error file" + (f": {reasons}" if reasons else ""))
        from batchctl.results import DownloadResult

        return DownloadResult(batch.id, batch.status)
    result = save_results(
        client, batch, output=output, errors_output=errors_output, merge_input=merge_input, content_format=content_format
    )
    labels = {
        "output": "Output",
        "error": "Errors",
        "merged": "Merged results (input order)",
        "content": f"Answers ({content_format})",
    }
    for saved in result.files:
        noun = "row" if saved.kind == "content" else "line"
        out.success(f"{labels[saved.kind]}: {saved.path} ({saved.lines:,} {noun}{'s' if saved.lines != 1 else ''})")
    if not batch.output_file_id and merge_input is None and content_format is None:
        out.info("The batch has no output file: no request succeeded.")
    if result.merge is not None:
        report_merge(state, result)
    elif result.failed_requests:
        out.warn(f"{result.failed_requests:,} request{'s' if result.failed_requests != 1 else ''} failed; see the error file.")
    return result


def report_merge(state: AppState, result: DownloadResult) -> None:
    merge = result.merge
    assert merge is not None
    out = state.out
    out.info(
        f"{merge.requests:,} requests: {merge.succeeded:,} succeeded, {len(merge.failed):,} failed, "
        f"{len(merge.missing):,} missing."
    )
    for label, ids in (("Failed", merge.failed), ("Missing", merge.missing)):
        if ids:
            shown = ", ".join(ids[:10]) + (f" and {len(ids) - 10:,} more" if len(ids) > 10 else "")
            out.warn(f"{label}: {shown}")
    if merge.unexpected:
        out.warn(f"{merge.unexpected:,} results have a custom_id that is not in the input file (left out).")
    if merge.duplicates:
        out.warn(f"{merge.duplicates:,} duplicate results for one custom_id were left out (the first was kept).")


def download(
    ctx: typer.Context,
    batch_id: BatchIdArg,
    output: OutputOpt = None,
    errors_output: ErrorsOutputOpt = None,
    force: ForceOpt = False,
    wait: WaitOpt = False,
    interval: IntervalOpt = None,
    merge: MergeOpt = None,
    content: ContentOpt = False,
    fmt: FormatOpt = "jsonl",
    delete_remote: DeleteRemoteOpt = False,
    json_: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Download the results of a batch: the output file and the error file (when there is one).

    Each file streams to disk as <name>.part and is renamed when complete; existing files are not
    overwritten without --force. --merge INPUT restores input order; --content keeps only answers.

    Example: batchctl download batch_abc123 --merge examples/chat.jsonl -o answers.jsonl
    """
    from batchctl.results import CONTENT_FORMATS, check_overwrite, resolve_targets

    state = AppState.get(ctx, json_=json_, debug=debug)
    fmt = fmt.lower()
    if fmt not in CONTENT_FORMATS:
        raise typer.BadParameter(f"use one of: {', '.join(CONTENT_FORMATS)}", param_hint="--format")
    if fmt != "jsonl" and not content:
        raise typer.BadParameter("--format applies to --content only", param_hint="--format")
    content_format = fmt if content else None

    client = state.client_for_batch(batch_id)
    batch = client.batches.retrieve(batch_id)
    model = batch.model or _journal_model(batch_id)
    output, errors_output = resolve_targets(output, errors_output, model=model, content_format=content_format)
    # Before any waiting or downloading: a refusal after a long wait would waste it.
    check_overwrite([output, errors_output], force=force)

    if not batch.is_terminal:
        if not wait:
            raise not_finished_error(batch)
        batch = wait_until_finished(
            state, client, batch_id, interval=interval, resume_hint=resume_command(batch_id, output, errors_output)
        )

    result = save_and_report(
        state, client, batch, output=output, errors_output=errors_output, merge_input=merge, content_format=content_format
    )
    if delete_remote:
        delete_remote_after_download(state, client, batch)
    if state.json:
        state.out.json(result)
    exit_for_final_state(state, batch, result)


def delete_remote_after_download(state: AppState, client: BatchClient, batch: Batch) -> None:
    """--delete-remote: the results are on disk, so the batch's input, output and error files may go."""
    from batchctl import journal
    from batchctl.remote_cleanup import delete_remote_files, remote_files_of

    entry = journal.lookup(batch.id)
    targets = remote_files_of(batch, input_file_id=entry.input_file_id if entry else None)
    if not targets:
        state.out.info("--delete-remote: the batch names no files on the server.")
        return
    for done in delete_remote_files(client, targets):
        if done.deleted:
            state.out.info(f"Deleted the remote {done.kind} file {done.file_id}" + (f" ({done.error})" if done.error else ""))
        else:
            state.out.warn(f"could not delete the remote {done.kind} file {done.file_id}: {done.error}")


def exit_for_final_state(state: AppState, batch: Batch, result: DownloadResult) -> None:
    """Exit 3/4/5 when the batch ended failed/expired/cancelled; return when it completed."""
    from batchctl.watching import exit_code_for_statuses

    code = exit_code_for_statuses([batch.status])
    if code:
        saved = "; the files above hold what it produced" if result.files else ""
        state.out.warn(f"batch {batch.id} ended {batch.status}{saved}.")
        raise typer.Exit(code)


def _journal_model(batch_id: str) -> str | None:
    from batchctl import journal

    entry = journal.lookup(batch_id)
    return entry.model if entry else None
