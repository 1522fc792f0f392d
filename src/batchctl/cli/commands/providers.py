"""`batchctl providers [NAME]`: the provider table (limits, endpoints, windows, discount, quirks), offline."""

from __future__ import annotations

from typing import Annotated

import typer

from batchctl.cli.context import AppState
from batchctl.cli.options import JsonOpt, complete_provider_kinds

_WORD_CAP = 24  # a longer word (a URL) may be folded
COLUMNS = ("provider", "base URL", "requests", "file", "line", "endpoints", "windows", "discount", "quirks")


def _discount(view: dict) -> str:
    share = view["batch_discount"]
    return "-" if share is None else f"{share:.0%} off"


def _quirks(view: dict) -> list[str]:
    """What a user should know, each a sentence: notes, what is not served, what may be refused."""
    quirks = list(view["notes"])
    quirks += [f"Not served: {what}." for what in view["unsupported"]]
    if view["refused_params"]:
        how = "" if view["refused_params_verified"] else " (reported, unverified)"
        quirks.append(f"Refuses {', '.join(view['refused_params'])}{how}.")
    return quirks


def _limits(view: dict) -> tuple[str, str, str]:
    from batchctl.providers import format_size

    line = view["max_line_bytes"]
    return f"{view['max_requests']:,}", format_size(view["max_file_bytes"]), format_size(line) if line else "-"


def _row(view: dict, sep: str = " ") -> tuple[str, ...]:
    """One provider's cells; `sep` joins its endpoints and quirks (a newline in a terminal's table)."""
    return (
        view["name"],
        view["base_url"] or "(your server's URL)",
        *_limits(view),
        ("," + sep).join(view["endpoints"]),
        view["completion_windows"],
        _discount(view),
        sep.join(_quirks(view)) or "-",
    )


def _detail_rows(view: dict) -> list[tuple[str, str]]:
    requests, size, line = _limits(view)
    limits = f"{requests} requests, {size} per file, " + (f"{line} per line" if line != "-" else "no line limit")
    if view["max_embedding_inputs"]:
        limits += f", {view['max_embedding_inputs']:,} embedding inputs per batch"
    limits += "".join(f", {n:,} requests to {path}" for path, n in view["endpoint_max_requests"].items())
    rows = [
        ("provider", f"{view['name']} ({view['title']})"),
        *((f"preset {name}", url) for name, url in view["presets"].items()),
        ("limits", limits),
        ("endpoints", ", ".join(view["endpoints"])),
        ("windows", view["completion_windows"]),
        ("poll interval", f"{view['default_poll_interval']:g} s"),
        ("counts while running", "live" if view["live_counts"] else "only once the batch ends"),
        ("discount", _discount(view)),
    ]
    if view["list_filters"]:
        rows.append(("list filters", ", ".join(view["list_filters"])))
    rows += [("quirk", quirk) for quirk in _quirks(view)]
    rows += [("docs", view["docs_url"] or "-"), ("figures", view["verified"] or "-")]
    return rows


def _aligned(rows: list[tuple[str, ...]], sep: str = "  ") -> list[str]:
    """Plain lines, columns padded to their widest cell, the last one unpadded (nothing cut)."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return [sep.join([*(cell.ljust(w) for cell, w in zip(row, widths)), row[-1]]).rstrip() for row in rows]


def _table(columns: tuple[str, ...], rows: list[tuple[str, ...]], *, header: bool = True, keep: int = 1):
    """A Rich table; its first `keep` columns (names, URLs people copy) are never wrapped."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(show_header=header, header_style="bold", show_lines=header)
    for index, column in enumerate(columns):
        # Wide enough for the longest word of the column (an endpoint), so words are not cut in two.
        word = max((len(w) for row in rows for w in row[index].split()), default=0)
        table.add_column(column, overflow="fold", no_wrap=index < keep, min_width=min(word, _WORD_CAP))
    for row in rows:
        table.add_row(*map(escape, row))
    return table


def providers(
    ctx: typer.Context,
    name: Annotated[
        str | None,
        typer.Argument(help="Show this provider in detail.", autocompletion=complete_provider_kinds, show_default=False, metavar="NAME"),
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """The providers batchctl knows: base URL, limits, endpoints, windows, discount and quirks.

    A table on a terminal, aligned plain lines when piped, --json for scripts. Each provider is also a
    preset: batchctl profile add NAME --preset PROVIDER (docs/providers.md says where each figure is from).

    Example: batchctl providers azure
    """
    from batchctl.presets import provider_views

    state = AppState.get(ctx, json_=json_)
    out = state.out
    views = provider_views(name)

    def show_all() -> None:
        out.print_fitted(
            lambda width: _table(COLUMNS, [_row(view, "\n") for view in views]),
            plain=lambda: _aligned([COLUMNS, *(_row(view) for view in views)]),
        )

    def show_one() -> None:
        rows = _detail_rows(views[0])
        out.print_fitted(lambda width: _table(("", ""), rows, header=False), plain=lambda: _aligned(rows))

    out.result(views if name is None else views[0], human=show_all if name is None else show_one, ids=[v["name"] for v in views])
