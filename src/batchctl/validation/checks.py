"""Streaming validation of Batch input files (JSONL), for `validate`, `submit` and the local server.

The file is read once, in binary, line by line: memory stays flat whatever its size, apart from the
set of `custom_id`s needed to find duplicates. Each problem names its line and says what is wrong in
words meant for people; codes follow OpenAI's batch error codes where one exists.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Protocol

from batchctl.providers import ProviderSpec, format_size
from batchctl.validation.ids import SeenIds, first_lines
from batchctl.validation.inputs import check_input_file
from batchctl.validation.jsonl import LongLine, decode_json, iter_raw_lines
from batchctl.validation.provider_rules import endpoint_hint, rules_for
from batchctl.validation.report import (
    BINARY_FILE,
    BLANK_LINES,
    CRLF_LINE_ENDINGS,
    DUPLICATE_CUSTOM_ID,
    EMPTY_FILE,
    INVALID_JSON_LINE,
    INVALID_UTF8,
    INVALID_VALUE,
    LINE_TOO_LARGE,
    MISMATCHED_ENDPOINT,
    MISMATCHED_MODEL,
    MISSING_REQUIRED_PARAMETER,
    Problem,
    UTF8_BOM,
    ValidationReport,
    _size_with_bytes,
    check_limits,
    describe_type as _describe,
)

if TYPE_CHECKING:
    from batchctl.validation.fastlane import ChatLine
    from batchctl.validation.second_core import SecondCore

CHAT_ENDPOINTS = frozenset({"/v1/chat/completions", "/v1/chat/ds-test", "/v4/chat/completions"})
# The body field that carries the input of each non-chat endpoint.
INPUT_FIELD = {"/v1/embeddings": "input", "/v1/completions": "prompt", "/v1/responses": "input", "/v4/embeddings": "input"}

# Rough token estimate: about 4 bytes of UTF-8 text per token. That is close for English, and for
# CJK text (3 bytes a character) gives ~0.75 tokens a character, near what Qwen/GPT tokenizers do.
_BYTES_PER_TOKEN = 4
_SHOWN_BLANK_LINES = 5
LineHook = Callable[[dict, dict], None] | None  # (the parsed line, its body)


class RequestTally(Protocol):
    """What `validate_file(tally=...)` is given each request: `cost.estimate.EstimateTally`."""

    def add(self, obj: dict, body: dict) -> None: ...

    def add_texts(
        self, model: str | None, url: str | None, texts: list, size: int, items: int, limits: tuple[object, ...], n: object
    ) -> None: ...

    # The second core (validation/second_core.py) counts the texts; what it counted comes back at the end.
    def count_elsewhere(self, counter: SecondCore | None) -> None: ...

    def add_counted(self, counted: dict[str | None, tuple[int, int]], methods: set[str]) -> None: ...

    def reset(self) -> None: ...


# With no per-line limit in the provider's table, a line is still read in bounded chunks above this.
READ_LINE_LIMIT = 64 * 1024 * 1024


def utf8_size(texts: Iterable[str]) -> int:
    """UTF-8 bytes of `texts` (lone surrogates as they are): the size both token estimates go by, the
    report's `est_input_tokens` and the cost estimate's scaling of the requests it does not count."""
    return sum(len(t) if t.isascii() else len(t.encode("utf-8", "surrogatepass")) for t in texts)


def _text_bytes(value: object) -> int:
    """UTF-8 bytes of the text in a message content / input / prompt, for the token estimate."""
    if isinstance(value, str):
        return utf8_size((value,))
    if isinstance(value, list):
        return sum(_text_bytes(v) for v in value)
    if isinstance(value, dict):  # content parts {"type": "text", "text": ...}, responses input items
        return _text_bytes(value.get("text")) + _text_bytes(value.get("content"))
    if isinstance(value, int) and not isinstance(value, bool):  # a token id (embeddings, completions)
        return _BYTES_PER_TOKEN
    return 0


class _FileValidator:
    """State of one pass over a file; `check(lineno, obj)` judges one parsed line."""

    def __init__(
        self, spec: ProviderSpec, endpoint: str | None, max_problems: int, per_request: LineHook, tally: RequestTally | None
    ) -> None:
        self.spec = spec
        self.endpoints = frozenset(spec.endpoints)
        self.chat_endpoints = self.endpoints & CHAT_ENDPOINTS  # what the fast lane takes
        self.max_problems = max_problems
        self.problems: list[Problem] = []
        self.problem_count = 0
        self.endpoint = endpoint  # the batch's endpoint, once known
        self.endpoint_line: int | None = None  # the line it came from (None: given by the caller)
        self.model: str | None = None
        self.model_line = 0
        self.seen = SeenIds().seen
        self.duplicates: list[tuple[Problem, str]] = []  # kept duplicate problems, named at the end
        self.text_bytes = 0
        self.rules = rules_for(spec)  # provider-specific line rules (validation/provider_rules.py), or None
        if tally is not None and per_request is not None:
            raise ValueError("validate_file takes a per_request hook or a tally, not both")
        self.per_request = tally.add if tally is not None else per_request  # given each (line, body) parsed here
        self.tally = tally
        self.decode_string: Callable[[bytes], str] = str  # the fast lane's JSON string decoder, and the
        self.not_common: tuple[type[BaseException], ...] = ()  # errors it raises: set by validate_file
        # The fast lane (validation/fastlane.py) when nothing needs a line as dicts: no hook but the tally,
        # no parameter to look for among a body's keys.
        self.fast_lane = (per_request is None) and (self.rules is None or not self.rules.refused)
        self.utf8_elsewhere = False  # the fast lane leaves the UTF-8 check to the second core (validate_file)
        self.utf8_skipped = False  # and a line did

    def add(self, line: int | None, code: str, message: str, param: str | None = None) -> None:
        self.problem_count += 1
        if len(self.problems) < self.max_problems:
            if line is not None:
                message = f"line {line}: {message}"
            self.problems.append(Problem(line, code, message, param))

    def _add_duplicate(self, n: int, cid: str) -> None:
        kept = len(self.problems)
        self.add(n, DUPLICATE_CUSTOM_ID, "", "custom_id")  # the message says the first line: `name_duplicates`
        if len(self.problems) > kept:
            self.duplicates.append((self.problems[-1], cid))

    def name_duplicates(self, path: str | os.PathLike[str]) -> None:
        """Say on which line each kept duplicate's id was first used (the file read again, up to the
        last of them); an id that only shared a hash with an earlier one is no problem after all."""
        if not self.duplicates:
            return
        firsts = first_lines(path, {cid for _, cid in self.duplicates})
        for problem, cid in self.duplicates:
            first = firsts.get(cid, problem.line)
            if first == problem.line:
                self.problems.remove(problem)
                self.problem_count -= 1
            else:
                problem.message = f"line {problem.line}: custom_id {json.dumps(cid)} already used on line {first}"

    def check(self, n: int, obj: object) -> None:
        if type(obj) is not dict:
            self.add(n, INVALID_VALUE, f"expected a JSON object, got {_describe(obj)}")
            return
        add = self.add

        cid = obj.get("custom_id")
        if type(cid) is str and cid:  # the common case first: a file of many lines spends its time here
            if self.seen(cid):
                self._add_duplicate(n, cid)
        elif cid is None:
            add(n, MISSING_REQUIRED_PARAMETER, "custom_id is missing", "custom_id")
        elif type(cid) is not str:
            add(n, INVALID_VALUE, f"custom_id must be a string, not {_describe(cid)}", "custom_id")
        else:
            add(n, INVALID_VALUE, "custom_id is empty", "custom_id")

        method = obj.get("method")
        if method != "POST":
            if method is None:
                add(n, MISSING_REQUIRED_PARAMETER, 'method is missing (it must be "POST")', "method")
            else:
                add(n, INVALID_VALUE, f'method must be "POST", not {json.dumps(method)}', "method")

        url = obj.get("url")
        if url == self.endpoint and url in self.endpoints:  # the batch's endpoint, known good
            pass
        elif url is None:
            add(n, MISSING_REQUIRED_PARAMETER, "url is missing", "url")
            url = None
        elif type(url) is not str or url not in self.endpoints:
            add(
                n,
                INVALID_VALUE,
                f"url {json.dumps(url)} is not an endpoint {self.spec.name} supports "
                f"({', '.join(self.spec.endpoints)}){endpoint_hint(self.spec, url)}",
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
        if self.rules is not None:
            self.rules.check_line(n, url, body)
        if self.per_request is not None:
            self.per_request(obj, body)

        model = body.get("model")
        if model == self.model and model is not None:  # the batch's model, known good
            pass
        elif model is None:
            add(n, MISSING_REQUIRED_PARAMETER, "body.model is missing", "body.model")
        elif type(model) is not str:
            add(n, INVALID_VALUE, f"body.model must be a string, not {_describe(model)}", "body.model")
        elif not model.strip():
            add(n, INVALID_VALUE, "body.model is empty", "body.model")
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

    def check_common(self, n: int, raw: bytes, line: ChatLine) -> bool:
        """Judge a line the fast lane decoded from `raw`, as `check` would; False (nothing done) when
        it is not a request `check` finds without problems, besides a duplicate id: `check` then
        judges it. Kept lean: on a big file every line but the odd one comes through here."""
        url, body = line.url, line.body
        model, messages = body.model, body.messages
        if url != self.endpoint:  # not the batch's endpoint, or none known yet
            if self.endpoint is not None or url not in CHAT_ENDPOINTS or url not in self.endpoints:
                return False
        elif url not in self.chat_endpoints:  # the batch's, but not a chat endpoint this provider serves
            return False
        if model != self.model and (self.model is not None or not model.strip()):
            return False
        if not line.custom_id or line.method != "POST" or not messages:
            return False
        if not raw.isascii():
            if self.utf8_elsewhere:  # the second core checks the whole file
                self.utf8_skipped = True
            else:
                try:
                    raw.decode()  # msgspec left the texts unchecked; the general road says where UTF-8 breaks
                except UnicodeDecodeError:
                    return False
        texts = []  # JSON literals, as msgspec.Raw
        for message in messages:
            text = message.content
            if memoryview(text)[0] != 34:  # not a string (content parts, null): the general road
                return False
            texts.append(text)
        if 92 in raw:  # a backslash somewhere: a text with escapes is longer in the line than in UTF-8
            size = self._escaped_size(texts)
            if size is None:
                return False
        else:
            size = sum(map(len, texts)) - 2 * len(texts)  # the quotes aside, the literal is the text's UTF-8
        if self.endpoint is None:
            self.endpoint, self.endpoint_line = url, n
        if self.model is None:
            self.model, self.model_line = model, n
        if self.seen(line.custom_id):
            self._add_duplicate(n, line.custom_id)
        self.text_bytes += size
        if self.tally is not None:
            limits = (body.max_completion_tokens, body.max_tokens, body.max_output_tokens)  # UNSET: absent
            self.tally.add_texts(model, url, texts, size, len(texts), limits, body.n)
        return True

    def _escaped_size(self, literals: list) -> int | None:
        """UTF-8 bytes of the texts of JSON string `literals`, escapes decoded; None if msgspec refuses
        one (the general road then judges)."""
        try:
            return utf8_size([self.decode_string(literal) for literal in literals])
        except self.not_common:
            return None

    def _check_messages(self, n: int, messages: object) -> None:
        if messages is None:
            self.add(n, MISSING_REQUIRED_PARAMETER, "body.messages is missing", "body.messages")
            return
        if type(messages) is not list or not messages:
            what = "empty" if type(messages) is list else _describe(messages)
            self.add(n, INVALID_VALUE, f"body.messages must be a non-empty array, not {what}", "body.messages")
            return
        text = 0
        for m in messages:  # the common shape, quickly: objects with a role and text content
            if type(m) is dict and "role" in m and type(content := m.get("content")) is str:
                text += len(content) if content.isascii() else len(content.encode("utf-8", "surrogatepass"))
            else:
                break
        else:
            self.text_bytes += text
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
            text += _text_bytes(content)
        self.text_bytes += text


def _bad_utf8_message(raw: bytes, err: UnicodeDecodeError, first_line: bool) -> str:
    msg = f"not valid UTF-8 (byte 0x{raw[err.start]:02x} at byte {err.start + 1} of the line)"
    if first_line and raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
        msg += "; the file looks like UTF-16: save it as UTF-8"
    else:
        msg += "; save the file as UTF-8"
    return msg


_BLANK = "blank"


def _not_unicode(obj: object) -> tuple[str, str] | None:
    """(message, param) when the line's custom_id or body.model holds a lone surrogate: no result line, and
    no report, can carry it. None otherwise (the line is then judged as usual)."""
    if type(obj) is not dict:
        return None
    body = obj.get("body")
    model = body.get("model") if type(body) is dict else None
    for param, value in (("custom_id", obj.get("custom_id")), ("body.model", model)):
        if type(value) is str:
            try:
                value.encode()
            except UnicodeEncodeError:
                return (f"{param} {json.dumps(value)} holds a lone surrogate (a \\ud800-\\udfff escape without its"
                        " pair), which is not valid Unicode text: no result line can carry it", param)  # fmt: skip
    return None


def _parse_slowly(raw: bytes, n: int) -> tuple[object, str | None, str]:
    """(object, None, "") of a line the fast parser refused but the stdlib reads (NaN aside: refused),
    else (None, problem code or _BLANK, message): the stdlib's verdict, in words."""
    try:
        text = raw.decode()
    except UnicodeDecodeError as err:
        return None, INVALID_UTF8, _bad_utf8_message(raw, err, n == 1)
    try:
        return decode_json(text), None, ""
    except RecursionError:
        return None, INVALID_JSON_LINE, "not valid JSON: nested too deeply (arrays or objects inside each other)"
    except ValueError as err:
        if text.isspace() or not text:
            return None, _BLANK, ""
        if isinstance(err, json.JSONDecodeError):
            msg = f"not valid JSON: {err.msg} (column {err.colno})"
        else:
            msg = f"not valid JSON: {err}"
        if b"\r" in raw.rstrip(b"\r\n"):
            msg = "lines end with a carriage return (CR) only, as in old Mac files; save the file with LF line endings"
        elif not raw.endswith(b"\n"):
            msg += "; the last line has no newline, so the file may be truncated"
        return None, INVALID_JSON_LINE, msg


