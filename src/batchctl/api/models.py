"""Models of what Batch APIs send: batches, files, list pages.

Every model keeps the fields it does not declare (providers add their own: `model_extra`, and in
`model_dump`) and every field a provider might leave out has a default, so an unfamiliar but sane
response parses instead of crashing the CLI. A null where a value with a default is declared means the
default (`request_counts: null` is no counts, `has_more: null` is False).

Plain classes, not pydantic: the handful of conversions these objects need (lax numbers, timestamps as
numbers or ISO 8601, numeric error codes) are written out here, and every command that talks to a server
starts ~60 ms sooner without pydantic's import and schema building (docs/performance.md). The methods
keep pydantic's names (`model_validate`, `model_dump`, `model_copy`, `model_extra`).
"""

from __future__ import annotations

import json
import math
import re
from datetime import datetime, timezone
from typing import Any, ClassVar, Self

__all__ = [
    "TERMINAL_STATUSES",
    "BATCH_STATUSES",
    "Batch",
    "BatchErrorItem",
    "BatchErrors",
    "BatchPage",
    "BatchUsage",
    "FileDeleted",
    "FileObject",
    "FilePage",
    "Model",
    "ModelError",
    "RequestCounts",
]

# The statuses OpenAI and DashScope document; `Batch.status` is a plain str so others still parse.
BATCH_STATUSES = (
    "validating",
    "failed",
    "in_progress",
    "finalizing",
    "completed",
    "expired",
    "cancelling",
    "cancelled",
)
TERMINAL_STATUSES = frozenset({"completed", "failed", "expired", "cancelled"})


class ModelError(ValueError):
    """A value that does not fit its field: `loc` is the path to it (("data", 0, "status")), `msg` why."""

    def __init__(self, loc: tuple[str | int, ...], msg: str) -> None:
        super().__init__(f"{'.'.join(map(str, loc)) or 'body'}: {msg}")
        self.loc, self.msg = loc, msg


class _Wrong(Exception):
    """Raised by a converter: the value's message; the model adds where it was."""


# -- conversions: a value as sent -> the value kept (lax, as pydantic's lax mode converts) ---------------


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    raise _Wrong("Input should be a valid string")


def _code(value: Any) -> str:
    # Error codes arrive as strings from OpenAI but as numbers from some gateways.
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return _text(value)


_WHOLE = re.compile(r"[+-]?[0-9]+(?:\.0*)?")  # "20", "-3", "20.0": whole numbers as text


def _integer(value: Any) -> int:
    if isinstance(value, int):
        return int(value)  # a bool is 1 or 0, as in pydantic's lax mode
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _WHOLE.fullmatch(text := value.strip()):
        return int(text.partition(".")[0])
    raise _Wrong("Input should be a valid integer")


def _number(value: Any) -> float:
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            pass
    raise _Wrong("Input should be a valid number")


_TRUE, _FALSE = {"1", "true", "t", "yes", "y", "on"}, {"0", "false", "f", "no", "n", "off"}


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise _Wrong("Input should be a valid boolean")


