"""One pass over result lines: is each one a result, did it fail, what did it use — read once.

A download used to read each result file back four times (the check that it is results, the
failure count, the usage, the failure summary), parsing every line with `json.loads` each time.
`ResultTally.add(line)` does it all at once, and for the common line — a success — parses only the
few fields it needs (custom_id, error, response.status_code, response.body.model and .usage): msgspec
skips the rest (the answer text) without building it. A line that does not fit that shape, and every
failure, is parsed whole and goes through the same functions as before (`results.result_failed`,
`Usage.add_line`, `FailureSummary.add_line`), so the figures are the ones a read-back gave.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from batchctl.cost.failures import FailureSummary
from batchctl.cost.usage import TOKEN_FIELDS, Usage
from batchctl.jsonfast import loads

try:
    import msgspec
except ImportError:  # pragma: no cover - a dependency; without it every line is parsed whole
    msgspec = None  # type: ignore[assignment]

if msgspec is not None:
    from typing import Annotated

    # A token count as `cost.usage._int` reads it when it is one already: an int >= 0 (0 when absent).
    # Anything else (a bool, a float, null, a negative, a string) fails the decode, and the line is
    # read whole, as a dict: so the typed usage below never counts differently from `tokens_of_usage`.
    _Count = Annotated[int, msgspec.Meta(ge=0)]

    class _Details(msgspec.Struct, gc=False):
        cached_tokens: _Count = 0
        reasoning_tokens: _Count = 0

    class _Usage(msgspec.Struct, gc=False):
        """A `usage` object of either shape (chat/completions, responses), as `tokens_of_usage` reads it."""

        prompt_tokens: _Count = 0
        completion_tokens: _Count = 0
        input_tokens: _Count = 0
        output_tokens: _Count = 0
        total_tokens: _Count = 0
        prompt_tokens_details: _Details | None = None
        completion_tokens_details: _Details | None = None
        input_tokens_details: _Details | None = None
        output_tokens_details: _Details | None = None

    class _Body(msgspec.Struct):
        model: Any = None
        usage: _Usage | None = None

    class _Response(msgspec.Struct):
        status_code: Any = None
        body: _Body | None = None

    class _Status(msgspec.Struct):
        status_code: Any = None

    class _Outline(msgspec.Struct):
        """The fields of a result line the counters read; the rest is skipped unbuilt."""

        custom_id: Any = None
        error: Any = None
        response: _Response | None = None

    class _StatusOutline(msgspec.Struct):
        """`_Outline` without the response body: when the usage is not wanted."""

        custom_id: Any = None
        error: Any = None
        response: _Status | None = None

    _decode_outline = msgspec.json.Decoder(_Outline).decode
    _decode_status = msgspec.json.Decoder(_StatusOutline).decode
    _decode_outlines = msgspec.json.Decoder(list[tuple[_Outline]]).decode
    _decode_statuses = msgspec.json.Decoder(list[tuple[_StatusOutline]]).decode
    _OUTLINE_ERRORS: tuple[type[BaseException], ...] = (msgspec.DecodeError, RecursionError)


def _outline(line: bytes, with_body: bool) -> Any:
    """The outline of a successful result line with a string custom_id, else None (parse it whole)."""
    if msgspec is None:  # pragma: no cover
        return None
    try:
        outline = _decode_outline(line) if with_body else _decode_status(line)
    except _OUTLINE_ERRORS:
        return None
    return outline if _succeeded(outline) else None


def _succeeded(outline: Any) -> bool:
    """Whether an outline is a success with a string custom_id (else its line is parsed whole)."""
    response = outline.response
    if type(outline.custom_id) is not str or outline.error or response is None:
        return False
    status = response.status_code
    return not (isinstance(status, int) and status >= 400)


def _outlines(block: bytes, with_body: bool) -> list[tuple[Any]] | None:
    """The outlines of a block of lines (joined by newlines), each in a tuple of one, or None unless
    each line reads as one value of the outline's shape (then the lines are read one by one).

    The block is read as one JSON array of one-element arrays, `[[line]\n,[line]...]`: one decode a
    block instead of one a line (the call and the loop around it were about half the tally's time).
    Element i is line i when: a blank line makes the array invalid; the newline kept between the lines
    makes a string that runs on into the next line invalid (a raw newline in a string); and a line that
    closes its array and opens another (`{..}],[{..}`) makes one element too many, which the count
    refuses. What still passes is a line left open in an array and a later one closing it while another
    line splits in two, which a cut line or an HTML page does not do (docs/performance.md, section 5)."""
    if msgspec is None:  # pragma: no cover
        return None
    joined = block.replace(b"\n", b"\n],[")
    try:
        rows = (_decode_outlines if with_body else _decode_statuses)(b"[[" + joined + b"]]")
    except _OUTLINE_ERRORS:
        return None
    lines = (len(joined) - len(block)) // 3 + 1  # each newline grew by 3 bytes: no count pass
    return rows if len(rows) == lines else None


@dataclass
class ResultTally:
    """Counts of the result lines fed to `add`: usage (where asked) and why requests failed."""

    usage: Usage = field(default_factory=Usage)
    failures: FailureSummary = field(default_factory=FailureSummary)

    def snapshot(self) -> ResultTally:
        return copy.deepcopy(self)

    def restore(self, snapshot: ResultTally) -> None:
        """Back to the counts of `snapshot` (from `snapshot()`), in place."""
        again = copy.deepcopy(snapshot)
        self.usage, self.failures = again.usage, again.failures

    @property
    def lines(self) -> int:
        return self.failures.lines

    @property
    def failed(self) -> int:
        """Lines that are errors, or not results at all."""
        return self.failures.failed

    def add(self, line: bytes, *, count_usage: bool = True) -> tuple[str | None, bool]:
        """Count one non-blank result line (bytes, ending or not): (its custom_id, or None when it is
        not a result — a JSON object with a string custom_id —, whether it failed)."""
        outline = _outline(line, count_usage)
        if outline is not None:  # a success: the counters get the parts they read
            if count_usage:
                self._count_usage(outline)
            self.failures.add_success()
            return outline.custom_id, False
        try:
            obj = loads(line)
        except (ValueError, RecursionError):  # not JSON, or nested deeper than the parser goes: no result
            obj = None
        result = obj if isinstance(obj, dict) else None
        if count_usage:
            self.usage.add_line(result)
        failed = self.failures.failed
        self.failures.add_line(result)
        custom_id = result.get("custom_id") if result is not None else None
        return (custom_id if isinstance(custom_id, str) else None), self.failures.failed > failed

    def add_lines(self, lines: Iterable[bytes | memoryview], *, count_usage: bool = True) -> bytes | None:
        """`add` each non-blank line of `lines` (blank ones are skipped), the same counts in one call
        for a chunk's lines, which may be views into it (copied only when parsed whole); stops after
        the first line that is not a result and returns it (None: all were)."""
        failures, successes = self.failures, 0
        try:
            for line in lines:
                if not line:
                    continue
                outline = _outline(line, count_usage)  # a blank line is no outline: skipped below
                if outline is not None:  # a success, as in `add`
                    if count_usage:
                        self._count_usage(outline)
                    successes += 1
                    continue
                line = bytes(line)
                if line.isspace():
                    continue
                failures.add_successes(successes)  # in order, before the line that needs the whole parse
                successes = 0
                if self.add(line, count_usage=count_usage)[0] is None:
                    return line
        finally:
            failures.add_successes(successes)
        return None

    def add_block(self, block: bytes, *, count_usage: bool = True) -> bytes | None:
        """`add_lines` for a block of whole lines joined by newlines (a chunk's, the last line without
        its own): the block is parsed in one call when every line is one JSON value (`_outlines`), and
        only the lines that are no plain success are parsed again, whole; the same counts."""
        outlines = _outlines(block, count_usage)
        if outlines is None:
            return self.add_lines(block.split(b"\n"), count_usage=count_usage)
        failures, successes, lines = self.failures, 0, None
        bodies: list[Any] = []  # the successes' response bodies, counted together
        try:
            for i, (outline,) in enumerate(outlines):
                if _succeeded(outline):
                    if count_usage:
                        bodies.append(outline.response.body)
                    successes += 1
                    continue
                lines = lines or block.split(b"\n")
                failures.add_successes(successes)  # in order, before the line that needs the whole parse
                _count_bodies(self.usage, bodies)
                successes, bodies = 0, []
                if self.add(lines[i], count_usage=count_usage)[0] is None:
                    return lines[i]
        finally:
            failures.add_successes(successes)
            _count_bodies(self.usage, bodies)
        return None

    def _count_usage(self, outline: Any) -> None:
        """The usage of a success line from its outline (`_outline` with the body)."""
        _count_bodies(self.usage, (outline.response.body,))


def _count_bodies(usage: Usage, bodies: Sequence[Any]) -> None:
    """`usage.count(False, body.model, body.usage)` for success lines' typed response bodies (`_Body`,
    or None): `tokens_of_usage`'s sums, without a dict or a call a line (~0.6 of a download's count
    was that, when the usage came as dicts). Each count is an int >= 0 here (`_Count`), so `or` picks
    what `_int(a) or _int(b)` picks."""
    if not bodies:
        return
    usage.lines += len(bodies)
    usage.succeeded += len(bodies)
    sums: dict[str | None, list[int]] = {}  # model -> [requests, input, output, total, cached, reasoning]
    for body in bodies:
        if body is None or (u := body.usage) is None:
            continue
        model = body.model if type(body.model) is str else None
        totals = sums.get(model)
        if totals is None:
            totals = sums[model] = [0] * 6
        input_ = u.prompt_tokens or u.input_tokens
        output = u.completion_tokens or u.output_tokens
        totals[0] += 1
        totals[1] += input_
        totals[2] += output
        totals[3] += u.total_tokens or input_ + output
        if (d := u.prompt_tokens_details) is not None and d.cached_tokens:
            totals[4] += d.cached_tokens
        elif (d := u.input_tokens_details) is not None:
            totals[4] += d.cached_tokens
        if (d := u.completion_tokens_details) is not None and d.reasoning_tokens:
            totals[5] += d.reasoning_tokens
        elif (d := u.output_tokens_details) is not None:
            totals[5] += d.reasoning_tokens
    for model, (requests, *tokens) in sums.items():
        usage.add_tokens(model, dict(zip(TOKEN_FIELDS, tokens, strict=True)), requests)


def raw_result_lines(path: str | os.PathLike[str]) -> Iterator[bytes]:
    """The non-blank lines of a result file as read, endings kept (both parsers skip them): no copy."""
    from batchctl.validation import iter_raw_lines  # here: a download tallies the lines as they arrive

    for _, _, raw in iter_raw_lines(path, strip_bom=False):
        if not raw.isspace():
            yield raw


def tally_file(path: str | os.PathLike[str], tally: ResultTally | None = None, *, count_usage: bool = False) -> tuple[int, int]:
    """(result lines, failed ones) of a result file, counted into `tally` (a new one by default)."""
    tally = tally if tally is not None else ResultTally()
    lines, failed = tally.lines, tally.failed
    for raw in raw_result_lines(path):
        tally.add(raw, count_usage=count_usage)
    return tally.lines - lines, tally.failed - failed


class FollowedDownload:
    """The lines of a file `Files.download_to` is writing, handed to `sink` as its chunks arrive.

    `progress(update)` and `feed` are the callbacks to give `download_to` (`progress=`, wrapping
    `update`, the reporter's; `on_chunk=`): each chunk's complete non-blank lines are passed on, with
    where each starts in the file, so counting overlaps the transfer instead of following it, and
    nothing is read back from disk. A retried download (progress from 0 again) calls `restart`;
    `finish()`, once the download is complete, passes on the last line, the one without a newline.
    `block_sink`, given instead of `sink`, gets each chunk's complete lines as one block (joined by
    their newlines, the last without its own; blank ones included, no offsets): one call a chunk rather
    than one a line, for a sink that needs no offsets (`ResultTally.add_block`).
    """

    def __init__(
        self, sink: Callable[[bytes, int], object] | None, restart: Callable[[], None],
        *, block_sink: Callable[[bytes], object] | None = None,
    ) -> None:  # fmt: skip
        self._sink, self._restart = sink, restart  # sink(line, its byte offset in the file)
        self._block_sink = block_sink
        self._pending = b""
        self._offset = 0  # where `_pending` starts in the file
        self._started = False

    def progress(self, update: Callable[[int, int], None] | None) -> Callable[[int, int], None]:
        def on_progress(received: int, total: int) -> None:
            if received == 0:
                if self._started:  # a retry: the earlier attempt's lines no longer count
                    self.close()
                    self._restart()
                self._started = True
            if update is not None:
                update(received, total)

        return on_progress

    def finish(self) -> None:
        if self._pending and not self._pending.isspace():
            if self._block_sink is not None:
                self._block_sink(self._pending)
            else:
                self._sink(self._pending, self._offset)
        self.close()

    def close(self) -> None:
        self._pending, self._offset = b"", 0

    def feed(self, data: bytes) -> None:
        """The next chunk of the file."""
        if self._block_sink is not None:
            end = data.rfind(b"\n")
            if end < 0:
                self._pending += data
                return
            # one copy of the chunk's lines (a slice, then `+`, would be two)
            block, self._pending = b"".join((self._pending, memoryview(data)[:end])), data[end + 1 :]
            self._block_sink(block)
            return
        lines = (self._pending + data if self._pending else data).split(b"\n")
        self._pending = lines.pop()
        sink, offset = self._sink, self._offset
        for line in lines:
            if line and not line.isspace():
                sink(line, offset)
            offset += len(line) + 1
        self._offset = offset