def validate_file(
    path: str | os.PathLike[str],
    *,
    spec: ProviderSpec,
    endpoint: str | None = None,
    max_problems: int = 1000,
    per_request: LineHook = None,
    tally: RequestTally | None = None,
    submit_splits: bool = False,
    second_core: bool | None = None,
) -> ValidationReport:
    """Check a Batch input file line by line against `spec`; never raises on bad content.

    `endpoint` is the batch's endpoint when it is already chosen (every line's url must equal it);
    otherwise the first line's url sets it. What is not a readable regular file (missing, a directory,
    a FIFO, a device, a symlink loop) raises BatchctlError before anything is read. `per_request(line,
    body)` is called for each request whose body is an object; `tally` (the cost estimate's
    `EstimateTally`, counted in this pass) is given each request too, and lets common lines take the
    fast lane, which `per_request` turns off. `submit_splits`: a file over one batch's limits is told
    that `batchctl submit` makes it a job (`check_limits`), for people at `batchctl validate`.
    `second_core`: whether a forked child checks the UTF-8 and counts the estimate's sample beside
    the pass (`validation/second_core.py`); None decides by the file's size and the machine.
    """
    size = check_input_file(path).st_size
    args = (path, spec, endpoint, max_problems, per_request, tally, submit_splits, size)
    if second_core is None and tally is not None:
        from batchctl.forked import pays

        second_core = pays(size)
    if tally is None or not second_core:
        return _validate(*args)[0]
    from batchctl.validation.second_core import SecondCore

    try:
        helper = SecondCore(path)
    except OSError:  # no fork or no pipe to be had (a process limit, EMFILE): the pass alone
        return _validate(*args)[0]
    with helper:
        tally.count_elsewhere(helper)
        try:
            report, skipped_utf8 = _validate(*args, utf8_elsewhere=True)
        except Exception:
            # Broken UTF-8 taken by the fast lane shifts the sample: this pass counts lines the usual one
            # does not, and a count may fail on one (an exact tokenizer on a lone surrogate). The usual
            # pass decides: it fails the same way, or gives the report the pass alone gives.
            report = None
        finally:
            tally.count_elsewhere(None)
        found = helper.finish(need_utf8=skipped_utf8) if report is not None else None
    if report is not None and found is not None and found.utf8_valid is not False:
        tally.add_counted(found.tokens, found.methods)
        return report
    tally.reset()  # not valid UTF-8 (or the child failed): the usual pass, which names the lines
    return _validate(*args)[0]


