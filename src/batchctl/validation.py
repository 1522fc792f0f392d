"""Streaming validation of Batch input files (JSONL), for `validate`, `submit` and the local server.

The file is read once, in binary, line by line: memory stays flat whatever its size, apart from the
set of `custom_id`s needed to find duplicates. Each problem names its line and says what is wrong in
words meant for people; codes follow OpenAI's batch error codes where one exists.

`check_limits` is the one place where a provider's request and size limits are checked.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field

from batchctl.providers import ProviderSpec, format_size

# Problem codes. OpenAI's own where it has one (invalid_json_line, missing_required_parameter,
# invalid_value, duplicate_custom_id, mismatched_model, too_many_requests, file_too_large, empty_file).
INVALID_UTF8 = "invalid_utf8"
INVALID_JSON_LINE = "invalid_json_line"
MISSING_REQUIRED_PARAMETER = "missing_required_parameter"
INVALID_VALUE = "invalid_value"
DUPLICATE_CUSTOM_ID = "duplicate_custom_id"
MISMATCHED_ENDPOINT = "mismatched_endpoint"
MISMATCHED_MODEL = "mismatched_model"
TOO_MANY_REQUESTS = "too_many_requests"
FILE_TOO_LARGE = "file_too_large"
LINE_TOO_LARGE = "line_too_large"
EMPTY_FILE = "empty_file"
# Warning codes: accepted, but worth knowing.
BLANK_LINES = "blank_lines"
UTF8_BOM = "utf8_bom"
CRLF_LINE_ENDINGS = "crlf_line_endings"

CHAT_ENDPOINTS = frozenset({"/v1/chat/completions", "/v1/chat/ds-test"})
# The body field that carries the input of each non-chat endpoint.
INPUT_FIELD = {"/v1/embeddings": "input", "/v1/completions": "prompt", "/v1/responses": "input"}

BOM = b"\xef\xbb\xbf"  # UTF-8 byte order mark: Windows editors put it first in a file
READ_BUFFER = 1 << 20  # bytes buffered per read of a JSONL file
# Rough token estimate: about 4 bytes of UTF-8 text per token. That is close for English, and for
# CJK text (3 bytes a character) gives ~0.75 tokens a character, near what Qwen/GPT tokenizers do.
_BYTES_PER_TOKEN = 4
_SHOWN_BLANK_LINES = 5


def _refuse_constant(name: str) -> float:
    # Python reads NaN/Infinity; JSON has no such values and servers (Go's encoding/json) refuse them.
    raise ValueError(f"{name} is not a JSON value")


# Built once: json.loads(text) with keyword arguments would build a decoder for every line.
_decode_json = json.JSONDecoder(parse_constant=_refuse_constant).decode


@dataclass
class Problem:
    """One thing wrong with an input file. `message` is complete, starting "line N: " when `line` is set."""

    line: int | None
    code: str
    message: str
    param: str | None = None

    def to_dict(self) -> dict:
        return {"line": self.line, "code": self.code, "message": self.message, "param": self.param}


@dataclass
class ValidationReport:
    """What `validate_file` found: a summary of the file, its problems and warnings."""

    path: str
    size_bytes: int
    lines: int  # physical lines, blank ones included
    requests: int  # non-blank lines: each is one request, valid or not
    blank_lines: int
    endpoint: str | None  # the batch's endpoint: the one given, else the first line's url
    model: str | None  # the first line's body.model
    est_input_tokens: int  # an estimate (UTF-8 bytes of prompt text / 4), not a tokenizer count
    problems: list[Problem]  # the first `max_problems`
    problem_count: int  # all of them
    warnings: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.problem_count == 0

    def to_dict(self) -> dict:
        """The report object `validate --json` prints."""
        return {
            "path": self.path,
            "ok": self.ok,
            "size_bytes": self.size_bytes,
            "lines": self.lines,
            "requests": self.requests,
            "blank_lines": self.blank_lines,
            "endpoint": self.endpoint,
            "model": self.model,
            "est_input_tokens": self.est_input_tokens,
            "problem_count": self.problem_count,
            "problems_truncated": self.problem_count > len(self.problems),
            "problems": [p.to_dict() for p in self.problems],
            "warnings": [w.to_dict() for w in self.warnings],
        }


def check_limits(requests: int, size_bytes: int, spec: ProviderSpec) -> list[Problem]:
    """Problems for a file of `requests` requests and `size_bytes` bytes over `spec`'s limits.

    Each message says by how much the file is over and how many files to split it into, counting
    both limits (a file can be under one and over the other).
    """
    problems: list[Problem] = []
    over_requests = requests > spec.max_requests
    over_size = size_bytes > spec.max_file_bytes
    if not (over_requests or over_size):
        return problems
    parts = spec.parts_needed(requests, size_bytes)
    advice = (
        f"split it into {'at least ' if over_size else ''}{parts} files of at most "
        f"{spec.max_requests:,} requests and {format_size(spec.max_file_bytes)} each"
    )
    if over_requests:
        problems.append(
            Problem(
                None,
                TOO_MANY_REQUESTS,
                f"the file has {requests:,} requests, {requests - spec.max_requests:,} over {spec.name}'s "
                f"limit of {spec.max_requests:,} per batch; {advice}",
            )
        )
    if over_size:
        problems.append(
            Problem(
                None,
                FILE_TOO_LARGE,
                f"the file is {_size_with_bytes(size_bytes)}, "
                f"{format_size(size_bytes - spec.max_file_bytes)} over {spec.name}'s limit of "
                f"{format_size(spec.max_file_bytes)} per file; {advice}",
            )
        )
    return problems


def _size_with_bytes(n: int) -> str:
    """ "6.5 MB (6,815,744 bytes)", or just "900 bytes" when that says it all."""
    text = format_size(n)
    return text if text.endswith(" bytes") else f"{text} ({n:,} bytes)"


def _describe(value: object) -> str:
    """A JSON type name for messages: "an array", "a number", ..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _text_bytes(value: object) -> int:
    """UTF-8 bytes of the text in a message content / input / prompt, for the token estimate."""
    if isinstance(value, str):
        return len(value) if value.isascii() else len(value.encode("utf-8", "surrogatepass"))
    if isinstance(value, list):
        return sum(_text_bytes(v) for v in value)
    if isinstance(value, dict):  # content parts {"type": "text", "text": ...}, responses input items
        return _text_bytes(value.get("text")) + _text_bytes(value.get("content"))
    if isinstance(value, int) and not isinstance(value, bool):  # a token id (embeddings, completions)
        return _BYTES_PER_TOKEN
    return 0


