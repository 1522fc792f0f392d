"""`batchctl doctor` (also `batchctl profile test`): what the active profile's server can do, line by line."""

from __future__ import annotations

from typing import Annotated

import typer

from batchctl.cli.context import AppState
from batchctl.cli.options import JsonOpt, complete_profile_names
from batchctl.errors import EXIT_ERROR

FullOpt = Annotated[
    bool,
    typer.Option(
        "--full",
        help=(
            "Also run a one-request batch (upload, create, retrieve, cancel, download, delete). "
            "It is cancelled at once; DashScope/New-API use the free batch-test-model, OpenAI gpt-4o-mini."
        ),
    ),
]
ModelOpt = Annotated[
    str | None,
    typer.Option("--model", "-m", help="Also check that the New-API channel serves this model."),
]

def _run(ctx: typer.Context, *, full: bool, model: str | None, json_: bool) -> None:
    """Run the checks, show them, exit 1 if any failed (`doctor` and `profile test`)."""
    from batchctl.cli.reports import show_doctor
    from batchctl.doctor import run_doctor

    state = AppState.get(ctx, json_=json_)
    settings = state.settings()
    report = run_doctor(
        settings,
        full=full,
        client=state.client() if (full or settings.is_local) else None,  # client() autostarts the local server
        model=model,
        progress=state.out.info,
        debug_log=state.out.debug if state.debug else None,
    )
    state.out.result(report, human=lambda: show_doctor(state.out, report))
    if report.failed:
        raise typer.Exit(EXIT_ERROR)


def doctor(ctx: typer.Context, full: FullOpt = False, model: ModelOpt = None, json_: JsonOpt = False) -> None:
    """Check the active profile: reachability, key, Batch API routes, New-API channel, clock.

    Each line is ok, warn or FAIL with what to do; exit code 1 when any check fails. A route the provider
    is known not to serve is explained in its words (New-API files, Gemini file upload), and a provider's
    one must-know shows as a line of its own (azure: model is your deployment name). Without --full nothing
    is created: create routes are probed with empty requests, retrieve/cancel with an id that cannot exist.

    Example: batchctl doctor --model qwen-plus
    """
    _run(ctx, full=full, model=model, json_=json_)


def test_profile(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="Profile name (default: the one in use).", autocompletion=complete_profile_names, metavar="NAME")] = None,
    full: Annotated[bool, typer.Option("--full", help="Also run a one-request batch that is cancelled at once (see batchctl doctor).")] = False,
    model: ModelOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Check a profile's server, as batchctl doctor does: reachability, key, routes, channel, clock.

    Example: batchctl profile test work --model qwen-plus
    """
    if name is not None:
        AppState.get(ctx).profile = name
    _run(ctx, full=full, model=model, json_=json_)
