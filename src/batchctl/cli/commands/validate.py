"""`batchctl validate FILE`: check a Batch input file against the profile's provider, offline."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated

import typer

from batchctl.cli.context import AppState
from batchctl.cli.options import EndpointOpt, JsonOpt
from batchctl.errors import EXIT_ERROR
from batchctl.validation.report import SHOWN_PROBLEMS

JSON_PROBLEMS = 1000  # kept in the --json report unless --max-problems says otherwise

EPILOG = "Exit codes: 0 the file is valid; 1 it is not (or cannot be read)."

InputFileArg = Annotated[
    Path, typer.Argument(
        help="Batch input file (JSONL, one request per line).", show_default=False, metavar="FILE"
    )
]
MaxProblemsOpt = Annotated[
    int | None,
    typer.Option(
        "--max-problems",
        min=1,
        help=f"Show at most N problems (default {SHOWN_PROBLEMS}; with --json {JSON_PROBLEMS}); all are counted.",
    ),
]


def validate(
    ctx: typer.Context,
    file: InputFileArg,
    endpoint: EndpointOpt = None,
    max_problems: MaxProblemsOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Check a Batch input file line by line, without contacting the server.

    Checks JSON, custom_id (present, unique), method, url (one endpoint the provider supports),
    body.model (one model), messages/input, and the provider's request and size limits. Prints a
    summary and every problem as `line N: what is wrong`.

    Example: batchctl validate examples/chat.jsonl
    """
    from batchctl.cli.reports import show_problems, show_summary_table
    from batchctl.cost.estimate import EstimateTally
    from batchctl.validation import invalid_error_message, validate_file

    state = AppState.get(ctx, json_=json_)
    out = state.out
    spec = state.provider_spec()
    # Scripts get up to JSON_PROBLEMS problems, a screen SHOWN_PROBLEMS; --max-problems sets both.
    kept, shown = max_problems or JSON_PROBLEMS, max_problems or SHOWN_PROBLEMS
    # What the file would cost, offline (tokens; money where the model's price is known): counted in
    # the validation pass, which parses each line once; shown when every line is valid (the file may
    # still be over one batch's limits: submit makes it a job).
    tally = EstimateTally(file, endpoint=endpoint)
    report = validate_file(
        file, spec=spec, endpoint=endpoint, max_problems=max(kept, SHOWN_PROBLEMS), tally=tally, submit_splits=True
    )
    estimate = tally.for_profile(state.settings().profile_name) if report.ok or report.over_one_batch else None
    data = report.to_dict()
    data["estimate"] = estimate.to_dict() if estimate is not None else None
    data["problems"] = data["problems"][:kept]
    data["problems_truncated"] = report.problem_count > len(data["problems"])
    data["provider"] = spec.name

    def show() -> None:
        show_summary_table(out, report, spec, estimate)
        show_problems(out, report, limit=shown)
        if estimate is not None:
            from batchctl.cli.cost_render import show_estimate

            show_estimate(out, estimate)

    out.result(data, human=show)
    if not report.ok:
        more = " (--max-problems N shows more of them)" if report.problem_count > shown else ""
        hint = f"Fix the lines listed above{more}, then run batchctl validate again."
        if report.no_requests:
            from batchctl.validation.report import EMPTY_FILE_HINT

            hint = EMPTY_FILE_HINT
        elif report.over_one_batch:
            profile = f" -p {shlex.quote(state.profile)}" if state.profile else ""  # the limits were that profile's
            command = f"batchctl{profile} submit {shlex.quote(str(file))}"
            hint = f"Every line is valid: {command} makes it a job of several batches (docs/jobs.md)."
        # The report is the result (on stdout, JSON too); the error line only says so.
        out.error(invalid_error_message(report), hint)
        raise typer.Exit(EXIT_ERROR)
    out.success(f"{file} is valid for {spec.name}.")
