"""One row -> one Batch request line: the custom_id (an id column, or `row-N`) and the body per endpoint.

- chat (`/v1/chat/completions`): `messages` with an optional system message, `response_format`
  `{type: json_schema, json_schema: {...}}` with `--json-schema`;
- responses (`/v1/responses`): `input` (+ `instructions` for the system text, `text.format` for a schema);
- embeddings (`/v1/embeddings`): `input`.
`--body-extra` fields are merged into every body last (they may not replace the prompt or the model).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from batchctl.errors import BatchctlError
from batchctl.prepare.rows import cell_text
from batchctl.prepare.template import Template

ENDPOINTS = {"chat": "/v1/chat/completions", "responses": "/v1/responses", "embeddings": "/v1/embeddings"}
ROW_ID_PREFIX = "row-"


def endpoint_path(name: str | None) -> str:
    """chat/responses/embeddings (or their paths) -> the endpoint path."""
    if not name:
        return ENDPOINTS["chat"]
    if name in ENDPOINTS:
        return ENDPOINTS[name]
    if name in ENDPOINTS.values():
        return name
    raise BatchctlError(f"unknown endpoint {name!r}", f"Use one of: {', '.join(ENDPOINTS)}.")


def row_id(row_number: int, row: Mapping[str, Any], id_column: str | None) -> str:
    """The custom_id of a row: its id column's value, else `row-N` (stable: the row's number)."""
    if id_column is None:
        return f"{ROW_ID_PREFIX}{row_number}"
    return cell_text(row.get(id_column)).strip()


def schema_format(schema: Mapping[str, Any]) -> dict[str, Any]:
    """A --json-schema file as OpenAI's json_schema object: used as is when it already has `name` and
    `schema`, else wrapped as {name: "answer", schema: <file>, strict: true}."""
    if "schema" in schema and "name" in schema:
        return dict(schema)
    return {"name": "answer", "schema": dict(schema), "strict": True}


@dataclass
class PrepareSpec:
    """How rows become requests: the templates, the model, body fields and the id column."""

    template: Template
    model: str
    endpoint: str = ENDPOINTS["chat"]
    system: Template | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    json_schema: dict[str, Any] | None = None
    body_extra: dict[str, Any] = field(default_factory=dict)
    id_column: str | None = None
    allow_empty: bool = False
    url_prefix: str = "/v1"  # the provider's path prefix for request lines (zhipu: /v4; quirks.py)

    @property
    def same_for_every_row(self) -> str | None:
        """A warning when no template names a column: every row would get the same request (a template
        passed without its placeholders, or `--template prompt.txt` meant as `@prompt.txt`)."""
        if self.template.columns or (self.system is not None and self.system.columns):
            return None
        return ("the template names no column ({column}): every row gets the same request "
                f"({self.template.text[:60]!r}); to read a file, write --template @FILE")  # fmt: skip

    @property
    def url(self) -> str:
        """The `url` each line carries: the endpoint under the provider's prefix (`/v4/chat/completions`)."""
        return self.url_prefix + self.endpoint.removeprefix("/v1")

    def check(self) -> None:
        """Refuse combinations the endpoint cannot take, before any row is read."""
        if self.endpoint == ENDPOINTS["embeddings"]:
            given = [name for name, value in (("--system", self.system), ("--max-tokens", self.max_tokens),
                                              ("--temperature", self.temperature), ("--json-schema", self.json_schema))
                     if value is not None]  # fmt: skip
            if given:
                raise BatchctlError(f"{', '.join(given)} cannot be used with embeddings", "Drop them, or use --endpoint chat.")
        clash = sorted({"model", "messages", "input"} & set(self.body_extra))
        if clash:
            raise BatchctlError(f"--body-extra may not set {', '.join(clash)}: the template and --model do",
                                "Remove those keys from the file.")  # fmt: skip

    @property
    def columns(self) -> list[str]:
        used = self.template.columns + (self.system.columns if self.system else [])
        return list(dict.fromkeys(used + ([self.id_column] if self.id_column else [])))

    def body(self, row: Mapping[str, Any], n: int) -> tuple[dict[str, Any], int]:
        """(the request body for row `n`, UTF-8 bytes of its prompt text for the token estimate)."""
        text = self.template.render(row, n, allow_empty=self.allow_empty)
        system = self.system.render(row, n, allow_empty=self.allow_empty) if self.system else None
        body: dict[str, Any] = {"model": self.model}
        if self.endpoint == ENDPOINTS["chat"]:
            messages = [{"role": "system", "content": system}] if system else []
            body["messages"] = [*messages, {"role": "user", "content": text}]
            if self.json_schema is not None:
                body["response_format"] = {"type": "json_schema", "json_schema": schema_format(self.json_schema)}
            if self.max_tokens is not None:
                body["max_tokens"] = self.max_tokens
        else:
            body["input"] = text
            if system:
                body["instructions"] = system
            if self.json_schema is not None:
                body["text"] = {"format": {"type": "json_schema", **schema_format(self.json_schema)}}
            if self.max_tokens is not None:
                body["max_output_tokens"] = self.max_tokens
        if self.temperature is not None:
            body["temperature"] = self.temperature
        body.update(self.body_extra)
        # The text `validate` counts for its estimate: the messages for chat, `input` elsewhere.
        size = len(text.encode()) + (len(system.encode()) if system and "messages" in body else 0)
        return body, size

    def line(self, row: Mapping[str, Any], n: int) -> tuple[str, str, int]:
        """(custom_id, the JSONL line without newline, prompt bytes) for row `n`."""
        body, size = self.body(row, n)
        cid = row_id(n, row, self.id_column)
        request = {"custom_id": cid, "method": "POST", "url": self.url, "body": body}
        return cid, json.dumps(request, ensure_ascii=False), size

    def recorded(self) -> dict[str, Any]:
        """What a job made by `submit DATA --template` keeps, so `download --join` needs no arguments."""
        return {
            "model": self.model,
            "template": self.template.text,
            "system": self.system.text if self.system else None,
            "endpoint": self.endpoint,
            "id_column": self.id_column,
            "json_schema": self.json_schema is not None,
        }
