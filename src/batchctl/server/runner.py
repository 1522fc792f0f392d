"""Runs batches through their lifecycle inside the server process, one asyncio task per batch.

validating -> in_progress -> finalizing -> completed; failed when the input is invalid;
cancelling -> cancelled and in_progress -> expired keep the results already done.

Durability: a result counts only once its row is committed (`Store.add_results`, in small groups);
output and error files are written from the database when the batch ends. So a restart -- even
after `kill -9` -- resumes a batch by skipping the lines that already have a row, and no line is
ever lost or written twice. With an upstream (`--upstream`), each request's start is committed
before it is sent (as the batch's highest line sent: lines go out in input order) and its result at
once (in group commits shared by the workers ready at the same moment, `commits.py`): the lines up to
that mark without a result were in flight, so a restart sends again only those, and adds their number
to the batch's metadata (docs/reliability.md).

A line whose result cannot be written (a lone surrogate in its `custom_id`, from a batch validated by
an older release) becomes that line's error, not the batch's failure (`_unwritable`), the lone
surrogate written as U+FFFD.

The input file of a batch that has not ended is read until it ends, also when the file is deleted
meanwhile (`Store.delete_file` keeps its content). Should the content be gone all the same (removed by
hand), the batch does not claim success: it ends `failed`, its unrun requests counted failed and the
reason in `errors` (`_record_lost`).

Lines left undone when a batch expires go to the error file with code `batch_expired`, as OpenAI
does. Lines left undone by a cancel are not written (OpenAI writes none either): the output and
error files of a cancelled batch hold exactly the requests that ran. A cancel lets a request in an
HTTP call finish, but ends at once one that only waits to be sent (for the upstream's Retry-After
pause, an --rpm/--tpm start, the backoff before a retry, a free slot: `limits.Waits`): it is left
undone like the lines never started, so a cancel during an hour's pause is over within a poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import time
from pathlib import Path
from typing import Any

from batchctl.errors import BatchctlError
from batchctl.results import write_atomically
from batchctl.server.commits import GroupCommitter
from batchctl import jsonfast
from batchctl.server.executors import (
    ECHO_IDENTITY,
    SOME_UPSTREAM,
    Executor,
    describe_executor,
    serve_for,
)
from batchctl.server.limits import Dropped
from batchctl.server.outcome import Outcome, quick_id
from batchctl.server.wire import json_text, without_lone_surrogates
from batchctl.server.store import (
    CANCELLABLE_STATUSES,
    POSSIBLY_DUPLICATED,
    ResultRow,
    Store,
    iter_results,
    new_id,
)

log = logging.getLogger("batchctl.server")

FLUSH_ROWS = 64  # commit results in groups of at most this many rows ...
FLUSH_SECONDS = 0.2  # ... or at least this often, so request_counts move live
# An executor that answers without waiting (the echo model without --latency) runs in one worker that
# hands the event loop back at least this often: the API answers in a few ms while a batch runs.
SLICE_SECONDS = 0.0005

# The code of the note in a batch's `errors` while it waits for a server with its executor (`BatchRunner.resume_all`).
WAITING_CODE = "waiting_for_executor"

EXPIRED_ERROR = {
    "code": "batch_expired",
    "message": "This request could not be executed before the completion window expired.",
}


def result_line(custom_id: str, outcome: Outcome) -> str:
    """One line of an output or error file, in OpenAI's format, as JSON text.

    An upstream's answer is spliced in as the bytes it sent (`Outcome.body_text`), not parsed and
    written again: the biggest part of a line costs nothing to write.
    """
    line_id = quick_id("batch_req_")
    if outcome.error_code is None and outcome.status_code is not None:
        body = outcome.body_text if outcome.body_text is not None else jsonfast.dumps(outcome.body)
        return (
            f'{{"id":"{line_id}","custom_id":{jsonfast.dumps(custom_id)},"response":{{"status_code":'
            f'{outcome.status_code},"request_id":{jsonfast.dumps(outcome.request_id)},"body":{body}}},"error":null}}'
        )
    response = None
    if outcome.status_code is not None:
        response = {"status_code": outcome.status_code, "request_id": outcome.request_id, "body": outcome.body}
    error = None
    if outcome.error_code is not None:
        error = {"code": outcome.error_code, "message": outcome.error_message}
    return jsonfast.dumps({"id": line_id, "custom_id": custom_id, "response": response, "error": error})


def _unwritable(custom_id: str, error: Exception) -> tuple[str, str]:
    """(custom_id as stored, the error line) for a request whose result `result_line` could not write: a
    lone surrogate (in the id, or in the answer) written as U+FFFD (`wire.json_text`)."""
    line = {
        "id": quick_id("batch_req_"),
        "custom_id": custom_id,
        "response": None,
        "error": {
            "code": "internal_error",
            "message": f"The result of this request could not be written ({error}); lone surrogates are shown"
            " as U+FFFD.",
        },
    }
    return without_lone_surrogates(custom_id), json_text(line)


def _deadline(batch: dict[str, Any]) -> float:
    """When the batch's completion window ends (epoch seconds)."""
    return batch["created_ts"] + batch["window_seconds"]


