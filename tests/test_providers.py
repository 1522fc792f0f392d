"""The provider table: limits, endpoints, completion windows, overrides."""

from __future__ import annotations

import dataclasses

import pytest

from batchctl.providers import MB, PROVIDERS, format_size, get_provider, parse_window


def test_table_holds_every_preset():
    assert set(PROVIDERS) == {
        "openai", "dashscope", "newapi", "local", "groq", "together", "zhipu", "moonshot", "gemini", "azure", "litellm"
    }
    for name, spec in PROVIDERS.items():
        assert spec.name == name
        chat = "/v4/chat/completions" if name == "zhipu" else "/v1/chat/completions"
        assert chat in spec.endpoints


def test_openai_limits():
    spec = get_provider("openai")
    assert (spec.max_requests, spec.max_file_bytes, spec.max_line_bytes) == (50_000, 200 * MB, None)
    assert spec.endpoints == (
        "/v1/responses", "/v1/chat/completions", "/v1/embeddings", "/v1/completions", "/v1/moderations",
        "/v1/images/generations", "/v1/images/edits", "/v1/videos",
    )
    assert spec.max_embedding_inputs == 50_000
    assert spec.default_poll_interval == 10
    assert spec.live_counts is True


def test_dashscope_limits():
    spec = get_provider("dashscope")
    assert (spec.max_requests, spec.max_file_bytes, spec.max_line_bytes) == (50_000, 500 * MB, 6 * MB)
    assert spec.endpoints == ("/v1/chat/completions", "/v1/embeddings", "/v1/chat/ds-test")
    assert spec.default_poll_interval == 60
    assert spec.live_counts is False


def test_newapi_relays_dashscope_limits_but_polls_the_gateway_faster():
    newapi, dashscope = get_provider("newapi"), get_provider("dashscope")
    assert newapi.endpoints == dashscope.endpoints
    assert (newapi.max_requests, newapi.max_file_bytes, newapi.max_line_bytes) == (
        dashscope.max_requests,
        dashscope.max_file_bytes,
        dashscope.max_line_bytes,
    )
    assert newapi.live_counts is False
    assert newapi.default_poll_interval == 10


def test_local_limits():
    spec = get_provider("local")
    assert (spec.max_requests, spec.max_file_bytes) == (50_000, 200 * MB)
    assert spec.endpoints == ("/v1/chat/completions", "/v1/embeddings", "/v1/completions")
    assert spec.live_counts is True
    assert spec.default_poll_interval == 1.0  # loopback


def test_specs_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        get_provider("openai").max_requests = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("window", "seconds"),
    [("24h", 86400.0), ("30s", 30.0), ("90m", 5400.0), ("14d", 14 * 86400.0), ("336h", 336 * 3600.0), ("1s", 1.0)],
)
def test_parse_window(window, seconds):
    assert parse_window(window) == seconds


@pytest.mark.parametrize(
    "window", ["", "24", "h", "0h", "024h", "1.5h", "24 h", " 24h", "24H", "-1h", "1w", "24hours", None, 24]
)
def test_parse_window_rejects(window):
    assert parse_window(window) is None


@pytest.mark.parametrize(
    ("provider", "window", "ok"),
    [
        ("dashscope", "24h", True),
        ("dashscope", "336h", True),
        ("dashscope", "72h", True),
        ("dashscope", "1d", True),
        ("dashscope", "14d", True),
        ("dashscope", "15d", False),
        ("dashscope", "337h", False),
        ("dashscope", "12h", False),
        ("dashscope", "1440m", False),  # hours or days only
        ("dashscope", "soon", False),
        ("newapi", "7d", True),
        ("newapi", "12h", False),
        ("openai", "24h", True),
        ("openai", "1d", False),
        ("openai", "48h", False),
        ("openai", "1440m", False),
        ("local", "30s", True),
        ("local", "10m", True),
        ("local", "24h", True),
        ("local", "14d", True),
        ("local", "336h", True),
        ("local", "15d", False),
        ("local", "0s", False),
        ("local", "whenever", False),
    ],
)
def test_check_completion_window(provider, window, ok):
    error = get_provider(provider).check_completion_window(window)
    if ok:
        assert error is None
    else:
        assert error is not None
        assert f'"{window}"' in error and provider in error


