"""`batchctl doctor --full`: one tiny real batch (upload, create, retrieve, cancel, download, delete) as a check."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from batchctl.doctor import FAIL, OK, WARN, CheckResult

if TYPE_CHECKING:
    from batchctl.api import BatchClient
    from batchctl.config import Settings


def _round_trip_request(provider: str) -> tuple[str, dict[str, Any]]:
    """The one request of the `--full` batch: DashScope's free test model where there is one."""
    if provider in ("dashscope", "newapi"):
        return "/v1/chat/ds-test", {"model": "batch-test-model", "messages": [{"role": "user", "content": "ping"}]}
    return "/v1/chat/completions", {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "ping"}], "max_tokens": 1}


def round_trip(client: BatchClient, settings: Settings) -> CheckResult:
    """Upload one request, create a batch, retrieve it, cancel it, download the input back, then delete
    every file the batch left on the server (the input, and any output/error file if it finished first)."""
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
        if not batch.is_terminal:
            batch = client.batches.cancel(batch.id)
        done.append("cancel")
        step = "content"
        with client.files.content(uploaded.id) as stream:
            data = b"".join(stream)
        if data.strip() != line.strip().encode():
            return CheckResult("round trip", WARN, f"{', '.join(done)} worked, but the downloaded input differs from the upload")
        done.append("content")
        step = "retrieve"
        leftovers = remote_files_of(client.batches.retrieve(batch.id), input_file_id=uploaded.id)
    except APIError as exc:
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
    return CheckResult("round trip", OK, f"{', '.join(done)}, delete all worked (batch cancelled, {len(deletions)} file(s) deleted)")
