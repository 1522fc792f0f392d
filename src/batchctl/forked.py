"""A second core for work beside a big file's pass: a forked child, a pipe to it and one back.

`validate` uses it (the UTF-8 check and the estimate's sample, `validation/second_core.py`). The user
gives `Forked` the child's work; the child gets its inbox (length-prefixed frames, `Inbox`) and the
descriptor to answer on, and ends when the work returns (exit 0) or raises (exit 1), never returning
into the caller's code. The parent sends frames, then reads the whole answer once it closes its end
(`answer`).

Only where it is safe and pays (`pays`): Linux (fork is cheap; macOS and Windows would need a fresh
interpreter), a process with one thread (forking a threaded one is unsafe: a lock another thread
holds stays held in the child), two cores or more, and a file of MIN_SIZE or more. Whatever goes wrong
in the child, the parent gets None for an answer and does the work itself.

A fork is not free: here ~3.5 ms, and each page either process writes afterwards is copied once
(~3.4 us a 4 KiB page on this machine: ~17 ms for 20 MB). `download`'s result count was tried on a
second core this way and measured slower against a local server on two cores (docs/performance.md,
section 5), so it stays in the transfer's process.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

MIN_SIZE = 16 << 20  # below this the fork (~2 ms) costs about what the child saves
_HEADER = 8  # a frame starts with its length, little-endian
_F_SETPIPE_SZ = 1031  # Linux's fcntl for a pipe's buffer size


def pays(size: int) -> bool:
    """Whether work on a file of `size` bytes is worth a second core here (see the module's doc)."""
    import threading

    if size < MIN_SIZE or not sys.platform.startswith("linux") or threading.active_count() != 1:
        return False
    return len(os.sched_getaffinity(0)) > 1


class Inbox:
    """The child's end of the pipe from the parent: the frames sent, as they come."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.closed = False  # the parent closed its end: no frame will come
        self._buffered = b""
        self._poll: Callable[[float], list] | None = None

    def frames(self, timeout: float | None = None) -> list[bytes]:
        """The frames that have come, waiting up to `timeout` seconds for more (None: until something
        comes or the pipe is closed; 0: not at all)."""
        if not self.closed:
            if timeout is not None:
                if self._poll is None:  # poll, not select: select refuses a descriptor of 1024 or more
                    import select

                    poller = select.poll()
                    poller.register(self.fd, select.POLLIN)
                    self._poll = poller.poll
                readable = self._poll(timeout * 1000)
            if timeout is None or readable:
                chunk = os.read(self.fd, 1 << 20)
                self.closed = not chunk
                self._buffered += chunk
        frames = []
        buffered = self._buffered
        while len(buffered) >= _HEADER:
            end = _HEADER + int.from_bytes(buffered[:_HEADER], "little")
            if len(buffered) < end:
                break
            frames.append(buffered[_HEADER:end])
            buffered = buffered[end:]
        self._buffered = buffered
        return frames


class Forked:
    """A forked child running `work(inbox, answer_fd)`. A context manager: leaving it before `answer`
    stops the child; either way it is reaped. OSError when it cannot start (no pipe, no fork)."""

    def __init__(self, work: Callable[[Inbox, int], None]) -> None:
        inbox, self._to_child = os.pipe()
        fds = [inbox, self._to_child]
        try:  # no pipe (EMFILE) or no fork (EAGAIN, ENOMEM): the OSError, and no descriptor left open
            from_child, outbox = os.pipe()
            fds += (from_child, outbox)
            try:
                import fcntl

                fcntl.fcntl(self._to_child, _F_SETPIPE_SZ, 1 << 20)  # room for frames: rarely a wait to send
            except OSError:
                pass
            self._pid = os.fork()
        except BaseException:
            for fd in fds:
                os.close(fd)
            raise
        if self._pid == 0:  # the child: never returns, whatever happens
            code = 1
            try:
                os.close(self._to_child)
                os.close(from_child)
                work(Inbox(inbox), outbox)
                code = 0
            finally:
                os._exit(code)
        os.close(inbox)
        os.close(outbox)
        self._from_child = from_child
        self.broken = False  # a frame could not be sent: the child is gone
        self._done = False

    def send(self, frame: bytes) -> None:
        """Send one frame; a child that is gone marks the pipe `broken` (its answer will be None)."""
        if self.broken:
            return
        try:
            write_all(self._to_child, len(frame).to_bytes(_HEADER, "little") + frame)
        except OSError:
            self.broken = True

    def answer(self) -> bytes | None:
        """Close the pipe to the child, read its whole answer and reap it; None if it failed."""
        if self.broken:
            self._end(kill=True)
            return None
        self._close_pipe()
        chunks = []
        while chunk := os.read(self._from_child, 1 << 20):
            chunks.append(chunk)
        status = self._end(kill=False)
        return b"".join(chunks) if status == 0 and chunks else None

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

    def stop(self) -> None:
        """Stop the child (if not ended already) and reap it."""
        if not self._done:
            self._end(kill=True)

    def __enter__(self) -> Forked:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def write_all(fd: int, data: bytes) -> None:
    """All of `data` to the pipe `fd` (a frame, or the child's answer)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
