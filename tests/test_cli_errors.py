"""The one error map: API errors and unexpected exceptions become one line, a hint and an exit code."""

from __future__ import annotations

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
    code, _ = report(KeyboardInterrupt(), capsys)
    assert code == EXIT_INTERRUPTED