class _FileValidator:
    """State of one pass over a file; `check(lineno, obj)` judges one parsed line."""

    def __init__(self, spec: ProviderSpec, endpoint: str | None, max_problems: int) -> None:
        self.spec = spec
        self.endpoints = frozenset(spec.endpoints)
        self.max_problems = max_problems
        self.problems: list[Problem] = []
        self.problem_count = 0
        self.endpoint = endpoint  # the batch's endpoint, once known
        self.endpoint_line: int | None = None  # the line it came from (None: given by the caller)
        self.model: str | None = None
        self.model_line = 0
        self.first_line_of: dict[str, int] = {}
        self.text_bytes = 0

    def add(self, line: int | None, code: str, message: str, param: str | None = None) -> None:
        self.problem_count += 1
        if len(self.problems) < self.max_problems:
            if line is not None:
                message = f"line {line}: {message}"
            self.problems.append(Problem(line, code, message, param))

    def check(self, n: int, obj: object) -> None:
        if type(obj) is not dict:
            self.add(n, INVALID_VALUE, f"expected a JSON object, got {_describe(obj)}")
            return
        add = self.add

        cid = obj.get("custom_id")
        if cid is None:
            add(n, MISSING_REQUIRED_PARAMETER, "custom_id is missing", "custom_id")
        elif type(cid) is not str:
            add(n, INVALID_VALUE, f"custom_id must be a string, not {_describe(cid)}", "custom_id")
        elif not cid:
            add(n, INVALID_VALUE, "custom_id is empty", "custom_id")
        else:
            first = self.first_line_of.setdefault(cid, n)
            if first != n:
                add(n, DUPLICATE_CUSTOM_ID, f"custom_id {json.dumps(cid)} already used on line {first}", "custom_id")

        method = obj.get("method")
        if method != "POST":
            if method is None:
                add(n, MISSING_REQUIRED_PARAMETER, 'method is missing (it must be "POST")', "method")
            else:
                add(n, INVALID_VALUE, f'method must be "POST", not {json.dumps(method)}', "method")

        url = obj.get("url")
        if url is None:
            add(n, MISSING_REQUIRED_PARAMETER, "url is missing", "url")
            url = None
        elif type(url) is not str or url not in self.endpoints:
            add(
                n,
                INVALID_VALUE,
                f"url {json.dumps(url)} is not an endpoint {self.spec.name} supports "
                f"({', '.join(self.spec.endpoints)})",
                "url",
            )
            url = None
        elif self.endpoint is None:
            self.endpoint, self.endpoint_line = url, n
        elif url != self.endpoint:
            if self.endpoint_line is None:
                msg = f'url "{url}" does not match the batch\'s endpoint "{self.endpoint}"'
            else:
                msg = (
                    f'url "{url}" differs from "{self.endpoint}" used on line {self.endpoint_line}; '
                    "all requests of a batch go to one endpoint"
                )
            add(n, MISMATCHED_ENDPOINT, msg, "url")

        body = obj.get("body")
        if body is None:
            add(n, MISSING_REQUIRED_PARAMETER, "body is missing", "body")
            return
        if type(body) is not dict:
            add(n, INVALID_VALUE, f"body must be an object, not {_describe(body)}", "body")
            return

        model = body.get("model")
        if model is None:
            add(n, MISSING_REQUIRED_PARAMETER, "body.model is missing", "body.model")
        elif type(model) is not str:
            add(n, INVALID_VALUE, f"body.model must be a string, not {_describe(model)}", "body.model")
        elif self.model is None:
            self.model, self.model_line = model, n
        elif model != self.model:
            add(
                n,
                MISMATCHED_MODEL,
                f'body.model "{model}" differs from "{self.model}" used on line {self.model_line}; '
                "a batch file must use one model",
                "body.model",
            )

        if url in CHAT_ENDPOINTS:
            self._check_messages(n, body.get("messages"))
        elif url is not None:
            name = INPUT_FIELD.get(url)
            if name is not None:
                value = body.get(name)
                if value is None:
                    add(n, MISSING_REQUIRED_PARAMETER, f"body.{name} is missing (required by {url})", f"body.{name}")
                else:
                    self.text_bytes += _text_bytes(value)

    def _check_messages(self, n: int, messages: object) -> None:
        if messages is None:
            self.add(n, MISSING_REQUIRED_PARAMETER, "body.messages is missing", "body.messages")
            return
        if type(messages) is not list or not messages:
            what = "empty" if type(messages) is list else _describe(messages)
            self.add(n, INVALID_VALUE, f"body.messages must be a non-empty array, not {what}", "body.messages")
            return
        text = 0
        for i, m in enumerate(messages):
            if type(m) is not dict:
                self.add(
                    n, INVALID_VALUE, f"body.messages[{i}] must be an object, not {_describe(m)}", f"body.messages[{i}]"
                )
                return
            if "role" not in m:
                self.add(
                    n, MISSING_REQUIRED_PARAMETER, f"body.messages[{i}].role is missing", f"body.messages[{i}].role"
                )
                return
            content = m.get("content")
            if content is None:
                # An assistant turn that only calls tools may carry no content.
                if m["role"] == "assistant" and ("tool_calls" in m or "function_call" in m):
                    continue
                self.add(
                    n,
                    MISSING_REQUIRED_PARAMETER,
                    f"body.messages[{i}].content is missing",
                    f"body.messages[{i}].content",
                )
                return
            if type(content) is str:
                text += len(content) if content.isascii() else len(content.encode("utf-8", "surrogatepass"))
            else:
                text += _text_bytes(content)
        self.text_bytes += text


