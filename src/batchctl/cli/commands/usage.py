"""`batchctl usage BATCH_ID|FILE...`: the tokens finished batches used, their cost, and why requests failed."""

from __future__ import annotations

from typing import Annotated

import typer

from batchctl.cli.context import AppState
from batchctl.cli.options import JsonOpt

EPILOG = (
    "Takes batch ids (their output and error files are streamed from the server, nothing is saved) or "
    "local result files (output and error files from `batchctl download`). Token totals come from the "
    "batch's own usage when the provider reports one, else from the output lines. Cost uses the built-in "
    "prices (dated; see docs/cost.md) with the profile's [prices] on top. Exit codes: 0 shown; 1 error."
)

TargetsArg = Annotated[
    list[str],
    typer.Argument(
        help="Batch ids, job ids, `last`, or paths of result files (output and error JSONL).", show_default=False,
        metavar="BATCH_ID|FILE",
    ),
]


def usage(ctx: typer.Context, targets: TargetsArg, json_: JsonOpt = False) -> None:
    """Show the tokens batches used, what they cost at batch prices, the saving, and why requests failed.

    Takes batch ids, job ids (all their batches), `last`, or local result files.

    Example: batchctl usage batch_abc123    or    batchctl usage results.jsonl results.errors.jsonl
    """
    from batchctl.cli.cost_render import show_bill
    from batchctl.cost.bill import bill_for
    from batchctl.cost.prices import price_table

    state = AppState.get(ctx, json_=json_)
    for target in targets:
        _check_file_target(target)
    prices = price_table(state.settings().profile_name)
    # A job stands for its batches (a retried job's requests count once each); `last` is the newest thing
    # submitted from here.
    ids, jobs = [], {}
    for item in state.resolve_ids(targets):
        job = state.find_job(item)
        if job is not None:
            jobs[job.id] = state.journal().parts(job.id)
        ids.append(job.id if job is not None else item)
    bill = bill_for(ids, client_for=state.client_for_batch, prices=prices, jobs=jobs)
    state.out.result(bill.to_dict(), human=lambda: show_bill(state.out, bill))


def _check_file_target(target: str) -> None:
    """Refuse at once a target that names a file but is none (batch ids have no JSON extension),
    or a batch input file (requests, not results): its bill would be all failures."""
    import json
    from pathlib import Path

    from batchctl.errors import BatchctlError

    path = Path(target)
    if path.is_dir():
        raise BatchctlError(f"{target} is a directory", "Give a result file from batchctl download, or a batch id.")
    if path.exists() and not path.is_file():  # a named pipe, a device: reading it could hang
        raise BatchctlError(f"{target} is not a regular file", "Give a result file from batchctl download, or a batch id.")
    if not path.is_file():
        # Named as a file: a JSON extension, or a path from here (gemini's batch ids hold a `/` too).
        if path.suffix.lower() in (".jsonl", ".json", ".ndjson") or target.startswith(("/", "./", "../", "~")):
            raise BatchctlError(f"no such file: {target}", "Give a result file from batchctl download, or a batch id.")
        return
    with open(path, "rb") as f:
        first = next((line for line in f if line.strip()), b"")
    if not first:
        return  # an empty result file (a batch whose file has no lines): nothing to bill, not an error
    try:
        obj = json.loads(first.decode("utf-8-sig"))
    except ValueError:  # UnicodeDecodeError too. Further down, the bill reports what it cannot read, line by line.
        raise BatchctlError(
            f"{target} is not a result file: its first line is not JSON",
            "usage reads result files (from batchctl download) or batch ids.",
        ) from None
    if isinstance(obj, dict) and "body" in obj and "response" not in obj and "error" not in obj:
        raise BatchctlError(
            f"{target} is a batch input file (requests), not results",
            f"usage reads result files (from batchctl download) or batch ids; batchctl validate {target} estimates its cost.",
        )
