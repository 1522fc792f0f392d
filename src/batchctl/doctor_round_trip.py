"""`batchctl doctor --full`: one tiny real batch (upload, create, retrieve, cancel, download, delete) as a check."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from batchctl.doctor import FAIL, OK, WARN, CheckResult
from batchctl.errors import BatchctlError

if TYPE_CHECKING:
    from batchctl.api import Batch, BatchClient
    from batchctl.config import Settings

FINALIZING_WAIT = 30.0  # seconds a batch that refused the cancel while finalizing may take to end


def _round_trip_request(provider: str) -> tuple[str, dict[str, Any]]:
    """The one request of the `--full` batch: DashScope's free test model where there is one."""
    if provider in ("dashscope", "newapi"):
        return "/v1/chat/ds-test", {"model": "batch-test-model", "messages": [{"role": "user", "content": "ping"}]}
    return "/v1/chat/completions", {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "ping"}], "max_tokens": 1}


def round_trip(client: BatchClient, settings: Settings) -> CheckResult:
    """Upload one request, create a batch, retrieve it, cancel it (unless it ended first: `_cancel`),
    download the input back, then delete every file the batch left on the server (the input, and any
    output/error file if it finished first)."""
    import os
    import tempfile

    from batchctl.api import APIError
    from batchctl.remote_cleanup import delete_remote_files, remote_files_of

    endpoint, body = _round_trip_request(settings.provider)
    line = json.dumps({"custom_id": "batchctl-doctor", "method": "POST", "url": endpoint, "body": body}) + "\n"
    fd, path = tempfile.mkstemp(prefix="batchctl-doctor-", suffix=".jsonl")
    done: list[str] = []
    leftovers: list[tuple[str, str]] = []
    step = "upload"
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(line)
        uploaded = client.files.create(path=path)
        leftovers = [("input", uploaded.id)]
        done.append("upload")
        step = "create"
        batch = client.batches.create(input_file_id=uploaded.id, endpoint=endpoint, completion_window="24h")
        done.append("create")
        step = "retrieve"
        batch = client.batches.retrieve(batch.id)
        done.append("retrieve")
        step = "cancel"
        batch, cancelled = _cancel(client, batch)
        if cancelled:
            done.append("cancel")
        step = "content"
        with client.files.content(uploaded.id) as stream:
            data = b"".join(stream)
        if data.strip() != line.strip().encode():
            return CheckResult("round trip", WARN, f"{', '.join(done)} worked, but the downloaded input differs from the upload")
        done.append("content")
        step = "retrieve"
        leftovers = remote_files_of(client.batches.retrieve(batch.id), input_file_id=uploaded.id)
    except (APIError, BatchctlError) as exc:
        return CheckResult(
            "round trip",
            FAIL,
            f"{step} failed after {', '.join(done) or 'nothing'}: {exc}",
            "See the route lines above; run with --debug for the HTTP exchanges.",
        )
    finally:
        os.unlink(path)
        deletions = delete_remote_files(client, leftovers) if leftovers else []
    kept = [d.file_id for d in deletions if not d.deleted]
    if kept:
        return CheckResult("round trip", WARN, f"{', '.join(done)} worked, but could not delete {', '.join(kept)}", "Delete them: batchctl files delete ID --yes")
    ending = "batch cancelled" if cancelled else f"the batch ended ({batch.status}) before it could be cancelled"
    return CheckResult("round trip", OK, f"{', '.join(done)}, delete all worked ({ending}, {len(deletions)} file(s) deleted)")


def _cancel(client: BatchClient, batch: Batch) -> tuple[Batch, bool]:
    """Cancel the round trip's batch: (the batch, True) when cancelled, (the batch, False) when it ended first.

    One echo request is done in milliseconds, so the batch often ends between its retrieve and the cancel:
    the server then refuses the cancel (409: `completed`, or `finalizing` while its files are written), and
    that says nothing against its cancel route. A refused cancel is a failure only if the batch has not
    ended, nor ends within FINALIZING_WAIT seconds of finalizing.
    """
    from batchctl.cancelling import AlreadyFinished, cancel_batch

    if batch.is_terminal:
        return batch, False
    try:
        return cancel_batch(client, batch.id, look_first=False), True  # `batch` was just retrieved
    except AlreadyFinished as exc:
        return exc.batch or client.batches.retrieve(batch.id), False
    except BatchctlError:
        deadline = time.monotonic() + FINALIZING_WAIT
        current = client.batches.retrieve(batch.id)
        while current.status == "finalizing" and time.monotonic() < deadline:
            time.sleep(0.1)
            current = client.batches.retrieve(batch.id)
        if current.is_terminal:
            return current, False
        raise
