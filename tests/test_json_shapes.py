"""`--json` output has the keys docs/json.md documents, one shape per command whatever the id count."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from batch_factory import write_requests
from batchctl.cli.app import app

pytestmark = pytest.mark.e2e
runner = CliRunner()
DOC = Path(__file__).resolve().parent.parent / "docs" / "json.md"


def documented_keys() -> dict[str, set[str]]:
    text = DOC.read_text(encoding="utf-8")
    return {
        name.strip(): {key.strip() for key in keys.split(",")}
        for name, keys in re.findall(r"^### (.+)\nKeys: (.+)$", text, re.M)
    }


def run_json(*args: str):
    result = runner.invoke(app, ["--json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def has(obj: dict, shape: str) -> None:
    missing = documented_keys()[shape] - set(obj)
    assert not missing, f"{shape} lacks {sorted(missing)}"


def test_the_doc_names_its_schema_version_and_shapes():
    assert re.search(r"^schema_version: 1$", DOC.read_text(encoding="utf-8"), re.M)
    assert {"Batch", "Job", "Download", "Retry", "File", "Validation report", "Profile", "Doctor report"} <= set(documented_keys())


def test_every_command_prints_the_documented_keys(start_server, monkeypatch, in_tmp):
    server = start_server()
    monkeypatch.setenv("BATCHCTL_BASE_URL", server.base_url)
    source = write_requests(in_tmp / "chat.jsonl", 3)
    has(run_json("validate", str(source)), "Validation report")
    submitted = run_json("submit", str(source), "--wait", "--interval", "0.1", "-o", "out.jsonl")
    has(submitted, "Batch")
    has(submitted["download"], "Download")
    batch_id, job_id = submitted["id"], submitted["job_id"]
    for ids in ([batch_id], [batch_id, batch_id]):
        shown = run_json("status", *ids)
        assert isinstance(shown, list)
        has(shown[0], "Batch")
    has(run_json("status", job_id)[0], "Job")
    has(run_json("list")[0], "Batch")
    has(run_json("download", batch_id, "-o", "again.jsonl"), "Download")
    has(run_json("jobs")[0], "Job")
    has(run_json("jobs", "show", job_id), "Job")
    has(run_json("retry", job_id), "Retry")
    has(run_json("files", "list")[0], "File")
    has(run_json("profile", "list")[0], "Profile")
    has(run_json("doctor"), "Doctor report")
