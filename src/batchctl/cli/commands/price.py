"""`batchctl profile price ...`: set, list and remove a profile's model prices (docs/cost.md)."""

from __future__ import annotations

from typing import Annotated

import typer

from batchctl.cli.context import AppState
from batchctl.cli.options import JsonOpt

app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode=None)

ModelArg = Annotated[str, typer.Argument(help="Model name as requests give it (e.g. gpt-4o, qwen-plus).", show_default=False, metavar="MODEL")]
PerMillion = "Price per 1M {} tokens, in --currency (a built-in model keeps the price left out)."


def _profile(state: AppState) -> str:
    """The profile in use: -p NAME, BATCHCTL_PROFILE, the active one, else `local`."""
    return state.settings().profile_name


def _price_line(price) -> str:
    from batchctl.cost.prices import format_money

    discount = f", batch -{price.batch_discount:.0%}" if price.batch_discount else ""
    return (f"{price.model}: input {format_money(price.input, price.currency)}, output "
            f"{format_money(price.output, price.currency)} per 1M tokens{discount} (as of {price.as_of})")  # fmt: skip


@app.command("set")
def set_price(
    ctx: typer.Context,
    model: ModelArg,
    input_: Annotated[float | None, typer.Option("--input", min=0, metavar="PRICE", help=PerMillion.format("input"))] = None,
    output: Annotated[float | None, typer.Option("--output", min=0, metavar="PRICE", help=PerMillion.format("output"))] = None,
    currency: Annotated[str | None, typer.Option("--currency", metavar="CODE", help="USD or CNY (or another ISO code); default USD, or the built-in price's.")] = None,
    batch_discount: Annotated[float | None, typer.Option("--batch-discount", min=0, max=1, metavar="FRACTION", help="What a Batch request saves (0.5 is 50 %, the default).")] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", metavar="DATE", help="When the price was taken (default: today).")] = None,
    json_: JsonOpt = False,
) -> None:
    """Set MODEL's price in the profile in use (-p NAME): written to its [prices] table in the config.

    Example: batchctl -p work profile price set qwen-plus --input 0.4 --output 1.2 --currency USD
    """
    from batchctl.cost.price_config import set_price as set_

    state = AppState.get(ctx, json_=json_)
    profile = _profile(state)
    price = set_(profile, model, input=input_, output=output, currency=currency, batch_discount=batch_discount, as_of=as_of)
    state.out.result({"profile": profile, **price.to_dict()}, human=lambda: state.out.line(_price_line(price)))
    state.out.success(f"Saved the price of {model} in profile {profile!r}")


@app.command("list")
def list_prices(ctx: typer.Context, json_: JsonOpt = False) -> None:
    """List the prices in force for the profile in use: the built-in table with its overrides (marked *).

    Example: batchctl -p work profile price list --json
    """
    from batchctl.cost.price_config import list_prices as list_

    state = AppState.get(ctx, json_=json_)
    prices = list_(_profile(state))
    state.out.result(prices, human=lambda: _show(state, prices))


def _show(state: AppState, prices) -> None:
    from batchctl.cost.prices import format_money

    rows = [
        ["*" if e["overridden"] else "", e["model"], format_money(e["input"], e["currency"]), format_money(e["output"], e["currency"]),
         f"{e['batch_discount']:.0%}", e["as_of"], e["source"]]
        for e in prices.entries()
    ]  # fmt: skip
    state.out.table(["", "model", "input /1M", "output /1M", "batch discount", "as of", "source"], rows, keep=("model",))
    if prices.table.confirm_above is not None:
        state.out.info(f"submit asks for confirmation above {prices.table.confirm_above:g} (confirm_above)")


@app.command("remove")
def remove_price(ctx: typer.Context, model: ModelArg, json_: JsonOpt = False) -> None:
    """Remove the profile's own price for MODEL (a built-in model goes back to its built-in price).

    Example: batchctl -p work profile price remove qwen-plus
    """
    from batchctl.cost.price_config import remove_price as remove

    state = AppState.get(ctx, json_=json_)
    profile = _profile(state)
    left = remove(profile, model)
    state.out.result({"profile": profile, "model": model, "removed": True, "price": left.to_dict() if left else None})
    state.out.success(f"Removed the price of {model} from profile {profile!r}" + (f"; built in: {_price_line(left)}" if left else ""))
