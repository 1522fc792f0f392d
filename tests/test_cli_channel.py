"""`--channel` is a New-API channel id: digits only, checked wherever it comes from (flag, env var,
`profile add`, config file) with an Error and a hint; on a provider that is not New-API, a warning."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from batchctl.cli.app import app
from batchctl.config import config_path

runner = CliRunner()
KEY = "sk-verysecretkey9876"


def add_gateway(name: str = "g", *extra: str):
    r = runner.invoke(app, ["profile", "add", name, "--preset", "newapi", "--base-url", "http://127.0.0.1:9/v1",
                            "--api-key", KEY, *extra])  # fmt: skip
    return r


@pytest.mark.parametrize("value", ["abc", "-5", "7a", "1.5", "７"])
def test_a_bad_channel_flag_is_refused_before_any_request(value):
    assert add_gateway().exit_code == 0
    r = runner.invoke(app, ["-p", "g", f"--channel={value}", "files", "list"])
    assert r.exit_code == 1, r.output
    lines = r.stderr.splitlines()
    assert lines[0] == f"Error: channel {value!r} (--channel) is not a New-API channel id"
    assert lines[1].startswith("Hint:") or "whole number" in lines[1]
    assert "Traceback" not in r.output and KEY not in r.output and "9876" not in r.output


def test_a_bad_channel_env_var_is_refused(monkeypatch):
    assert add_gateway().exit_code == 0
    monkeypatch.setenv("BATCHCTL_CHANNEL", "abc")
    r = runner.invoke(app, ["-p", "g", "files", "list"])
    assert r.exit_code == 1
    assert r.stderr.splitlines()[0] == "Error: channel 'abc' (BATCHCTL_CHANNEL) is not a New-API channel id"


def test_profile_add_refuses_a_bad_channel_and_saves_nothing():
    r = add_gateway("g2", "--channel", "abc")
    assert r.exit_code == 1
    assert r.stderr.splitlines()[0] == "Error: channel 'abc' (--channel) is not a New-API channel id"
    assert "whole number" in r.stderr
    assert not config_path().exists() or "g2" not in config_path().read_text()
    ok = add_gateway("g3", "--channel", "12")
    assert ok.exit_code == 0 and "Warning" not in ok.stderr
    assert json.loads(runner.invoke(app, ["profile", "show", "g3", "--json"]).stdout)["channel"] == "12"


def test_a_bad_channel_in_the_config_file_names_the_file():
    assert add_gateway().exit_code == 0
    path = config_path()
    path.write_text(path.read_text().replace('[profiles.g]', '[profiles.g]\nchannel = "x1"'))
    r = runner.invoke(app, ["-p", "g", "profile", "show"])
    assert r.exit_code == 1
    assert r.stderr.splitlines()[0] == f"Error: channel 'x1' (profile 'g' in {path}) is not a New-API channel id"


def test_a_channel_on_another_provider_warns():
    r = runner.invoke(app, ["profile", "add", "oa", "--preset", "openai", "--api-key", KEY, "--channel", "3"])
    assert r.exit_code == 0
    warning = [line for line in r.stderr.splitlines() if line.startswith("Warning:")]
    assert warning == ["Warning: --channel pins a New-API channel; provider openai has no channels, yet the key is still "
                       "sent as <key>-3 (drop the channel, or use a profile with --provider newapi)"]  # fmt: skip
    shown = runner.invoke(app, ["--channel", "5", "profile", "show", "--json"])
    assert shown.exit_code == 0 and json.loads(shown.stdout)["channel"] == "5"
    assert "provider openai has no channels" in shown.stderr
    assert add_gateway().exit_code == 0
    quiet = runner.invoke(app, ["-p", "g", "--channel", "5", "profile", "show", "--json"])
    assert quiet.exit_code == 0 and "Warning" not in quiet.stderr

