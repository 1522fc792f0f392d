"""`batchctl doctor` (also `batchctl profile test`): what the active profile's server can do, line by line."""

from __future__ import annotations

from typing import Annotated

import typer

from batchctl.cli.context import AppState
from batchctl.cli.options import JsonOpt

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

_MARK = {"ok": "ok", "warn": "warn", "fail": "FAIL", "skip": "skip"}


def run_doctor_command(state: AppState, *, full: bool, model: str | None) -> None:
    """Shared by `doctor` and `profile test`: run the checks, print them, exit 1 if any failed."""
    from batchctl.doctor import run_doctor

    settings = state.settings()
    client = state.client() if (full or settings.is_local) else None  # client() autostarts the local server
    report = run_doctor(
        settings,
        full=full,
        client=client,
        model=model,
        progress=None if state.json else state.out.info,
        debug_log=state.out.debug if state.debug else None,
    )
    if state.json:
        state.out.json(report.to_dict())
    else:
        state.out.info(
            f"Profile {report.profile} ({report.provider}) at {report.base_url}"
            + (f", channel {report.channel}" if report.channel else "")
        )
        rows = []
        for check in report.checks:
            detail = check.detail + (f"\n→ {check.hint}" if check.hint and check.status != "ok" else "")
            rows.append([_MARK.get(check.status, check.status), check.name, detail])
        state.out.table(["", "check", "result"], rows)
        failed = [c.name for c in report.checks if c.status == "fail"]
        if failed:
            state.out.error(f"{len(failed)} check(s) failed: {', '.join(failed)}", "Fix them as each line says, then run batchctl doctor again.")
        else:
            state.out.success("No failures" + (" (see the warnings above)" if any(c.status == "warn" for c in report.checks) else ""))
    if report.failed:
        raise typer.Exit(1)


def doctor(ctx: typer.Context, full: FullOpt = False, model: ModelOpt = None, json_: JsonOpt = False) -> None:
    """Check the active profile: reachability, key, Batch API routes, New-API channel, clock.

    Each line is ok, warn or FAIL with what to do; exit code 1 when any check fails. Without --full nothing
    is created: create routes are probed with empty requests, retrieve/cancel with an id that cannot exist.

    Example: batchctl doctor --model qwen-plus
    """
    run_doctor_command(AppState.get(ctx, json_=json_), full=full, model=model)