def _bad_utf8_message(raw: bytes, err: UnicodeDecodeError, first_line: bool) -> str:
    msg = f"not valid UTF-8 (byte 0x{raw[err.start]:02x} at byte {err.start + 1} of the line)"
    if first_line and raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
        msg += "; the file looks like UTF-16: save it as UTF-8"
    else:
        msg += "; save the file as UTF-8"
    return msg


def validate_file(
    path: str | os.PathLike[str],
    *,
    spec: ProviderSpec,
    endpoint: str | None = None,
    max_problems: int = 1000,
) -> ValidationReport:
    """Check a Batch input file line by line against `spec`; never raises on bad content.

    `endpoint` is the batch's endpoint when it is already chosen (every line's url must equal it);
    otherwise the first line's url sets it. OSError (missing file, a directory) propagates.
    """
    v = _FileValidator(spec, endpoint, max_problems)
    if endpoint is not None and endpoint not in v.endpoints:
        v.add(
            None,
            INVALID_VALUE,
            f'the batch endpoint "{endpoint}" is not one {spec.name} supports ({", ".join(spec.endpoints)})',
            "endpoint",
        )
    warnings: list[Problem] = []
    max_line = spec.max_line_bytes
    loads = _decode_json
    check = v.check
    lines = requests = 0
    blanks: list[int] = []  # the first few blank line numbers, for the warning
    blank_count = 0
    crlf_line = 0

    size = os.stat(path).st_size
    for lines, offset, raw in iter_raw_lines(path):
        if lines == 1 and offset:  # line 1 starts after a BOM, which iter_raw_lines stripped
            warnings.append(
                Problem(1, UTF8_BOM, "line 1: the file starts with a UTF-8 byte order mark (BOM); it is ignored")
            )
        if max_line is not None and len(raw) > max_line:
            length = len(raw.rstrip(b"\r\n"))
            if length > max_line:
                v.add(
                    lines,
                    LINE_TOO_LARGE,
                    f"the line is {_size_with_bytes(length)}, over {spec.name}'s limit of "
                    f"{format_size(max_line)} per line",
                )
        try:
            text = raw.decode()
        except UnicodeDecodeError as err:
            requests += 1
            v.add(lines, INVALID_UTF8, _bad_utf8_message(raw, err, lines == 1))
            continue
        try:
            obj = loads(text)
        except ValueError as err:
            if text.isspace() or not text:
                blank_count += 1
                if blank_count <= _SHOWN_BLANK_LINES:
                    blanks.append(lines)
                continue
            requests += 1
            if isinstance(err, json.JSONDecodeError):
                msg = f"not valid JSON: {err.msg} (column {err.colno})"
            else:
                msg = f"not valid JSON: {err}"
            if not raw.endswith(b"\n"):
                msg += "; the last line has no newline, so the file may be truncated"
            v.add(lines, INVALID_JSON_LINE, msg)
            continue
        requests += 1
        if not crlf_line and raw.endswith(b"\r\n"):
            crlf_line = lines
        check(lines, obj)

    if requests == 0:
        why = "it is empty" if lines == 0 else "it has only blank lines"
        v.add(None, EMPTY_FILE, f"the file has no requests: {why}")
    elif blank_count:
        plural = "s" if blank_count != 1 else ""
        shown = ", ".join(str(n) for n in blanks)
        more = f" and {blank_count - len(blanks):,} more" if blank_count > len(blanks) else ""
        warnings.append(
            Problem(blanks[0], BLANK_LINES, f"{blank_count:,} blank line{plural} ignored (line{plural} {shown}{more})")
        )
    if crlf_line:
        warnings.append(
            Problem(crlf_line, CRLF_LINE_ENDINGS, f"line {crlf_line}: Windows line endings (CRLF); accepted")
        )
    for problem in check_limits(requests, size, spec):
        v.add(problem.line, problem.code, problem.message, problem.param)

    return ValidationReport(
        path=os.fspath(path),
        size_bytes=size,
        lines=lines,
        requests=requests,
        blank_lines=blank_count,
        endpoint=v.endpoint,
        model=v.model,
        est_input_tokens=math.ceil(v.text_bytes / _BYTES_PER_TOKEN),
        problems=v.problems,
        problem_count=v.problem_count,
        warnings=warnings,
    )


