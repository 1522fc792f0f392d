"""Global options go before or after the command, defined once; --quiet prints ids; --json errors."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from batch_factory import create_batch
from batchctl.cli.app import app

runner = CliRunner()


def test_profile_after_the_command():
    before = runner.invoke(app, ["-p", "nope", "list"])
    after = runner.invoke(app, ["list", "-p", "nope"])
    assert before.exit_code == after.exit_code == 1
    assert after.stderr.splitlines()[0] == before.stderr.splitlines()[0] == "Error: no profile named 'nope'"


def test_key_and_channel_after_the_command_reach_the_settings():
    result = runner.invoke(
        app, ["profile", "show", "--api-key", "sk-after-command-abcd", "--channel_id", "7", "--base-url", "http://gw.example:3000", "--json"]
    )
    assert result.exit_code == 0, result.output
    view = json.loads(result.stdout)
    assert view["api_key"] == "sk-…abcd" and view["channel"] == "7" and view["base_url"] == "http://gw.example:3000/v1"
    assert view["sources"]["api_key"] == view["sources"]["channel"] == view["sources"]["base_url"] == "flag"
    assert "sk-after-command-abcd" not in result.output


def test_a_commands_own_option_of_the_same_name_stays_its_own():
    # `profile add --base-url/--api-key/--channel` describe the profile, not this invocation.
    added = runner.invoke(app, ["profile", "add", "gw", "--base-url", "http://gw:3000", "--api-key", "sk-k-1234", "--channel", "3"])
    assert added.exit_code == 0, added.output
    shown = json.loads(runner.invoke(app, ["profile", "show", "gw", "--json"]).stdout)
    assert (shown["base_url"], shown["channel"]) == ("http://gw:3000/v1", "3")


def test_debug_and_base_url_after_the_command(server, tmp_path):
    batch_id = create_batch(server.base_url, tmp_path, 1)
    result = runner.invoke(app, ["status", batch_id, "--debug", "--base-url", server.base_url, "--json"])
    assert result.exit_code == 0, result.output
    assert f"HTTP GET {server.base_url}/batches/{batch_id} -> 200" in result.stderr
    assert json.loads(result.stdout)[0]["id"] == batch_id


def test_how_arguments_are_moved():
    import typer.main

    from batchctl.cli.app import hoist_global_options

    command = typer.main.get_command(app)
    ctx = command.make_context("batchctl", ["--help"], resilient_parsing=True)
    args = ["validate", "f.jsonl", "--json", "--", "-p", "x"]
    assert hoist_global_options(command, ctx, args) == args  # validate has its own --json; after -- is data
    assert hoist_global_options(command, ctx, ["list", "-p", "w", "-n", "3"]) == ["-p", "w", "list", "-n", "3"]
    assert hoist_global_options(command, ctx, ["list", "--profile=w", "-q"]) == ["--profile=w", "-q", "list"]
    assert hoist_global_options(command, ctx, ["--debug", "files", "list", "--channel", "2"]) == [
        "--debug", "--channel", "2", "files", "list",
    ]
    # between a group and its sub-command: a global option moves, the group's own (`jobs --json`) stays
    assert hoist_global_options(command, ctx, ["profile", "--json", "list"]) == ["--json", "profile", "list"]
    assert hoist_global_options(command, ctx, ["jobs", "--json", "show", "j", "-p", "w"]) == ["-p", "w", "jobs", "--json", "show", "j"]
    # before a name the group does not know; what follows it is left as typed
    assert hoist_global_options(command, ctx, ["profile", "--json", "bogus", "-q"]) == ["--json", "profile", "bogus", "-q"]


def test_quiet_list_prints_only_ids(server, tmp_path):
    ids = [create_batch(server.base_url, tmp_path, 1) for _ in range(2)]
    result = runner.invoke(app, ["list", "-q"])
    assert result.exit_code == 0, result.output
    assert sorted(result.stdout.split()) == sorted(ids)
    assert result.stdout.count("\n") == 2


def test_json_error_is_also_a_json_object_on_stdout():
    result = runner.invoke(app, ["list", "--json", "-p", "nope"])
    assert result.exit_code == 1
    error = json.loads(result.stdout)["error"]
    assert error["message"] == "no profile named 'nope'" and error["exit_code"] == 1 and "profile add" in error["hint"]
    assert result.stderr.startswith("Error: no profile named 'nope'")


def test_wait_help_matches_what_submit_does():
    result = runner.invoke(app, ["submit", "--help"])
    assert "instead of exiting with 6" not in result.stdout


def test_profile_show_says_where_the_profile_in_use_comes_from():
    assert runner.invoke(app, ["profile", "add", "a", "--base-url", "http://a", "--api-key", "sk-a-0001"]).exit_code == 0
    assert runner.invoke(app, ["profile", "add", "b", "--base-url", "http://b", "--api-key", "sk-b-0002", "--no-use"]).exit_code == 0
    picked = runner.invoke(app, ["profile", "show", "-p", "b"])
    assert picked.exit_code == 0, picked.output
    assert any(line.split(None, 1) == ["in_use", "yes (from -p/--profile)"] for line in picked.stdout.splitlines())
    assert json.loads(runner.invoke(app, ["profile", "show", "--json"]).stdout)["in_use"] == "profile use"


def test_an_unset_key_env_var_is_named_before_anything_is_sent(monkeypatch, tmp_path):
    monkeypatch.delenv("MY_GATEWAY_KEY", raising=False)
    added = runner.invoke(app, ["profile", "add", "gw", "--base-url", "http://127.0.0.1:9", "--api-key-env", "MY_GATEWAY_KEY"])
    assert added.exit_code == 0, added.output
    assert "Warning: MY_GATEWAY_KEY is not set" in added.stderr
    assert "MY_GATEWAY_KEY (not set)" in runner.invoke(app, ["profile", "show", "gw"]).stdout
    source = tmp_path / "in.jsonl"
    source.write_text('{"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": {"model": "m", "messages": []}}\n')
    for args in (["list"], ["status", "batch_x"], ["submit", str(source), "--no-validate"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 1, (args, result.output)
        assert result.stderr.splitlines()[0] == "Error: MY_GATEWAY_KEY is not set (profile gw reads its key from it)"
    monkeypatch.setenv("MY_GATEWAY_KEY", "sk-from-env-9999")
    assert json.loads(runner.invoke(app, ["profile", "show", "gw", "--json"]).stdout)["api_key_env_set"] is True


def test_status_without_an_id_shows_what_this_machine_submitted_and_last_is_the_newest(server, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    empty = runner.invoke(app, ["status", "--json"])
    assert empty.exit_code == 0 and json.loads(empty.stdout) == [] and "nothing was submitted" in empty.stderr
    assert runner.invoke(app, ["download", "last"]).stderr.startswith("Error: nothing was submitted from this machine yet")
    ids = []
    for n in range(2):
        source = tmp_path / f"in{n}.jsonl"
        source.write_text(json.dumps({"custom_id": "a", "method": "POST", "url": "/v1/chat/completions",
                                      "body": {"model": "echo", "messages": [{"role": "user", "content": f"hi {n}"}]}}) + "\n")
        submitted = runner.invoke(app, ["submit", "-q", str(source)])
        assert submitted.exit_code == 0, submitted.output
        assert submitted.stderr == ""  # --quiet: no notes, only the id on stdout
        ids.append(submitted.stdout.strip())
    recent = runner.invoke(app, ["status", "-q"])
    assert recent.exit_code == 0, recent.output
    assert recent.stdout.split() == ids[::-1]  # newest first
    last = runner.invoke(app, ["status", "last", "--json"])
    assert [b["id"] for b in json.loads(last.stdout)] == [ids[1]]
    waited = runner.invoke(app, ["download", "last", "--wait", "--interval", "0.1", "-o", "last.jsonl"])
    assert waited.exit_code == 0, waited.output
    assert json.loads((tmp_path / "last.jsonl").read_text())["custom_id"] == "a"


@pytest.mark.parametrize("command", [["validate"], ["submit"], ["submit", "--no-validate"], ["download", "batch_x", "--merge"]])
def test_a_missing_or_directory_input_reads_the_same_in_every_command(command, tmp_path):
    missing = runner.invoke(app, [*command, str(tmp_path / "nope.jsonl")])
    assert missing.exit_code == 1, missing.output
    assert missing.stderr.splitlines()[0] == f"Error: no such file: {tmp_path / 'nope.jsonl'}"
    directory = runner.invoke(app, [*command, str(tmp_path)])
    assert directory.exit_code == 1, directory.output
    assert directory.stderr.splitlines()[0] == f"Error: {tmp_path} is a directory, not a regular file"
