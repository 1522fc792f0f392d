"""Every answer of `batchctl serve` -- files, batches, lists, errors, result lines and the echo model's
bodies for each endpoint -- held against OpenAI's OpenAPI description (tests/specs/).

Unlike the `openapi_validate` fixture, nulls are not stripped: each answer is validated as sent, and
the only deviations allowed are those listed below (and in docs/serve-wire.md). The test also fails
when a listed deviation is no longer seen, so the list stays true.
"""

from __future__ import annotations

import json
import re
import time

import httpx
import pytest

from server_fixture import BATCH_REQUEST_OUTPUT, SPEC_PATH
from test_server_api import chat_lines, write_jsonl

pytestmark = pytest.mark.e2e

# Fields the description types as non-null that the server sends as null, as OpenAI's API does
# (its own examples show them null). Paths: `*` for a list index.
KNOWN_NULLS = {
    ("Batch", "model"),  # until the input file is validated
    ("Batch", "errors"),
    ("Batch", "output_file_id"),
    ("Batch", "error_file_id"),
    ("Batch", "in_progress_at"),
    ("Batch", "finalizing_at"),
    ("Batch", "completed_at"),
    ("Batch", "failed_at"),
    ("Batch", "expired_at"),
    ("Batch", "cancelling_at"),
    ("Batch", "cancelled_at"),
    ("OpenAIFile", "expires_at"),  # a file that never expires
    ("OpenAIFile", "status_details"),
    ("ListBatchesResponse", "first_id"),  # an empty page
    ("ListBatchesResponse", "last_id"),
    ("ListFilesResponse", "first_id"),
    ("ListFilesResponse", "last_id"),
}
# Other deviations, each with why: (schema, path, the value sent).
KNOWN_OTHER = {
    # CreateFileRequest accepts purpose `evals`, but the File object's purpose enum does not list it.
    ("OpenAIFile", "purpose", "evals"),
}


def _without_discriminators(node):
    """The validator resolves a discriminator without a mapping as `#/components/schemas/<value>`, which
    the description does not have (`output_text`); `oneOf` still decides, so the hint is dropped."""
    if isinstance(node, dict):
        node.pop("discriminator", None)
        for value in node.values():
            _without_discriminators(value)
    elif isinstance(node, list):
        for value in node:
            _without_discriminators(value)
    return node


@pytest.fixture(scope="module")
def conformance():
    """`check(schema, obj)` records `obj`'s violations; `.deviations` collects the allowed ones seen."""
    import yaml
    from openapi_schema_validator import OAS31Validator
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    with open(SPEC_PATH, "rb") as f:
        spec = _without_discriminators(yaml.load(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)))
    spec["components"]["schemas"].setdefault("BatchRequestOutput", BATCH_REQUEST_OUTPUT)
    registry = Registry().with_resource("urn:openai", Resource.from_contents(spec, default_specification=DRAFT202012))

    class Check:
        def __init__(self) -> None:
            self.validators: dict = {}
            self.deviations: set = set()
            self.checked: dict[str, int] = {}

        def __call__(self, schema: str, obj) -> None:
            if schema not in self.validators:
                ref = {"$ref": f"urn:openai#/components/schemas/{schema}"}
                self.validators[schema] = OAS31Validator(ref, registry=registry)
            self.checked[schema] = self.checked.get(schema, 0) + 1
            problems = []
            for error in self.validators[schema].iter_errors(obj):
                path = "/".join(str(p) for p in error.absolute_path)
                # A field of a list's item is the item schema's field: data/3/model -> (Batch, model).
                owner, field = _owner(schema, re.sub(r"/\d+(?=/|$)", "/*", path))
                if error.instance is None and (owner, field) in KNOWN_NULLS:
                    self.deviations.add((owner, field))
                elif (owner, field, error.instance) in KNOWN_OTHER:
                    self.deviations.add((owner, field, error.instance))
                else:
                    problems.append(f"{path or '<root>'}: {error.message[:300]}")
            assert not problems, f"{schema} does not conform:\n" + "\n".join(problems) + f"\n{json.dumps(obj)[:2000]}"

    return Check()


def _owner(schema: str, path: str) -> tuple[str, str]:
    items = {"ListBatchesResponse": "Batch", "ListFilesResponse": "OpenAIFile"}
    if schema in items and path.startswith("data/*/"):
        return items[schema], path[len("data/*/") :]
    return schema, path


def wait(http: httpx.Client, batch_id: str, statuses: tuple[str, ...]) -> dict:
    deadline = time.monotonic() + 15
    while (batch := http.get(f"/batches/{batch_id}").json())["status"] not in statuses:
        assert time.monotonic() < deadline, batch
        time.sleep(0.02)
    return batch


