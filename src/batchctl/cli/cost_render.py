"""How cost reads to people: the estimate before a batch, the bill and the failures after it.

Each function takes the Output and the data the `batchctl.cost` use cases return; nothing here decides.
`show_estimate` is the line `validate` adds (`submit` reports `cost.estimate.estimate_line`);
`show_bill` is `usage` (and `download`);
`show_failures` is the failure summary `download` and `status` add.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from batchctl.cli.output import Output
    from batchctl.cost.bill import Bill
    from batchctl.cost.estimate import Estimate
    from batchctl.cost.failures import FailureSummary
    from batchctl.cost.usage import Usage


def _tokens(n: int) -> str:
    return f"{n:,}"


def bill_cost(bill: dict | None) -> str:
    """A recorded bill's cost at batch prices (`$0.12`, `¥0.80`), `-` when unknown: the `jobs` column."""
    from batchctl.cost.prices import format_money

    if not bill or bill.get("cost") is None or not bill.get("currency"):
        return "-"
    return format_money(bill["cost"], bill["currency"])


def bill_line(bill: dict | None) -> str | None:
    """`jobs show`: the recorded bill in one line, or None before a download recorded one."""
    from batchctl.cost.prices import format_money

    if not bill:
        return None
    tokens = f"{bill['input_tokens']:,} input + {bill['output_tokens']:,} output tokens"
    if bill.get("cost") is None or not bill.get("currency"):
        unknown = ", ".join(bill.get("unknown_models") or [])
        return f"Cost: unknown ({tokens}" + (f"; no price for {unknown})" if unknown else ")")
    saving = f", saved {format_money(bill['saving'], bill['currency'])}" if bill.get("saving") else ""
    dates = ", ".join(bill.get("prices_as_of") or [])
    return f"Cost: {bill_cost(bill)} at batch prices{saving} ({tokens}" + (f"; prices of {dates})" if dates else ")")


def show_estimate(out: Output, estimate: Estimate) -> None:
    from batchctl.cost.estimate import estimate_line

    out.line("Estimate: " + estimate_line(estimate))


def show_usage(out: Output, usage: Usage, failures: FailureSummary | None = None) -> None:
    """Token totals, cost at batch prices and the saving against real time. `failures`: the bill's count
    of every result line, which says the requests when it saw more lines than the usage (the error file's
    too: the usage reads the output file only)."""
    from batchctl.cost.prices import format_money

    data = usage.to_dict()
    requests = f"{usage.succeeded:,} succeeded, {usage.failed:,} failed" + (f" ({usage.source})" if usage.source else "")
    if failures is not None and failures.lines > usage.lines:
        requests = f"{failures.succeeded:,} succeeded, {failures.failed:,} failed (result lines)"
    rows = [
        ("Requests", requests),
        ("Input tokens", _tokens(data["input_tokens"]) + (f" ({_tokens(data['cached_tokens'])} cached)" if data["cached_tokens"] else "")),
        ("Output tokens", _tokens(data["output_tokens"]) + (f" ({_tokens(data['reasoning_tokens'])} reasoning)" if data["reasoning_tokens"] else "")),
        ("Total tokens", _tokens(data["total_tokens"])),
    ]  # fmt: skip
    if len(usage.by_model) > 1:
        for model, entry in usage.by_model.items():
            rows.append((f"  {model or '(no model)'}", f"{_tokens(entry.input_tokens)} in, {_tokens(entry.output_tokens)} out"))
    currency = usage.currency
    if currency is not None:
        dates = ", ".join(sorted({p["as_of"] for p in data["prices"].values()}))
        rows.append(("Cost (batch)", f"{format_money(data['cost'], currency)}  (prices of {dates})"))
        rows.append(("Real time", f"{format_money(data['realtime_cost'], currency)}, saved {format_money(data['saving'], currency)}"))
    elif usage.unknown_models:
        rows.append(("Cost", f"unknown: no price for {', '.join(usage.unknown_models)} (tokens only)"))
    out.key_values(rows, markup=True)  # the cells as they always were: Rich markup


def show_failures(out: Output, summary: FailureSummary | None) -> None:
    """Failed count by code and HTTP status, the top messages with an example id, and the next step."""
    if summary is None or not summary.failed and not summary.no_success:
        return
    if summary.no_success:
        out.line(f"Problem: none of {summary.lines:,} requests succeeded.")
    out.line(f"Failed: {summary.failed:,} of {summary.lines:,} requests")
    for group in sorted(summary.groups.values(), key=lambda g: (-g.count, g.code)):
        status = f" (HTTP {group.status})" if group.status else ""
        retry = ", retryable" if group.retryable else ""
        out.line(f"  {group.count:,} × {group.code}{status}{retry}")
    for item in summary.top_messages():
        example = f" — e.g. {item['example_custom_id']}" if item["example_custom_id"] else ""
        out.line(f"  “{item['message']}” ×{item['count']:,}{example}")
    step = summary.next_step()
    if step:
        out.info(f"Next: {step}")


def show_bill(out: Output, bill: Bill) -> None:
    """`batchctl usage`: the usage, then the failures, then a problem if nothing succeeded."""
    show_usage(out, bill.usage, bill.failures)
    show_failures(out, bill.failures)
    if bill.problem and not bill.failures.no_success:
        out.line(f"Problem: {bill.problem}.")
