"""`batchctl prepare DATA --template ... --model M`: a Batch input file, one request per row of DATA."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from batchctl.cli.context import AppState
from batchctl.cli.options import ForceOpt, JsonOpt
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
    "Placeholders: {column} is the row's cell (the header's text, case included, without the spaces around "
    "it); {{ and }} are literal braces. A template naming a missing column, an empty cell (without "
    "--allow-empty), a repeated --id-column value or text that is not in DATA's encoding fails with "
    "nothing written. -o - writes the requests to stdout (everything else to stderr). Exit codes: 0 "
    "written; 1 error; 2 usage."
)

DataArg = Annotated[
    Path, typer.Argument(help="The rows: CSV/TSV (header row first), JSONL or Parquet (needs batchctl[parquet]).",
                         show_default=False, metavar="DATA")  # fmt: skip
]
PrepareOutputOpt = Annotated[
    Path | None, typer.Option("--output", "-o", help="The requests file to write (default: <DATA name>.requests.jsonl); - for stdout.")
]
ModelOpt = Annotated[str | None, typer.Option("--model", "-m", help="body.model of every request (required).")]
EndpointNameOpt = Annotated[
    str, typer.Option("--endpoint", metavar="chat|responses|embeddings", help="Which endpoint the requests go to.")
]


def prepare(
    ctx: typer.Context,
    data: DataArg,
    template: TemplateOpt = None,
    model: ModelOpt = None,
    system: SystemOpt = None,
    max_tokens: MaxTokensOpt = None,
    temperature: TemperatureOpt = None,
    json_schema: JsonSchemaOpt = None,
    id_column: IdColumnOpt = None,
    endpoint: EndpointNameOpt = "chat",
    body_extra: BodyExtraOpt = None,
    delimiter: DelimiterOpt = None,
    encoding: EncodingOpt = None,
    allow_empty: AllowEmptyOpt = False,
    data_format: DataFormatOpt = None,
    output: PrepareOutputOpt = None,
    force: ForceOpt = False,
    json_: JsonOpt = False,
) -> None:
    """Turn a table (CSV/TSV, JSONL, Parquet) and a prompt template into a Batch input file, one request per row.

    Reads DATA one row at a time (a 1 GB CSV runs in constant memory), checks every placeholder against
    the columns before writing, and prints the estimate `validate` gives. The file passes `validate`;
    submit it, then `download BATCH --join DATA` puts the answers back beside the rows.

    Example: batchctl prepare reviews.csv --template @prompt.txt --model qwen-plus -o requests.jsonl
    """
    from batchctl.cli.prepare_options import prepare_request
    from batchctl.cli.cost_render import show_estimate
    from batchctl.cli.reports import show_summary_table
    from batchctl.preparing import default_output, prepare_requests

    state = AppState.get(ctx, json_=json_)
    if template is None:
        raise typer.BadParameter("give the prompt: --template TEXT or --template @FILE", param_hint="--template")
    to_stdout = output is not None and str(output) == "-"
    if to_stdout and state.json:
        raise typer.BadParameter("-o - and --json both want stdout: give -o FILE with --json", param_hint="--output")
    request = prepare_request(
        data, template=template, model=model, endpoint=endpoint, system=system, max_tokens=max_tokens,
        temperature=temperature, json_schema=json_schema, id_column=id_column, body_extra=body_extra,
        delimiter=delimiter, allow_empty=allow_empty, data_format=data_format, output=output, force=force,
        encoding=encoding,
    )  # fmt: skip
    assert request is not None
    request.profile = state.settings().profile_name
    spec = state.provider_spec()
    if to_stdout:  # written to a scratch file as usual (atomic, every row checked), then copied to stdout
        import tempfile

        scratch = tempfile.TemporaryDirectory(prefix="batchctl-stdout-")
        ctx.call_on_close(scratch.cleanup)
        request.output = Path(scratch.name) / default_output(data).name
        state.out.console = state.out.err  # the summary and the estimate: stderr, stdout keeps only the requests
    if warning := request.spec.same_for_every_row:
        state.out.warn(warning)
    outcome = prepare_requests(request, spec)
    if to_stdout:
        state.out.file(outcome.output)
        outcome.output = Path("-")
        outcome.report.path = "-"

    def show() -> None:  # as validate shows a valid file: the summary, then the estimate
        show_summary_table(state.out, outcome.report, spec, outcome.estimate)
        if outcome.estimate is not None:
            show_estimate(state.out, outcome.estimate)

    state.out.result(outcome, human=show, ids=[] if to_stdout else [str(outcome.output)])  # -q: the file written
    requests = outcome.report.requests
    counted = f"{requests:,} request{'s' if requests != 1 else ''}"
    if to_stdout:
        state.out.success(f"Wrote {counted} to stdout")
    else:
        state.out.success(f"Wrote {outcome.output} ({counted}); submit it: batchctl submit {outcome.output}")
