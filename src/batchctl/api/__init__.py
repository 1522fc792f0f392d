"""The API layer: an httpx client for OpenAI-compatible Batch APIs, its models and its errors.

Knows nothing of Typer or Rich; the CLI imports it lazily.
"""

import sys

# httpx's __init__ imports its own command-line tool (`httpx._main`, with click, rich and pygments:
# ~40 ms) whenever those are installed; batchctl never runs it. None in sys.modules makes that import
# fail, which httpx expects (its `httpx.main` then asks to install httpx[cli]).
sys.modules.setdefault("httpx._main", None)

from batchctl.api._base_client import path_segment, probe_health
from batchctl.masking import Redactor, mask_secret
from batchctl.api.client import USER_AGENT, BatchClient, ContentStream, RawResponse, normalize_base_url
from batchctl.api.errors import (
    APIConnectionError,
    APIError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    FilesNotServedError,
    InternalServerError,
    NotFoundError,
    NotImplementedByServerError,
    PermissionDeniedError,
    RateLimitError,
    UnprocessableEntityError,
    raise_for_gateway_failure,
)
from batchctl.api.models import (
    TERMINAL_STATUSES,
    Batch,
    BatchErrorItem,
    BatchErrors,
    BatchPage,
    BatchUsage,
    FileDeleted,
    FileObject,
    FilePage,
    RequestCounts,
)

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "Batch",
    "BatchClient",
    "BatchErrorItem",
    "BatchErrors",
    "BatchPage",
    "BatchUsage",
    "ConflictError",
    "ContentStream",
    "FileDeleted",
    "FileObject",
    "FilesNotServedError",
    "FilePage",
    "InternalServerError",
    "NotFoundError",
    "NotImplementedByServerError",
    "PermissionDeniedError",
    "RateLimitError",
    "RawResponse",
    "RequestCounts",
    "TERMINAL_STATUSES",
    "USER_AGENT",
    "UnprocessableEntityError",
    "Redactor",
    "mask_secret",
    "normalize_base_url",
    "path_segment",
    "probe_health",
    "raise_for_gateway_failure",
]