def _validate(
    path: str | os.PathLike[str],
    spec: ProviderSpec,
    endpoint: str | None,
    max_problems: int,
    per_request: LineHook,
    tally: RequestTally | None,
    submit_splits: bool,
    size: int,
    *,
    utf8_elsewhere: bool = False,
) -> tuple[ValidationReport, bool]:
    """`validate_file`'s pass: (the report, whether a line left its UTF-8 check to the second core, which
    the fast lane does with `utf8_elsewhere`)."""
    from batchctl.jsonfast import FAST_ERRORS, parse  # msgspec: imported when a file is read, not at startup
    from batchctl.validation.fastlane import NOT_COMMON, decode_chat_line, decode_string

    v = _FileValidator(spec, endpoint, max_problems, per_request, tally)
    v.utf8_elsewhere = utf8_elsewhere
    v.decode_string, v.not_common = decode_string, NOT_COMMON
    fast_lane = v.fast_lane
    check_common = v.check_common
    if endpoint is not None and endpoint not in v.endpoints:
        v.add(
            None,
            INVALID_VALUE,
            f'the batch endpoint "{endpoint}" is not one {spec.name} supports ({", ".join(spec.endpoints)})'
            + endpoint_hint(spec, endpoint),
            "endpoint",
        )
    warnings: list[Problem] = []
    max_line = spec.max_line_bytes
    check = v.check
    lines = requests = 0
    blanks: list[int] = []  # the first few blank line numbers, for the warning
    blank_count = 0
    crlf_line = 0

    with open(path, "rb") as f:
        head = f.read(8192)
    nul = head.find(b"\x00")  # no UTF-8 text holds one: a compressed or binary file (UTF-16: told per line)
    if nul >= 0 and head[:2] not in (b"\xff\xfe", b"\xfe\xff"):
        v.add(None, BINARY_FILE, f"the file is not UTF-8 JSONL text (a NUL byte at byte {nul + 1:,}): compressed, or UTF-16? "
                                 "unpack it, or save it as UTF-8")  # fmt: skip
        report = ValidationReport(path=os.fspath(path), size_bytes=size, lines=0, requests=0, blank_lines=0, endpoint=None,
                                  model=None, est_input_tokens=0, problems=v.problems, problem_count=v.problem_count)  # fmt: skip
        return report, False
    for lines, offset, raw in iter_raw_lines(path, max_line=max_line or READ_LINE_LIMIT):
        if lines == 1 and offset:  # line 1 starts after a BOM, which iter_raw_lines stripped
            warnings.append(
                Problem(1, UTF8_BOM, "line 1: the file starts with a UTF-8 byte order mark (BOM); it is ignored")
            )
        if isinstance(raw, LongLine):  # over the limit: only its head was kept
            requests += 1
            limit = f"{spec.name}'s limit of {format_size(max_line)}" if max_line else (
                f"the longest line batchctl reads ({format_size(READ_LINE_LIMIT)})"
            )  # fmt: skip
            v.add(lines, LINE_TOO_LARGE, f"the line is {_size_with_bytes(raw.text_length)}, over {limit} per line")
            continue
        if max_line is not None and len(raw) > max_line:
            length = len(raw.rstrip(b"\r\n"))
            if length > max_line:
                v.add(
                    lines,
                    LINE_TOO_LARGE,
                    f"the line is {_size_with_bytes(length)}, over {spec.name}'s limit of "
                    f"{format_size(max_line)} per line",
                )
        if fast_lane:
            try:
                common = decode_chat_line(raw)
            except NOT_COMMON:  # another shape, or not valid: judged below
                pass
            else:
                if check_common(lines, raw, common):
                    requests += 1
                    if not crlf_line and raw.endswith(b"\r\n"):
                        crlf_line = lines
                    continue
        try:
            obj = parse(raw)  # the fast parser; what it refuses is looked at again below
        except FAST_ERRORS:
            obj, code, message = _parse_slowly(raw, lines)
            if code is _BLANK:
                blank_count += 1
                if blank_count <= _SHOWN_BLANK_LINES:
                    blanks.append(lines)
                continue
            if code is not None:
                requests += 1
                v.add(lines, code, message)
                continue
            # Only the stdlib reads a lone surrogate (a \ud800 escape without its pair): looked for here, off the
            # fast road, in the strings that go where UTF-8 must carry them (result lines, the report).
            problem = _not_unicode(obj)
            if problem is not None:
                requests += 1
                v.add(lines, INVALID_VALUE, *problem)
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
    v.name_duplicates(path)
    extra, extra_warnings = v.rules.finish(v.endpoint, requests) if v.rules is not None else ((), ())
    over_limits = check_limits(requests, size, spec, submit_splits=submit_splits)
    over_one_batch = bool(over_limits) and not extra and v.problem_count == 0
    for problem in [*over_limits, *extra]:
        v.add(problem.line, problem.code, problem.message, problem.param)
    warnings.extend(extra_warnings)

    report = ValidationReport(
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
        over_one_batch=over_one_batch,
    )
    return report, v.utf8_skipped


