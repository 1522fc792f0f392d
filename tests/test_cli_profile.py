"""`batchctl profile ...` in-process: add/list/use/show/remove, masking, errors."""

from __future__ import annotations

import json
import stat

from typer.testing import CliRunner

from batchctl.cli.app import app
from batchctl.config import config_path, load_config

runner = CliRunner()
KEY = "sk-verysecretkey9876"


def invoke(*args: str, **kwargs):
    return runner.invoke(app, list(args), **kwargs)


def test_add_list_use_show_remove():
    r = invoke("profile", "add", "work", "--preset", "openai", "--api-key", KEY)
    assert r.exit_code == 0, r.output
    assert stat.S_IMODE(config_path().stat().st_mode) == 0o600
    r = invoke("profile", "add", "gw", "--base-url", "http://localhost:3000", "--provider", "newapi", "--channel", "2", "--no-use")
    assert r.exit_code == 0, r.output
    assert load_config().active == "work"

    r = invoke("profile", "list", "--json")
    assert r.exit_code == 0
    views = {v["name"]: v for v in json.loads(r.stdout)}
    assert set(views) == {"work", "gw", "local"}
    assert views["work"]["active"] is True and views["gw"]["active"] is False
    assert views["work"]["api_key"] == "sk-…9876"
    assert views["gw"]["base_url"] == "http://localhost:3000/v1"  # bare host gets /v1
    assert KEY not in r.output

    r = invoke("profile", "list")
    assert r.exit_code == 0 and KEY not in r.output and "sk-…9876" in r.output
    assert invoke("-q", "profile", "list").stdout.split() == ["gw", "local", "work"]  # names only

    r = invoke("profile", "use", "gw")
    assert r.exit_code == 0 and load_config().active == "gw"

    r = invoke("profile", "show", "--json")
    view = json.loads(r.stdout)
    assert view["name"] == "gw" and view["channel"] == "2" and view["base_url"] == "http://localhost:3000/v1"

    r = invoke("--channel", "5", "profile", "show", "--json")
    assert json.loads(r.stdout)["channel"] == "5"
    assert json.loads(r.stdout)["sources"]["channel"] == "flag"

    r = invoke("profile", "show", "work")
    assert r.exit_code == 0 and "https://api.openai.com/v1" in r.stdout and KEY not in r.output

    r = invoke("profile", "remove", "gw")
    assert r.exit_code == 0
    assert load_config().active is None and "gw" not in load_config().profiles


def test_no_use_keeps_the_builtin_local_profile_active_in_a_fresh_config():
    """`--no-use` holds for the first saved profile too: `local` stays in use, nothing says `a` is."""
    r = invoke("profile", "add", "a", "--preset", "openai", "--api-key", "sk-test1234567890abcd", "--no-use")
    assert r.exit_code == 0, r.output
    assert "Saved profile 'a'" in r.stderr and "(active)" not in r.output
    assert load_config().active is None
    views = {v["name"]: v for v in json.loads(invoke("profile", "list", "--json").stdout)}
    assert views["local"]["active"] is True and views["a"]["active"] is False
    shown = json.loads(invoke("profile", "show", "--json").stdout)
    assert shown["name"] == "local" and shown["in_use"] == "the default"
    assert any(line.split() == ["active", "no"] for line in invoke("profile", "show", "a").stdout.splitlines())


def test_add_existing_needs_force():
    assert invoke("profile", "add", "a", "--base-url", "http://x", "--api-key", "k1").exit_code == 0
    r = invoke("profile", "add", "a", "--base-url", "http://y", "--api-key", "k2")
    assert r.exit_code == 1
    assert "Error: a profile named 'a' already exists" in r.stderr
    assert invoke("profile", "add", "a", "--base-url", "http://y", "--api-key", "k2", "--force").exit_code == 0
    assert load_config().profiles["a"].base_url == "http://y"


def test_add_requires_url_or_preset():
    r = invoke("profile", "add", "a")
    assert r.exit_code == 2
    assert "--base-url" in r.stderr


def test_use_unknown_profile_is_a_clear_error():
    r = invoke("profile", "use", "ghost")
    assert r.exit_code == 1
    assert "Error: no profile named 'ghost'" in r.stderr
    assert "Traceback" not in r.output