def _mapping(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    raise _Wrong("Input should be a valid dictionary")


def _timestamp(value: Any) -> int | None:
    """Unix seconds as sent by OpenAI/DashScope; also floats, digit strings and ISO 8601."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return int(value)
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            return int(float(text))
        except (ValueError, OverflowError):
            pass
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=timezone.utc)
            return int(moment.timestamp())
    raise _Wrong("Input should be a valid integer")


def _percent(value: Any) -> float | None:
    # A progress that is not a number is no reason to refuse the batch: it is simply not shown.
    if value is None or isinstance(value, bool):
        return None
    try:
        percent = float(value)
    except (TypeError, ValueError):
        return None
    return min(max(percent, 0.0), 100.0) if percent == percent else None


def _anything(value: Any) -> Any:
    return value


# What a field's annotation names -> its conversion. Model classes are looked up by name on first use.
_CONVERSIONS: dict[str, Any] = {
    "str": _text,
    "Code": _code,
    "int": _integer,
    "float": _number,
    "bool": _flag,
    "Timestamp": _timestamp,
    "Percent": _percent,
    "dict[str, Any]": _mapping,
    "Any": _anything,
}
# Annotations that only name a conversion (kept as the type a reader sees).
Code = str
Timestamp = int
Percent = float


def _nested(model: type[Model]) -> Any:
    def convert(value: Any) -> Model:
        if isinstance(value, model):
            return value
        if isinstance(value, dict):
            return model.model_validate(value)
        raise _Wrong(f"Input should be a valid dictionary or instance of {model.__name__}")

    return convert


def _converted(key: str | int, convert: Any, value: Any) -> Any:
    """`convert(value)`, a refusal said as a ModelError at `key` (a field's name, a list's index)."""
    try:
        return convert(value)
    except _Wrong as exc:
        raise ModelError((key,), str(exc)) from None
    except ModelError as exc:
        raise ModelError((key, *exc.loc), exc.msg) from None


def _list_of(convert: Any) -> Any:
    def convert_list(value: Any) -> list[Any]:
        if not isinstance(value, (list, tuple)):
            raise _Wrong("Input should be a valid list")
        return [_converted(i, convert, item) for i, item in enumerate(value)]

    return convert_list


def _conversion(annotation: str) -> tuple[Any, bool]:
    """(conversion, whether null is allowed) for a field's annotation as written."""
    annotation = annotation.replace(" ", "")
    nullable = annotation.endswith("|None")
    name = annotation.removesuffix("|None").replace(",", ", ")
    if name.startswith("list[") and name.endswith("]"):
        return _list_of(_conversion(name[5:-1])[0]), nullable
    if name in _CONVERSIONS:
        return _CONVERSIONS[name], nullable
    return _nested(_MODELS[name]), nullable


_MODELS: dict[str, type[Model]] = {}
_REQUIRED = object()


class Model:
    """A provider's object: the declared fields converted, whatever else it sent kept as extras.

    Fields are declared as class annotations with their defaults (a name without a default is
    required); a mutable default (a list, a model) is copied for each object. A null sent for a field
    that is not `| None` gives its default.
    """

    # (name, conversion, null allowed, default or _REQUIRED), built on first use from the annotations.
    _fields: ClassVar[tuple[tuple[str, Any, bool, Any], ...] | None] = None
    _names: ClassVar[frozenset[str]] = frozenset()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _MODELS[cls.__name__] = cls  # its fields are read on first use (`_declared`), each class its own

    @classmethod
    def _declared(cls) -> tuple[tuple[str, Any, bool, Any], ...]:
        if cls.__dict__.get("_fields") is None:
            fields: dict[str, tuple[str, Any, bool, Any]] = {}
            for klass in reversed(cls.__mro__):  # a parent's fields first, as they print
                for name, annotation in vars(klass).get("__annotations__", {}).items():
                    if annotation.startswith("ClassVar"):
                        continue
                    convert, nullable = _conversion(annotation)
                    fields[name] = (name, convert, nullable, getattr(cls, name, _REQUIRED))
            cls._fields, cls._names = tuple(fields.values()), frozenset(fields)
        return cls._fields  # type: ignore[return-value]

    def __init__(self, /, **data: Any) -> None:  # `/`: a provider's field may be called "self"
        values = self.__dict__
        for name, convert, nullable, default in self._declared():
            value = data.get(name, _REQUIRED)
            if value is _REQUIRED or (value is None and not nullable):
                if default is _REQUIRED:
                    raise ModelError((name,), "Field required" if value is _REQUIRED else "Input should not be null")
                values[name] = _fresh(default)
                continue
            values[name] = value if value is None else _converted(name, convert, value)
        names = self._names
        values["model_extra"] = {k: v for k, v in data.items() if k not in names}

    @classmethod
    def model_validate(cls, obj: Any) -> Self:
        """`obj` (a dict as decoded from JSON, or an object of this model) as this model; ModelError if
        it does not fit."""
        if isinstance(obj, cls):
            return obj
        if not isinstance(obj, dict):
            raise ModelError((), f"Input should be a valid dictionary or instance of {cls.__name__}")
        return cls(**{str(k): v for k, v in obj.items()})

    @classmethod
    def model_validate_json(cls, text: str | bytes) -> Self:
        return cls.model_validate(json.loads(text))

    def model_dump(self, *, mode: str = "python") -> dict[str, Any]:
        """A plain dict of its own (nothing shared with the object): the declared fields in order, models
        as dicts, then the extras. `mode="json"`: a number JSON cannot hold (NaN, Infinity, which Python's
        json reads) is None, so the dict always dumps to valid JSON."""
        out = {name: _plain(self.__dict__[name], mode) for name, *_ in self._declared()}
        out.update((name, _plain(value, mode)) for name, value in self.model_extra.items())
        return out

    def model_dump_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), ensure_ascii=False)

    def model_copy(self, *, update: dict[str, Any] | None = None) -> Self:
        """A shallow copy with `update`'s values set as they are (not converted)."""
        copy = object.__new__(type(self))
        copy.__dict__.update(self.__dict__, model_extra=dict(self.model_extra))
        for name, value in (update or {}).items():
            if name in self._names:
                copy.__dict__[name] = value
            else:
                copy.model_extra[name] = value
        return copy

    def __getattr__(self, name: str) -> Any:
        # Only reached for a name that is no declared field: a provider's own field, if it sent one.
        extra = self.__dict__.get("model_extra")
        if extra is not None and name in extra:
            return extra[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self.__dict__ == other.__dict__  # type: ignore[union-attr]

    __hash__ = None  # type: ignore[assignment]  # mutable, compared by value

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={self.__dict__[name]!r}" for name, *_ in self._declared())
        extra = "".join(f", {k}={v!r}" for k, v in self.model_extra.items())
        return f"{type(self).__name__}({shown}{extra})"


def _plain(value: Any, mode: str) -> Any:
    """`value` for `model_dump`: models as dicts, containers copied, non-finite floats None in json mode."""
    if isinstance(value, Model):
        return value.model_dump(mode=mode)
    if isinstance(value, dict):
        return {k: _plain(v, mode) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v, mode) for v in value]
    if isinstance(value, float) and mode == "json" and not math.isfinite(value):
        return None
    return value


