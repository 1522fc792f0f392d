"""`doctor` speaks the profile's dialect too: Azure's `api-key` header, Gemini's slash ids encoded in its probes."""

from __future__ import annotations

import json

import pytest
from gateway_stub import ADMIN_KEY, provider_stub  # noqa: F401
from typer.testing import CliRunner

from batchctl.cli.app import app


def run(*args: str):
    return CliRunner().invoke(app, list(args))


def doctor_checks(stub, preset: str) -> dict[str, str]:
    added = run("profile", "add", "p", "--preset", preset, "--base-url", stub.base_url, "--api-key", ADMIN_KEY)
    assert added.exit_code == 0, added.output
    report = json.loads(run("doctor", "--json").stdout)
    return {check["check"]: check["status"] for check in report["checks"]}


@pytest.mark.parametrize("provider_stub", ["azure"], indirect=True)
def test_doctor_on_azure_sends_the_api_key_header(provider_stub):
    checks = doctor_checks(provider_stub, "azure")
    assert checks["api key"] == "ok" and checks["batches: list"] == "ok", checks
    assert {(r.authorization, r.api_key_header) for r in provider_stub.requests} == {(None, ADMIN_KEY)}


@pytest.mark.parametrize("provider_stub", ["gemini"], indirect=True)
def test_doctor_on_gemini_probes_a_slash_id_as_one_segment(provider_stub):
    batch_id = provider_stub.seed_batch([{"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": {}}])
    checks = doctor_checks(provider_stub, "gemini")
    assert checks["batches: retrieve"] == "ok", checks
    assert "/v1beta/openai/batches/" + batch_id.replace("/", "%2F") in {r.raw_path for r in provider_stub.requests}
