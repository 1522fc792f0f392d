"""How each provider's Batch API differs on the wire from OpenAI's (stdlib only, imported everywhere).

`providers.py` holds what a provider accepts (limits, endpoints, windows); this table holds how it
speaks: the API layer (`api/`) adapts requests and answers by these flags, chosen by the profile's
provider, so no command ever asks `if provider == ...`. A provider without an entry speaks OpenAI's
dialect exactly.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class WireQuirks:
    """One provider's differences from OpenAI's Batch wire format."""

    upload_purpose: str = "batch"  # the `purpose` form field of a batch input upload (together: "batch-api")
    upper_case_statuses: bool = False  # statuses arrive as "COMPLETED", "IN_PROGRESS" (together)
    create_envelope: str | None = None  # create answers {"<envelope>": {batch}, "warning": ...} (together: "job")
    progress_percent: bool = False  # a batch may report `progress` (0-100) instead of `request_counts`
    auth_header: str = "bearer"  # "bearer": Authorization: Bearer KEY; "api-key": an `api-key: KEY` header (azure)
    serves_files: bool = True  # False: the compatible layer has no /files upload/download (gemini)
    line_url_prefix: str = "/v1"  # the path prefix request lines carry in `url` (zhipu: "/v4")
    upload_form_fields: tuple[tuple[str, str], ...] = ()  # extra form fields on upload (litellm: custom_llm_provider)


OPENAI_WIRE = WireQuirks()

# Filled per preset; a provider not listed here speaks OpenAI's dialect.
WIRE_QUIRKS: dict[str, WireQuirks] = {}


def wire_of(provider: str | None) -> WireQuirks:
    """The wire quirks of provider `provider` (OpenAI's dialect when it has none)."""
    return WIRE_QUIRKS.get((provider or "local").strip().lower(), OPENAI_WIRE)
