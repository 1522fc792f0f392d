"""The part of `validate_file`'s pass that a second core does: the file's UTF-8 check and the counting
of the cost estimate's sample.

On a big file these are near half the pass (100 MB of mixed Latin and CJK chat lines: the UTF-8 check
~0.11 s and the sample's tokens ~0.09 s, of ~0.41 s). A forked child does both while this process
decodes and checks the lines:

- The child checks the UTF-8 of the whole file, read in blocks. A file is valid UTF-8 exactly when
  each of its lines is (a newline is never inside a character), so the lines need not be decoded one
  by one. When the file is not valid UTF-8, `validate_file` runs the pass again the usual way, which
  names the lines: a broken file pays a second pass, and never gets a different report.
- The sample's texts, drawn here as before, go to the child through a pipe; it counts them and sends
  each model's totals back when the pass ends. The draws and the counts are the ones this process
  would make, so the estimate is the same to the token (`tests/test_second_core.py`).

The child is `forked.Forked`'s, where it runs (`forked.pays`: Linux, one thread, two cores, a big
file). Whatever goes wrong in it, this process runs the pass again on its own.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import msgspec  # the frames' encoding (msgpack): already loaded by the pass, where pickle would cost ~3 ms

from batchctl.forked import Forked, Inbox, write_all

_BLOCK = 256 << 10  # the child's UTF-8 check reads this much between looks at the pipe
_FLUSH = 64 << 10  # texts are sent in frames of about this many bytes


@dataclass
class Counted:
    """What the child found: whether the file is valid UTF-8 (None: not checked to the end, as it was
    not needed), each model's (tokens of the first requests, tokens of the sampled ones), the methods."""

    utf8_valid: bool | None = True
    tokens: dict[str | None, tuple[int, int]] = field(default_factory=dict)
    methods: set[str] = field(default_factory=set)

    def encode(self) -> bytes:
        triples = [(model, first, sampled) for model, (first, sampled) in self.tokens.items()]
        return msgspec.msgpack.encode((self.utf8_valid, triples, sorted(self.methods)))

    @classmethod
    def decode(cls, data: bytes) -> Counted:
        valid, triples, methods = msgspec.msgpack.decode(data)
        return cls(valid, {model: (first, sampled) for model, first, sampled in triples}, set(methods))


class SecondCore:
    """A forked child that checks the UTF-8 of the file at `path` and counts the texts given to
    `count`; `finish` ends it and returns what it found (None if it failed). A context manager: leaving
    it without `finish` stops the child."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._forked = Forked(lambda inbox, outbox: _child(path, inbox, outbox))
        self._frame: list[tuple[str | None, list, bool]] = []
        self._frame_bytes = 0
        self._unsent = False  # texts that could not be sent: `finish` has no findings

    def count(self, model: str | None, texts: list, sampled: bool) -> bool:
        """Have one request's texts counted, if they are the fast lane's JSON string literals (bytes-like);
        False for strings (the general road's, rare on a big file, which may hold lone surrogates that
        do not cross as UTF-8): count those yourself."""
        if any(type(t) is str for t in texts):
            return False
        texts = [bytes(t) for t in texts]
        self._frame.append((model, texts, sampled))
        self._frame_bytes += sum(map(len, texts))
        if self._frame_bytes >= _FLUSH:
            self._send(False)
        return True

    def _send(self, last: bool, need_utf8: bool = True) -> None:
        if not self._unsent:
            try:
                frame = msgspec.msgpack.encode((self._frame, last, need_utf8))
            except UnicodeEncodeError:  # a model that is no UTF-8 (a lone surrogate, from an API caller's override)
                self._unsent = True  # texts lost: no findings
            else:
                self._forked.send(frame)
        self._frame, self._frame_bytes = [], 0

    def finish(self, *, need_utf8: bool) -> Counted | None:
        """Wait for the child's findings; `need_utf8` False lets it stop checking UTF-8 (no line
        skipped its own check). None when the child failed: run the pass without it."""
        self._send(True, need_utf8)
        if self._unsent:
            return None
        data = self._forked.answer()
        try:
            return Counted.decode(data) if data is not None else None
        except (msgspec.DecodeError, TypeError, ValueError):  # cut short: no findings
            return None

    def __enter__(self) -> SecondCore:
        return self

    def __exit__(self, *exc: object) -> None:
        self._forked.stop()


def _child(path: str | os.PathLike[str], inbox: Inbox, outbox: int) -> None:
    """Check the file's UTF-8 a block at a time, counting the texts that come in between; when the last
    frame has come and the check is done (or not needed), send the findings."""
    import codecs

    from batchctl.cost.estimate import count_texts

    found = Counted()
    tokens: dict[str | None, list[int]] = {}
    decode = codecs.getincrementaldecoder("utf-8")().decode
    last = False
    need_utf8 = True
    with open(path, "rb", buffering=0) as f:
        checking = True
        while checking or not last:
            if checking:
                block = f.read(_BLOCK)
                try:
                    decode(block, not block)
                except UnicodeDecodeError:
                    found.utf8_valid, checking = False, False
                if not block:
                    checking = False
            frames = inbox.frames(0 if checking else None)  # a look between blocks; a wait once checked
            if inbox.closed and not last:
                raise EOFError("the parent went away")
            for data in frames:
                frame, last, need_utf8 = msgspec.msgpack.decode(data)
                for model, texts, sampled in frame:
                    counted, method = count_texts(model, texts)
                    found.methods.add(method)
                    pair = tokens.setdefault(model, [0, 0])
                    pair[sampled] += counted
            if last and checking and not need_utf8:
                found.utf8_valid, checking = None, False
    found.tokens = {model: (first, sampled) for model, (first, sampled) in tokens.items()}
    write_all(outbox, found.encode())
