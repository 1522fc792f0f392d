"""A JSON payload is masked whether or not it takes the fast path (no escapes, no secret in its text)."""

from __future__ import annotations

import httpx

from batchctl.api import BatchClient

BASE = "https://api.example.test/v1"
KEY = "sk-live-SECRETabcdef9876"


def retrieve(text: str):
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text=text, headers={"content-type": "application/json"})

    with BatchClient(BASE, KEY, transport=httpx.MockTransport(handler)) as client:
        return client.batches.retrieve("batch_1")


def test_payloads_are_masked_plain_escaped_or_clean():
    head = '{"id": "batch_1", "object": "batch", "status": "failed", "endpoint": "/v1/chat/completions", '
    plain = retrieve(head + '"metadata": {"note": "key ' + KEY + '"}}')
    escaped = retrieve(head + '"metadata": {"note": "key sk\\u002dlive-SECRETabcdef9876"}}')
    clean = retrieve(head + '"metadata": {"note": "nothing secret"}}')
    assert KEY not in plain.metadata["note"] and plain.metadata["note"].startswith("key sk-")
    assert KEY not in escaped.metadata["note"] and escaped.metadata["note"].startswith("key sk-")
    assert clean.metadata["note"] == "nothing secret" and clean.id == "batch_1"
