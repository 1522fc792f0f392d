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

Only where it is safe and pays (`pays`): Linux (fork is cheap; macOS and Windows would need a fresh
interpreter), a process with one thread (forking a threaded one is unsafe), two cores or more, a file
of MIN_SIZE or more. Whatever goes wrong in the child, this process runs the pass again on its own.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field

import msgspec  # the frames' encoding (msgpack): already loaded by the pass, where pickle would cost ~3 ms

MIN_SIZE = 16 << 20  # below this the fork (~2 ms) costs about what the child saves
_BLOCK = 256 << 10  # the child's UTF-8 check reads this much between looks at the pipe
_FLUSH = 64 << 10  # texts are sent in frames of about this many bytes
_HEADER = 8  # a frame starts with its length, little-endian
_F_SETPIPE_SZ = 1031  # Linux's fcntl for a pipe's buffer size


def pays(size: int) -> bool:
    """Whether a file of `size` bytes is worth a second core here (see the module's doc)."""
    import threading

    if size < MIN_SIZE or not sys.platform.startswith("linux") or threading.active_count() != 1:
        return False
    return len(os.sched_getaffinity(0)) > 1


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
        inbox, self._to_child = os.pipe()
        from_child, outbox = os.pipe()
        try:
            import fcntl

            fcntl.fcntl(self._to_child, _F_SETPIPE_SZ, 1 << 20)  # room for ~16 frames: rarely a wait to send
        except OSError:
            pass
        self._pid = os.fork()
        if self._pid == 0:  # the child: never returns, whatever happens
            code = 1
            try:
                os.close(self._to_child)
                os.close(from_child)
                _child(path, inbox, outbox)
                code = 0
            finally:
                os._exit(code)
        os.close(inbox)
        os.close(outbox)
        self._from_child = from_child
        self._frame: list[tuple[str | None, list, bool]] = []
        self._frame_bytes = 0
        self._broken = False  # a frame could not be sent
        self._done = False

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
        data = msgspec.msgpack.encode((self._frame, last, need_utf8))
        self._frame, self._frame_bytes = [], 0
        if self._broken:
            return
        try:
            _write_all(self._to_child, len(data).to_bytes(_HEADER, "little") + data)
        except OSError:  # the child is gone: `finish` says so, and the pass is run again
            self._broken = True

    def finish(self, *, need_utf8: bool) -> Counted | None:
        """Wait for the child's findings; `need_utf8` False lets it stop checking UTF-8 (no line
        skipped its own check). None when the child failed: run the pass without it."""
        self._send(True, need_utf8)
        if self._broken:
            self._end(kill=True)
            return None
        self._close_pipe()  # the child reads to the end of its inbox, then answers
        data = _read_all(self._from_child)
        if self._end(kill=False) != 0 or not data:
            return None
        try:
            return Counted.decode(data)
        except (msgspec.DecodeError, TypeError, ValueError):  # cut short: no findings
            return None

    def _close_pipe(self) -> None:
        if self._to_child >= 0:
            os.close(self._to_child)
            self._to_child = -1

    def _end(self, *, kill: bool) -> int:
        """Close the pipes, stop the child if `kill`, reap it; its wait status."""
        self._close_pipe()
        os.close(self._from_child)
        if kill:
            import signal

            try:
                os.kill(self._pid, signal.SIGKILL)
            except OSError:
                pass
        self._done = True
        return os.waitpid(self._pid, 0)[1]

    def __enter__(self) -> SecondCore:
        return self

    def __exit__(self, *exc: object) -> None:
        if not self._done:
            self._end(kill=True)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)


def _child(path: str | os.PathLike[str], inbox: int, outbox: int) -> None:
    """Check the file's UTF-8 a block at a time, counting the texts that come in between; when the last
    frame has come and the check is done (or not needed), send the findings."""
    import codecs

    from batchctl.cost.estimate import count_texts

    found = Counted()
    tokens: dict[str | None, list[int]] = {}
    decode = codecs.getincrementaldecoder("utf-8")().decode
    buffered = b""
    last = False
    need_utf8 = True
    os.set_blocking(inbox, False)
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
            else:
                os.set_blocking(inbox, True)  # only frames left to wait for
            try:
                chunk = os.read(inbox, 1 << 20)
            except BlockingIOError:
                continue
            if not chunk and not last:
                raise EOFError("the parent went away")
            buffered += chunk
            while len(buffered) >= _HEADER:
                end = _HEADER + int.from_bytes(buffered[:_HEADER], "little")
                if len(buffered) < end:
                    break
                frame, last, need_utf8 = msgspec.msgpack.decode(buffered[_HEADER:end])
                buffered = buffered[end:]
                for model, texts, sampled in frame:
                    counted, method = count_texts(model, texts)
                    found.methods.add(method)
                    pair = tokens.setdefault(model, [0, 0])
                    pair[sampled] += counted
            if last and checking and not need_utf8:
                found.utf8_valid, checking = None, False
    found.tokens = {model: (first, sampled) for model, (first, sampled) in tokens.items()}
    _write_all(outbox, found.encode())
