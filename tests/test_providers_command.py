"""`batchctl providers [NAME]`: the provider table as a Rich table on a terminal, aligned plain lines when
piped, `--json` with the documented Provider shape; one provider in detail; an unknown name refused."""

from __future__ import annotations

import json
import re

import pytest
from test_json_shapes import documented_keys
from typer.testing import CliRunner

from batchctl.cli.app import app
from batchctl.providers import PROVIDERS

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, list(args))


def test_json_lists_every_provider_with_the_documented_keys():
    result = run("providers", "--json")
    assert result.exit_code == 0, result.output
    views = json.loads(result.stdout)
    assert [v["name"] for v in views] == list(PROVIDERS)
    keys = documented_keys()["Provider"]
    for view in views:
        assert set(view) == keys, view["name"]
    by_name = {v["name"]: v for v in views}
    azure = by_name["azure"]
    assert (azure["max_requests"], azure["max_file_bytes"], azure["batch_discount"]) == (100_000, 200 * 1024 * 1024, 0.5)
    assert azure["base_url"] == "https://{resource}.openai.azure.com/openai/v1/"
    assert by_name["zhipu"]["endpoint_max_requests"] == {"/v4/embeddings": 10_000}
    assert by_name["openai"]["max_embedding_inputs"] == 50_000
    assert by_name["dashscope"]["presets"] == {
        "dashscope": "https://dashscope.aliyuncs.com/compatible-mode/v1",
        "dashscope-intl": "https://dashscope-intl.aliyuncs.com/compatible-mode/v1",
        "dashscope-intl-workspace": "https://{workspace_id}.ap-southeast-1.maas.aliyuncs.com/compatible-mode/v1",
    }
    assert by_name["local"]["base_url"] == "http://127.0.0.1:8765/v1"
    assert by_name["litellm"]["batch_discount"] is None
    assert by_name["gemini"]["unsupported"] and by_name["moonshot"]["refused_params_verified"] is False
    assert set(by_name["groq"]["wire"]) >= {"upload_purpose", "auth_header", "serves_files"}


def test_piped_output_is_one_aligned_plain_line_per_provider():
    result = run("providers")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 1 + len(PROVIDERS)
    assert lines[0].split()[:3] == ["provider", "base", "URL"]
    assert "│" not in result.stdout and "┃" not in result.stdout  # no Rich box drawing in a pipe
    groq = next(line for line in lines if line.startswith("groq "))
    assert "https://api.groq.com/openai/v1" in groq
    assert "50,000" in groq and "200 MB" in groq and "/v1/audio/transcriptions" in groq
    assert "24h to 7d" in groq and "50% off" in groq
    # the base URL column starts at the same place on every line
    column = lines[0].index("base URL")
    assert all(line[column - 2 : column] == "  " and line[column] != " " for line in lines[1:])


def test_on_a_terminal_it_is_a_rich_table(monkeypatch):
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    monkeypatch.setenv("COLUMNS", "240")
    result = run("providers")
    assert result.exit_code == 0, result.output
    text = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout)  # a terminal gets bold headers
    assert "┃ provider" in text and "┏" in text
    assert "│ azure" in text and "100,000" in text


def test_one_provider_in_detail():
    result = run("providers", "zhipu")
    assert result.exit_code == 0, result.output
    rows = dict(line.split(None, 1) for line in result.stdout.splitlines() if not line.startswith(("preset", "counts")))
    assert rows["provider"] == "zhipu (Zhipu AI (BigModel))"
    assert rows["limits"] == "50,000 requests, 100 MB per file, no line limit, 10,000 requests to /v4/embeddings"
    assert rows["endpoints"] == "/v4/chat/completions, /v4/embeddings"
    assert "preset zhipu" in result.stdout and "https://open.bigmodel.cn/api/paas/v4" in result.stdout
    assert "url: /v4/chat/completions" in result.stdout
    assert "unverified" in rows["figures"]


def test_one_provider_as_json_is_an_object():
    result = run("providers", "Moonshot", "--json")
    assert result.exit_code == 0, result.output
    view = json.loads(result.stdout)
    assert view["name"] == "moonshot" and view["endpoints"] == ["/v1/chat/completions"]
    assert view["refused_params"]


