"""Pydantic models of what Batch APIs send: batches, files, list pages.

Every model allows extra fields (providers add their own) and every field a provider might leave
out defaults to None, so an unfamiliar but sane response parses instead of crashing the CLI.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

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


def _to_timestamp(value: Any) -> Any:
    """Unix seconds as sent by OpenAI/DashScope; also accept floats, digit strings and ISO 8601."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            return int(float(text))
        except ValueError:
            pass
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return value  # let pydantic report it
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        return int(moment.timestamp())
    return value


Timestamp = Annotated[int | None, BeforeValidator(_to_timestamp)]


def _to_text(value: Any) -> Any:
    # Error codes arrive as strings from OpenAI but as numbers from some gateways.
    return str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value


Code = Annotated[str | None, BeforeValidator(_to_text)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class RequestCounts(_Model):
    total: int = 0
    completed: int = 0
    failed: int = 0

    @field_validator("total", "completed", "failed", mode="before")
    @classmethod
    def _null_is_zero(cls, value: Any) -> Any:
        return 0 if value is None else value


class BatchErrorItem(_Model):
    code: Code = None
    message: str | None = None
    param: str | None = None
    line: int | None = None


class BatchErrors(_Model):
    object: str | None = None
    data: list[BatchErrorItem] = Field(default_factory=list)

    @field_validator("data", mode="before")
    @classmethod
    def _null_is_empty(cls, value: Any) -> Any:
        return [] if value is None else value


class BatchUsage(_Model):
    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None
    input_tokens_details: dict[str, Any] | None = None
    output_tokens_details: dict[str, Any] | None = None


class Batch(_Model):
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
    created_at: Timestamp = None
    in_progress_at: Timestamp = None
    expires_at: Timestamp = None
    finalizing_at: Timestamp = None
    completed_at: Timestamp = None
    failed_at: Timestamp = None
    expired_at: Timestamp = None
    cancelling_at: Timestamp = None
    cancelled_at: Timestamp = None
    request_counts: RequestCounts = Field(default_factory=RequestCounts)
    # A percentage (0-100) some providers report instead of request_counts (together).
    progress: float | None = None
    usage: BatchUsage | None = None
    metadata: dict[str, Any] | None = None

    @field_validator("request_counts", mode="before")
    @classmethod
    def _null_counts(cls, value: Any) -> Any:
        return {} if value is None else value

    @field_validator("progress", mode="before")
    @classmethod
    def _percent(cls, value: Any) -> Any:
        # A progress that is not a number is no reason to refuse the batch: it is simply not shown.
        try:
            percent = float(value)
        except (TypeError, ValueError):
            return None
        return min(max(percent, 0.0), 100.0) if percent == percent and not isinstance(value, bool) else None

    @property
    def is_terminal(self) -> bool:
        """True once the batch can no longer change (completed, failed, expired, cancelled)."""
        return self.status in TERMINAL_STATUSES


class FileObject(_Model):
    id: str
    object: str | None = "file"
    bytes: int | None = None
    created_at: Timestamp = None
    expires_at: Timestamp = None
    filename: str | None = None
    purpose: str | None = None
    status: str | None = None
    status_details: str | None = None


class _Page(_Model):
    object: str | None = "list"
    first_id: str | None = None
    last_id: str | None = None
    has_more: bool = False

    @field_validator("data", mode="before", check_fields=False)
    @classmethod
    def _null_data(cls, value: Any) -> Any:
        return [] if value is None else value

    @field_validator("has_more", mode="before")
    @classmethod
    def _null_has_more(cls, value: Any) -> Any:
        return False if value is None else value


class BatchPage(_Page):
    data: list[Batch] = Field(default_factory=list)


class FilePage(_Page):
    data: list[FileObject] = Field(default_factory=list)


class FileDeleted(_Model):
    id: str
    object: str | None = "file"
    deleted: bool = False