ENDPOINT_BODIES = {
    "/v1/chat/completions": ("CreateChatCompletionResponse", {"messages": [{"role": "user", "content": "hi"}]}),
    "/v1/completions": ("CreateCompletionResponse", {"prompt": ["a", "b"]}),
    "/v1/embeddings": ("CreateEmbeddingResponse", {"input": ["a", "b"]}),
    "/v1/responses": ("Response", {"input": "hi", "instructions": "Be brief.", "max_output_tokens": 1}),
    "/v1/moderations": ("CreateModerationResponse", {"input": ["a", "b"]}),
}


def test_every_answer_conforms_to_openais_description(start_server, tmp_path, conformance):
    server = start_server(latency=0.02, failure_rate=0.3)
    check = conformance
    with httpx.Client(base_url=server.base_url, timeout=10) as http:
        check("ListFilesResponse", http.get("/files").json())  # empty
        check("ListBatchesResponse", http.get("/batches").json())

        # Files: every purpose, with and without an expiry; retrieve, list, delete.
        path = write_jsonl(tmp_path / "in.jsonl", chat_lines(30))
        files = {}
        for purpose in ("batch", "user_data", "fine-tune", "assistants", "vision", "evals"):
            with open(path, "rb") as f:
                files[purpose] = http.post("/files", files={"file": ("in.jsonl", f)}, data={"purpose": purpose}).json()
            check("OpenAIFile", files[purpose])
        with open(path, "rb") as f:
            data = {"purpose": "batch", "expires_after[anchor]": "created_at", "expires_after[seconds]": "3600"}
            check("OpenAIFile", http.post("/files", files={"file": ("in.jsonl", f)}, data=data).json())
        check("OpenAIFile", http.get(f"/files/{files['batch']['id']}").json())
        check("ListFilesResponse", http.get("/files", params={"limit": 3}).json())
        check("DeleteFileResponse", http.delete(f"/files/{files['vision']['id']}").json())

        # Batches: create, in progress, cancel, completed (with output and error lines), failed, list.
        body = {"input_file_id": files["batch"]["id"], "endpoint": "/v1/chat/completions", "completion_window": "24h"}
        created = http.post("/batches", json={**body, "metadata": {"k": "v"}}).json()
        check("Batch", created)
        check("Batch", http.post(f"/batches/{created['id']}/cancel").json())
        check("Batch", wait(http, created["id"], ("cancelled",)))
        done = wait(http, http.post("/batches", json=body).json()["id"], ("completed",))
        check("Batch", done)
        assert done["output_file_id"] and done["error_file_id"], done
        for file_id in (done["output_file_id"], done["error_file_id"]):
            check("OpenAIFile", http.get(f"/files/{file_id}").json())
            for line in http.get(f"/files/{file_id}/content").text.splitlines():
                check("BatchRequestOutput", json.loads(line))
        with open(write_jsonl(tmp_path / "bad.jsonl", ["{nope"]), "rb") as f:
            bad = http.post("/files", files={"file": ("bad.jsonl", f)}, data={"purpose": "batch"}).json()
        failed = wait(http, http.post("/batches", json={**body, "input_file_id": bad["id"]}).json()["id"], ("failed",))
        assert failed["errors"]["data"], failed
        check("Batch", failed)
        check("ListBatchesResponse", http.get("/batches", params={"limit": 2}).json())

        # The echo model's body for each endpoint it serves.
        for endpoint, (schema, request) in ENDPOINT_BODIES.items():
            line = {"custom_id": "ok-0", "method": "POST", "url": endpoint, "body": {"model": "m", **request}}
            with open(write_jsonl(tmp_path / "e.jsonl", [line]), "rb") as f:
                file = http.post("/files", files={"file": ("e.jsonl", f)}, data={"purpose": "batch"}).json()
            batch = http.post("/batches", json={**body, "input_file_id": file["id"], "endpoint": endpoint}).json()
            batch = wait(http, batch["id"], ("completed",))
            result = json.loads(http.get(f"/files/{batch['output_file_id']}/content").text)
            check(schema, result["response"]["body"])  # custom_id "ok-0" is not one the 30% failures pick

        # Errors: 400, 404, 405, 409.
        errors = [
            http.post("/batches", json={**body, "foo": 1}),
            http.post("/batches", json={**body, "endpoint": "/v1/videos"}),
            http.get("/batches", params={"after": "batch_nope"}),
            http.post("/files", data={"purpose": "batch", "expires_after[anchor]": "nope"}, files={"file": ("a", b"{}")}),
            http.get("/files/file-nope"),
            http.put("/batches"),
            http.post(f"/batches/{done['id']}/cancel"),
        ]
        for response in errors:
            assert response.status_code >= 400
            check("ErrorResponse", response.json())
    assert check.checked.get("Response") and check.checked.get("CreateModerationResponse")
    # The list of deviations is exactly what was seen: a fixed one must leave the list (and the docs).
    assert check.deviations == KNOWN_NULLS | KNOWN_OTHER
