"""`profile add/show` rough edges: names, a preset's placeholder beside --base-url, the show layout."""

from __future__ import annotations

from typer.testing import CliRunner

from batchctl.cli.app import app
from batchctl.config import config_path

runner = CliRunner()


def test_a_name_with_a_space_is_refused_and_valid_names_still_work():
    for bad in ("bad name", "a/b", "x;y", ""):
        r = runner.invoke(app, ["profile", "add", bad, "--preset", "openai", "--api-key", "sk-k-1234"])
        assert r.exit_code == 1, (bad, r.output)
        assert r.stderr.splitlines()[0] == f"Error: {bad!r} is not a usable profile name"
        assert "letters, digits" in r.stderr.splitlines()[1]
    assert not config_path().exists()
    for good in ("work", "ok.name_1-2", "Bailian-EU"):
        r = runner.invoke(app, ["profile", "add", good, "--preset", "openai", "--api-key", "sk-k-1234"])
        assert r.exit_code == 0, r.output


def test_resource_beside_an_explicit_base_url_is_refused():
    r = runner.invoke(app, ["profile", "add", "x", "--preset", "azure", "--resource", "r", "--base-url", "http://other/v1",
                            "--api-key", "k"])  # fmt: skip
    assert r.exit_code == 2
    assert "Error: --resource fills preset azure's base URL" in r.output and "--base-url gives the whole URL" in r.output
    assert not config_path().exists()


def test_show_says_yes_or_no_and_lines_up():
    assert runner.invoke(app, ["profile", "add", "a", "--preset", "openai", "--api-key", "sk-k-1234"]).exit_code == 0
    assert runner.invoke(app, ["profile", "add", "b", "--preset", "openai", "--api-key", "sk-k-1234", "--no-use"]).exit_code == 0
    for name, active in (("a", "yes"), ("b", "no")):
        out = runner.invoke(app, ["profile", "show", name]).stdout.splitlines()
        assert any(line.split() == ["active", active] for line in out), out
        assert "True" not in "\n".join(out) and "False" not in "\n".join(out)
        starts = {len(line) - len(line[line.index(" "):].lstrip()) for line in out}
        assert len(starts) == 1, out  # every value starts in the same column, custom_llm_provider's too


def test_a_profile_whose_url_carries_a_password_is_not_told_to_add_a_key():
    """`user:password@` in the base URL authenticates by itself, and a key beside it is refused: no
    "no API key stored" advice then. Without either, the advice stays."""
    with_password = runner.invoke(app, ["profile", "add", "withpw", "--base-url", "http://bob:trialpass00001234@127.0.0.1:9/v1", "--no-use"])
    assert with_password.exit_code == 0, with_password.output
    assert "no API key stored" not in with_password.output and "trialpass00001234" not in with_password.output
    without = runner.invoke(app, ["profile", "add", "nokey", "--base-url", "http://127.0.0.1:9/v1", "--no-use"])
    assert without.exit_code == 0 and "no API key stored" in without.output


def test_preset_local_stores_the_local_servers_port_batchctl_serve_port_included(monkeypatch):
    """`profile add small --preset local` stored 8765 while BATCHCTL_SERVE_PORT had moved the server: the
    profile then asked for, or autostarted, a server on another person's port."""
    monkeypatch.setenv("BATCHCTL_SERVE_PORT", "18780")
    added = runner.invoke(app, ["profile", "add", "small", "--preset", "local", "--max-requests", "10", "--no-use"])
    assert added.exit_code == 0, added.output
    shown = runner.invoke(app, ["profile", "show", "small", "--json"])
    import json

    assert json.loads(shown.stdout)["base_url"] == "http://127.0.0.1:18780/v1", shown.stdout


def test_profile_list_shows_the_local_profile_where_its_server_runs(monkeypatch):
    import json

    monkeypatch.setenv("BATCHCTL_SERVE_PORT", "18780")
    listed = runner.invoke(app, ["profile", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    local = next(p for p in json.loads(listed.stdout) if p["name"] == "local")
    assert local["base_url"] == "http://127.0.0.1:18780/v1"  # it said 8765, while `profile show` said 18780


def test_a_local_profile_on_another_machine_is_shown_at_its_own_url():
    """`profile show local` said http://127.0.0.1:8765/v1 while every command used the stored URL."""
    import json

    added = runner.invoke(app, ["profile", "add", "local", "--provider", "local", "--base-url",
                                "http://10.0.0.5:8765/v1", "--force"])  # fmt: skip
    assert added.exit_code == 0, added.output
    shown = runner.invoke(app, ["profile", "show", "local", "--json"])
    assert json.loads(shown.stdout)["base_url"] == "http://10.0.0.5:8765/v1", shown.stdout
