"""`profile add NAME --preset P` (issue #18): every provider in the table is a preset that fills base URL
and provider; azure's URL needs `--resource`; an explicit `--base-url` still wins."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from batchctl.config import load_config
from batchctl.providers import PROVIDERS

runner = CliRunner()


def run(*args: str):
    from batchctl.cli.app import app

    return runner.invoke(app, list(args))


EXPECTED = {
    "groq": "https://api.groq.com/openai/v1",
    "together": "https://api.together.xyz/v1",
    "zhipu": "https://open.bigmodel.cn/api/paas/v4",
    "moonshot": "https://api.moonshot.cn/v1",
    "gemini": "https://generativelanguage.googleapis.com/v1beta/openai",
    "litellm": "http://localhost:4000/v1",
    "openai": "https://api.openai.com/v1",
    "dashscope": "https://dashscope.aliyuncs.com/compatible-mode/v1",
    "dashscope-intl": "https://dashscope-intl.aliyuncs.com/compatible-mode/v1",
}


@pytest.mark.parametrize("preset", sorted(EXPECTED))
def test_preset_fills_base_url_and_provider(preset):
    result = run("profile", "add", "p", "--preset", preset, "--api-key", "sk-secret-value", "--json")
    assert result.exit_code == 0, result.output
    view = json.loads(result.stdout)
    assert view["base_url"] == EXPECTED[preset]
    provider = preset.split("-")[0]
    assert view["provider"] == provider
    assert "sk-secret-value" not in result.output
    saved = load_config().profiles["p"]
    assert (saved.provider, saved.base_url.rstrip("/")) == (provider, EXPECTED[preset])


def test_every_provider_but_local_has_a_preset_of_its_name():
    from batchctl.config import PRESETS

    assert {name for name in PROVIDERS} <= set(PRESETS)
    assert PRESETS["local"][1] == "local"


def test_azure_needs_a_resource_and_says_so():
    result = run("profile", "add", "az", "--preset", "azure", "--api-key", "k")
    assert result.exit_code == 2
    assert result.output.splitlines()[0] == (
        "Error: preset azure needs --resource NAME to fill its base URL https://{resource}.openai.azure.com/openai/v1/"
    )
    assert "Add --resource NAME, or give the whole URL with --base-url URL." in result.output
    assert "Traceback" not in result.output
    assert "az" not in load_config().profiles


def test_azure_with_a_resource_fills_the_url():
    result = run("profile", "add", "az", "--preset", "azure", "--resource", "contoso-eu", "--api-key", "k", "--json")
    assert result.exit_code == 0, result.output
    view = json.loads(result.stdout)
    assert (view["provider"], view["base_url"]) == ("azure", "https://contoso-eu.openai.azure.com/openai/v1")


def test_azure_with_an_explicit_base_url_needs_no_resource():
    url = "https://proxy.example/openai/v1"
    result = run("profile", "add", "az", "--preset", "azure", "--base-url", url, "--api-key", "k", "--json")
    assert result.exit_code == 0, result.output
    assert (json.loads(result.stdout)["base_url"], load_config().profiles["az"].provider) == (url, "azure")


def test_a_resource_that_is_not_a_host_label_is_refused():
    result = run("profile", "add", "az", "--preset", "azure", "--resource", "evil.example/x", "--api-key", "k")
    assert result.exit_code == 2
    assert "Error: --resource 'evil.example/x' is not a host name label" in result.output


def test_dashscope_workspace_endpoint_takes_the_workspace_id():
    result = run(
        "profile", "add", "ds", "--preset", "dashscope-intl-workspace", "--workspace-id", "ws-42", "--api-key", "k", "--json"
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["base_url"] == "https://ws-42.ap-southeast-1.maas.aliyuncs.com/compatible-mode/v1"


def test_resource_on_a_preset_without_one_is_refused():
    result = run("profile", "add", "o", "--preset", "openai", "--resource", "x", "--api-key", "k")
    assert result.exit_code == 2
    assert "Error: --resource is not used by preset openai" in result.output
    without = run("profile", "add", "o", "--base-url", "http://h/v1", "--resource", "x", "--api-key", "k")
    assert without.exit_code == 2
    assert "give --preset too" in without.output


def test_unknown_preset_lists_the_known_ones():
    result = run("profile", "add", "x", "--preset", "nope", "--api-key", "k")
    assert result.exit_code == 2
    assert "Error: unknown preset 'nope'" in result.output
    assert "groq" in result.output and "batchctl providers" in result.output


def test_existing_options_still_apply_with_a_preset():
    result = run(
        "profile", "add", "g", "--preset", "groq", "--api-key-env", "GROQ_KEY", "--max-requests", "1000",
        "--poll-interval", "5", "--no-use", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    view = json.loads(result.stdout)
    assert (view["provider"], view["api_key_env"], view["poll_interval"], view["limits"]) == (
        "groq", "GROQ_KEY", 5.0, {"max_requests": 1000}
    )
    assert view["active"] is False  # --no-use, even for the first profile of a config: `local` stays active
