"""Judging a 2xx answer before it becomes a model: is it the object asked for, and is it free of secrets?

A proxy's HTML page, `{}` or a JSON answer without the fields that make a batch a batch would
otherwise parse into an empty page or a model of empty strings. And whatever a server echoes back --
the key in a status, an error message quoting the Authorization header -- is masked here, once, so
every command prints and saves the same masked text.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from batchctl.api.errors import APIResponseValidationError, _readable_text


class UnexpectedAnswerError(APIResponseValidationError):
    """A 2xx answer that is not the object asked for: "the server answered 200 but not with a batch"."""


# What each model is called in words, and the fields without which an answer is not one.
_SHAPES: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    # model name: (what it is, non-empty string fields, list fields)
    "Batch": ("a batch", ("id", "status"), ()),
    "FileObject": ("a file", ("id",), ()),
    "FileDeleted": ("a file deletion", ("id",), ()),
    "BatchPage": ("a list of batches", (), ("data",)),
    "FilePage": ("a list of files", (), ("data",)),
    "FileContent": ("the file's content", (), ()),
}


def what_is(model_name: str) -> str:
    """`a batch`, `a list of files`, ...: the object a model stands for, in words."""
    return _SHAPES.get(model_name, (f"a {model_name}",))[0]


def shape_problem(payload: Any, model_name: str) -> str | None:
    """Why `payload` is not the object `model_name` stands for (`id` missing, ...), or None."""
    if model_name not in _SHAPES:
        return None
    _, strings, lists = _SHAPES[model_name]
    if not isinstance(payload, dict):
        return f"got {type(payload).__name__ if payload is not None else 'null'} instead of an object"
    for name in strings:
        value = payload.get(name)
        if not isinstance(value, str) or not value.strip():
            return f"`{name}` is {'missing' if name not in payload else 'empty or not a string'}"
    for name in lists:
        if not isinstance(payload.get(name), list):
            return f"`{name}` is {'missing' if name not in payload else 'not a list'}"
    return None


def not_json(text: str) -> str:
    """What a 2xx body that is not JSON holds, in words (`text` is already redacted)."""
    if not text.strip():
        return "an empty body"
    if re.search(r"<(!doctype|html|head|body)\b", text[:2000], re.IGNORECASE):
        return f"an HTML page ({_readable_text(text)})"
    return "Expected JSON, got: " + " ".join(text.split())[:200]


def unexpected(status: int, model_name: str, detail: str, **fields: Any) -> UnexpectedAnswerError:
    return UnexpectedAnswerError(
        f"the server answered {status} but not with {what_is(model_name)}: {detail}", status=status, **fields
    )


def redact_payload(payload: Any, redact: Callable[[str], str]) -> Any:
    """`payload` with every string (keys of objects too) passed through `redact`."""
    if isinstance(payload, str):
        return redact(payload)
    if isinstance(payload, list):
        return [redact_payload(v, redact) for v in payload]
    if isinstance(payload, dict):
        return {redact(k) if isinstance(k, str) else k: redact_payload(v, redact) for k, v in payload.items()}
    return payload
