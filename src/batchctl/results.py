"""Batch results on disk: saving output and error files, counting them, merging them back into input
order by `custom_id`, and extracting just the answers (text, embedding) for people.

Nothing here knows Typer or Rich. Files are written to `<name>.part` and renamed only when complete,
so an interrupted run never leaves a truncated result behind. Memory stays flat with file size: a
merge keeps only an index of `custom_id -> (file, offset)`, never the results themselves.
"""

from __future__ import annotations

import csv
import json
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from batchctl.errors import BatchctlError
from batchctl.validation import iter_raw_lines, iter_request_lines

if TYPE_CHECKING:
    from batchctl.api import Batch, BatchClient

CONTENT_FORMATS = ("jsonl", "csv")
# The error file goes beside the output: results.jsonl -> results.errors.jsonl.
ERRORS_INFIX = ".errors"
# The envelope written by --merge for a request the batch returned nothing for.
MISSING_RESULT_CODE = "missing_result"
# What --content calls the extracted value, by endpoint.
CONTENT_FIELD_BY_ENDPOINT = {
    "/v1/chat/completions": "content",
    "/v1/chat/ds-test": "content",
    "/v1/responses": "content",
    "/v1/completions": "text",
    "/v1/embeddings": "embedding",
}
_UNSAFE_IN_NAME = re.compile(r"[^A-Za-z0-9._+-]+")


# -- names -----------------------------------------------------------------------------------------


def default_output_name(model: str | None, *, now: float | None = None, fmt: str = "jsonl") -> str:
    """The seed client's naming: `results_<model>_<YYYYMMDD-HHMMSS>.jsonl` (local time).

    Characters that do not belong in a file name (`/` in `Qwen/Qwen2.5`, spaces) become `-`.
    """
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    name = _UNSAFE_IN_NAME.sub("-", model or "").strip("-.") or "batch"
    return f"results_{name}_{stamp}.{fmt}"


def errors_path_for(output: Path) -> Path:
    """Where the error file goes by default: beside `output`, `<stem>.errors.jsonl`.

    The error file holds the server's raw result lines, so it is JSONL whatever `output` is.
    """
    stem = output.name[: -len(output.suffix)] if output.suffix else output.name
    return output.with_name(f"{stem}{ERRORS_INFIX}.jsonl")


def resolve_targets(
    output: Path | None, errors_output: Path | None, *, model: str | None, content_format: str | None
) -> tuple[Path, Path]:
    """--output (or the seed's default name) and --errors-output (or beside it)."""
    output = output or Path(default_output_name(model, fmt=content_format or "jsonl"))
    return output, errors_output or errors_path_for(output)


def check_overwrite(paths: Iterable[Path], *, force: bool) -> None:
    """Refuse, before anything is downloaded, to replace existing files unless `force`."""
    if force:
        return
    existing = [p for p in paths if p.exists()]
    if existing:
        names = ", ".join(str(p) for p in existing)
        raise BatchctlError(
            f"{names} already exist{'s' if len(existing) == 1 else ''}",
            "Use --force to overwrite, or choose another name with --output / --errors-output.",
        )


# -- counting and reading --------------------------------------------------------------------------


def scan_results(path: str | os.PathLike[str]) -> tuple[int, int]:
    """(result lines, failed ones) of a result file, in one streamed pass.

    Output files can hold failures too: some servers put HTTP error responses there.
    """
    lines = failed = 0
    for line in iter_result_lines([Path(path)]):
        lines += 1
        obj = _parse(line)
        if obj is None or result_failed(obj):
            failed += 1
    return lines, failed


def iter_result_lines(paths: Sequence[Path]) -> Iterator[bytes]:
    """The non-blank lines of each result file in turn, as raw bytes without the line ending."""
    for path in paths:
        for _, _, raw in iter_raw_lines(path, strip_bom=False):
            line = raw.rstrip(b"\r\n")
            if line.strip():
                yield line


def _parse(line: bytes) -> dict[str, Any] | None:
    try:
        obj = json.loads(line)
    except ValueError:
        return None
    return obj if isinstance(obj, dict) else None


def result_failed(result: dict[str, Any]) -> bool:
    """A result line that carries an error, or a response with an HTTP error status."""
    if result.get("error"):
        return True
    response = result.get("response")
    if not isinstance(response, dict):
        return True
    status = response.get("status_code")
    return isinstance(status, int) and status >= 400


