"""Cut OpenAI's OpenAPI description down to what the conformance tests use.

    python scripts/trim_openapi_spec.py ../shared/specs/openai-openapi.yaml tests/specs/openai-openapi-batch.yaml

Keeps `info` (title, version, MIT licence), the Batch and Files paths, and every schema they and the
tests name, with everything those reach through `$ref`. The result is committed so that a fresh clone
runs the conformance tests with nothing beside it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

PATH_PREFIXES = ("/batches", "/files")
SCHEMAS_USED_BY_TESTS = (
    "Batch", "OpenAIFile", "ListBatchesResponse", "ListFilesResponse", "DeleteFileResponse", "ErrorResponse",
    # What the echo model answers, beside the Batch and Files objects (tests/test_serve_surface_conformance.py).
    "Response", "CreateModerationResponse", "CreateChatCompletionResponse", "CreateEmbeddingResponse",
    "CreateCompletionResponse",
)  # fmt: skip
REF_PREFIX = "#/components/schemas/"


def refs_in(node) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(REF_PREFIX):
            found.add(ref[len(REF_PREFIX):])
        for value in node.values():
            found |= refs_in(value)
    elif isinstance(node, list):
        for value in node:
            found |= refs_in(value)
    return found


def trim(spec: dict) -> dict:
    paths = {p: v for p, v in spec["paths"].items() if p.startswith(PATH_PREFIXES)}
    schemas = spec["components"]["schemas"]
    wanted: set[str] = set()
    todo = set(SCHEMAS_USED_BY_TESTS) | refs_in(paths)
    while todo:
        name = todo.pop()
        if name in wanted or name not in schemas:
            continue
        wanted.add(name)
        todo |= refs_in(schemas[name])
    return {
        "openapi": spec["openapi"],
        "info": {
            **spec["info"],
            "x-trimmed": "Batch and Files paths and the schemas they reach, cut from OpenAI's published "
            "OpenAPI description (github.com/openai/openai-openapi, MIT licence) by scripts/trim_openapi_spec.py",
        },
        "servers": spec.get("servers", []),
        "paths": paths,
        "components": {"schemas": {name: schemas[name] for name in sorted(wanted)}},
    }


def main(source: str, target: str) -> None:
    with open(source, "rb") as f:
        spec = yaml.load(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    Path(target).write_text(yaml.safe_dump(trim(spec), sort_keys=False, allow_unicode=True), encoding="utf-8")


if __name__ == "__main__":
    main(*sys.argv[1:3])