def test_profile_flag_and_env_select_profile(monkeypatch):
    invoke("profile", "add", "a", "--base-url", "http://a.example/v1", "--api-key", "k")
    invoke("profile", "add", "b", "--base-url", "http://b.example/v1", "--api-key", "k", "--no-use")
    assert json.loads(invoke("profile", "show", "--json").stdout)["name"] == "a"
    assert json.loads(invoke("-p", "b", "profile", "show", "--json").stdout)["name"] == "b"
    monkeypatch.setenv("BATCHCTL_PROFILE", "b")
    assert json.loads(invoke("profile", "show", "--json").stdout)["name"] == "b"
    assert json.loads(invoke("--profile", "a", "profile", "show", "--json").stdout)["name"] == "a"


def test_broken_config_gives_one_line_error():
    path = config_path()
    path.parent.mkdir(parents=True)
    path.write_text("[profiles.a\nbase_url = 1\n")
    r = invoke("profile", "list")
    assert r.exit_code == 1
    assert r.stderr.startswith("Error: config file ")
    assert "line 1" in r.stderr
    assert "Traceback" not in r.output


def test_debug_shows_traceback_on_error():
    path = config_path()
    path.parent.mkdir(parents=True)
    path.write_text("not toml at all = = =\n")
    r = invoke("--debug", "profile", "list")
    assert r.exit_code == 1
    assert "Traceback" in r.stderr


def test_add_refuses_a_url_that_is_not_http():
    r = invoke("profile", "add", "q", "--base-url", "notaurl", "--api-key", "k")
    assert r.exit_code == 2
    assert "base URL 'notaurl' must start with http:// or https://" in r.stderr
    assert "q" not in load_config().profiles


def test_show_names_env_vars_as_the_source(monkeypatch):
    monkeypatch.setenv("BATCHCTL_BASE_URL", "http://env.example:9000")
    monkeypatch.setenv("BATCHCTL_API_KEY", "sk-from-env-4321")
    view = json.loads(invoke("profile", "show", "--json").stdout)
    assert view["base_url"] == "http://env.example:9000/v1"
    assert view["sources"]["base_url"] == "env BATCHCTL_BASE_URL"
    assert view["sources"]["api_key"] == "env BATCHCTL_API_KEY"
    assert view["api_key"] == "sk-…4321"


def test_limit_overrides_reach_validate(tmp_path):
    assert invoke("profile", "add", "tight", "--preset", "local", "--max-line-mb", "1", "--max-requests", "1").exit_code == 0
    assert load_config().profiles["tight"].limits == {"max_requests": 1, "max_line_bytes": 1024 * 1024}
    source = tmp_path / "big.jsonl"
    body = {"model": "m", "messages": [{"role": "user", "content": "x" * (1024 * 1024)}]}
    source.write_text(
        "".join(
            json.dumps({"custom_id": f"r{i}", "method": "POST", "url": "/v1/chat/completions", "body": body}) + "\n"
            for i in range(2)
        )
    )
    report = json.loads(invoke("validate", str(source), "--json").stdout)
    codes = {p["code"] for p in report["problems"]}
    assert {"line_too_large", "too_many_requests"} <= codes


def test_builtin_local_cannot_be_removed():
    r = invoke("profile", "remove", "local")
    assert r.exit_code == 1
    assert r.stderr.startswith("Error: the 'local' profile is built in and cannot be removed")


def test_readme_profile_example_matches_what_profile_add_does():
    """The README says `profile add` makes the new profile active (and `--no-use` does not); its example,
    run command by command, leaves active the profile each comment names, and no `profile use` is a no-op."""
    import re
    import shlex
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Using a real provider", 1)[1].split("\n## ", 1)[0]
    prose, block = section.split("```bash", 1)
    assert "makes it the active one" in prose and "--no-use" in prose
    checked = 0
    for raw in block.split("```", 1)[0].strip().splitlines():
        command, _, comment = raw.partition("#")
        argv = shlex.split(command)[1:]
        if argv[:1] != ["profile"]:
            continue
        if argv[1] == "use":
            assert load_config().active != argv[2], f"{raw!r} changes nothing: the profile is already active"
        r = invoke(*argv)
        assert r.exit_code == 0, r.output
        said = re.search(r"(\w+) is now active|(\w+) stays active|back to (\w+)", comment)
        if said:
            assert load_config().active == next(filter(None, said.groups())), raw
            checked += 1
    assert checked >= 3
