"""The one error map: API errors and unexpected exceptions become one line, a hint and an exit code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from batchctl.api import errors as api
from batchctl.cli.errors import report_exception
from batchctl.cli.output import Output
from batchctl.errors import EXIT_ERROR, EXIT_INTERRUPTED, BatchctlError


def report(exc: BaseException, capsys, debug: bool = False) -> tuple[int, str]:
    code = report_exception(exc, Output(), debug=debug)
    captured = capsys.readouterr()
    assert captured.out == ""  # talk goes to stderr, never stdout
    return code, captured.err


def test_batchctl_error_message_hint_and_code(capsys):
    code, err = report(BatchctlError("the batch failed", hint="Look at its errors.", exit_code=3), capsys)
    assert code == 3
    assert err.splitlines()[0] == "Error: the batch failed"
    assert "Look at its errors." in err


def test_api_errors_carry_status_and_request_id(capsys):
    exc = api.AuthenticationError("Incorrect API key provided", status=401, code="invalid_api_key", request_id="req_42")
    code, err = report(exc, capsys)
    assert code == EXIT_ERROR
    first = err.splitlines()[0]
    assert first.startswith("Error: the server rejected the API key (HTTP 401)")
    assert "req_42" in first


def test_connection_error_hint(capsys):
    code, err = report(api.APIConnectionError("connection refused to http://127.0.0.1:9/v1"), capsys)
    assert code == EXIT_ERROR
    assert err.startswith("Error: connection refused to") and "base URL" in err


def test_unexpected_exception_without_traceback(capsys):
    code, err = report(ValueError("boom"), capsys)
    assert code == EXIT_ERROR
    assert "Error: unexpected ValueError: boom" in err
    assert "Traceback" not in err and "--debug" in err


def test_keyboard_interrupt_is_130(capsys):
    code, err = report(KeyboardInterrupt(), capsys)
    assert "Run the same command again to go on." in err  # a next step, not a bare "Interrupted."
    assert code == EXIT_INTERRUPTED


def test_a_urls_password_is_masked_in_any_error_its_hint_and_the_debug_traceback(capsys):
    try:
        raise BatchctlError("nothing answers at http://bob:hunter2pass@gw.test/v1", hint="Try http://bob:hunter2pass@gw.test:81")
    except BatchctlError as exc:
        code, err = report(exc, capsys, debug=True)
    assert code == EXIT_ERROR and "Traceback" in err and "hunter2pass" not in err
    assert "Error: nothing answers at http://bob:****@gw.test/v1" in err and "Try http://bob:****@gw.test:81" in err


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("http://bob:hunter2pass@127.0.0.1:8799/v1", "http://bob:****@127.0.0.1:8799/v1"),
        ("could not reach HTTPS://bob:p@ss'1@gw/v1/batches: refused", "could not reach HTTPS://bob:****@gw/v1/batches: refused"),
        ("invalid base URL 'ftp://bob:pw@gw' (from flag)", "invalid base URL 'ftp://bob:****@gw' (from flag)"),
        ('{"a": "http://:pw@gw", "b": "ann@example.test"}', '{"a": "http://:****@gw", "b": "ann@example.test"}'),
        ("http://gw:8080/v1 asks ann@example.test", "http://gw:8080/v1 asks ann@example.test"),  # a port, no password
        ("http://token@gw/v1 and http://bob:@gw", "http://token@gw/v1 and http://bob:@gw"),  # no password to hide
        ("http://bob@corp.com:hunter2@127.0.0.1:1/v1", "http://bob@corp.com:****@127.0.0.1:1/v1"),  # an e-mail login
    ],
)
def test_display_url_masks_only_passwords(text, shown):
    from batchctl.masking import Redactor
    from batchctl.urls import display_url

    assert display_url(text) == shown == Redactor([])(text)


def test_a_pasted_key_loses_its_newline_and_a_control_character_inside_is_refused_unshown(monkeypatch):
    """httpx refuses a header with a control character in words that showed the key whole."""
    from typer.testing import CliRunner

    from batchctl.cli.app import app
    from batchctl.config import resolve_settings

    monkeypatch.setenv("BATCHCTL_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("BATCHCTL_API_KEY", "abcdef-my-gateway-token-XYZ\r\n")
    assert resolve_settings().api_key == "abcdef-my-gateway-token-XYZ"
    monkeypatch.setenv("BATCHCTL_API_KEY", "abcdef-my\r-gateway-token-XYZ")
    for args in (["list"], ["--json", "list"], ["--debug", "list"]):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 1
        assert "the API key (from env BATCHCTL_API_KEY) holds a control character" in result.output
        assert "gateway-token" not in result.output


def _batchctl(*args: str | bytes, cwd=None) -> subprocess.CompletedProcess:
    """The real CLI in a process of its own (argv bytes reach it as the system passes them)."""
    return subprocess.run([sys.executable, "-m", "batchctl", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=60, env={**os.environ, "BATCHCTL_AUTOSTART": "0"})  # fmt: skip


def _one_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == EXIT_ERROR, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr and "unexpected" not in result.stderr, result.stderr
    return result.stderr


def test_an_argument_that_is_not_utf8_is_named_by_its_byte_not_reported_as_unexpected(isolation):
    stderr = _one_error(_batchctl("status", b"batch_\xff"))
    assert "Error: a command-line argument or environment value holds the byte 0xff, which is not UTF-8 text" in stderr


def test_a_key_with_a_character_headers_cannot_carry_is_refused_without_showing_the_key(isolation):
    stderr = _one_error(_batchctl("--base-url", "http://127.0.0.1:9/v1", "--api-key", "sk-secretvalue\u2019", "list"))
    assert "holds the character U+2019, which headers cannot carry" in stderr
    assert "secretvalue" not in stderr


def test_a_value_nested_thousands_deep_is_refused_in_words(isolation, tmp_path):
    (tmp_path / "deep.jsonl").write_text("[" * 100_000 + "\n")
    stderr = _one_error(_batchctl("usage", "deep.jsonl", cwd=tmp_path))
    assert "Error: the data is nested too deeply to read" in stderr


def test_a_damaged_journal_is_named_with_what_to_do(isolation):
    journal = Path(os.environ["BATCHCTL_DATA_DIR"]) / "journal.db"
    journal.parent.mkdir(parents=True, exist_ok=True)
    journal.write_text("not a database\n")
    stderr = _one_error(_batchctl("jobs"))
    assert f"Error: the journal {journal} is not a readable database" in stderr
    assert f"mv {journal} {journal}.broken" in stderr


def test_a_urls_password_sent_as_basic_auth_is_masked_when_the_server_echoes_it(isolation):
    """A base URL `http://user:password@host` authenticates with `Basic base64(user:password)`; a gateway
    that echoes the Authorization header in its 401 must not get it shown (it decodes to the password)."""
    import base64
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Echo(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps({"error": {"message": f"Incorrect API key provided: {self.headers['Authorization']}",
                                         "type": "invalid_request_error"}}).encode()  # fmt: skip
            self.send_response(401)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://bob:trialpass0000001234@127.0.0.1:{server.server_address[1]}/v1"
        result = _batchctl("--base-url", url, "list")
    finally:
        server.shutdown()
    token = base64.b64encode(b"bob:trialpass0000001234").decode()
    assert result.returncode == EXIT_ERROR and "Incorrect API key provided: Basic " in result.stderr, result.stderr
    assert token not in result.stderr and "trialpass0000001234" not in result.stderr


def test_a_base_url_with_a_query_is_refused_without_showing_it(isolation):
    """`?key=sk-…` in a base URL was dropped without a word (client) or sent in the middle of every path
    (`serve --upstream`, whose start line printed the key); a query, a fragment or a bad port is refused,
    and the message shows none of the query."""
    for args in (["--base-url", "http://127.0.0.1:9/v1?key=sk-adv-000000000000abcd", "list"],
                 ["profile", "add", "q", "--base-url", "http://127.0.0.1:9/v1?key=sk-adv-000000000000abcd"],
                 ["serve", "--port", "9", "--upstream", "http://127.0.0.1:9/v1?key=sk-adv-000000000000abcd"]):  # fmt: skip
        result = _batchctl(*args)
        assert result.returncode in (1, 2), (args, result.stderr)
        assert "has a query or a fragment" in result.stderr and "000000abcd" not in result.stderr, (args, result.stderr)
    bad_port = _batchctl("--base-url", "http://127.0.0.1:99999/v1", "list")
    assert bad_port.returncode == 1 and "has an invalid port" in bad_port.stderr, bad_port.stderr


def test_a_refused_base_url_never_shows_a_password_holding_a_url_delimiter(isolation):
    """A password holding `#`, `?` or `/` (unescaped) makes the URL read as a fragment, a query or a path
    after the host `user:password`: the refusal showed the password up to that character in full."""
    for password in ("s3cretpass#1", "s3cretpass?1", "s3cretpass/1"):
        for args in (["--base-url", f"http://bob:{password}@127.0.0.1:9/v1", "list"],
                     ["serve", "--port", "9", "--upstream", f"http://bob:{password}@127.0.0.1:9/v1"]):  # fmt: skip
            result = _batchctl(*args)
            assert result.returncode in (1, 2), (args, result.stderr)
            assert "s3cretpass" not in result.stderr and "bob:****@" in result.stderr, (args, result.stderr)
