"""How each provider's stand-in speaks (`GatewayStub(dialect=...)`): routes, auth, ids, statuses, envelopes.

The default, `NEWAPI`, is the New-API gateway the stub always was. The others are each preset's wire
quirks as its public docs describe them (`src/batchctl/quirks.py` is the client's side):

- together: uploads need `purpose=batch-api`; statuses in upper case; create answers `{job, warning}`;
  a batch reports `progress` (a percentage) and no `request_counts`; uuid ids.
- zhipu: routes under `/api/paas/v4`; every line's `url` (and the batch's endpoint) is `/v4/...`.
- gemini: routes under `/v1beta/openai`; ids `batches/…` and `files/…`; no /files routes at all.
- azure: routes under `/openai/v1`; the key in an `api-key` header (an `Authorization` header is refused).
- litellm: long base64 ids (`+`, `/`, `=` in them); uploads and creates must carry `custom_llm_provider`.
- groq, moonshot: OpenAI's dialect, with their preset's request and size limits enforced on upload.
"""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Dialect:
    name: str
    prefix: str = "/v1"  # where the API is mounted; base_url = http://127.0.0.1:PORT + prefix
    require_pin: bool = False  # New-API: /files and /batches calls need `-<channel>` on the key
    auth: str = "bearer"  # "bearer" | "api-key"
    purpose: str | None = None  # the upload purpose it insists on (None: any)
    files: bool = True  # False: no /files routes (404, as a route that does not exist)
    url_prefix: str = "/v1"  # every request line's url must start with this
    upper_statuses: bool = False
    envelope: str | None = None  # create answers {envelope: batch, "warning": WARNING}
    progress: bool = False  # `progress` (percent) instead of request_counts
    id_style: str = "plain"  # "plain" | "uuid" | "slash" | "base64"
    custom_llm_provider: str | None = None  # required on upload (form) and create (body)
    limits_of: str | None = None  # the preset whose max_requests / max_file_bytes uploads must respect

    def new_id(self, kind: str, n: int) -> str:
        """An id for a `kind` of object ("batch", "file-batch", "file-batch_output", "file-batch_error")."""
        if self.id_style == "uuid":
            return str(uuid.uuid4()) if kind == "batch" else f"file-{uuid.uuid4()}"
        if self.id_style == "slash":
            return f"batches/{n:04d}" if kind == "batch" else f"files/{kind.removeprefix('file-')}-{n:04d}"
        if self.id_style == "base64":
            # Bytes chosen so the id holds `+`, `/` and `=` padding, as LiteLLM's managed ids can.
            raw = b"\xfb\xff\xbf" + f"litellm_proxy;unified_id,{kind}-{n:04d};target_model_names,gpt-4o".encode()
            return base64.b64encode(raw if len(raw) % 3 else raw + b"!").decode()
        return f"batch_{n:04d}" if kind == "batch" else f"{kind}-{n:04d}"

    def refuse_upload(self, form: Any, content: bytes) -> str | None:
        """Why this provider would refuse the upload (purpose, routing field, its limits), or None."""
        if self.purpose and form.get("purpose") != self.purpose:
            return f"purpose must be {self.purpose!r}, not {form.get('purpose')!r}"
        if self.custom_llm_provider and form.get("custom_llm_provider") != self.custom_llm_provider:
            return "custom_llm_provider is required to route the file (form field)"
        if self.limits_of:
            from batchctl.providers import get_provider

            spec = get_provider(self.limits_of)
            requests = sum(1 for line in content.splitlines() if line.strip())
            if requests > spec.max_requests or len(content) > spec.max_file_bytes:
                return f"file over {self.limits_of}'s limits ({spec.max_requests} requests, {spec.max_file_bytes} bytes)"
        return None

    def refuse_create(self, body: dict[str, Any], lines: list[bytes]) -> str | None:
        """Why this provider would refuse the create (routing field, endpoint and line urls), or None."""
        if self.custom_llm_provider and body.get("custom_llm_provider") != self.custom_llm_provider:
            return "custom_llm_provider is required to route the batch"
        if not body["endpoint"].startswith(self.url_prefix + "/"):
            return f"endpoint must start with {self.url_prefix}/, not {body['endpoint']}"
        for n, raw in enumerate(lines, 1):
            if json.loads(raw).get("url") != body["endpoint"]:
                return f"line {n}: url must be {body['endpoint']}"
        return None

    def present(self, batch: dict[str, Any]) -> dict[str, Any]:
        """A stored batch as this provider sends it."""
        shown = {k: v for k, v in batch.items() if not k.startswith("_")}
        if self.upper_statuses:
            shown["status"] = shown["status"].upper()
            shown.pop("object", None)
        if self.progress:
            counts = shown.pop("request_counts", None) or {}
            status = batch["status"]
            shown["progress"] = 100.0 if status == "completed" else 50.0 if counts.get("total") else 0.0
        return shown

    def created(self, batch: dict[str, Any]) -> dict[str, Any]:
        return {self.envelope: batch, "warning": WARNING} if self.envelope else batch


WARNING = "model meta-llama/Llama-3.3-70B is busy: this batch may take longer than usual"
LITELLM_ROUTE = "azure"

NEWAPI = Dialect("newapi", require_pin=True)
DIALECTS: dict[str, Dialect] = {
    "newapi": NEWAPI,
    "groq": Dialect("groq", prefix="/openai/v1", limits_of="groq"),
    "moonshot": Dialect("moonshot", limits_of="moonshot"),
    "together": Dialect(
        "together", purpose="batch-api", upper_statuses=True, envelope="job", progress=True, id_style="uuid"
    ),
    "zhipu": Dialect("zhipu", prefix="/api/paas/v4", url_prefix="/v4"),
    "gemini": Dialect("gemini", prefix="/v1beta/openai", files=False, id_style="slash"),
    "azure": Dialect("azure", prefix="/openai/v1", auth="api-key"),
    "litellm": Dialect("litellm", id_style="base64", custom_llm_provider=LITELLM_ROUTE),
}