# -- atomic writing --------------------------------------------------------------------------------


def write_atomically(path: Path, write: Callable[[IO[bytes]], int], *, text: bool = False) -> int:
    """Call `write(handle)` on `<path>.part`, then rename it to `path`; returns what `write` returns.

    On any error (Ctrl+C included) the `.part` file is removed and `path` is left as it was.
    """
    partial = path.with_name(path.name + ".part")
    try:
        if text:
            with open(partial, "w", encoding="utf-8", newline="") as handle:
                result = write(handle)  # type: ignore[arg-type]
        else:
            with open(partial, "wb") as handle:
                result = write(handle)
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return result


# -- merge -----------------------------------------------------------------------------------------


@dataclass
class MergeReport:
    """How the results matched the input: one entry per input request, in input order."""

    requests: int = 0
    succeeded: int = 0
    failed: list[str] = field(default_factory=list)  # custom_ids whose result is an error
    missing: list[str] = field(default_factory=list)  # custom_ids with no result at all
    unexpected: int = 0  # results whose custom_id is not in the input
    duplicates: int = 0  # results beyond the first for one custom_id (ignored)

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "succeeded": self.succeeded,
            "failed": len(self.failed),
            "missing": len(self.missing),
            "unexpected": self.unexpected,
            "duplicates": self.duplicates,
            "failed_ids": self.failed,
            "missing_ids": self.missing,
        }


def missing_result(custom_id: str) -> dict[str, Any]:
    """The envelope --merge writes for a request the batch returned no result for."""
    return {
        "id": None,
        "custom_id": custom_id,
        "response": None,
        "error": {"code": MISSING_RESULT_CODE, "message": "the batch returned no result for this request"},
    }


class _ResultIndex:
    """custom_id -> (file number, byte offset, length) over the result files; reads lines back on demand."""

    def __init__(self, paths: Sequence[Path]) -> None:
        self.paths = list(paths)
        self.where: dict[str, tuple[int, int, int]] = {}
        self.duplicates = 0
        self.unreadable = 0
        for number, path in enumerate(self.paths):
            for _, start, raw in iter_raw_lines(path, strip_bom=False):
                line = raw.rstrip(b"\r\n")
                if not line.strip():
                    continue
                obj = _parse(line)
                cid = obj.get("custom_id") if obj else None
                if not isinstance(cid, str):
                    self.unreadable += 1
                    continue
                if cid in self.where:
                    self.duplicates += 1
                    continue
                self.where[cid] = (number, start, len(line))
        self._handles: list[IO[bytes] | None] = [None] * len(self.paths)

    def read(self, custom_id: str) -> bytes | None:
        spot = self.where.get(custom_id)
        if spot is None:
            return None
        number, start, length = spot
        handle = self._handles[number]
        if handle is None:
            handle = self._handles[number] = open(self.paths[number], "rb")
        handle.seek(start)
        return handle.read(length)

    def close(self) -> None:
        for handle in self._handles:
            if handle is not None:
                handle.close()


def iter_merged(input_path: Path, result_paths: Sequence[Path], report: MergeReport) -> Iterator[bytes]:
    """One result line per input request, in input order, joined by custom_id; fills `report`.

    Output and error files are not in input order (OpenAI does not promise it); a request with no
    result gets a `missing_result` envelope, so the merged file always has one line per request.
    """
    index = _ResultIndex(result_paths)
    used: set[str] = set()
    try:
        for _, request in iter_request_lines(input_path):
            cid = request.get("custom_id")
            if not isinstance(cid, str):
                continue
            report.requests += 1
            line = index.read(cid) if cid not in used else None
            if line is None:
                report.missing.append(cid)
                line = json.dumps(missing_result(cid), ensure_ascii=False).encode()
            else:
                used.add(cid)
                obj = _parse(line)
                if obj is None or result_failed(obj):
                    report.failed.append(cid)
                else:
                    report.succeeded += 1
            yield line
    finally:
        index.close()
    report.unexpected = len(index.where) - len(used)
    report.duplicates = index.duplicates


