"""`batchctl validate FILE`: check a Batch input file against the profile's provider, offline."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from batchctl.cli.context import AppState
from batchctl.cli.options import EndpointOpt, JsonOpt
from batchctl.errors import EXIT_ERROR

if TYPE_CHECKING:
    from batchctl.cli.output import Output
    from batchctl.providers import ProviderSpec
    from batchctl.validation import ValidationReport

SHOWN_PROBLEMS = 20  # on screen; the total is always counted
JSON_PROBLEMS = 1000  # kept in the --json report unless --max-problems says otherwise

EPILOG = "Exit codes: 0 the file is valid; 1 it is not (or cannot be read)."

InputFileArg = Annotated[
    Path, typer.Argument(
        help="Batch input file (JSONL, one request per line).", show_default=False, dir_okay=False, metavar="FILE"
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


def provider_spec(state: AppState) -> ProviderSpec:
    """The limits of the active profile's provider, with the profile's overrides. No network."""
    from batchctl.errors import ConfigError
    from batchctl.providers import get_provider

    settings = state.settings()
    try:
        return get_provider(settings.provider, overrides=dict(settings.limits or {}))
    except ValueError as exc:
        raise ConfigError(
            f"profile {settings.profile_name!r}: {exc}", f"Fix it with: batchctl profile add {settings.profile_name} --force ..."
        ) from None


def format_tokens(n: int) -> str:
    return f"~{n:,}"


def summary_line(report: ValidationReport, display: str | None = None) -> str:
    """One line for people: `chat.jsonl: 100 requests to /v1/chat/completions, model x, 21 KB, ~1,234 input tokens`."""
    from batchctl.providers import format_size

    return (
        f"{display or report.path}: {report.requests:,} request{'s' if report.requests != 1 else ''}"
        f" to {report.endpoint or '?'}, model {report.model or '?'}, {format_size(report.size_bytes)},"
        f" {format_tokens(report.est_input_tokens)} input tokens (estimate)"
    )


def show_summary_table(out: Output, report: ValidationReport, spec: ProviderSpec) -> None:
    """The file at a glance, one fact per row (fits a narrow terminal)."""
    from rich.markup import escape
    from rich.table import Table

    from batchctl.providers import format_size

    blank = f" ({report.blank_lines:,} blank)" if report.blank_lines else ""
    rows = [
        ("File", report.path),
        ("Lines", f"{report.lines:,}{blank}"),
        ("Requests", f"{report.requests:,}"),
        ("Endpoint", report.endpoint or "-"),
        ("Model", report.model or "-"),
        ("Size", format_size(report.size_bytes)),
        ("Est. input tokens", format_tokens(report.est_input_tokens)),
        ("Limits", f"{spec.name}: {spec.max_requests:,} requests, {format_size(spec.max_file_bytes)} per file"),
    ]
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for key, value in rows:
        table.add_row(key, escape(value))
    out.print(table)


def show_problems(out: Output, report: ValidationReport, *, limit: int, to_stdout: bool) -> None:
    """Each problem as `line N: what is wrong`, the first `limit` of them, then how many more."""
    emit = out.line if to_stdout else out.info
    for problem in report.problems[:limit]:
        emit(problem.message)
    hidden = report.problem_count - min(limit, len(report.problems))
    if hidden > 0:
        emit(f"… and {hidden:,} more")
    for warning in report.warnings:
        out.warn(warning.message)


def invalid_error_message(report: ValidationReport, display: str | None = None) -> str:
    count = report.problem_count
    return f"{display or report.path} is not a valid batch input: {count:,} problem{'s' if count != 1 else ''}"


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
    from batchctl.validation import validate_file

    state = AppState.get(ctx, json_=json_)
    out = state.out
    spec = provider_spec(state)
    shown = max_problems or (JSON_PROBLEMS if state.json else SHOWN_PROBLEMS)
    report = validate_file(file, spec=spec, endpoint=endpoint, max_problems=max(shown, SHOWN_PROBLEMS))

    if state.json:
        data = report.to_dict()
        data["problems"] = data["problems"][:shown]
        data["problems_truncated"] = report.problem_count > len(data["problems"])
        data["provider"] = spec.name
        out.json(data)
    else:
        show_summary_table(out, report, spec)
        show_problems(out, report, limit=shown, to_stdout=True)
    if not report.ok:
        if not state.json:
            more = " (--max-problems N shows more of them)" if report.problem_count > shown else ""
            out.error(invalid_error_message(report), f"Fix the lines listed above{more}, then run batchctl validate again.")
        raise typer.Exit(EXIT_ERROR)
    if not state.json:
        out.success(f"{file} is valid for {spec.name}.")
