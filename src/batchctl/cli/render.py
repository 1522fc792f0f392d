"""How a batch looks to people: Rich panels and the dashboard, the line-per-change text, list rows.

Pure rendering: every function takes a batch (and the numbers `batchctl.watching` computed) and
returns a Rich renderable or a string; nothing here polls or prints.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rich import box
from rich.console import Group, RenderableType
from rich.markup import escape
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from batchctl.errors import nothing_succeeded
from batchctl.watching import (
    PHASE_TIMESTAMPS,
    Progress,
    elapsed_seconds,
    eta_seconds,
    format_duration,
    format_timestamp,
    progress_of,
)

if TYPE_CHECKING:
    from batchctl.api.models import Batch

STATUS_STYLES = {
    "validating": "cyan",
    "in_progress": "blue",
    "finalizing": "magenta",
    "completed": "green",
    "failed": "red",
    "expired": "yellow",
    "cancelling": "yellow",
    "cancelled": "dim yellow",
}
NO_LIVE_COUNTS = "counts are reported when the batch finishes"
MAX_ERRORS_SHOWN = 10


def status_text(status: str) -> Text:
    return Text(status, style=f"bold {STATUS_STYLES.get(status, 'white')}")


def format_relative(ts: int | None, now: float | None = None) -> str:
    """`just now`, `5 min ago`, `3 h ago`, `2 days ago`."""
    if ts is None:
        return "-"
    seconds = (time.time() if now is None else now) - ts
    if seconds < 0:
        return "in the future"
    if seconds < 45:
        return "just now"
    if seconds < 3600:
        return f"{max(1, round(seconds / 60))} min ago"
    if seconds < 86400:
        return f"{round(seconds / 3600)} h ago"
    days = round(seconds / 86400)
    return f"{days} day{'s' if days != 1 else ''} ago"


def format_rate(rate: float | None) -> str:
    if rate is None:
        return "-"
    if rate >= 1:
        return f"{rate:.1f} req/s"
    return f"{rate * 60:.1f} req/min"


def counts_text(progress: Progress) -> str:
    """`37/100 (ok 35, failed 2)`; `42%` from a provider that reports a percentage instead of counts."""
    if progress.percent is not None:
        return f"{progress.percent:.0f}%"
    return f"{progress.done}/{progress.total} (ok {progress.ok}, failed {progress.failed})"


def change_line(batch: Batch, *, now: float | None = None, live_counts: bool = True) -> str:
    """The line-per-change format for pipes and CI logs:

    `batch_abc  in_progress  37/100 (ok 35, failed 2)  37%  elapsed 0:00:12`
    """
    now = time.time() if now is None else now
    progress = progress_of(batch, live_counts=live_counts)
    parts = [batch.id, batch.status]
    if not progress.live:
        parts.append(NO_LIVE_COUNTS)
    else:
        parts.append(counts_text(progress))
        if progress.fraction is not None and progress.percent is None:
            parts.append(f"{progress.fraction:.0%}")
    parts.append(f"elapsed {format_duration(elapsed_seconds(batch, now))}")
    return "  ".join(parts)


@dataclass(frozen=True)
class BatchView:
    """A batch plus what the watcher measured about it."""

    batch: Batch
    live_counts: bool = True
    rate: float | None = None  # requests per second, None until it can be measured


def batch_panel(view: BatchView, *, now: float | None = None, width: int = 200) -> Panel:
    """Everything about one batch: status, progress, counts, timing, phases, files, metadata, errors.

    The progress bar shrinks to fit `width` (the panel's frame, the labels and the count take the rest).
    """
    now = time.time() if now is None else now
    batch = view.batch
    progress = progress_of(batch, live_counts=view.live_counts)
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    long_id = len(batch.id) > width - 6  # a title is cut to one line: a long id goes whole into the panel
    if long_id:
        grid.add_row("id", Text(batch.id, overflow="fold"))

    if nothing_succeeded(batch):
        status = Text.assemble(status_text(batch.status), (f" — 0 of {batch.request_counts.total:,} succeeded", "bold red"))
    else:
        status = status_text(batch.status)
    grid.add_row("status", status)
    grid.add_row("progress", _progress_row(progress, width=max(_BAR_MIN, min(50, width - 30))))
    if progress.live and progress.percent is None:
        counts = Text.assemble(("ok ", "dim"), (str(progress.ok), "green"), ("   failed ", "dim"),
                               (str(progress.failed), "red" if progress.failed else ""))
        grid.add_row("requests", counts)
    timing = f"elapsed {format_duration(elapsed_seconds(batch, now))}"
    if not batch.is_terminal and progress.live:
        eta = eta_seconds(progress.total - progress.done, view.rate)
        timing += f"   rate {format_rate(view.rate)}   ETA {format_duration(eta)}"
    grid.add_row("time", timing)
    phases = [
        f"{label} {format_timestamp(getattr(batch, name))}"
        for label, name in PHASE_TIMESTAMPS
        if getattr(batch, name, None)
    ]
    if phases:
        grid.add_row("phases", Text("\n".join(phases)))
    if batch.expires_at and not batch.is_terminal:
        grid.add_row("expires", format_timestamp(batch.expires_at))
    endpoint = batch.endpoint or "-"
    if batch.model:
        endpoint += f"   model {batch.model}"
    if batch.completion_window:
        endpoint += f"   window {batch.completion_window}"
    grid.add_row("endpoint", Text(endpoint))
    files = [f"input  {batch.input_file_id or '-'}"]
    if batch.output_file_id:
        files.append(f"output {batch.output_file_id}")
    if batch.error_file_id:
        files.append(f"errors {batch.error_file_id}")
    grid.add_row("files", Text("\n".join(files)))
    metadata = people_metadata(batch)
    if metadata:
        grid.add_row("metadata", Text("\n".join(f"{k}: {v}" for k, v in metadata.items())))
    errors = batch.errors.data if batch.errors else []
    if errors:
        lines = [error_line(item) for item in errors[:MAX_ERRORS_SHOWN]]
        if len(errors) > MAX_ERRORS_SHOWN:
            lines.append(f"... and {len(errors) - MAX_ERRORS_SHOWN} more (see --json)")
        grid.add_row(Text("errors", style="bold red"), Text("\n".join(lines), style="red"))
    return Panel(
        grid,
        title=None if long_id else f"[bold]{escape(batch.id)}[/bold]",
        title_align="left",
        border_style=STATUS_STYLES.get(batch.status, "white"),
        expand=True,
    )


def people_metadata(batch: Batch) -> dict[str, Any]:
    """The metadata people gave a batch: without the `batchctl_*` tags jobs use to find their batches
    again (they stay in --json)."""
    return {k: v for k, v in (batch.metadata or {}).items() if not str(k).startswith("batchctl_")}


def error_line(item: Any) -> str:
    """`line 3: [invalid_json_line] not valid JSON (body)`: the line number once, even when the
    server's message starts with it too (ours does, as OpenAI's validator does)."""
    where = f"line {item.line}: " if item.line is not None else ""
    message = item.message or ""
    if where and message.startswith(where):
        message = message[len(where):]
    code = f"[{item.code}] " if item.code else ""
    param = f" ({item.param})" if item.param else ""
    return f"{where}{code}{message}{param}"


def _label(progress: Progress) -> str:
    if progress.percent is not None:
        return f" {progress.percent:.0f}%"
    fraction = progress.fraction
    return f" {progress.done}/{progress.total}" + (f"  {fraction:.0%}" if fraction is not None else "")


def _progress_row(progress: Progress, *, width: int = 50) -> RenderableType:
    if not progress.live:
        return Text(NO_LIVE_COUNTS, style="italic")
    if progress.percent is not None:
        bar = ProgressBar(total=100, completed=progress.percent, width=width)
    else:
        bar = ProgressBar(total=max(progress.total, 1), completed=progress.done if progress.total else 0, width=width)
    grid = Table.grid()
    grid.add_row(bar, Text(_label(progress)))
    return grid


# Columns of the many-batches table that give way on a narrow terminal, least needed first.
_DROPPABLE = ("requests", "elapsed", "ETA")
_BAR_MIN, _BAR_MAX = 6, 24


def batches_table(views: Sequence[BatchView], *, now: float | None = None, width: int = 200) -> Table:
    """One row per batch: the dashboard for many batches at once, fitted to `width` columns.

    Ids and statuses are never cut; the requests, elapsed and ETA columns drop (in that order) and the
    bar shrinks until the rest fits.
    """
    now = time.time() if now is None else now
    rows = []
    for view in views:
        batch = view.batch
        progress = progress_of(batch, live_counts=view.live_counts)
        eta = None if batch.is_terminal else eta_seconds(progress.total - progress.done, view.rate)
        rows.append({
            "batch": batch.id,
            "status": batch.status,
            "progress": progress,
            "requests": counts_text(progress) if progress.live else "-",
            "elapsed": format_duration(elapsed_seconds(batch, now)),
            "ETA": format_duration(eta) if progress.live and not batch.is_terminal else "-",
        })  # fmt: skip

    def widest(column: str) -> int:
        cells = [len(row[column]) if isinstance(row[column], str) else _progress_width(row[column]) for row in rows]
        return max([len(column), *cells])

    columns = ["batch", "status", "progress", "requests", "elapsed", "ETA"]
    widths = {column: widest(column) for column in columns if column != "progress"}
    label_width = max((len(_label(row["progress"])) for row in rows if row["progress"].live), default=len(NO_LIVE_COUNTS))
    label_width = max(label_width, max((len(NO_LIVE_COUNTS) for row in rows if not row["progress"].live), default=0) - _BAR_MIN)

    # An id wider than the rest leaves room for (LiteLLM's base64 ids) folds onto more lines; never cut.
    widths["batch"] = min(widths["batch"], max(12, width - widths["status"] - _BAR_MIN - label_width - 6))

    def room_for_bar(shown: list[str]) -> int:
        others = sum(widths[c] for c in shown if c != "progress")
        return width - others - label_width - 3 * (len(shown) - 1)  # a space of padding, a rule, a space

    for column in _DROPPABLE:
        if room_for_bar(columns) >= _BAR_MIN:
            break
        columns.remove(column)
    bar = max(_BAR_MIN, min(_BAR_MAX, room_for_bar(columns)))

    table = Table(header_style="bold", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, expand=False)
    for column in columns:
        table.add_column(column, no_wrap=column != "batch", overflow="fold", min_width=widths.get(column),
                         max_width=widths["batch"] if column == "batch" else None)  # fmt: skip
    for row in rows:
        cells = {**row, "status": status_text(row["status"]), "progress": _progress_row(row["progress"], width=bar)}
        table.add_row(*(cells[column] for column in columns))
    return table


def _progress_width(progress: Progress) -> int:
    return _BAR_MIN + len(_label(progress)) if progress.live else len(NO_LIVE_COUNTS)


class _Fitted:
    """A renderable that is built for the size it is drawn at (a Live redraw after a resize refits)."""

    def __init__(self, build: Any) -> None:
        self.build = build

    def __rich_console__(self, console: Any, options: Any) -> Any:
        yield from self.build(options.max_width, options.size.height)


def dashboard(views: Sequence[BatchView], *, header: str, now: float | None = None) -> RenderableType:
    """The live view: a header line, then a panel per batch (a table when there are more than two).

    A table taller than the screen shows the unfinished batches first and counts the rest on one line:
    rows nobody can see are not built (500 batches redraw as fast as 50).
    """
    now = time.time() if now is None else now
    body: list[RenderableType] = [Text(header, style="dim")]
    if len(views) > 2:
        body.append(_Fitted(lambda width, height: _table_for_screen(views, now=now, width=width, height=height)))
    else:
        body.extend(_Fitted(lambda width, height, view=view: [batch_panel(view, now=now, width=width)]) for view in views)
    return Group(*body)


def _table_for_screen(views: Sequence[BatchView], *, now: float, width: int, height: int) -> list[RenderableType]:
    room = max(3, height - 6)  # the header (and a notice) line, the table's head and rule, the "more" line
    if len(views) <= room:
        return [batches_table(views, now=now, width=width)]
    shown = sorted(views, key=lambda view: view.batch.is_terminal)[:room]  # stable: unfinished first, in order
    on_screen = {id(view) for view in shown}
    hidden = [view.batch for view in views if id(view) not in on_screen]
    finished = sum(batch.is_terminal for batch in hidden)
    more = f"... and {len(hidden)} more ({finished} finished, {len(hidden) - finished} not yet)"
    return [batches_table(shown, now=now, width=width), Text(more, style="dim")]


def list_row(batch: Batch, *, now: float | None = None) -> list[Any]:
    """A row of `batchctl list`: id, status, counts, created, endpoint, description."""
    counts = batch.request_counts
    created = f"{format_relative(batch.created_at, now)}\n{format_timestamp(batch.created_at, seconds=False)}"
    metadata = people_metadata(batch)
    description = (
        batch.model
        or metadata.get("description")
        or metadata.get("ds_description")
        or metadata.get("ds_name")
        or ", ".join(f"{k}={v}" for k, v in metadata.items())
    )
    endpoint = batch.endpoint or "-"
    done = f"{counts.completed + counts.failed}/{counts.total}" + (f" ({counts.failed} failed)" if counts.failed else "")
    if counts.total <= 0 and batch.progress is not None:  # a percentage instead of counts (together)
        done = f"{batch.progress:.0f}%"
    return [
        batch.id,
        status_text(batch.status),
        done,
        created,
        endpoint.removeprefix("/v1/"),
        description or "",
    ]


def list_table(batches: Sequence[Batch], *, now: float | None = None, width: int | None = None) -> Table:
    """`batchctl list`: ids, statuses and counts are never cut (people copy ids).

    With room (or `width` None: a pipe, as wide as the data), one column each for created, endpoint and
    model; on a narrower terminal those go under the id as a folded second line instead of being cut.
    """
    table = Table(header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False)
    rows = [list_row(batch, now=now) for batch in batches]

    def widest(index: int) -> int:
        return max((max(len(part) for part in str(row[index]).split("\n")) for row in rows), default=0)

    full = sum(widest(i) for i in range(6)) + 3 * 5 + 2
    if width is None or width >= full:
        for index, column in enumerate(("id", "status", "done", "created", "endpoint", "model / description")):
            table.add_column(column, no_wrap=True, min_width=max(widest(index), len(column)))
        for row in rows:
            table.add_row(*(cell if isinstance(cell, Text) else Text(str(cell)) for cell in row))
        return table
    table.add_column("id", overflow="fold", min_width=widest(0))
    table.add_column("status", no_wrap=True, min_width=widest(1))
    table.add_column("done", no_wrap=True, min_width=widest(2))
    for row in rows:
        details = " · ".join(str(part) for part in (row[3].split("\n")[0], row[4], row[5]) if part)
        table.add_row(Text.assemble(row[0], "\n", (details, "dim")), row[1], Text(str(row[2])))
    return table


LIST_COLUMNS = ("id", "status", "done", "created", "endpoint", "model / description")


def list_lines(batches: Sequence[Batch], *, now: float | None = None) -> list[str]:
    """`batchctl list` piped: a header and one plain line per batch, columns aligned, nothing ever cut.

    No Rich on this path (it was 60-65 % of `list --all` on 2,000 batches): the same columns as the
    table, `created` on one line (`2025-01-31 14:02 (5 min ago)`), the last column unpadded.
    """
    rows = [LIST_COLUMNS]
    for batch in batches:
        cells = list_row(batch, now=now)
        relative, _, absolute = cells[3].partition("\n")
        created = f"{absolute} ({relative})" if absolute else relative
        rows.append((cells[0], batch.status, cells[2], created, cells[4], cells[5]))
    widths = [max(len(row[i]) for row in rows) for i in range(len(LIST_COLUMNS) - 1)]
    return [
        "  ".join([*(cell.ljust(width) for cell, width in zip(row, widths)), row[-1]]).rstrip() for row in rows
    ]

