"""The one output object: results to stdout (plain JSON under --json), talk to stderr.

Commands never call print() and never ask which mode is on: they hand data to `Output` (`result`,
`update`, `show`, `progress`, `live`, `confirm`), which decides how people or scripts see it.

Rich (~20 ms to import) is loaded on first use only. Off a terminal Rich writes plain characters, so
there lines, messages and key/value grids of plain text are written directly, the same characters Rich
would write (`tests/test_output_plain.py` compares them): a piped `validate` never imports Rich.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

if TYPE_CHECKING:
    from rich.console import Console


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


def rich_sees_terminal(stream: Any) -> bool:
    """Whether a Rich Console on `stream` would style its output (`Console.is_terminal`: TTY_COMPATIBLE,
    then FORCE_COLOR, then isatty), decided without importing Rich."""
    if getattr(sys.stdin, "__module__", "").startswith("idlelib") or "IPython" in sys.modules:
        return True  # IDLE and Jupyter: Rich's own rules for them, so never the plain road
    tty_compatible = os.environ.get("TTY_COMPATIBLE", "")
    if tty_compatible in ("0", "1"):
        return tty_compatible == "1"
    force_color = os.environ.get("FORCE_COLOR")
    if force_color is not None:
        return force_color != ""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def is_plain_text(text: str) -> bool:
    """Text Rich prints unchanged (no tab to expand, no control code to strip): printable, newlines allowed."""
    return text.isprintable() or text.replace("\n", "").isprintable()


def _new_console(stream: TextIO, *, soft_wrap: bool) -> Console:
    from rich.console import Console

    # An explicit stream keeps CliRunner's capture working (file=None would bind lazily too).
    # emoji=False: `:x:` in a file name or a server's message is text, not ❌ (and Rich's table of
    # emoji codes, 16 ms to load, is never needed).
    return Console(file=stream, highlight=False, soft_wrap=soft_wrap, emoji=False)


def is_interactive(stream: Any = None) -> bool:
    """A real terminal that is not a CI log: live redraws and prompts make sense."""
    stream = stream or sys.stdout
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False



def _reader_went_away() -> NoReturn:
    """The reader of a pipe closed it (`batchctl validate big.jsonl | head -1`): exit 1 without a word,
    as Rich's `Console.on_broken_pipe` does for what it writes (stdout pointed at /dev/null first, so
    the interpreter's last flush cannot fail again)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no descriptor to point (a test's captured stream)
        pass
    raise SystemExit(1)

