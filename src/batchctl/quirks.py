"""How each provider's Batch API differs on the wire from OpenAI's (stdlib only, imported everywhere).

`providers.py` holds what a provider accepts (limits, endpoints, windows); this table holds how it
speaks: the API layer (`api/`) adapts requests and answers by these flags, chosen by the profile's
provider, so no command ever asks `if provider == ...`. A provider without an entry speaks OpenAI's
dialect exactly (groq, moonshot, openai, dashscope, newapi, local).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class WireQuirks:
    """One provider's differences from OpenAI's Batch wire format."""

    upload_purpose: str = "batch"  # the `purpose` form field of a batch input upload (together: "batch-api")
    upper_case_statuses: bool = False  # statuses arrive as "COMPLETED", "IN_PROGRESS" (together)
    # Spellings beyond upper case, lower-cased: {"canceling": "cancelling"}; an unknown status passes through.
    status_aliases: tuple[tuple[str, str], ...] = ()
    create_envelope: str | None = None  # create answers {"<envelope>": {batch}, "warning": ...} (together: "job")
    progress_percent: bool = False  # a batch may report `progress` (0-100) instead of `request_counts`
    auth_header: str = "bearer"  # "bearer": Authorization: Bearer KEY; "api-key": an `api-key: KEY` header (azure)
    serves_files: bool = True  # False: the compatible layer has no /files upload/download (gemini)
    files_hint: str = ""  # what to do instead when it does not serve files, in the provider's words
    line_url_prefix: str = "/v1"  # the path prefix request lines carry in `url` (zhipu: "/v4")
    upload_form_fields: tuple[tuple[str, str], ...] = ()  # extra form fields on every upload
    slash_ids: bool = False  # batch and file ids hold a `/` (gemini: `batches/…`, `files/…`); encoded in paths
    long_ids: bool = False  # ids are long base64 strings (`=`, `+`, `/` included): never cut, always encoded
    # The profile's `custom_llm_provider` is sent (upload form, create body, query) where it routes (litellm).
    routes_by_custom_llm_provider: bool = False

    def normalize_status(self, status: object) -> object:
        """OpenAI's lower-case name of `status` (`"IN_PROGRESS"` -> `"in_progress"`); unknown ones as sent."""
        if not isinstance(status, str) or not (self.upper_case_statuses or self.status_aliases):
            return status
        lowered = status.strip().lower()
        lowered = dict(self.status_aliases).get(lowered, lowered)
        return lowered if lowered in OPENAI_STATUSES else status

    def notes(self) -> list[str]:
        """The differences in words, for `batchctl providers` and docs (empty: OpenAI's dialect)."""
        said = []
        if self.upload_purpose != "batch":
            said.append(f"uploads with purpose={self.upload_purpose}")
        if self.upper_case_statuses:
            said.append("statuses in upper case (shown as OpenAI's)")
        if self.create_envelope:
            said.append(f"create answers {{{self.create_envelope}, warning}} (the warning is shown)")
        if self.progress_percent:
            said.append("progress as a percentage instead of request counts")
        if self.auth_header == "api-key":
            said.append("key sent in an `api-key` header")
        if not self.serves_files:
            said.append("no file upload/download in its OpenAI-compatible layer")
        if self.line_url_prefix != "/v1":
            said.append(f"request lines' url starts with {self.line_url_prefix}")
        if self.slash_ids:
            said.append("ids contain a slash (encoded in paths)")
        if self.long_ids:
            said.append("long base64 file ids")
        if self.routes_by_custom_llm_provider:
            said.append("custom_llm_provider from the profile on upload and create")
        return said


# The statuses OpenAI documents (the same list as `api.models.BATCH_STATUSES`, kept here stdlib-only).
OPENAI_STATUSES = frozenset(
    {"validating", "failed", "in_progress", "finalizing", "completed", "expired", "cancelling", "cancelled"}
)

OPENAI_WIRE = WireQuirks()

_GEMINI_FILES_HINT = (
    "Gemini serves batch files only through its own Files API (google-genai): upload with "
    "client.files.upload(...), then batchctl submit --input-file-id files/ID --endpoint /v1/chat/completions; "
    "download results with client.files.download(file=OUTPUT_FILE_ID) (batchctl status BATCH_ID --json shows it)."
)

# One entry per provider that speaks differently; groq and moonshot speak OpenAI's dialect.
WIRE_QUIRKS: dict[str, WireQuirks] = {
    "together": WireQuirks(
        upload_purpose="batch-api",
        upper_case_statuses=True,
        status_aliases=(("canceling", "cancelling"), ("canceled", "cancelled")),
        create_envelope="job",
        progress_percent=True,
    ),
    "zhipu": WireQuirks(line_url_prefix="/v4"),
    "gemini": WireQuirks(serves_files=False, files_hint=_GEMINI_FILES_HINT, slash_ids=True),
    "azure": WireQuirks(auth_header="api-key"),
    "litellm": WireQuirks(long_ids=True, routes_by_custom_llm_provider=True),
}


def wire_of(provider: str | None) -> WireQuirks:
    """The wire quirks of provider `provider` (OpenAI's dialect when it has none)."""
    return WIRE_QUIRKS.get((provider or "local").strip().lower(), OPENAI_WIRE)
