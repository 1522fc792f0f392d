"""`batchctl retry JOB|BATCH`: resubmit, into the same job, the requests that have no successful answer yet."""

from __future__ import annotations

from typing import Annotated

import typer

from batchctl.cli.context import AppState
from batchctl.cli.options import IntervalOpt, JsonOpt, complete_ids

EPILOG = (
    "Retried: requests whose latest attempt failed (their error code, or HTTP status), expired "
    "(batch_expired), was cancelled (batch_cancelled) or returned nothing (missing_result). Each retry "
    "part holds the original lines, from the job's input file (which must be unchanged). Exit codes: "
    "0 retried, or nothing to retry; 6 the job is still running; 1 an error; with --wait 3/4/5 when a "
    "retry batch failed (or none of its requests succeeded)/expired/was cancelled; 130 interrupted (the retry batches keep running)."
)

TargetArg = Annotated[
    str,
    typer.Argument(help="Job id (job_…) or batch id, a unique start of one, or `last`: the newest submitted from here.",
                   show_default=False, metavar="JOB|BATCH", autocompletion=complete_ids),  # fmt: skip
]
OnlyCodesOpt = Annotated[
    str | None,
    typer.Option("--only-codes", metavar="CODE,...",
                 help="Retry only failures with one of these error codes or HTTP statuses "
                      "(e.g. rate_limit_exceeded,429,batch_expired); leave the others failed."),  # fmt: skip
]
# Not the shared --wait: retry downloads nothing.
RetryWaitOpt = Annotated[
    bool,
    typer.Option("--wait", "-w", help="Watch the retry batches to their end, then say how many of the job's requests "
                                      "have succeeded (nothing is downloaded: batchctl download JOB does that)."),  # fmt: skip
]


def retry(
    ctx: typer.Context,
    target: TargetArg,
    only_codes: OnlyCodesOpt = None,
    wait: RetryWaitOpt = False,
    interval: IntervalOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Retry a finished job's failed, expired, cancelled and missing requests as new batches of the same job.

    Each new part is linked to the part it retries; `download JOB` then keeps each request's newest
    successful answer. Nothing to retry: says so and exits 0. With --wait, watch the new batches to the
    end and report how many requests are answered now.

    Example: batchctl retry job_3f2a --only-codes rate_limit_exceeded,429 --wait
    """
    from batchctl.cli.reports import show_retry
    from batchctl.jobs.retry import retry as retry_use_case
    from batchctl.errors import exit_code_for_batches

    state = AppState.get(ctx, json_=json_)
    codes = [c.strip() for c in only_codes.split(",") if c.strip()] if only_codes is not None else None
    if codes is not None and not codes:
        raise typer.BadParameter("give at least one code, e.g. --only-codes 429,rate_limit_exceeded", param_hint="--only-codes")

    def wait_for_all(ids: list[str], resume_hint: str):
        from batchctl.cli.watch import watch_batches

        return watch_batches(state, ids, interval=interval, download_hint=False, progress_to_stderr=True,
                             resume_hint=resume_hint)  # fmt: skip

    target = state.resolve_ids([target])[0]  # `last`: the newest job (or batch) submitted from here
    outcome = retry_use_case(state.journal(), target, client_for=state.client_for_batch, reporter=state.out,
                             only_codes=codes, wait_for_all=wait_for_all if wait else None)  # fmt: skip
    state.out.result(outcome, human=lambda: show_retry(state.out, outcome), ids=[p.batch_id or "" for p in outcome.parts])
    if wait and outcome.batches:
        code = exit_code_for_batches(outcome.batches)  # 3 also when a retry batch completed with nothing succeeded
        if code:
            raise typer.Exit(code)