def iter_request_lines(path: str | os.PathLike[str]) -> Iterator[tuple[int, dict]]:
    """(1-based line number, parsed object) for each line that holds a JSON object.

    Blank lines, a UTF-8 BOM, CRLF endings and a last line without newline are handled as in
    `validate_file`; lines that are not UTF-8 JSON objects are skipped silently, so validate first.
    Line numbers match the validator's.
    """
    loads = _decode_json
    for n, _, raw in iter_raw_lines(path):
        try:
            obj = loads(raw.decode())
        except ValueError:  # UnicodeDecodeError and JSONDecodeError both are
            continue
        if type(obj) is dict:
            yield n, obj


def iter_raw_lines(path: str | os.PathLike[str], *, strip_bom: bool = True) -> Iterator[tuple[int, int, bytes]]:
    """(1-based line number, byte offset, raw bytes) for each line of a file, endings included.

    The one loop over JSONL files: buffered binary reads, memory flat whatever the size. A UTF-8 BOM
    at the start of line 1 is stripped (its offset is then 3) unless `strip_bom` is False, for files
    passed on byte for byte. `offset` is where the yielded bytes start in the file.
    """
    offset = 0
    with open(path, "rb", buffering=READ_BUFFER) as f:
        for n, raw in enumerate(f, 1):
            start = offset
            offset += len(raw)
            if n == 1 and strip_bom and raw.startswith(BOM):
                raw = raw[len(BOM) :]
                start += len(BOM)
            yield n, start, raw