@pytest.mark.parametrize("json_flag", [[], ["--json"]])
def test_an_unknown_provider_is_refused_with_the_known_ones(json_flag):
    result = run("providers", "nope", *json_flag)
    assert result.exit_code == 2
    text = result.stdout if json_flag else result.output
    assert "unknown provider 'nope'" in text
    assert "groq" in text and "Traceback" not in result.output
    if json_flag:
        assert json.loads(result.stdout)["error"]["exit_code"] == 2


BOX_ONLY = re.compile(r"^[\s│┃|]*$")


@pytest.mark.parametrize("columns", [80, 120, 200])
def test_on_a_real_terminal_every_provider_fits_the_width(columns):
    """At 80 and 120 columns the key facts of every provider are readable: no line wider than the terminal,
    every name whole at the start of its row, the base URLs whole, no run of blank lines; wide enough, the
    full table (endpoints, windows, quirks)."""
    import os

    from test_cli_status import run_in_pty
    from test_dashboard_fit import CONTROL

    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "COLUMNS", "LINES", "CI")}
    env.update(PYTHONUNBUFFERED="1", TERM="xterm-256color")
    code, raw = run_in_pty(["providers"], env, columns=columns, rows=50)
    text = CONTROL.sub(b"", raw).decode("utf-8", "replace").replace("\r", "")
    assert code == 0, text
    lines = text.rstrip("\n").split("\n")
    too_wide = [line for line in lines if len(line) > columns]
    assert not too_wide, "\n".join(too_wide)
    blank_runs = [i for i in range(1, len(lines)) if BOX_ONLY.match(lines[i]) and BOX_ONLY.match(lines[i - 1])]
    assert not blank_runs, text
    starts = {re.sub(r"^[│\s]+", "", line).split(" ")[0] for line in lines}
    for name, spec in PROVIDERS.items():
        assert name in starts, name
        if spec.base_url:
            assert spec.base_url in text, spec.base_url  # never folded: people copy it
    assert "50% off" in text and "500 MB" in text and "6 MB" in text
    if columns < 200:
        assert "batchctl providers NAME" in text  # where the endpoints, windows and quirks are
    else:
        assert "/v1/audio/transcriptions" in text and "quirks" in text


DOC_NOTES = re.compile(r"\bissue\b|#\d|session|\bseeds?\b|as remembered|web access", re.I)
DEV_NOTES = re.compile(DOC_NOTES.pattern + "|tests/", re.I)  # what a command prints names no test file


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def test_what_users_read_is_in_their_words_not_development_notes():
    """No "issue", "session", "seed", "as remembered" or "no web access" in the JSON or the detail view;
    figures not checked against the provider's docs say so with a date and what to do."""
    views = json.loads(run("providers", "--json").stdout)
    leaks = [(v["name"], text) for v in views for text in _strings(v) if DEV_NOTES.search(text)]
    assert not leaks, leaks
    for name in PROVIDERS:
        detail = run("providers", name)
        assert detail.exit_code == 0, detail.output
        assert not DEV_NOTES.search(detail.stdout), (name, detail.stdout)
    by_name = {v["name"]: v for v in views}
    for name in ("openai", "together", "groq", "azure"):
        assert by_name[name]["verified"].startswith("unverified (2026-11-30): not checked against the provider's")
        assert "before relying on them" in by_name[name]["verified"]
    assert "unverified (2026-11-30)" in by_name["dashscope"]["verified"]
    assert by_name["local"]["verified"] is None


def test_docs_providers_cite_provider_docs_and_the_real_journal():
    from pathlib import Path

    doc = (Path(__file__).resolve().parent.parent / "docs" / "providers.md").read_text(encoding="utf-8")
    assert not DOC_NOTES.search(doc), DOC_NOTES.search(doc).group(0)
    assert "journal.jsonl" not in doc and "`<data dir>/journal.db`, SQLite" in doc
    assert (Path(__file__).resolve().parent.parent / "docs" / "jobs.md").read_text(encoding="utf-8").count("journal.db")
    assert "unverified (2026-11-30)" in doc.lower()
    for spec in PROVIDERS.values():
        if spec.docs_url and "github.com" not in spec.docs_url:
            assert f"<{spec.docs_url}>" in doc, spec.docs_url
