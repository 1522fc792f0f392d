"""Joining results back to the rows they came from (`download --join DATA`).

The result files are indexed by custom_id -> (file, offset) (never held in memory); then DATA is read
once, in order, and each row is written with its answer columns added: `answer`, `finish_reason`,
`prompt_tokens`, `completion_tokens`, `error` (`code: message`) and `batch_id`. A row whose request
failed (or got no result) keeps its data, with an empty answer and the error. When JSON was asked for
(--json-schema), each answer is parsed; one that does not parse stays as text, with `invalid_json: …`
as its error, and counts as failed.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from batchctl.answers import extract_answer
from batchctl.errors import BatchctlError
from batchctl.merging import MergeReport, ResultIndex
from batchctl.prepare.requests import row_id
from batchctl.prepare.rows import RowSource, cell_text, require_pyarrow
from batchctl.results import MISSING_RESULT_CODE, parse_result, write_atomically

ADDED = ("answer", "finish_reason", "prompt_tokens", "completion_tokens", "error", "batch_id")
OUTPUT_FORMATS = ("csv", "jsonl", "parquet")
_BY_SUFFIX = {".csv": "csv", ".tsv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl",
              ".parquet": "parquet", ".pq": "parquet"}  # fmt: skip
PARQUET_ROWS = 4096
INVALID_JSON = "invalid_json"  # the error code of a row whose answer (JSON was asked for) does not parse


def output_format(path: Path, forced: str | None) -> str:
    if forced:
        if forced.lower() not in OUTPUT_FORMATS:
            raise BatchctlError(f"unknown output format {forced!r}", f"Use one of: {', '.join(OUTPUT_FORMATS)}.")
        return forced.lower()
    fmt = _BY_SUFFIX.get(path.suffix.lower())
    if fmt is None:
        raise BatchctlError(f"cannot tell the format of {path.name} from its extension",
                            f"Name it .csv, .jsonl or .parquet, or pass --format ({', '.join(OUTPUT_FORMATS)}).")  # fmt: skip
    return fmt


def added_columns(columns: Sequence[str], prefix: str) -> list[str]:
    """The names of the added columns; a clash with a column of DATA is an error naming it."""
    names = [prefix + name for name in ADDED]
    clash = [name for name in names if name in columns]
    if clash:
        raise BatchctlError(
            f"the data already has column{'s' if len(clash) > 1 else ''} {', '.join(map(repr, clash))}",
            "Pass --prefix (e.g. --prefix llm_) to name the added columns llm_answer, llm_error, ...",
        )
    return names


def _error_text(result: dict[str, Any], fallback: str | None) -> str | None:
    """`code: message` of a failed result (an error envelope, or an HTTP error body)."""
    response = result.get("response")
    body = response.get("body") if isinstance(response, dict) else None
    inner = body.get("error") if isinstance(body, dict) else None
    if isinstance(inner, dict) and (inner.get("code") or inner.get("type")) and inner.get("message"):
        return f"{inner.get('code') or inner.get('type')}: {inner['message']}"
    return fallback


def answer_columns(line: bytes | None, parse_json: bool) -> tuple[Any, Any, Any, Any, str | None]:
    """(answer, finish_reason, prompt_tokens, completion_tokens, error) of one result line."""
    if line is None:
        return None, None, None, None, f"{MISSING_RESULT_CODE}: the batch returned no result for this request"
    result = parse_result(line)
    if result is None:
        return None, None, None, None, "unreadable_result: the result line is not a JSON object"
    _, answer, error = extract_answer(result)
    error = _error_text(result, error) if error else None
    response = result.get("response")
    body = response.get("body") if isinstance(response, dict) else None
    body = body if isinstance(body, dict) else {}
    choices = body.get("choices")
    finish = choices[0].get("finish_reason") if isinstance(choices, list) and choices and isinstance(choices[0], dict) else None
    if finish is None and isinstance(body.get("status"), str) and not error:
        finish = body["status"]  # /v1/responses: completed / incomplete
    usage = body.get("usage") if isinstance(body.get("usage"), dict) else {}
    prompt = usage.get("prompt_tokens", usage.get("input_tokens"))
    completion = usage.get("completion_tokens", usage.get("output_tokens"))
    if parse_json and isinstance(answer, str) and not error:
        try:
            answer = json.loads(answer)
        except ValueError as exc:  # kept as the text it is; the row says why it is not the JSON asked for
            error = invalid_json(exc, finish)
    return answer, finish, prompt, completion, error


def invalid_json(exc: ValueError, finish: Any) -> str:
    """`invalid_json: …` (short) for an answer of a --json-schema request that does not parse."""
    detail = f"{exc.msg} at character {exc.pos}" if isinstance(exc, json.JSONDecodeError) else str(exc)
    cut = " (cut off: finish_reason length)" if finish == "length" else ""
    return f"{INVALID_JSON}: the answer is not valid JSON ({detail}){cut}"


@dataclass
class JoinSettings:
    id_column: str | None = None
    prefix: str = ""
    parse_json: bool = False


def joined_rows(source: RowSource, paths: Sequence[Path], batch_ids: Sequence[str], settings: JoinSettings,
                report: MergeReport, *, ranks: Sequence[int] | None = None,
                ) -> Iterator[tuple[dict[str, Any], tuple[Any, ...]]]:  # fmt: skip
    """(the row, its added values) for every row of DATA, in order; fills `report` as it goes.

    `paths[i]` came from batch `batch_ids[i]`; with `ranks` (the attempt each file holds, newer higher) a
    success beats a failure and the newest attempt wins, as in `download --merge`."""
    index = ResultIndex(paths, ranks)
    try:
        for n, row in source.rows():
            cid = row_id(n, row, settings.id_column)
            spot = index.where.get(cid)
            line = index.read(cid) if spot is not None else None
            index.where.pop(cid, None)  # each result joins one row; what is left at the end matched none
            report.requests += 1
            if line is None or spot is None:
                report.missing.append(cid)
                batch_id = None
            else:
                batch_id = batch_ids[spot[0]]
            answer, finish, prompt, completion, error = answer_columns(line, settings.parse_json)
            if line is not None:
                if error:
                    report.failed.append(cid)
                    if error.startswith(INVALID_JSON + ":") and settings.parse_json:
                        report.invalid_json += 1
                else:
                    report.succeeded += 1
            yield row, (answer, finish, prompt, completion, error, batch_id)
    finally:
        index.close()
    report.unexpected = len(index.where)
    report.duplicates, report.superseded, report.unreadable = index.duplicates, index.superseded, index.unreadable


def _text(value: Any) -> str:
    return "" if value is None else value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def write_joined(path: Path, fmt: str, columns: Sequence[str], added: Sequence[str],
                 rows: Iterator[tuple[dict[str, Any], tuple[Any, ...]]], *, delimiter: str = ",",
                 arrow_schema: Any = None) -> int:  # fmt: skip
    """Write the joined rows to `path` atomically as csv (with a BOM), jsonl or parquet; returns the count.

    Parquet keeps the data columns' types when DATA was Parquet (`arrow_schema`); else they are text."""
    if fmt == "csv":

        def write_csv(handle: Any) -> int:
            handle.write("\ufeff")  # Excel then reads UTF-8 (Chinese text and all), as in download --content
            writer = csv.writer(handle, delimiter=delimiter)
            writer.writerow([*columns, *added])
            count = 0
            for row, values in rows:
                writer.writerow([cell_text(row.get(c)) for c in columns] + [_text(v) for v in values])
                count += 1
            return count

        return write_atomically(path, write_csv, text=True)
    if fmt == "jsonl":

        def write_jsonl(handle: IO[bytes]) -> int:
            count = 0
            for row, values in rows:
                handle.write(json.dumps({**row, **dict(zip(added, values))}, ensure_ascii=False).encode() + b"\n")
                count += 1
            return count

        return write_atomically(path, write_jsonl)
    return _write_parquet(path, columns, added, rows, arrow_schema)


