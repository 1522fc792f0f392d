"""Validation of Batch input files (JSONL): streaming checks, the report they give, the line readers.

`checks` reads a file once and finds every problem; `report` holds what it found and the provider's
limit check; `jsonl` is the one loop over JSONL lines, shared with submission, results and the server.
"""

from batchctl.validation.checks import CHAT_ENDPOINTS, INPUT_FIELD, validate_file
from batchctl.validation.inputs import check_input_file, check_model_name
from batchctl.validation.jsonl import BOM, READ_BUFFER, decode_json, iter_raw_lines, iter_request_lines
from batchctl.validation.report import (
    BLANK_LINES,
    CRLF_LINE_ENDINGS,
    DUPLICATE_CUSTOM_ID,
    BINARY_FILE,
    EMPTY_FILE,
    FILE_TOO_LARGE,
    INVALID_JSON_LINE,
    INVALID_UTF8,
    INVALID_VALUE,
    LINE_TOO_LARGE,
    MISMATCHED_ENDPOINT,
    MISMATCHED_MODEL,
    MISSING_REQUIRED_PARAMETER,
    TOO_MANY_REQUESTS,
    UTF8_BOM,
    SHOWN_PROBLEMS,
    Problem,
    ValidationReport,
    check_limits,
    format_tokens,
    invalid_error_message,
    problem_lines,
    summary_line,
)

__all__ = [
    "BLANK_LINES",
    "BOM",
    "CHAT_ENDPOINTS",
    "CRLF_LINE_ENDINGS",
    "DUPLICATE_CUSTOM_ID",
    "BINARY_FILE",
    "EMPTY_FILE",
    "FILE_TOO_LARGE",
    "INPUT_FIELD",
    "INVALID_JSON_LINE",
    "INVALID_UTF8",
    "INVALID_VALUE",
    "LINE_TOO_LARGE",
    "MISMATCHED_ENDPOINT",
    "MISMATCHED_MODEL",
    "MISSING_REQUIRED_PARAMETER",
    "READ_BUFFER",
    "SHOWN_PROBLEMS",
    "TOO_MANY_REQUESTS",
    "UTF8_BOM",
    "check_input_file",
    "check_model_name",
    "Problem",
    "ValidationReport",
    "check_limits",
    "decode_json",
    "format_tokens",
    "invalid_error_message",
    "iter_raw_lines",
    "iter_request_lines",
    "problem_lines",
    "summary_line",
    "validate_file",
]
