"""How a batch looks to people: Rich panels and the dashboard, the line-per-change text, list rows.

Pure rendering: every function takes a batch (and the numbers `batchctl.watching` computed) and
returns a Rich renderable or a string; nothing here polls or prints.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from rich import box
from rich.console import Group, RenderableType
from rich.markup import escape
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from batchctl.watching import PHASE_TIMESTAMPS, Progress, elapsed_seconds, eta_seconds, format_duration, progress_of

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


def format_timestamp(ts: int | None, *, seconds: bool = True) -> str:
    """Local time, `2025-01-31 14:02:07` (or without seconds); `-` when unknown."""
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


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
    """`37/100 (ok 35, failed 2)`."""
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
        if progress.fraction is not None:
            parts.append(f"{progress.fraction:.0%}")
    parts.append(f"elapsed {format_duration(elapsed_seconds(batch, now))}")
    return "  ".join(parts)


@dataclass(frozen=True)
class BatchView:
    """A batch plus what the watcher measured about it."""

    batch: Batch
    live_counts: bool = True
    rate: float | None = None  # requests per second, None until it can be measured


def _progress_row(progress: Progress, *, width: int = 50) -> RenderableType:
    if not progress.live:
        return Text(NO_LIVE_COUNTS, style="italic")
    fraction = progress.fraction
    bar = ProgressBar(total=max(progress.total, 1), completed=progress.done if progress.total else 0, width=width)
    label = f" {progress.done}/{progress.total}" + (f"  {fraction:.0%}" if fraction is not None else "")
    grid = Table.grid()
    grid.add_row(bar, Text(label))
    return grid


def batch_panel(view: BatchView, *, now: float | None = None) -> Panel:
    """Everything about one batch: status, progress, counts, timing, phases, files, metadata, errors."""
    now = time.time() if now is None else now
    batch = view.batch
    progress = progress_of(batch, live_counts=view.live_counts)
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()

    grid.add_row("status", status_text(batch.status))
    grid.add_row("progress", _progress_row(progress))
    if progress.live:
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
    if batch.metadata:
        grid.add_row("metadata", Text("\n".join(f"{k}: {v}" for k, v in batch.metadata.items())))
    errors = batch.errors.data if batch.errors else []
    if errors:
        lines = [_error_line(item) for item in errors[:MAX_ERRORS_SHOWN]]
        if len(errors) > MAX_ERRORS_SHOWN:
            lines.append(f"... and {len(errors) - MAX_ERRORS_SHOWN} more (see --json)")
        grid.add_row(Text("errors", style="bold red"), Text("\n".join(lines), style="red"))
    return Panel(
        grid,
        title=f"[bold]{escape(batch.id)}[/bold]",
        title_align="left",
        border_style=STATUS_STYLES.get(batch.status, "white"),
        expand=True,
    )


def _error_line(item: Any) -> str:
    where = f"line {item.line}: " if item.line is not None else ""
    code = f"[{item.code}] " if item.code else ""
    param = f" ({item.param})" if item.param else ""
    return f"{where}{code}{item.message or ''}{param}"


def batches_table(views: Sequence[BatchView], *, now: float | None = None) -> Table:
    """One row per batch: the dashboard for many batches at once."""
    now = time.time() if now is None else now
    table = Table(expand=True, header_style="bold")
    id_width = max((len(view.batch.id) for view in views), default=5)
    for column in ("batch", "status", "progress", "requests", "elapsed", "ETA"):
        # Ids are copied by people: never wrapped; the progress bar gives way instead.
        table.add_column(column, no_wrap=True, min_width=id_width if column == "batch" else None)
    for view in views:
        batch = view.batch
        progress = progress_of(batch, live_counts=view.live_counts)
        eta = None if batch.is_terminal else eta_seconds(progress.total - progress.done, view.rate)
        table.add_row(
            batch.id,
            status_text(batch.status),
            _progress_row(progress, width=24),
            counts_text(progress) if progress.live else "-",
            format_duration(elapsed_seconds(batch, now)),
            format_duration(eta) if progress.live and not batch.is_terminal else "-",
        )
    return table


def dashboard(views: Sequence[BatchView], *, header: str, now: float | None = None) -> RenderableType:
    """The live view: a header line, then a panel per batch (a table when there are more than two)."""
    now = time.time() if now is None else now
    body: list[RenderableType] = [Text(header, style="dim")]
    if len(views) > 2:
        body.append(batches_table(views, now=now))
    else:
        body.extend(batch_panel(view, now=now) for view in views)
    return Group(*body)


def list_row(batch: Batch, *, now: float | None = None) -> list[Any]:
    """A row of `batchctl list`: id, status, counts, created, endpoint, description."""
    counts = batch.request_counts
    created = f"{format_relative(batch.created_at, now)}\n{format_timestamp(batch.created_at, seconds=False)}"
    metadata = batch.metadata or {}
    description = (
        batch.model
        or metadata.get("description")
        or metadata.get("ds_description")
        or metadata.get("ds_name")
        or ", ".join(f"{k}={v}" for k, v in metadata.items())
    )
    endpoint = batch.endpoint or "-"
    return [
        batch.id,
        status_text(batch.status),
        f"{counts.completed + counts.failed}/{counts.total}" + (f" ({counts.failed} failed)" if counts.failed else ""),
        created,
        endpoint.removeprefix("/v1/"),
        description or "",
    ]


def list_table(batches: Sequence[Batch], *, now: float | None = None) -> Table:
    """`batchctl list`: ids never folded (people copy them), the rest wraps as the terminal allows."""
    table = Table(header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False)
    rows = [list_row(batch, now=now) for batch in batches]

    def widest(index: int) -> int:
        return max((len(str(row[index])) for row in rows), default=0)

    # ids, statuses and counts are never cut (people copy ids); on a narrow terminal (80 columns, or a
    # pipe) the columns to their right give way with "…" instead of folding every cell.
    table.add_column("id", no_wrap=True, min_width=widest(0))
    table.add_column("status", no_wrap=True, min_width=widest(1))
    table.add_column("done", no_wrap=True, min_width=widest(2))
    table.add_column("created", no_wrap=True, overflow="ellipsis", min_width=10)
    table.add_column("endpoint", no_wrap=True, overflow="ellipsis", min_width=6)
    table.add_column("model / description", no_wrap=True, overflow="ellipsis", min_width=6)
    for row in rows:
        table.add_row(*(cell if isinstance(cell, Text) else Text(str(cell)) for cell in row))
    return table
