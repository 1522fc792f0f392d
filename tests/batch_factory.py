"""Creating batches on a test server through the API client (the `submit` command is tested on its own)."""

from __future__ import annotations

import json
from pathlib import Path

from batchctl.api import BatchClient

CHAT = "/v1/chat/completions"


def write_requests(path: Path, n: int, *, model: str = "echo", broken_line: int | None = None) -> Path:
    """A chat batch input of `n` requests; `broken_line` (1-based) is replaced by invalid JSON."""
    lines = []
    for i in range(1, n + 1):
        if i == broken_line:
            lines.append("{not json")
            continue
        body = {"model": model, "messages": [{"role": "user", "content": f"question {i}"}]}
        lines.append(json.dumps({"custom_id": f"req-{i}", "method": "POST", "url": CHAT, "body": body}))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def create_batch(
    base_url: str,
    tmp_path: Path,
    n: int = 30,
    *,
    window: str = "24h",
    metadata: dict[str, str] | None = None,
    broken_line: int | None = None,
) -> str:
    """Upload an input of `n` requests and start a batch on it; returns the batch id."""
    path = write_requests(tmp_path / f"input-{n}-{broken_line}-{len(list(tmp_path.iterdir()))}.jsonl", n,
                          broken_line=broken_line)
    with BatchClient(base_url) as client:
        file = client.files.create(path=path)
        return client.batches.create(
            input_file_id=file.id, endpoint=CHAT, completion_window=window, metadata=metadata
        ).id


def retrieve(base_url: str, batch_id: str):
    with BatchClient(base_url) as client:
        return client.batches.retrieve(batch_id)
