"""The one output object: results to stdout (plain JSON under --json), talk to stderr.

Commands never call print() and never ask which mode is on: they hand data to `Output` (`result`,
`update`, `show`, `progress`, `live`, `confirm`), which decides how people or scripts see it.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table


def to_jsonable(obj: Any) -> Any:
    """Pydantic models and dataclasses become plain dicts; everything else passes through json's default."""
    if hasattr(obj, "model_dump"):
        return obj.model_dump(mode="json")
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(item) for item in obj]
    if isinstance(obj, dict):
        return {key: to_jsonable(value) for key, value in obj.items()}
    return obj


def is_interactive(stream: Any = None) -> bool:
    """A real terminal that is not a CI log: live redraws and prompts make sense."""
    stream = stream or sys.stdout
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class Output:
    """Data to stdout, messages to stderr; `json_mode` turns data into plain JSON for scripts."""

    def __init__(self, *, json_mode: bool = False, debug: bool = False, quiet: bool = False) -> None:
        self.json_mode = json_mode
        self.debug_mode = debug
        self.quiet_mode = quiet
        self.printed_json = False  # stdout holds one JSON document: an error after a result adds none
        # file=None would bind lazily too, but an explicit stream keeps CliRunner's capture working.
        # emoji=False: `:x:` in a file name or a server's message is text, not ❌ (and Rich's table of
        # emoji codes, 16 ms to load, is never needed).
        self.console = Console(file=sys.stdout, highlight=False, soft_wrap=False, emoji=False)
        self.err = Console(file=sys.stderr, highlight=False, soft_wrap=True, emoji=False)

    # -- results: one call, the mode decides --------------------------------------------------------
    def result(self, data: Any, human: Callable[[], None] | None = None, *, ids: Iterable[str] | None = None) -> None:
        """The command's result: plain JSON of `data` under --json; under --quiet the `ids`, one per
        line (for `xargs` and `$(...)`); for people, `human()` renders it."""
        if self.json_mode:
            self.json(data)
        elif self.quiet_mode and ids is not None:
            for identifier in ids:
                self.line(identifier)
        elif human is not None:
            human()

    def result_line(self, text: str) -> None:
        """A line of the result for people (an id a shell captures) as soon as it is known; nothing
        under --json, which prints the whole result at the end."""
        if not self.json_mode:
            self.line(text)

    def update(self, data: Any, text: str, *, to_stderr: bool = False) -> None:
        """One change while watching: an NDJSON line under --json, else `text` as a line.

        `to_stderr`: the command's result is something else (`submit --wait`), so for people the line
        is talk, and under --json there is no line at all (stdout keeps only the result).
        """
        if self.json_mode:
            if not to_stderr:
                self.json_line(data)
        elif to_stderr:
            self.info(text)
        else:
            self.line(text)

    def show(self, *renderables: Any, to_stderr: bool = False) -> None:
        """Renderables for people only (panels, tables): nothing under --json; on stderr, nothing under
        --quiet either (its talk is ids and errors only)."""
        if self.json_mode or (to_stderr and self.quiet_mode):
            return
        if to_stderr:
            for renderable in renderables:
                self.err.print(renderable)
        else:
            self.print(*renderables)

    def live_enabled(self, *, to_stderr: bool = False) -> bool:
        """Whether a redrawn dashboard makes sense: people at a real terminal, not --json."""
        return not self.json_mode and is_interactive(sys.stderr if to_stderr else sys.stdout)

    @contextmanager
    def live(self, get_renderable: Callable[[], Any], *, to_stderr: bool = False) -> Iterator[Callable[[], None]]:
        """A Rich Live region drawn from `get_renderable` whenever the caller calls the `redraw` it yields
        (a no-op when not `live_enabled`). No refresh thread: a watch waiting between polls costs no CPU."""
        if not self.live_enabled(to_stderr=to_stderr) or self.quiet_mode:
            yield lambda: None
            return
        from rich.live import Live

        with Live(
            console=self.err if to_stderr else self.console,
            get_renderable=get_renderable,
            auto_refresh=False,
            transient=True,
            redirect_stdout=False,
            redirect_stderr=False,
        ) as region:
            yield region.refresh

    @contextmanager
    def progress(self, label: str, total: int | None) -> Iterator[Callable[[int, int], None]]:
        """A byte progress bar on stderr, drawn only for people at a terminal; yields `update(done, total)`."""
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(binary_units=True),  # MiB, as format_size and the provider limits count
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=self.err,
            transient=True,
            disable=self.json_mode or self.quiet_mode or not is_interactive(sys.stderr),
        ) as bar:
            task = bar.add_task(label, total=total)

            def update(done: int, new_total: int) -> None:
                bar.update(task, completed=done, total=new_total or None)

            yield update

    def confirm(self, question: str, *, refusal: str, hint: str) -> bool:
        """Ask on stderr (stdout stays for results); off a terminal, refuse with `refusal` and `hint`."""
        from batchctl.errors import BatchctlError

        if not is_interactive(sys.stdin):
            raise BatchctlError(refusal, hint=hint)
        return self._ask(question)

    def confirm_if_interactive(self, question: str) -> bool:
        """Ask on a terminal; with nobody to ask (a pipe, CI) the answer is yes, as with --yes."""
        return self._ask(question) if is_interactive(sys.stdin) else True

    def _ask(self, question: str) -> bool:
        import typer

        return typer.confirm(question, default=False, err=True)

    # -- data (stdout) -------------------------------------------------------------------------------
    def json(self, obj: Any) -> None:
        """Plain, indented JSON of the object: never Rich-highlighted, `[]` for an empty list."""
        self.printed_json = True
        sys.stdout.write(json.dumps(to_jsonable(obj), indent=2, ensure_ascii=False) + "\n")
        sys.stdout.flush()

    def json_line(self, obj: Any) -> None:
        """One compact JSON object per line (NDJSON), flushed at once for pipes."""
        sys.stdout.write(json.dumps(to_jsonable(obj), ensure_ascii=False, separators=(",", ":")) + "\n")
        sys.stdout.flush()

    def print(self, *renderables: Any, **kwargs: Any) -> None:
        for renderable in renderables:
            if isinstance(renderable, Table):
                self._print_table(renderable)
            else:
                self.console.print(renderable, **kwargs)

    def print_fitted(self, build: Callable[[int | None], Any], *, plain: Callable[[], Iterable[str]] | None = None) -> None:
        """A table built for the terminal's width (`build(width)`); piped, as wide as its data (`build(None)`),
        or -- given `plain` -- its lines written as they are, without Rich (fast for thousands of rows)."""
        if plain is not None and not self.console.is_terminal:
            self.console.file.write("".join(f"{line}\n" for line in plain()))
            self.console.file.flush()
            return
        self.print(build(self.console.width if self.console.is_terminal else None))

    def _print_table(self, table: Table) -> None:
        """On a terminal a table fits the screen; piped into a file it is never cut to 80 columns."""
        if self.console.is_terminal:
            self.console.print(table)
            return
        from rich.measure import Measurement

        width = self.console.width
        needed = Measurement.get(self.console, self.console.options.update(max_width=10_000), table).maximum
        # print(width=...) is capped at the console's width, so widen the console itself for this table.
        self.console.width = max(width, needed)
        try:
            self.console.print(table)
        finally:
            self.console.width = width

    def line(self, text: str) -> None:
        """A plain line of data on stdout (no markup interpretation)."""
        self.console.print(text, markup=False, highlight=False, soft_wrap=True)

    def table(
        self,
        columns: Sequence[str],
        rows: Iterable[Sequence[Any]],
        *,
        title: str | None = None,
        empty: str = "Nothing to show.",
        keep: Sequence[str] = (),
    ) -> None:
        """A table of rows; the columns named in `keep` (ids people copy) are never wrapped or cut."""
        rows = list(rows)
        if not rows:
            self.info(empty)
            return
        table = Table(title=title, show_lines=False, header_style="bold")
        for index, column in enumerate(columns):
            if column in keep:
                widest = max(len(str(row[index] or "")) for row in rows)
                table.add_column(column, no_wrap=True, min_width=max(widest, len(column)))
            else:
                table.add_column(column, overflow="fold")
        for row in rows:
            table.add_row(*("" if cell is None else (cell if hasattr(cell, "__rich__") else escape(str(cell))) for cell in row))
        self._print_table(table)

    # -- talk (stderr) -------------------------------------------------------------------------------
    def info(self, message: str) -> None:
        if not self.quiet_mode:
            self.err.print(message, markup=False, highlight=False)

    def success(self, message: str) -> None:
        if not self.quiet_mode:
            self.err.print(f"[green]✓[/green] {escape(message)}")

    def warn(self, message: str) -> None:
        self.err.print(f"[yellow]Warning:[/yellow] {escape(message)}")

    def error(self, message: str, hint: str | None = None) -> None:
        self.err.print(f"[bold red]Error:[/bold red] {escape(message)}")
        if hint:
            self.err.print(escape(hint), style="dim" if not os.environ.get("NO_COLOR") else None)

    def debug(self, line: str) -> None:
        """One line of `--debug` logging (HTTP exchanges); written raw to stderr."""
        if self.debug_mode:
            sys.stderr.write(line.rstrip("\n") + "\n")
            sys.stderr.flush()