def _waiting_note(batch: dict[str, Any]) -> bool:
    """Whether the batch's `errors` is the note of a wait for another executor (`BatchRunner._wait`)."""
    return bool(batch.get("errors")) and WAITING_CODE in batch["errors"]


def _readable(file: dict[str, Any] | None) -> bool:
    return file is not None and os.path.exists(file["path"])


def _unfinished_upto(file: dict[str, Any] | None, done: set[int], upto: int) -> int:
    """How many request lines of the input file, up to line `upto`, are not in `done` and went to the upstream.

    A request whose model is `echo` is answered by the server itself (UpstreamExecutor), never sent: it is
    answered again, but no upstream can see it twice.
    """
    from batchctl.server.echo import ECHO_MODEL
    from batchctl.validation import iter_request_lines

    if not _readable(file):
        return 0
    count = 0
    for line_no, request in iter_request_lines(file["path"]):  # type: ignore[index]
        if line_no > upto:
            break
        if line_no not in done:
            body = request.get("body")
            count += not (isinstance(body, dict) and body.get("model") == ECHO_MODEL)
    return count


class BatchRunner:
    """Owns the asyncio task of every active batch."""

    def __init__(self, store: Store, executor: Executor, *, identity: str | None = None) -> None:
        self.store = store
        self.executor = executor
        # Which executor this is (`executors.executor_identity`), recorded with each batch created here; None
        # (tests' stand-in executors) runs every batch.
        self.identity = identity
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.wakeups: dict[str, asyncio.Event] = {}
        # Batches left alone, created for another executor: batch id -> that executor's identity (in /health).
        self.waiting: dict[str, str] = {}
        self.workers: dict[str, list[asyncio.Task[None]]] = {}  # of the batches sending requests

    async def resume_all(self) -> None:
        """Resume every batch that has not ended, except those created for another executor (`_owner_elsewhere`):
        they stay as they are, saying so in their `errors`, until a server with their executor starts."""
        for batch_id in self.store.active_batch_ids():
            batch = self.store.get_batch(batch_id)
            if batch is None:
                continue
            owner = self._owner_elsewhere(batch)
            if owner is not None:
                self._wait(batch, owner)
                continue
            if _waiting_note(batch):
                self.store.update_batch(batch_id, errors=None)  # the right server at last: the note goes
            log.info("resuming %s", batch_id)
            self.start(batch_id)

    def _owner_elsewhere(self, batch: dict[str, Any]) -> str | None:
        """The identity of the executor `batch` was created for when this server must not run it, else None.

        Only requests are pinned: a cancelling or finalizing batch (nothing left to send) and one past its
        window (it expires without sending any) end here whatever their executor. A batch of an older release
        recorded none: it is taken by this server, as before, and recorded from then on -- unless it sent
        requests to an upstream (marks it left) and this server is the echo model, which would answer the
        rest with fake lines: it waits for an upstream (which one is not known).
        """
        if self.identity is None or batch["status"] not in CANCELLABLE_STATUSES:
            return None
        if time.time() >= _deadline(batch):
            return None
        owner = batch.get("executor")
        if owner is None:
            if self.identity == ECHO_IDENTITY and self.store.sent_upstream(batch["id"]):
                return SOME_UPSTREAM
            self.store.update_batch(batch["id"], executor=self.identity)
            return None
        return None if owner == self.identity else owner

    def _wait(self, batch: dict[str, Any], owner: str) -> None:
        """Leave `batch` as it is, saying why in its `errors` and the log: another executor's batch."""
        batch_id = batch["id"]
        self.waiting[batch_id] = owner
        message = (
            f"This batch was created for {describe_executor(owner)}, and this server runs"
            f" {describe_executor(self.identity or '')}: it is not run here (its answers would not be that"
            f" executor's). It stays {batch['status']} and resumes when `{serve_for(owner)}` runs on this data"
            " dir; a cancel ends it."
        )
        error = {"code": WAITING_CODE, "message": message, "param": None, "line": None}
        self.store.update_batch(batch_id, errors={"object": "list", "data": [error]})
        log.warning("%s waits for another executor: %s", batch_id, message)
        # Its completion window may end while this server runs: it then ends `expired` here (sending nothing).
        self._expire_at(batch_id, _deadline(batch))

    def _expire_at(self, batch_id: str, deadline: float) -> None:
        loop = asyncio.get_running_loop()
        loop.call_later(max(0.0, deadline - time.time()) + 0.05, self._expire_waiting, batch_id, deadline)

    def _expire_waiting(self, batch_id: str, deadline: float) -> None:
        """A waiting batch's window is over: run it here, which sends nothing past the window, so it ends expired."""
        if batch_id not in self.waiting:
            return  # cancelled meanwhile
        if time.time() < deadline:  # the loop's clock ran ahead of the wall clock: never start it early
            self._expire_at(batch_id, deadline)
            return
        del self.waiting[batch_id]
        self.store.update_batch(batch_id, errors=None)
        self.start(batch_id)

    def start(self, batch_id: str) -> None:
        if batch_id in self.tasks:
            return
        self.wakeups[batch_id] = asyncio.Event()
        task = asyncio.create_task(self._run(batch_id), name=f"batch {batch_id}")
        self.tasks[batch_id] = task
        task.add_done_callback(lambda t, b=batch_id: self._done(b, t))

    def _done(self, batch_id: str, task: asyncio.Task[None]) -> None:
        self.tasks.pop(batch_id, None)
        self.wakeups.pop(batch_id, None)

    def cancel(self, batch_id: str) -> dict[str, Any] | None:
        """Ask a batch to stop; the caller has checked it may be cancelled. Returns the batch.

        A batch waiting for another executor ends here too: a cancel sends no request."""
        waiting = self.waiting.pop(batch_id, None) is not None
        self.store.transition(
            batch_id, "cancelling", only_from=CANCELLABLE_STATUSES, **({"errors": None} if waiting else {})
        )
        event = self.wakeups.get(batch_id)
        if event is not None:
            event.set()
            waits = getattr(self.executor, "waits", None)  # an upstream's: the requests only waiting to be sent
            if waits is not None and batch_id in self.workers:
                # Now, not on the runner's next turn: a request whose wait ends meanwhile must not go out.
                waits.drop(self.workers[batch_id])
        elif batch_id not in self.tasks:
            self.start(batch_id)
        return self.store.get_batch(batch_id)

    async def shutdown(self) -> None:
        """Stop every runner without changing any batch's status: they resume on the next start."""
        tasks = list(self.tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    # -- one batch -----------------------------------------------------------------------------

    async def _run(self, batch_id: str) -> None:
        try:
            await self._lifecycle(batch_id)
        except asyncio.CancelledError:
            raise  # shutdown: the batch resumes on the next start, from its input file
        except Exception as exc:
            # A bug must not leave the batch "in_progress" forever: fail it, saying where to look.
            log.exception("batch %s stopped on an internal error", batch_id)
            error = {"code": "server_error", "message": f"Internal error of the local server: {exc!r}; see its log.",
                     "param": None, "line": None}
            self.store.transition(batch_id, "failed", errors={"object": "list", "data": [error]})
        self.store.release_input(batch_id)  # ended: the content of an input file deleted meanwhile goes now

    def _input(self, batch: dict[str, Any]) -> dict[str, Any] | None:
        """The batch's input file as `{"path": ...}`, also when it was deleted while the batch ran; None when
        its content is gone."""
        path = self.store.input_path(batch["input_file_id"])
        return None if path is None else {"path": str(path)}

    async def _lifecycle(self, batch_id: str) -> None:
        batch = self.store.get_batch(batch_id)
        if batch is None:
            return
        if batch["status"] == "validating":
            batch = await self._validate(batch)
            if batch is None:
                return
        else:  # resumed after a restart: its results so far may not have added their usage details yet
            self.store.recount_usage_details(batch_id)
        if batch["status"] in ("in_progress", "cancelling"):
            await self._execute(batch)
        await self._finalize(batch_id)

    async def _validate(self, batch: dict[str, Any]) -> dict[str, Any] | None:
        from batchctl.providers import get_provider
        from batchctl.validation import validate_file

        batch_id = batch["id"]
        file = self._input(batch)
        spec = get_provider("local")
        if batch["endpoint"] not in spec.endpoints:  # accepted on create because an upstream serves it
            spec = dataclasses.replace(spec, endpoints=(*spec.endpoints, batch["endpoint"]))
        problems: list[dict[str, Any]] = []
        report = None
        if file is None:
            problems.append(
                {"code": "invalid_input_file", "message": f"The input file {batch['input_file_id']} no longer exists.",
                 "param": "input_file_id", "line": None}
            )
        else:
            try:
                report = await asyncio.to_thread(
                    validate_file, file["path"], spec=spec, endpoint=batch["endpoint"]
                )
            except (OSError, BatchctlError) as exc:
                problems.append({"code": "invalid_input_file", "message": f"Cannot read the input file: {exc}",
                                 "param": "input_file_id", "line": None})
            else:
                problems = [
                    {"code": p.code, "message": p.message, "param": p.param, "line": p.line} for p in report.problems
                ]
        if problems:
            self.store.transition(batch_id, "failed", errors={"object": "list", "data": problems})
            return None
        assert report is not None
        if self.store.get_batch(batch_id)["status"] == "cancelling":  # type: ignore[index]
            self.store.update_batch(batch_id, total=report.requests, model=report.model)
        else:
            self.store.transition(
                batch_id, "in_progress", only_from=("validating",), total=report.requests, model=report.model
            )
        return self.store.get_batch(batch_id)

    async def _execute(self, batch: dict[str, Any]) -> None:
        from batchctl.validation import iter_request_lines

        batch_id = batch["id"]
        file = self._input(batch)
        deadline = _deadline(batch)
        wakeup = self.wakeups.setdefault(batch_id, asyncio.Event())
        if batch["status"] == "cancelling":  # resumed after a restart while cancelling
            wakeup.set()
        done = self.store.done_lines(batch_id)
        # With an upstream, each request's start is committed before it is sent and its result as soon
        # as it comes: after a crash only the requests really in flight are sent again, and counted.
        durable = getattr(self.executor, "remote", False)

        def stopping() -> bool:
            return wakeup.is_set() or time.time() >= deadline

        if stopping():
            # Cancelling, or past its window: no line is sent again, so the upstream sees none of them twice.
            interrupted = 0
        else:
            interrupted = self.store.take_interrupted(batch_id, lambda upto: _unfinished_upto(file, done, upto))
        if interrupted:
            log.warning(
                "%s: %d request(s) were in flight when the server stopped; sending them again, so the upstream"
                " may see them twice (counted in the batch's metadata %s)", batch_id, interrupted, POSSIBLY_DUPLICATED,
            )  # fmt: skip
        # More workers only help an executor that waits; an instant one would take a slice each per loop turn.
        count = 1 if getattr(self.executor, "instant", False) else self.executor.concurrency
        committer = GroupCommitter(self.store, batch_id, workers=count)
        pending: list[ResultRow] = []
        last_flush = slice_start = time.monotonic()

        def flush() -> None:
            nonlocal last_flush
            if pending:
                self.store.add_results(batch_id, pending)
                pending.clear()
            last_flush = time.monotonic()

        if not _readable(file):
            lines: Any = iter(())
        else:
            lines = (item for item in iter_request_lines(file["path"]) if item[0] not in done)

        async def worker() -> None:
            try:
                await requests()
            finally:
                if durable:
                    await committer.drain()  # this worker's last result, committed before it ends

        async def requests() -> None:
            nonlocal slice_start
            for line_no, request in lines:
                if stopping():
                    return
                custom_id = str(request.get("custom_id"))
                body = request.get("body") if isinstance(request.get("body"), dict) else {}
                if durable:
                    await committer.start(line_no)  # committed before the request is sent
                    if wakeup.is_set():
                        return  # cancelled during that commit: not sent, left undone like the lines after it
                try:
                    outcome = await self.executor.execute(batch["endpoint"], body, custom_id)
                except Dropped:
                    return  # cancelled while it only waited to be sent: left undone, as the lines never started
                except Exception as exc:  # an executor bug must still leave a line, never lose the request
                    log.exception("executor failed on %s line %s", batch_id, line_no)
                    outcome = Outcome(error_code="internal_error", error_message=f"Internal error: {exc!r}")
                try:
                    text = result_line(custom_id, outcome)
                    row = ResultRow(line_no, custom_id, outcome.ok, text, *outcome.usage(), *outcome.usage_details())
                except Exception as exc:  # a result no UTF-8 can carry: this line's error, not the batch's failure
                    log.warning("%s line %s: the result cannot be written (%r); written as an error", batch_id,
                                line_no, exc)  # fmt: skip
                    stored_id, text = _unwritable(custom_id, exc)
                    row = ResultRow(line_no, stored_id, False, text)
                if durable:
                    committer.finish(row)  # committed with its mark cleared, at the latest with our next start
                    continue
                pending.append(row)
                now = time.monotonic()
                flushed = len(pending) >= FLUSH_ROWS or now - last_flush >= FLUSH_SECONDS
                if flushed:
                    flush()
                if flushed or now - slice_start >= SLICE_SECONDS:  # a commit is a slice of its own
                    await asyncio.sleep(0)  # an instant executor (echo, no latency) must not starve the API
                    slice_start = time.monotonic()

        async def ticker() -> None:
            # Commits stragglers while requests are slow, and notices the deadline while idle.
            while True:
                timeout = max(0.0, min(FLUSH_SECONDS, deadline - time.time()))
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(wakeup.wait(), timeout)
                if time.monotonic() - last_flush >= FLUSH_SECONDS:
                    flush()
                if stopping():
                    return

        # The tasks themselves, not only their gather: once one worker has raised, the gather is done and its
        # cancel() a no-op, so its siblings would go on sending requests for a batch already failed.
        tasks = [asyncio.ensure_future(worker()) for _ in range(count)]
        self.workers[batch_id] = tasks
        workers = asyncio.gather(*tasks)
        tick = asyncio.create_task(ticker())
        try:
            await asyncio.wait({workers, tick}, return_when=asyncio.FIRST_COMPLETED)
            if not workers.done():
                if wakeup.is_set():
                    # Cancel: requests in an HTTP call finish (OpenAI's "cancelling"), no new one starts, and
                    # those only waiting to be sent were ended by `cancel` (`Dropped`).
                    await asyncio.gather(workers, return_exceptions=True)
                else:
                    # Expiry: requests in flight are abandoned; they go to the error file as expired.
                    workers.cancel()
                    await asyncio.gather(workers, return_exceptions=True)
            error = None if workers.cancelled() else workers.exception()
            if error is not None and not isinstance(error, asyncio.CancelledError):
                raise error  # not a request failure (those are lines): a bug, or a full disk
        finally:
            for task in tasks:  # no-ops unless this task is being cancelled (shutdown) or a worker raised
                task.cancel()
            tick.cancel()
            await asyncio.gather(workers, *tasks, tick, return_exceptions=True)
            self.workers.pop(batch_id, None)
            if getattr(self.executor, "waits", None) is not None:
                self.executor.waits.forget(tasks)  # type: ignore[attr-defined]
            flush()

    async def _finalize(self, batch_id: str) -> None:
        batch = self.store.get_batch(batch_id)
        if batch is None:
            return
        status = batch["status"]
        unfinished = batch["completed"] + batch["failed"] < batch["total"]
        if status == "in_progress" and unfinished and self._input(batch) is None:
            self._record_lost(batch)
            final = "failed"
        elif status == "in_progress" and unfinished and time.time() >= _deadline(batch):
            self._record_expired(batch)
            final = "expired"
        elif status == "cancelling":
            final = "cancelled"
        elif status in ("in_progress", "finalizing"):
            self.store.transition(batch_id, "finalizing", only_from=("in_progress",))
            final = "completed"
        else:
            return
        files = await asyncio.to_thread(self._write_result_files, batch_id)
        self.store.finish_batch(batch_id, final, files)

    def _record_lost(self, batch: dict[str, Any]) -> None:
        """The input file's content is gone (removed by hand: `delete_file` keeps it while the batch runs), so
        the requests not run yet never will be: count them failed and say why in the batch's `errors`. No
        error line can name them (their custom_ids were in that file); the files hold the requests that ran."""
        lost = batch["total"] - batch["completed"] - batch["failed"]
        done = batch["completed"] + batch["failed"]
        error = {
            "code": "input_file_missing",
            "message": f"The content of the input file {batch['input_file_id']} is gone from the server's data"
            f" dir: {lost} of the batch's {batch['total']} requests were not run and are counted as failed. The"
            f" output and error files hold the {done} that ran.",
            "param": "input_file_id",
            "line": None,
        }
        log.error("%s: %s", batch["id"], error["message"])
        self.store.update_batch(batch["id"], failed=batch["failed"] + lost, errors={"object": "list", "data": [error]})

    def _record_expired(self, batch: dict[str, Any]) -> None:
        from batchctl.validation import iter_request_lines

        file = self._input(batch)
        if not _readable(file):
            return
        done = self.store.done_lines(batch["id"])
        rows = []
        for line_no, request in iter_request_lines(file["path"]):
            if line_no in done:
                continue
            custom_id = str(request.get("custom_id"))
            line = {"id": quick_id("batch_req_"), "custom_id": custom_id, "response": None, "error": EXPIRED_ERROR}
            try:
                rows.append(ResultRow(line_no, custom_id, False, jsonfast.dumps(line)))
            except UnicodeEncodeError:  # a lone surrogate in the id: written as U+FFFD
                rows.append(ResultRow(line_no, without_lone_surrogates(custom_id), False, json_text(line)))
            if len(rows) >= 1000:
                self.store.add_results(batch["id"], rows)
                rows = []
        self.store.add_results(batch["id"], rows)

    def _write_result_files(self, batch_id: str) -> dict[str, Path | None]:
        """Write the output and error files from the result rows (runs in a worker thread).

        Returns {"output": path or None, "error": path or None}: OpenAI leaves output_file_id and
        error_file_id null when there is nothing to put in them, and so do we.
        """
        paths: dict[str, Path | None] = {}
        for ok, kind in ((True, "output"), (False, "error")):
            path = self.store.files_dir / new_id("file-")

            def write_lines(out, ok: bool = ok) -> int:
                os.fchmod(out.fileno(), 0o600)  # results are as private as the prompts
                count = 0
                for texts in iter_results(self.store.db_path, batch_id, ok=ok):
                    out.write("\n".join(texts))
                    out.write("\n")
                    count += len(texts)
                return count

            # `.part` then rename, and no `.part` left behind on a full disk or any other error.
            if write_atomically(path, write_lines, text=True, alone=False):
                paths[kind] = path
            else:
                path.unlink()
                paths[kind] = None
        return paths
