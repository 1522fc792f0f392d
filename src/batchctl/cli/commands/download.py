"""`batchctl download BATCH_ID`: save a finished batch's output and error files (merged or as answers on request)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from batchctl.cli.context import AppState
from batchctl.cli.options import (
    BatchIdArg,
    DebugOpt,
    DeleteRemoteOpt,
    ErrorsOutputOpt,
    ForceOpt,
    GiveUpAfterOpt,
    IntervalOpt,
    JsonOpt,
    OutputOpt,
    WaitOpt,
)

EPILOG = (
    "Files: the output goes to --output (default results_<model>_<YYYYMMDD-HHMMSS>.jsonl, .csv with "
    "--content --format csv), the error file beside it as <name>.errors.jsonl (--errors-output); each is "
    "written to <name>.part and renamed when complete. Exit codes: 0 completed; 3 failed (or no request succeeded); 4 expired; "
    "5 cancelled (whatever partial results exist are still saved); 6 not finished yet (without --wait); "
    "1 error; 130 interrupted. -o - writes the --content, --merge or --join output to stdout (everything "
    "else goes to stderr; the error file, if any, to <BATCH_ID>.errors.jsonl unless --errors-output)."
)

MergeOpt = Annotated[
    Path | None,
    typer.Option(
        "--merge",
        help="The batch's input file: write one result per input line, in input order (joined by custom_id), "
        "reporting missing and failed ids. For a job (or its only batch) it must hold what was submitted (SHA-256 checked).",
    ),
]
ContentOpt = Annotated[
    bool,
    typer.Option(
        "--content",
        help="Write just custom_id + the answer (assistant text, completion text, embedding, or moderation results) + error, "
        "instead of the full result envelopes.",
    ),
]
FormatOpt = Annotated[
    str | None,
    typer.Option(
        "--format",
        help="Format of the --content file: jsonl (default) or csv (UTF-8 with a byte order mark, so Excel shows "
        "Chinese text right); of the --join file: csv, jsonl or parquet (default: by the --output extension).",
        case_sensitive=False,
    ),
]
JoinOpt = Annotated[
    str | None,
    typer.Option(
        "--join", metavar="[DATA]",
        help="Write DATA's rows in their order with answer, finish_reason, prompt_tokens, completion_tokens, error "
        "and batch_id added (-o answers.csv|.jsonl|.parquet; default <DATA name>.answers.<ext>). Without DATA: the "
        "file of `submit DATA --template`, whose SHA-256 the job recorded: a table changed since is refused.",
    ),
]  # fmt: skip
JoinIdColumnOpt = Annotated[
    str | None, typer.Option("--id-column", metavar="COL", help="With --join: the column the custom_ids came from (as given to prepare).")
]
JoinDelimiterOpt = Annotated[str | None, typer.Option("--delimiter", metavar="CHAR", help="With --join: DATA's CSV delimiter.")]
JoinEncodingOpt = Annotated[
    str | None, typer.Option("--encoding", metavar="NAME", help="With --join: DATA's text encoding, e.g. gbk (default: UTF-8, or UTF-16 by its BOM).")
]
PrefixOpt = Annotated[
    str, typer.Option("--prefix", metavar="TEXT", help="With --join: put TEXT before the added column names (when DATA has an answer column).")
]
ParseJsonOpt = Annotated[
    bool, typer.Option("--parse-json", help="With --join: parse each answer as JSON (automatic for --json-schema jobs); one that is not: error invalid_json.")
]


def download(
    ctx: typer.Context,
    batch_id: BatchIdArg,
    output: OutputOpt = None,
    errors_output: ErrorsOutputOpt = None,
    force: ForceOpt = False,
    wait: WaitOpt = False,
    interval: IntervalOpt = None,
    give_up_after: GiveUpAfterOpt = None,
    merge: MergeOpt = None,
    content: ContentOpt = False,
    fmt: FormatOpt = None,
    join: JoinOpt = None,
    id_column: JoinIdColumnOpt = None,
    delimiter: JoinDelimiterOpt = None,
    encoding: JoinEncodingOpt = None,
    prefix: PrefixOpt = "",
    parse_json: ParseJsonOpt = False,
    delete_remote: DeleteRemoteOpt = False,
    json_: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Download the results of a batch or job: the output file and the error file (when there is one).

    A job (job_…) gets one output and one error file for all its batches, in part order (--merge: input order).

    Each file streams to disk as <name>.part and is renamed when complete; existing files are not
    overwritten without --force. --merge INPUT restores input order; --content keeps only answers.

    Example: batchctl download batch_abc123 --merge examples/chat.jsonl -o answers.jsonl
    """
    from batchctl.cli.prepare_options import join_options
    from batchctl.cli.reports import exit_for_final_state, show_download
    from batchctl.downloading import DownloadRequest, download_results
    from batchctl.results import CONTENT_FORMATS

    state = AppState.get(ctx, json_=json_, debug=debug)
    to_stdout = output is not None and str(output) == "-"
    if to_stdout:
        if not (content or merge is not None or join is not None):
            raise typer.BadParameter("-o - (stdout) needs --content, --merge or --join: a plain download saves two files",
                                     param_hint="--output")  # fmt: skip
        if state.json:
            raise typer.BadParameter("-o - and --json both want stdout: give -o FILE with --json", param_hint="--output")
    join_request = join_options(join, output=output, fmt=fmt, id_column=id_column, delimiter=delimiter, prefix=prefix,
                                parse_json=parse_json, force=force, merge=merge, content=content, encoding=encoding)  # fmt: skip
    fmt = (fmt or "jsonl").lower()
    if fmt not in CONTENT_FORMATS and join_request is None:
        raise typer.BadParameter(f"use one of: {', '.join(CONTENT_FORMATS)}", param_hint="--format")
    if fmt != "jsonl" and not content and join_request is None:
        raise typer.BadParameter("--format applies to --content and --join only", param_hint="--format")
    scratch = None
    if to_stdout:  # written to a scratch file as usual (atomic, checked), then copied to stdout
        import tempfile

        scratch = tempfile.TemporaryDirectory(prefix="batchctl-stdout-")
        ctx.call_on_close(scratch.cleanup)
        suffix = f".{fmt}" if join_request is None or join_request.fmt else ".csv"
        output = Path(scratch.name) / f"answers{suffix}"
        errors_output = errors_output or Path(f"{batch_id}.errors.jsonl")
        if join_request is not None:
            join_request.output = output
        state.out.console = state.out.err  # the summary and the bill: stderr, stdout keeps only the data
    request = DownloadRequest(
        output=output,
        errors_output=errors_output,
        merge_input=merge,
        content_format=fmt if content else None,
        force=force,
        delete_remote=delete_remote,
    )
    request.check()

    def wait_for(batch_id: str, resume_hint: str):
        from batchctl.cli.watch import wait_for_batch  # only with --wait

        return wait_for_batch(state, batch_id, interval=interval, resume_hint=resume_hint, give_up_after=give_up_after)

    def wait_for_all(ids: list[str], resume_hint: str):
        from batchctl.cli.watch import watch_batches

        return watch_batches(state, ids, interval=interval, download_hint=False, progress_to_stderr=True,
                             resume_hint=resume_hint, give_up_after=give_up_after)  # fmt: skip

    [batch_id] = state.resolve_ids([batch_id])
    job = state.find_job(batch_id)
    if job is None and not batch_id.startswith("job_"):
        from batchctl.jobs.adopt import retried_job

        job = retried_job(state.journal(), batch_id)
        if job is not None:
            state.out.info(f"{batch_id} was retried in {job.id}: downloading the job (each request's newest success)")
    if join_request is not None:  # DATA's rows with their answers
        from batchctl.joining import join_results

        outcome = join_results(state.journal(), batch_id, job, state.client_for_batch, join_request,
                               wait_for_all=wait_for_all if wait else None)  # fmt: skip
    elif job is not None:  # one output and one error file for all its batches
        from batchctl.jobs.download import download_job

        outcome = download_job(state.journal(), job, state.client_for_batch, request, wait_for_all=wait_for_all if wait else None)
    else:
        if merge is not None:  # the input of a one-part job the journal knows: refused unless it is that file
            from batchctl.jobs.download import check_batch_merge_input

            check_batch_merge_input(state.journal(), batch_id, merge)
        outcome = download_results(
            state.client_for_batch(batch_id), batch_id, request, wait_for=wait_for if wait else None, reporter=state.out
        )
    from batchctl.cli.cost_render import show_bill
    from batchctl.cost.bill import settle_download

    # The bill (tokens, cost at batch prices, saving) and why requests failed: read back from the files
    # just saved, nothing downloaded twice (before a file sent to stdout is named `-`: a job's is read back).
    bill = settle_download(state.journal(), outcome.result, outcome.batch, profile=state.settings().profile_name)
    if to_stdout:
        for saved in outcome.result.files:
            if saved.kind in ("content", "merged", "joined") and saved.path == output:
                state.out.file(output)  # a reader that goes away (`| head`) ends it without a word
                saved.path = Path("-")
    show_download(state.out, outcome)
    saved_paths = [str(saved.path) for saved in outcome.result.files if str(saved.path) != "-"]  # -q: for $(...)
    state.out.result({**outcome.to_dict(), "bill": bill.to_dict()}, human=lambda: show_bill(state.out, bill), ids=saved_paths)
    exit_for_final_state(state.out, outcome.batch, saved_files=bool(outcome.result.files))

