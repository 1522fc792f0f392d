"""A full cycle through the CLI against each preset's stand-in over real HTTP on 127.0.0.1:
`submit --wait`, `status`, `list`, a second `submit` then `cancel`, `download`.

Each stand-in (`tests/stub_dialects.py`) refuses what its provider would refuse (a wrong purpose, a
Bearer header on Azure, a rewritten `/v4` url, a missing `custom_llm_provider`), so a cycle that
passes shows the client spoke that dialect. Gemini, whose compatible layer serves no files, has its own
cycle in tests/test_presets_cycle_gemini.py.
"""

from __future__ import annotations

import json

import pytest
from gateway_stub import ADMIN_KEY, provider_stub  # noqa: F401
from stub_dialects import LITELLM_ROUTE, WARNING
from typer.testing import CliRunner

from batchctl.cli.app import app

PRESETS = ["groq", "together", "zhipu", "moonshot", "azure", "litellm"]


def run(*args: str):
    return CliRunner().invoke(app, list(args))


def write_input(path, url_prefix: str, count: int = 3):
    lines = [
        {"custom_id": f"r{i}", "method": "POST", "url": f"{url_prefix}/chat/completions",
         "body": {"model": "m-1", "messages": [{"role": "user", "content": f"say r{i}"}], "max_tokens": 5}}
        for i in range(count)
    ]  # fmt: skip
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def add_profile(stub, preset: str) -> None:
    added = run("profile", "add", preset, "--preset", preset, "--base-url", stub.base_url, "--api-key", ADMIN_KEY, "--force")
    assert added.exit_code == 0, added.output
    if stub.dialect.custom_llm_provider:  # a profile setting, written as a user would in config.toml
        from batchctl.config import load_config, save_config

        config = load_config()
        config.profiles[preset].custom_llm_provider = LITELLM_ROUTE
        save_config(config)


def created_id(result) -> str:
    """The batch id `submit` printed on stdout (its first line)."""
    assert result.exit_code == 0, result.output
    return result.stdout.splitlines()[0].split()[0]


@pytest.mark.parametrize("provider_stub", PRESETS, indirect=True)
def test_full_cycle(provider_stub, tmp_path, monkeypatch):
    stub, preset = provider_stub, provider_stub.dialect.name
    monkeypatch.chdir(tmp_path)
    add_profile(stub, preset)
    source = write_input(tmp_path / "in.jsonl", stub.dialect.url_prefix)

    submitted = run("submit", str(source), "--wait", "--interval", "0.1", "-o", str(tmp_path / "out.jsonl"))
    batch_id = created_id(submitted)
    assert batch_id in stub.batches, (batch_id, list(stub.batches))
    answers = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [a["custom_id"] for a in answers] == ["r0", "r1", "r2"]

    status = run("status", batch_id)
    assert status.exit_code == 0, status.output
    assert batch_id in status.stdout and "completed" in status.stdout
    listed = run("list")
    assert listed.exit_code == 0 and batch_id in listed.stdout, listed.output

    second = created_id(run("submit", str(source), "--new"))
    running = run("status", second)
    assert running.exit_code == 0 and "in_progress" in running.stdout, running.output
    stub.batches[second]["_hold"] = True  # it stays in progress until cancelled
    cancelled = run("cancel", second, "--yes")
    assert cancelled.exit_code == 0, cancelled.output
    assert stub.batches[second]["status"] == "cancelled"
    assert "cancelled" in run("status", second).stdout

    download = run("download", batch_id, "-o", str(tmp_path / "again.jsonl"))
    assert download.exit_code == 0, download.output
    assert (tmp_path / "again.jsonl").read_text() == (tmp_path / "out.jsonl").read_text()

    calls = stub.batch_calls()
    kinds = {(r.method, r.path.rsplit("/", 1)[-1]) for r in calls}  # upload, create, list, cancel, content
    assert {("POST", "files"), ("POST", "batches"), ("GET", "batches"), ("POST", "cancel"), ("GET", "content")} <= kinds
    assert all(r.path.startswith(stub.dialect.prefix + "/") for r in calls)
    # The input arrived as written: no line's url rewritten (zhipu's /v4 included).
    uploaded = [stub.contents[b["input_file_id"]] for b in stub.batches.values()]
    assert uploaded == [source.read_bytes()] * 2
    if preset in CHECKS:
        CHECKS[preset](stub, submitted, running, calls, batch_id)


def _together(stub, submitted, running, calls, batch_id):
    assert [f["purpose"] for f in stub.files.values() if f["purpose"] != "batch_output"] == ["batch-api"] * 2
    assert WARNING in " ".join(submitted.stderr.split()), submitted.stderr  # the create's warning, on stderr
    assert WARNING not in submitted.stdout  # stdout keeps the id alone
    assert "50%" in running.stdout and "0/0" not in running.stdout  # progress, not counts
    assert "in_progress  50%" in submitted.stderr and "0/0" not in submitted.stderr  # --wait's watcher too


def _azure(stub, submitted, running, calls, batch_id):
    assert {(r.authorization, r.api_key_header) for r in calls} == {(None, ADMIN_KEY)}
    logged = run("--debug", "status", batch_id)  # the api-key header's key never reaches the debug log
    assert logged.exit_code == 0 and "HTTP GET" in logged.stderr and ADMIN_KEY not in logged.output


def _litellm(stub, submitted, running, calls, batch_id):
    assert {"+", "/", "="} <= set(batch_id)  # the whole base64 id, printed and used uncut
    assert f"{stub.dialect.prefix}/batches/{batch_id}" in {r.path for r in calls}  # decoded by the server: one whole id
    raw = {r.raw_path for r in calls}
    assert any("%2B" in p and "%2F" in p and "%3D" in p for p in raw), raw
    assert all(r.query.get("custom_llm_provider") == LITELLM_ROUTE for r in calls)
    shown = run("profile", "show", "litellm")
    assert f"custom_llm_provider {LITELLM_ROUTE}" in shown.stdout, shown.output


def _zhipu(stub, submitted, running, calls, batch_id):
    assert {b["endpoint"] for b in stub.batches.values()} == {"/v4/chat/completions"}


CHECKS = {"together": _together, "azure": _azure, "litellm": _litellm, "zhipu": _zhipu}


@pytest.mark.parametrize("provider_stub", ["zhipu"], indirect=True)
def test_zhipu_requests_prepared_from_a_table_use_its_v4_paths(provider_stub, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    add_profile(provider_stub, "zhipu")
    data = tmp_path / "rows.csv"
    data.write_text("id,text\na,hello\nb,world\n")
    prepared = run("prepare", str(data), "--template", "say {text}", "--model", "glm-4-flash", "-o", str(tmp_path / "req.jsonl"))
    assert prepared.exit_code == 0, prepared.output
    assert {json.loads(line)["url"] for line in (tmp_path / "req.jsonl").read_text().splitlines()} == {"/v4/chat/completions"}

    submitted = run("submit", str(data), "--template", "say {text}", "--model", "glm-4-flash", "--wait",
                    "--interval", "0.1", "-o", str(tmp_path / "out.jsonl"))  # fmt: skip
    assert submitted.exit_code == 0, submitted.output
    assert [b["endpoint"] for b in provider_stub.batches.values()] == ["/v4/chat/completions"]
    assert (tmp_path / "out.jsonl").read_text().count('"custom_id"') == 2
