"""What validation found: problems with codes, the report of a file, and the provider's limits checked.

`check_limits` is the one place where a provider's request and size limits are checked.
"""

from __future__ import annotations

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
BINARY_FILE = "binary_file"
# Warning codes: accepted, but worth knowing.
BLANK_LINES = "blank_lines"
UTF8_BOM = "utf8_bom"
CRLF_LINE_ENDINGS = "crlf_line_endings"


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
    # The only problems are the file's request count or size over one batch's limits (`check_limits`):
    # every line is valid, and `submit` makes the file a job of several batches.
    over_one_batch: bool = False

    @property
    def no_requests(self) -> bool:
        """No requests at all (an empty file, only blank lines, a binary file): nothing to fix line by line."""
        return any(p.code in (EMPTY_FILE, BINARY_FILE) for p in self.problems)

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


# What to do about a file without requests (instead of "fix the lines listed above").
EMPTY_FILE_HINT = (
    "A batch input holds one JSON request per line (examples/chat.jsonl shows the shape; "
    "batchctl prepare makes one from a table)."
)


def check_limits(requests: int, size_bytes: int, spec: ProviderSpec, *, submit_splits: bool = False) -> list[Problem]:
    """Problems for a file of `requests` requests and `size_bytes` bytes over `spec`'s limits.

    Each message says by how much the file is over and how many files to split it into, counting
    both limits (a file can be under one and over the other), and with `submit_splits` (for people
    at `batchctl validate`; not in a server's answer, nor after `submit --no-split`) that `batchctl
    submit` makes it a job of that many batches.
    """
    problems: list[Problem] = []
    over_requests = requests > spec.max_requests
    over_size = size_bytes > spec.max_file_bytes
    if not (over_requests or over_size):
        return problems
    parts = spec.parts_needed(requests, size_bytes)
    about = "at least " if over_size else ""
    advice = (
        f"split it into {about}{parts} files of at most {spec.max_requests:,} requests and "
        f"{format_size(spec.max_file_bytes)} each"
    )
    if submit_splits:
        advice = f"batchctl submit makes it a job of {about}{parts} batches, or {advice}"
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


SHOWN_PROBLEMS = 20  # problems listed on a screen; the total is always counted


def problem_lines(report: ValidationReport, limit: int = SHOWN_PROBLEMS) -> list[str]:
    """`line N: what is wrong` for the first `limit` problems, then `… and N more` when there are."""
    lines = [problem.message for problem in report.problems[:limit]]
    hidden = report.problem_count - min(limit, len(report.problems))
    if hidden > 0:
        lines.append(f"… and {hidden:,} more")
    return lines


def format_tokens(n: int) -> str:
    return f"~{n:,}"


def summary_line(report: ValidationReport, display: str | None = None) -> str:
    """One line for people: `chat.jsonl: 100 requests to /v1/chat/completions, model x, 21 KB`.

    No token count: `submit` prints the cost estimate's (`Estimate: ...`) on the next line, and two
    different counts of the same file (this report's bytes / 4 and the estimate's) only confuse.
    """
    return (
        f"{display or report.path}: {report.requests:,} request{'s' if report.requests != 1 else ''}"
        f" to {report.endpoint or '?'}, model {report.model or '?'}, {format_size(report.size_bytes)}"
    )


def invalid_error_message(report: ValidationReport, display: str | None = None) -> str:
    count = report.problem_count
    return f"{display or report.path} is not a valid batch input: {count:,} problem{'s' if count != 1 else ''}"


def describe_type(value: object) -> str:
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
