"""Just the answers of a batch (`download --content`): custom_id, the assistant text, completion text,
embedding or moderation results, and the error, as JSONL or CSV."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from batchctl.errors import BatchctlError
from batchctl.results import CONTENT_FORMATS, parse_result, write_atomically

# What --content calls the extracted value, by endpoint.
CONTENT_FIELD_BY_ENDPOINT = {
    "/v1/chat/completions": "content",
    "/v1/chat/ds-test": "content",
    "/v1/responses": "content",
    "/v1/completions": "text",
    "/v1/embeddings": "embedding",
    "/v1/moderations": "results",
}


def content_field(endpoint: str | None) -> str:
    """The name --content gives the extracted value: content, text, embedding or results (moderations)."""
    return CONTENT_FIELD_BY_ENDPOINT.get(endpoint or "", "content")


def _error_message(result: dict[str, Any]) -> str | None:
    error = result.get("error")
    if error:
        if isinstance(error, dict):
            code, message = error.get("code"), error.get("message")
            return f"{code}: {message}" if code and message else str(message or code or error)
        return str(error)
    response = result.get("response")
    if not isinstance(response, dict):
        return "no response"
    status = response.get("status_code")
    if isinstance(status, int) and status >= 400:
        body = response.get("body")
        inner = body.get("error") if isinstance(body, dict) else None
        message = inner.get("message") if isinstance(inner, dict) else None
        return f"HTTP {status}: {message}" if message else f"HTTP {status}"
    return None


def _answer(body: Any) -> Any:
    """The useful part of a response body: assistant text, completion text, embedding(s), or the
    moderation results (one `{flagged, categories, category_scores, ...}` per input)."""
    if not isinstance(body, dict):
        return None
    data = body.get("data")
    if isinstance(data, list) and data and isinstance(data[0], dict) and "embedding" in data[0]:
        vectors = [item.get("embedding") for item in sorted(data, key=lambda d: d.get("index", 0))]
        return vectors[0] if len(vectors) == 1 else vectors
    choices = body.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        first = choices[0]
        message = first.get("message")
        if isinstance(message, dict):
            return message.get("content")
        return first.get("text")
    results = body.get("results")
    if isinstance(results, list) and all(isinstance(item, dict) for item in results):  # /v1/moderations
        return results
    if isinstance(body.get("output_text"), str):
        return body["output_text"]
    output = body.get("output")
    if isinstance(output, list):  # /v1/responses without the output_text convenience field
        parts = [
            part.get("text", "")
            for item in output
            if isinstance(item, dict) and item.get("type") == "message"
            for part in item.get("content") or []
            if isinstance(part, dict) and part.get("type") == "output_text"
        ]
        return "".join(parts) if parts else None
    return None


def extract_answer(result: dict[str, Any]) -> tuple[str | None, Any, str | None]:
    """(custom_id, answer, error message) of one result line; the answer is None when it failed."""
    error = _error_message(result)
    response = result.get("response")
    answer = None if error else _answer(response.get("body") if isinstance(response, dict) else None)
    return result.get("custom_id"), answer, error


def write_content(path: Path, lines: Iterable[bytes], *, fmt: str, field_name: str) -> int:
    """Write custom_id, the answer (under `field_name`) and error of each result; returns the row count.

    JSONL rows are `{"custom_id": ..., "<field>": ..., "error": ...}`; CSV has the same columns, an
    embedding as a JSON array in its cell.
    """
    if fmt not in CONTENT_FORMATS:
        raise BatchctlError(f"unknown content format {fmt!r}", f"Use one of: {', '.join(CONTENT_FORMATS)}.")

    def rows() -> Iterator[tuple[str | None, Any, str | None]]:
        for line in lines:
            obj = parse_result(line)
            if obj is None:
                yield None, None, "unreadable result line"
            else:
                yield extract_answer(obj)

    if fmt == "jsonl":

        def write_jsonl(handle: IO[bytes]) -> int:
            count = 0
            for cid, answer, error in rows():
                row = {"custom_id": cid, field_name: answer, "error": error}
                handle.write(json.dumps(row, ensure_ascii=False).encode() + b"\n")
                count += 1
            return count

        return write_atomically(path, write_jsonl)

    def write_csv(handle: Any) -> int:
        # A byte order mark first: Excel then reads the file as UTF-8 (Chinese text and all), and
        # csv readers that open it as utf-8-sig never see it.
        handle.write("\ufeff")
        writer = csv.writer(handle)
        writer.writerow(["custom_id", field_name, "error"])
        count = 0
        for cid, answer, error in rows():
            cell = answer if isinstance(answer, str) or answer is None else json.dumps(answer)
            writer.writerow([cid or "", "" if cell is None else cell, error or ""])
            count += 1
        return count

    return write_atomically(path, write_csv, text=True)
