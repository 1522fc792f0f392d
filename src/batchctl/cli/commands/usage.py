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
    prices = price_table(state.settings().profile_name)
    # A job stands for its batches; `last` is the newest thing submitted from here.
    bill = bill_for(state.expand_ids(state.resolve_ids(targets)), client_for=state.client_for_batch, prices=prices)
    state.out.result(bill.to_dict(), human=lambda: show_bill(state.out, bill))