def test_completion_window_errors_say_what_is_accepted():
    assert "24h" in get_provider("openai").check_completion_window("48h")
    error = get_provider("dashscope").check_completion_window("15d")
    assert "336h" in error and "14d" in error
    assert "336h" in get_provider("local").check_completion_window("15d")


def test_get_provider_default_is_local():
    assert get_provider(None).name == "local"


def test_get_provider_ignores_case():
    assert get_provider("DashScope").name == "dashscope"


def test_get_provider_unknown_lists_the_known_ones():
    with pytest.raises(ValueError) as info:
        get_provider("anthropic")
    message = str(info.value)
    assert "anthropic" in message
    for name in ("dashscope", "local", "newapi", "openai"):
        assert name in message


def test_overrides_replace_limits_and_keep_the_rest():
    base = get_provider("dashscope")
    spec = get_provider("dashscope", {"max_requests": 10_000, "max_file_bytes": None})
    assert spec.max_requests == 10_000
    assert spec.max_file_bytes == base.max_file_bytes  # None: no override
    assert spec.endpoints == base.endpoints and spec.live_counts is False
    assert PROVIDERS["dashscope"].max_requests == 50_000  # the table is untouched


def test_override_zero_removes_the_line_limit():
    assert get_provider("dashscope").with_overrides(max_line_bytes=0).max_line_bytes is None


@pytest.mark.parametrize(
    "kw",
    [
        {"endpoints": ("/v1/x",)},
        {"max_requests": 0},
        {"max_requests": -5},
        {"max_file_bytes": "big"},
        {"max_requests": True},
    ],
)
def test_bad_overrides_are_refused(kw):
    with pytest.raises(ValueError):
        get_provider("openai").with_overrides(**kw)


def test_no_overrides_returns_the_same_spec():
    spec = get_provider("openai")
    assert spec.with_overrides() is spec
    assert get_provider("openai", {}) is spec


@pytest.mark.parametrize(
    ("requests", "size", "parts"),
    [
        (0, 0, 1),
        (3, 10, 1),
        (50_000, 200 * MB, 1),
        (50_001, 10, 2),
        (120_000, 10, 3),
        (10, 450 * MB, 3),
        (120_000, 900 * MB, 5),
    ],
)
def test_parts_needed_counts_both_limits(requests, size, parts):
    assert get_provider("openai").parts_needed(requests, size) == parts


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (0, "0 bytes"),
        (900, "900 bytes"),
        (2048, "2 KB"),
        (200 * MB, "200 MB"),
        (6 * MB + MB // 2, "6.5 MB"),
        (1536 * MB, "1,536 MB"),
    ],
)
def test_format_size(n, text):
    assert format_size(n) == text


def test_importing_providers_is_cheap():
    import subprocess
    import sys

    heavy = "('typer', 'rich', 'httpx', 'pydantic', 'click')"
    code = f"import sys, batchctl.providers, batchctl.validation; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# -- per-provider line rules (validation/provider_rules.py) ------------------------------------------------


def test_only_providers_with_line_rules_pay_for_them():
    from batchctl.validation.provider_rules import rules_for

    with_rules = {name for name, spec in PROVIDERS.items() if rules_for(spec) is not None}
    assert with_rules == {"openai", "zhipu", "moonshot"}


@pytest.mark.parametrize(
    ("value", "inputs"),
    [("one text", 1), (["a", "b", "c"], 3), ([1, 2, 3], 1), ([[1, 2], [3]], 2), ([], 0), (None, 0)],
)
def test_embedding_inputs_count_texts_and_token_arrays(value, inputs):
    from batchctl.validation.provider_rules import _embedding_inputs

    assert _embedding_inputs(value) == inputs


def test_endpoint_hint_names_the_same_route_under_the_providers_prefix():
    from batchctl.validation.provider_rules import endpoint_hint

    zhipu, openai = get_provider("zhipu"), get_provider("openai")
    assert endpoint_hint(zhipu, "/v1/chat/completions") == '; use "/v4/chat/completions" instead (zhipu\'s path for it)'
    assert endpoint_hint(openai, "/v4/embeddings") == '; use "/v1/embeddings" instead (openai\'s path for it)'
    assert endpoint_hint(zhipu, "/v1/responses") == ""
    assert endpoint_hint(zhipu, 42) == ""
