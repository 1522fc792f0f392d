"""Commands about one batch reach it where it was submitted, and a key only goes to its own server."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from batchctl.cli.app import app

runner = CliRunner()


def test_batch_follows_its_profile_but_a_named_profile_keeps_its_own_server(start_server, tmp_path):
    server_a = start_server(api_key="sk-aaaa-key-1111")
    server_b = start_server(api_key="sk-bbbb-key-2222")
    for name, server, key in (("a", server_a, "sk-aaaa-key-1111"), ("b", server_b, "sk-bbbb-key-2222")):
        added = runner.invoke(
            app, ["profile", "add", name, "--provider", "local", "--base-url", server.base_url, "--api-key", key]
        )
        assert added.exit_code == 0, added.output
    source = tmp_path / "in.jsonl"
    source.write_text(
        json.dumps({"custom_id": "r1", "method": "POST", "url": "/v1/chat/completions",
                    "body": {"model": "echo", "messages": [{"role": "user", "content": "hi"}]}}) + "\n"
    )
    submitted = runner.invoke(app, ["-p", "a", "submit", str(source)])
    assert submitted.exit_code == 0, submitted.output
    batch_id = submitted.stdout.strip().splitlines()[-1]

    # Active profile is b now (added last): the journal still sends status to a, with a's key.
    shown = runner.invoke(app, ["status", batch_id, "--json"])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)[0]["id"] == batch_id

    # Naming profile b explicitly: b's key goes to b's server only (where the batch does not exist),
    # never to a's server.
    named = runner.invoke(app, ["--debug", "-p", "b", "status", batch_id, "--json"])
    assert named.exit_code == 1
    assert "not found (HTTP 404)" in named.stderr
    assert server_a.root not in named.stderr and server_b.root in named.stderr
    assert "sk-bbbb-key-2222" not in named.output