def _fresh(default: Any) -> Any:
    """A default as an object's own: a list or a model copied, anything else (immutable) as is."""
    if isinstance(default, list):
        return list(default)
    return default.model_copy() if isinstance(default, Model) else default


class RequestCounts(Model):
    total: int = 0
    completed: int = 0
    failed: int = 0


class BatchErrorItem(Model):
    code: Code | None = None
    message: str | None = None
    param: str | None = None
    line: int | None = None


class BatchErrors(Model):
    object: str | None = None
    data: list[BatchErrorItem] = []


class BatchUsage(Model):
    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None
    input_tokens_details: dict[str, Any] | None = None
    output_tokens_details: dict[str, Any] | None = None


class Batch(Model):
    id: str
    object: str | None = "batch"
    endpoint: str | None = None
    model: str | None = None
    errors: BatchErrors | None = None
    input_file_id: str | None = None
    completion_window: str | None = None
    status: str
    output_file_id: str | None = None
    error_file_id: str | None = None
    created_at: Timestamp | None = None
    in_progress_at: Timestamp | None = None
    expires_at: Timestamp | None = None
    finalizing_at: Timestamp | None = None
    completed_at: Timestamp | None = None
    failed_at: Timestamp | None = None
    expired_at: Timestamp | None = None
    cancelling_at: Timestamp | None = None
    cancelled_at: Timestamp | None = None
    request_counts: RequestCounts = RequestCounts()
    # A percentage (0-100) some providers report instead of request_counts (together); one that is
    # not a number is None (not shown), not a reason to refuse the batch.
    progress: Percent | None = None
    usage: BatchUsage | None = None
    metadata: dict[str, Any] | None = None

    @property
    def is_terminal(self) -> bool:
        """True once the batch can no longer change (completed, failed, expired, cancelled)."""
        return self.status in TERMINAL_STATUSES


class FileObject(Model):
    id: str
    object: str | None = "file"
    bytes: int | None = None
    created_at: Timestamp | None = None
    expires_at: Timestamp | None = None
    filename: str | None = None
    purpose: str | None = None
    status: str | None = None
    status_details: str | None = None


class _Page(Model):
    object: str | None = "list"
    first_id: str | None = None
    last_id: str | None = None
    has_more: bool = False


class BatchPage(_Page):
    data: list[Batch] = []


class FilePage(_Page):
    data: list[FileObject] = []


class FileDeleted(Model):
    id: str
    object: str | None = "file"
    deleted: bool = False
