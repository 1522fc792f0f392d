"""`batchctl validate` on a profile of each preset (issue #18): its endpoints, request limits, per-endpoint
and embedding-input limits, zhipu's `/v4` paths, moonshot's refused parameters; windows through `submit`.

Each test makes a profile with `profile add --preset P` and runs the CLI, as a user would; nothing is
contacted (validate is offline; submit refuses a window before it uploads).
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from batchctl.cli.app import app
from batchctl.providers import PROVIDERS

runner = CliRunner()

_ZHIPU_CHAT = "/v4/chat/completions"
# One endpoint each preset serves, and one it does not (with the words of the refusal).
SERVED_AND_NOT = {
    "openai": ("/v1/moderations", "/v1/chat/ds-test"),
    "dashscope": ("/v1/chat/ds-test", "/v1/responses"),
    "groq": ("/v1/audio/transcriptions", "/v1/embeddings"),
    "together": ("/v1/completions", "/v1/embeddings"),
    "zhipu": ("/v4/embeddings", "/v1/embeddings"),
    "moonshot": ("/v1/chat/completions", "/v1/embeddings"),
    "gemini": ("/v1/embeddings", "/v1/responses"),
    "azure": ("/v1/responses", "/v1/completions"),
    "litellm": ("/v1/completions", "/v1/moderations"),
}
LIMITS = {  # preset: (requests per file, "size per file" as the summary prints it)
    "openai": (50_000, "200 MB"),
    "dashscope": (50_000, "500 MB"),
    "groq": (50_000, "200 MB"),
    "together": (50_000, "100 MB"),
    "zhipu": (50_000, "100 MB"),
    "moonshot": (50_000, "100 MB"),
    "gemini": (50_000, "2,048 MB"),
    "azure": (100_000, "200 MB"),
    "litellm": (50_000, "200 MB"),
}


def run(*args: str):
    return runner.invoke(app, list(args))


def request(cid: str, url: str, **body) -> str:
    if url.endswith(("/chat/completions", "/chat/ds-test")):
        body.setdefault("messages", [{"role": "user", "content": "hi"}])
    elif url.endswith("/completions"):
        body.setdefault("prompt", "hi")
    else:
        body.setdefault("input", "hi")
    return json.dumps({"custom_id": cid, "method": "POST", "url": url, "body": {"model": "m", **body}})


def use_preset(preset: str) -> None:
    extra = ["--resource", "res"] if preset == "azure" else []
    result = run("profile", "add", preset, "--preset", preset, "--api-key", "sk-test", *extra)
    assert result.exit_code == 0, result.output


def write(path, lines: list[str]):
    path.write_text("\n".join(lines) + "\n")
    return str(path)


@pytest.fixture(scope="module")
def too_many(tmp_path_factory):
    """`too_many(url, count)`: a file of `count` requests to `url`, written once per module when first asked."""
    base = tmp_path_factory.mktemp("limits")
    files: dict[tuple[str, int], str] = {}

    def make(url: str, count: int) -> str:
        if (url, count) not in files:
            template = request("ID", url)
            path = base / f"{count}{url.replace('/', '_')}.jsonl"
            path.write_text("".join(template.replace('"ID"', f'"r{i}"') + "\n" for i in range(count)))
            files[url, count] = str(path)
        return files[url, count]

    return make


@pytest.mark.parametrize("preset", sorted(SERVED_AND_NOT))
def test_each_preset_accepts_its_endpoints_and_refuses_others(preset, tmp_path):
    use_preset(preset)
    served, not_served = SERVED_AND_NOT[preset]
    assert served in PROVIDERS[preset].endpoints and not_served not in PROVIDERS[preset].endpoints
    ok = run("validate", write(tmp_path / "ok.jsonl", [request("a", served), request("b", served)]))
    assert ok.exit_code == 0, ok.output
    assert f"valid for {preset}" in ok.output
    requests, size = LIMITS[preset]
    assert f"{preset}: {requests:,} requests, {size} per file" in ok.stdout

    bad = run("validate", write(tmp_path / "bad.jsonl", [request("a", not_served)]), "--json")
    assert bad.exit_code == 1
    problem = json.loads(bad.stdout)["problems"][0]
    assert problem["param"] == "url"
    assert f'url "{not_served}" is not an endpoint {preset} supports' in problem["message"]


# Every preset's limits show in the summary (test above); a file one request over them is refused here
# for the two request limits in the table (50,000 and azure's 100,000) and zhipu's /v4 lines.
@pytest.mark.parametrize("preset", ["openai", "zhipu", "azure"])
def test_a_file_one_request_over_the_limit_is_refused(preset, too_many):
    use_preset(preset)
    limit = LIMITS[preset][0]
    url = _ZHIPU_CHAT if preset == "zhipu" else "/v1/chat/completions"
    result = run("validate", too_many(url, limit + 1), "--json")
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert [p["code"] for p in report["problems"]] == ["too_many_requests"]
    assert f"1 over {preset}'s limit of {limit:,} per batch" in report["problems"][0]["message"]


def test_zhipu_v1_line_is_told_to_use_v4(tmp_path):
    use_preset("zhipu")
    result = run("validate", write(tmp_path / "v1.jsonl", [request("a", "/v1/chat/completions")]))
    assert result.exit_code == 1
    assert 'line 1: url "/v1/chat/completions" is not an endpoint zhipu supports' in result.output
    assert 'use "/v4/chat/completions" instead' in result.output
    good = run("validate", write(tmp_path / "v4.jsonl", [request("a", _ZHIPU_CHAT)]))
    assert good.exit_code == 0, good.output
    chosen = run("validate", str(tmp_path / "v4.jsonl"), "--endpoint", "/v1/chat/completions")
    assert chosen.exit_code == 1
    assert 'the batch endpoint "/v1/chat/completions" is not one zhipu supports' in chosen.output
    assert 'use "/v4/chat/completions" instead' in chosen.output


def test_zhipu_v4_chat_lines_still_have_their_messages_checked(tmp_path):
    use_preset("zhipu")
    result = run("validate", write(tmp_path / "v4.jsonl", [request("a", _ZHIPU_CHAT, messages=[])]))
    assert result.exit_code == 1
    assert "line 1: body.messages must be a non-empty array, not empty" in result.output


def test_zhipu_embeddings_are_limited_to_10000_requests(tmp_path):
    use_preset("zhipu")
    template = request("ID", "/v4/embeddings")
    lines = [template.replace('"ID"', f'"e{i}"') for i in range(10_001)]
    result = run("validate", write(tmp_path / "emb.jsonl", lines), "--json")
    assert result.exit_code == 1
    messages = [p["message"] for p in json.loads(result.stdout)["problems"]]
    assert messages == [
        "the file has 10,001 requests to /v4/embeddings, 1 over zhipu's limit of 10,000 per batch for that "
        "endpoint; split it into files of at most 10,000"
    ]
    ok = run("validate", write(tmp_path / "ok.jsonl", lines[:10_000]))
    assert ok.exit_code == 0, ok.output


def test_openai_counts_embedding_inputs_over_the_whole_file(tmp_path):
    use_preset("openai")
    lines = [
        request("a", "/v1/embeddings", input=["x"] * 30_000),
        request("b", "/v1/embeddings", input=["y"] * 20_000),
        request("c", "/v1/embeddings", input=[1, 2, 3]),  # token ids: one input
    ]
    result = run("validate", write(tmp_path / "emb.jsonl", lines), "--json")
    assert result.exit_code == 1
    problems = json.loads(result.stdout)["problems"]
    assert [p["code"] for p in problems] == ["too_many_embedding_inputs"]
    assert "50,001 embedding inputs, over openai's limit of 50,000 inputs per batch" in problems[0]["message"]
    ok = run("validate", write(tmp_path / "ok.jsonl", lines[:2]))
    assert ok.exit_code == 0, ok.output


def test_moonshot_warns_of_sampling_parameters_it_may_refuse(tmp_path):
    use_preset("moonshot")
    lines = [request("a", "/v1/chat/completions", n=2, temperature=0.3)]
    lines += [request(f"b{i}", "/v1/chat/completions", n=2) for i in range(2)]
    result = run("validate", write(tmp_path / "m.jsonl", lines), "--json")
    assert result.exit_code == 0, result.output  # unverified: a warning, not a refusal
    warnings = json.loads(result.stdout)["warnings"]
    assert [(w["code"], w["line"], w["param"]) for w in warnings] == [("refused_parameter", 1, "body.n")]
    assert "body.n may be refused by moonshot (and on 2 more lines)" in warnings[0]["message"]
    plain = run("validate", str(tmp_path / "m.jsonl"))
    assert "Warning: line 1: body.n may be refused by moonshot" in plain.output


@pytest.mark.parametrize(
    "preset, refused, accepted",
    [("groq", "8d", "7d"), ("together", "48h", "24h"), ("azure", "1d", "24h"), ("dashscope", "337h", "14d")],
)
def test_submit_refuses_a_window_the_preset_does_not_offer(preset, refused, accepted, tmp_path):
    use_preset(preset)
    path = write(tmp_path / "in.jsonl", [request("a", "/v1/chat/completions")])
    result = run("submit", path, "--completion-window", refused)
    assert result.exit_code == 1
    assert f'completion window "{refused}" is not accepted by {preset}: use {PROVIDERS[preset].completion_windows}' in result.output
    assert PROVIDERS[preset].check_completion_window(accepted) is None