def write_lines(path: Path, lines: Iterable[bytes]) -> int:
    """Write `lines` (without endings) to `path` atomically, one per line; returns the count."""

    def write(handle: IO[bytes]) -> int:
        count = 0
        for line in lines:
            handle.write(line)
            handle.write(b"\n")
            count += 1
        return count

    return write_atomically(path, write)


# -- content extraction ----------------------------------------------------------------------------


def content_field(endpoint: str | None) -> str:
    """The name --content gives the extracted value: content, text or embedding."""
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
    """The useful part of a response body: assistant text, completion text, or embedding(s)."""
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
            obj = _parse(line)
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
        writer = csv.writer(handle)
        writer.writerow(["custom_id", field_name, "error"])
        count = 0
        for cid, answer, error in rows():
            cell = answer if isinstance(answer, str) or answer is None else json.dumps(answer)
            writer.writerow([cid or "", "" if cell is None else cell, error or ""])
            count += 1
        return count

    return write_atomically(path, write_csv, text=True)


# -- the whole download ----------------------------------------------------------------------------


@dataclass
class SavedFile:
    """One file written by a download: what it holds, where it went, how big it is."""

    kind: str  # "output" | "error" | "merged" | "content"
    path: Path
    lines: int
    bytes: int
    file_id: str | None = None
    failed: int = 0  # result lines that are errors

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "path": str(self.path),
            "file_id": self.file_id,
            "lines": self.lines,
            "bytes": self.bytes,
        }


@dataclass
class DownloadResult:
    batch_id: str
    status: str
    files: list[SavedFile] = field(default_factory=list)
    merge: MergeReport | None = None
    # Requests that ended in the error file (or as errors in the output), from the saved files.
    failed_requests: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "batch_id": self.batch_id,
            "status": self.status,
            "files": [f.to_dict() for f in self.files],
            "failed_requests": self.failed_requests,
            "merge": self.merge.to_dict() if self.merge else None,
        }


def save_results(
    client: BatchClient,
    batch: Batch,
    *,
    output: Path,
    errors_output: Path,
    merge_input: Path | None = None,
    content_format: str | None = None,
) -> DownloadResult:
    """Download a finished batch's files and write what was asked for.

    - plain: the output file to `output`, the error file (when the batch has one) to `errors_output`;
    - `merge_input`: `output` gets one result per input request, in input order (errors included);
    - `content_format`: `output` gets custom_id + answer + error rows (after merging, if asked).
    The error file is always saved as the server sent it. Overwrite checks are the caller's
    (`check_overwrite`, done before anything is downloaded).
    """
    result = DownloadResult(batch.id, batch.status)
    transform = merge_input is not None or content_format is not None
    if not transform:
        if batch.output_file_id:
            saved = _download(client, "output", batch.output_file_id, output)
            result.files.append(saved)
            result.failed_requests += saved.failed
        if batch.error_file_id:
            saved = _download(client, "error", batch.error_file_id, errors_output)
            result.files.append(saved)
            result.failed_requests += saved.lines
        return result

    # Download the raw files beside the target (same file system), build the output, drop the raws.
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=output.parent, prefix=".batchctl-download-") as scratch:
        raw: list[Path] = []
        if batch.output_file_id:
            raw_output = Path(scratch) / "output.jsonl"
            client.files.download_to(batch.output_file_id, raw_output)
            raw.append(raw_output)
            result.failed_requests += scan_results(raw_output)[1]
        if batch.error_file_id:
            saved = _download(client, "error", batch.error_file_id, errors_output)
            result.files.append(saved)
            result.failed_requests += saved.lines
            raw.append(errors_output)

        if merge_input is not None:
            result.merge = MergeReport()
            lines: Iterable[bytes] = iter_merged(merge_input, raw, result.merge)
        else:
            lines = iter_result_lines(raw)
        if content_format is not None:
            count = write_content(output, lines, fmt=content_format, field_name=content_field(batch.endpoint))
            kind = "content"
        else:
            count = write_lines(output, lines)
            kind = "merged"
        result.files.insert(0, SavedFile(kind, output, count, output.stat().st_size, batch.output_file_id))
    return result


def _download(client: BatchClient, kind: str, file_id: str, path: Path) -> SavedFile:
    path.parent.mkdir(parents=True, exist_ok=True)
    size = client.files.download_to(file_id, path)
    lines, failed = scan_results(path)
    return SavedFile(kind, path, lines, int(size), file_id, failed)
