"""`batchctl providers [NAME]`: the provider table (limits, endpoints, windows, discount, quirks), offline."""

from __future__ import annotations

from typing import Annotated

import typer

from batchctl.cli.context import AppState
from batchctl.cli.options import JsonOpt, complete_provider_kinds

_WORD_CAP = 24  # a longer word (a URL) may be folded
COLUMNS = ("provider", "base URL", "requests", "file", "line", "endpoints", "windows", "discount", "quirks")
# A narrower terminal gets the key facts only; the long fields are left to `batchctl providers NAME`.
COMPACT_COLUMNS = ("provider", "base URL", "requests", "file", "line", "discount")
_WRAPPED_MIN = {"windows": 22, "quirks": 30}  # the full table only when these can wrap into readable lines
MORE = "Endpoints, completion windows and quirks: batchctl providers NAME"


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
        _base_url(view),
        *_limits(view),
        ("," + sep).join(view["endpoints"]),
        view["completion_windows"],
        _discount(view),
        sep.join(_quirks(view)) or "-",
    )


def _base_url(view: dict) -> str:
    return view["base_url"] or "(your server's URL)"


def _compact_row(view: dict) -> tuple[str, ...]:
    return (view["name"], _base_url(view), *_limits(view), _discount(view))


def _facts(view: dict) -> str:
    """A provider's limits and discount in one line: "50,000 requests, 200 MB a file, no line limit, 50% off"."""
    requests, size, line = _limits(view)
    line_limit = f"{line} a line" if line != "-" else "no line limit"
    discount = _discount(view)
    return f"{requests} requests, {size} a file, {line_limit}" + ("" if discount == "-" else f", {discount}")


def _table_width(widths: list[int]) -> int:
    """Columns of these widths in a boxed Rich table: a cell is padded by 1 on each side, n + 1 rules."""
    return sum(widths) + 3 * len(widths) + 1


def _full_width(rows: list[tuple[str, ...]]) -> int:
    """How wide the full table must be for its copyable columns to stay whole and the rest to read well."""
    widths = []
    for index, column in enumerate(COLUMNS):
        cells = [column, *(row[index] for row in rows)]
        if column in _WRAPPED_MIN:
            widths.append(_WRAPPED_MIN[column])
        elif column == "endpoints":
            widths.append(min(max(len(w) for cell in cells for w in cell.split()), _WORD_CAP))
        else:
            widths.append(max(len(line) for cell in cells for line in cell.splitlines()))
    return _table_width(widths)


def _overview(views: list[dict], width: int):
    """The providers at the terminal's width: the full table where it fits, else the key facts only --
    a compact table, or on a narrower terminal one block per provider (name, base URL, limits)."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    full = [_row(view, "\n") for view in views]
    if width >= _full_width(full):
        return _table(COLUMNS, full, keep=2)
    compact = [_compact_row(view) for view in views]
    needed = _table_width([max(len(row[i]) for row in [COMPACT_COLUMNS, *compact]) for i in range(len(COMPACT_COLUMNS))])
    if width >= needed:
        return Group(_table(COMPACT_COLUMNS, compact, keep=len(COMPACT_COLUMNS), lines=False), Text(MORE, style="dim"))
    blocks = Table(box=None, show_header=False, padding=(0, 2, 0, 0), pad_edge=False)
    blocks.add_column(no_wrap=True, style="bold")
    blocks.add_column(overflow="fold")
    for view in views:
        blocks.add_row(view["name"], Text(f"{_base_url(view)}\n{_facts(view)}"))
    return Group(blocks, Text(MORE, style="dim"))


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


def _table(columns: tuple[str, ...], rows: list[tuple[str, ...]], *, header: bool = True, keep: int = 1, lines: bool = True):
    """A Rich table; its first `keep` columns (names, URLs people copy) are never wrapped; `lines`: rules
    between rows (for rows of several lines)."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(show_header=header, header_style="bold", show_lines=header and lines)
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
            lambda width: _overview(views, width or 10_000),
            plain=lambda: _aligned([COLUMNS, *(_row(view) for view in views)]),
        )

    def show_one() -> None:
        rows = _detail_rows(views[0])
        out.print_fitted(lambda width: _table(("", ""), rows, header=False), plain=lambda: _aligned(rows))

    out.result(views if name is None else views[0], human=show_all if name is None else show_one, ids=[v["name"] for v in views])