class Output:
    """Data to stdout, messages to stderr; `json_mode` turns data into plain JSON for scripts."""

    def __init__(self, *, json_mode: bool = False, debug: bool = False, quiet: bool = False) -> None:
        self.json_mode = json_mode
        self.debug_mode = debug
        self.quiet_mode = quiet
        self.printed_json = False  # stdout holds one JSON document: an error after a result adds none
        self._stdout, self._stderr = sys.stdout, sys.stderr  # the streams of now (CliRunner swaps them)
        self._console: Console | None = None  # Rich's consoles, made on first use
        self._err: Console | None = None
        self._plain: dict[str, TextIO | None] = {}

    @property
    def console(self) -> Console:
        """Rich's console on stdout (soft wrap off: text fits the width)."""
        if self._console is None:
            self._console = _new_console(self._stdout, soft_wrap=False)
        return self._console

    @console.setter
    def console(self, console: Console) -> None:
        self._console = console  # a console of the caller's: it alone writes stdout from now on
        self._plain["out"] = None

    @property
    def err(self) -> Console:
        """Rich's console on stderr."""
        if self._err is None:
            self._err = _new_console(self._stderr, soft_wrap=True)
        return self._err

    def _plain_stream(self, which: str) -> TextIO | None:
        """stdout or stderr (`which`: "out", "err") when Rich would write to it unstyled, else None."""
        if which not in self._plain:
            stream = self._stdout if which == "out" else self._stderr
            self._plain[which] = None if rich_sees_terminal(stream) else stream
        return self._plain[which]

    def _write_plain(self, which: str, text: str) -> bool:
        """Write `text` and a newline to stdout or stderr directly when Rich would write the same
        characters; False (nothing written) when Rich has to."""
        stream = self._plain_stream(which)
        if stream is None or not is_plain_text(text):
            return False
        try:
            stream.write(text + "\n")
            stream.flush()
        except BrokenPipeError:
            _reader_went_away()
        return True

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
        if self.json_mode or self.quiet_mode or not is_interactive(sys.stderr):
            yield lambda done, new_total: None  # no bar: Rich is not even imported
            return
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(binary_units=True),  # MiB, as format_size and the provider limits count
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=self.err,
            transient=True,
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

    def file(self, path: str | os.PathLike[str]) -> None:
        """A file's bytes as the command's data (`-o -`), streamed; a reader that went away (`| head`)
        ends the command without a word."""
        import shutil

        stdout = getattr(sys.stdout, "buffer", sys.stdout)
        try:
            with open(path, "rb") as source:
                shutil.copyfileobj(source, stdout)
            stdout.flush()
        except BrokenPipeError:
            _reader_went_away()

    def json_line(self, obj: Any) -> None:
        """One compact JSON object per line (NDJSON), flushed at once for pipes."""
        sys.stdout.write(json.dumps(to_jsonable(obj), ensure_ascii=False, separators=(",", ":")) + "\n")
        sys.stdout.flush()

    def print(self, *renderables: Any, **kwargs: Any) -> None:
        from rich.table import Table

        for renderable in renderables:
            if isinstance(renderable, Table):
                self._print_table(renderable)
            else:
                self.console.print(renderable, **kwargs)

    def print_fitted(self, build: Callable[[int | None], Any], *, plain: Callable[[], Iterable[str]] | None = None) -> None:
        """A table built for the terminal's width (`build(width)`); piped, as wide as its data (`build(None)`),
        or -- given `plain` -- its lines written as they are, without Rich (fast for thousands of rows)."""
        if plain is not None:
            stream = self._plain_stream("out")
            if stream is None and self._console is not None and not self._console.is_terminal:
                stream = self._console.file  # a console given by the caller (`console = ...`), off a terminal
            if stream is not None:
                stream.write("".join(f"{line}\n" for line in plain()))
                stream.flush()
                return
        self.print(build(self.console.width if self.console.is_terminal else None))

    def key_values(self, rows: Sequence[tuple[str, str]], *, markup: bool = False) -> None:
        """Facts one per row, `label  value`, the labels bold (Rich's `Table.grid`); `markup`: the
        cells are Rich markup, else text as it is."""
        cells = [cell for row in rows for cell in row]
        if rows and self._plain_stream("out") is not None and all(
            cell.isascii() and cell.isprintable() and (not markup or "[" not in cell) for cell in cells
        ):
            # What Rich draws off a terminal: each column as wide as its widest cell, two spaces between.
            label_width = max(len(label) for label, _ in rows)
            value_width = max(len(value) for _, value in rows)
            if value_width:
                self._write_plain("out", "\n".join(f"{label:<{label_width}}  {value:<{value_width}}" for label, value in rows))
                return
        from rich.markup import escape
        from rich.table import Table

        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold")
        table.add_column(overflow="fold")
        for label, value in rows:
            table.add_row(*((label, value) if markup else (escape(label), escape(value))))
        self.print(table)

    def _print_table(self, table: Any) -> None:
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
        if not self._write_plain("out", text):
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
        from rich.markup import escape
        from rich.table import Table

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
        if not self.quiet_mode and not self._write_plain("err", message):
            self.err.print(message, markup=False, highlight=False)

    def success(self, message: str) -> None:
        if not self.quiet_mode:
            self._talk("[green]✓[/green] ", "✓ ", message)

    def warn(self, message: str) -> None:
        self._talk("[yellow]Warning:[/yellow] ", "Warning: ", message)

    def error(self, message: str, hint: str | None = None) -> None:
        self._talk("[bold red]Error:[/bold red] ", "Error: ", message)
        if hint and not self._write_plain("err", hint):
            from rich.markup import escape

            self.err.print(escape(hint), style="dim" if not os.environ.get("NO_COLOR") else None)

    def _talk(self, styled: str, plain: str, message: str) -> None:
        """`message` on stderr after a label: `styled` (markup) through Rich, `plain` when written directly."""
        if not self._write_plain("err", plain + message):
            from rich.markup import escape

            self.err.print(styled + escape(message))

    def debug(self, line: str) -> None:
        """One line of `--debug` logging (HTTP exchanges); written raw to stderr."""
        if self.debug_mode:
            sys.stderr.write(line.rstrip("\n") + "\n")
            sys.stderr.flush()