def _write_parquet(path: Path, columns: Sequence[str], added: Sequence[str],
                   rows: Iterator[tuple[dict[str, Any], tuple[Any, ...]]], arrow_schema: Any) -> int:  # fmt: skip
    pq = require_pyarrow(f"writing {path.name} (Parquet)")
    import pyarrow as pa

    typed = arrow_schema is not None
    schema_fields = [arrow_schema.field(name) if typed else (name, pa.string()) for name in columns]
    kinds = {"prompt_tokens": pa.int64(), "completion_tokens": pa.int64()}
    schema_fields += [(name, kinds.get(base, pa.string())) for name, base in zip(added, ADDED)]
    schema = pa.schema(schema_fields)

    def write(handle: IO[bytes]) -> int:
        count = 0
        with pq.ParquetWriter(handle, schema) as writer:
            chunk: list[dict[str, Any]] = []
            for row, values in rows:
                record = {c: row.get(c) if typed or row.get(c) is None else cell_text(row.get(c)) for c in columns}
                for name, base, value in zip(added, ADDED, values):
                    record[name] = value if base in kinds or value is None else _text(value)
                chunk.append(record)
                count += 1
                if len(chunk) >= PARQUET_ROWS:
                    writer.write_table(pa.Table.from_pylist(chunk, schema=schema))
                    chunk = []
            if chunk or count == 0:
                writer.write_table(pa.Table.from_pylist(chunk, schema=schema))
        return count

    return write_atomically(path, write)
