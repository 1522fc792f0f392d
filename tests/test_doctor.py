"""`batchctl doctor` / `profile test`: the deciding functions, and the checks against the gateway stand-in."""

from __future__ import annotations

import json
import re
from email.utils import formatdate

import pytest
from gateway_stub import ADMIN_KEY, ADMIN_TOKEN, USER_KEY, gateway  # noqa: F401
from typer.testing import CliRunner

from batchctl import doctor
from batchctl.cli.app import app
from batchctl.config import Settings, load_config


def run(*args: str):
    return CliRunner().invoke(app, list(args))


def add_profile(gw, *, key=ADMIN_KEY, channel="7", token=ADMIN_TOKEN, provider="newapi"):
    args = ["profile", "add", "gw", "--base-url", gw.base_url, "--provider", provider, "--api-key", key, "--force"]
    if channel:
        args += ["--channel", channel]
    if token:
        args += ["--access-token", token, "--user-id", "1"]
    assert run(*args).exit_code == 0


def checks_of(result) -> dict[str, dict]:
    report = json.loads(result.stdout)
    return {c["check"]: c for c in report["checks"]}


# -- deciding --------------------------------------------------------------------------------------------


def p(status, message="", code=None, json_body=True, method="GET", path="/v1/batches"):
    return doctor.Probe(method=method, path=path, status=status, message=message, code=code, json_body=json_body)


@pytest.mark.parametrize(
    ("probe", "kind", "status", "words"),
    [
        (p(200), "list", "ok", "-> 200"),
        (p(501, "API not implemented", "api_not_implemented", path="/v1/files/x/content"), "item", "fail", "does not relay /v1/files"),
        (p(404, "Invalid URL (GET /v1/batches)"), "list", "warn", "no list route"),
        (p(404, "Not Found", json_body=False), "list", "warn", "no list route"),
        (p(404, "batch batch_x not found"), "item", "ok", "route is served"),
        (p(404, "Not Found", json_body=False, method="POST"), "create", "fail", "does not serve"),
        (p(400, "input_file_id is required", method="POST"), "create", "ok", "empty request"),
        (p(404, "no such batch"), "real", "warn", "404"),
        (p(401, "bad key"), "list", "fail", "key was rejected"),
        (p(403, "channel disabled"), "list", "fail", "403"),
        (p(503, "busy"), "list", "warn", "server failed"),
    ],
)
def test_classify_route(probe, kind, status, words):
    result = doctor.classify_route("x", probe, kind=kind)
    assert result.status == status
    assert words in result.detail


def test_clock_skew():
    now = 1_700_000_000.0
    assert doctor.clock_skew_check(formatdate(now - 2, usegmt=True), now).status == "ok"
    late = doctor.clock_skew_check(formatdate(now - 300, usegmt=True), now)
    assert late.status == "warn" and "300 s ahead" in late.detail
    assert doctor.clock_skew_check(formatdate(now + 120, usegmt=True), now).detail.endswith("behind the server's")
    assert doctor.clock_skew_check(None, now).status == "skip"
    assert doctor.clock_skew_check("yesterday", now).status == "skip"


def settings(**kw) -> Settings:
    return Settings(**{"profile_name": "p", "base_url": "http://x/v1", "provider": "newapi", "api_key": "sk-k", **kw})


def test_key_check():
    assert doctor.key_check(settings(), [p(200), p(400)]).status == "ok"
    assert doctor.key_check(settings(), [p(401, "invalid token")]).status == "fail"
    pin = doctor.key_check(settings(channel="7"), [p(403, "only admins")])
    assert pin.status == "fail" and "pin to channel 7" in pin.detail
    assert doctor.key_check(settings(api_key=None), [p(401)]).status == "fail"
    assert doctor.key_check(settings(api_key=None, provider="local"), [p(200)]).status == "ok"


# -- against the stand-in --------------------------------------------------------------------------------


def test_doctor_all_ok(gateway):
    add_profile(gateway)
    result = run("doctor", "--model", "qwen-plus", "--json")
    assert result.exit_code == 0, result.output
    checks = checks_of(result)
    assert {c["status"] for c in checks.values()} == {"ok"}
    assert "upstream endpoint: https://dashscope.aliyuncs.com/compatible-mode/v1" in checks["channel"]["detail"]
    assert set(checks) >= {"reachable", "api key", "files: list", "files: upload", "files: content", "batches: list",
                          "batches: create", "batches: retrieve", "batches: cancel", "channel", "clock"}
    # Probes have no side effects, and carry the pin.
    assert gateway.files == {} and gateway.batches == {}
    assert all(r.authorization == f"Bearer {ADMIN_KEY}-7" for r in gateway.batch_calls())


def test_doctor_reports_501_and_missing_list(gateway):
    gateway.files_not_implemented = True
    gateway.batch_list_missing = True
    add_profile(gateway)
    result = run("doctor", "--json")
    assert result.exit_code == 1
    checks = checks_of(result)
    for name in ("files: list", "files: upload", "files: content"):
        assert checks[name]["status"] == "fail" and "does not relay /v1/files" in checks[name]["detail"]
    assert checks["batches: list"]["status"] == "warn" and "no list route" in checks["batches: list"]["detail"]
    assert checks["batches: retrieve"]["status"] == "ok"


def test_doctor_table_and_exit_code(gateway):
    gateway.files_not_implemented = True
    add_profile(gateway)
    result = run("doctor")
    assert result.exit_code == 1
    assert "FAIL" in result.stdout and "this gateway does not relay /v1/files" in result.stdout
    assert "Error: 3 check(s) failed: files: list, files: upload, files: content" in result.stderr


@pytest.mark.parametrize(
    ("channel", "token", "status", "words"),
    [
        ("5", ADMIN_TOKEN, "fail", "disabled"),
        ("99", ADMIN_TOKEN, "fail", "does not exist"),
        ("7", None, "warn", "could not check channel 7"),
        (None, None, "warn", "no channel pinned"),
    ],
)
def test_doctor_channel_line(gateway, channel, token, status, words):
    add_profile(gateway, channel=channel, token=token)
    checks = checks_of(run("doctor", "--json"))
    assert checks["channel"]["status"] == status and words in checks["channel"]["detail"]


def test_doctor_non_admin_key(gateway):
    add_profile(gateway, key=USER_KEY, token=None)
    result = run("doctor", "--json")
    assert result.exit_code == 1
    checks = checks_of(result)
    assert checks["api key"]["status"] == "fail" and "refused the pin to channel 7" in checks["api key"]["detail"]
    assert checks["batches: create"]["status"] == "skip"


def test_doctor_unreachable():
    assert run("profile", "add", "gone", "--base-url", "http://127.0.0.1:9/v1", "--provider", "openai", "--api-key", "sk-x").exit_code == 0
    result = run("doctor", "--json")
    assert result.exit_code == 1
    checks = checks_of(result)
    assert checks["reachable"]["status"] == "fail" and list(checks) == ["reachable"]


def test_a_password_in_the_base_url_is_masked_wherever_the_url_is_shown(gateway):
    """`http://bob:PASSWORD@host` shows as `http://bob:****@host` in errors, doctor (table, progress,
    --json base_url and details), profile show/list and the --debug log; the config keeps the real URL."""
    gone, gone_shown = "http://bob:hunter2pass@127.0.0.1:9/v1", "http://bob:****@127.0.0.1:9/v1"
    listed = run("--base-url", gone, "list")
    assert listed.exit_code == 1
    assert listed.stderr.splitlines()[0].startswith(f"Error: could not reach {gone_shown}/batches: ")
    report = json.loads(run("--base-url", gone, "doctor", "--json").stdout)
    assert report["base_url"] == gone_shown
    assert report["checks"][0]["detail"].startswith(f"no answer from {gone_shown}: ")
    human = run("--base-url", gone, "doctor")
    assert f"Probing {gone_shown} …" in human.stderr and f"at {gone_shown}" in human.output
    shown = json.loads(run("--base-url", gone, "profile", "show", "--json").stdout)
    assert shown["base_url"] == gone_shown and shown["sources"]["base_url"] == "flag"

    url = gateway.base_url.replace("http://", "http://bob:hunter2pass@")
    masked = gateway.base_url.replace("http://", "http://bob:****@")
    # No key: with one, the password would be sent as Basic auth in its place, which is refused (test below).
    assert run("profile", "add", "pw", "--base-url", url, "--json").exit_code == 0
    assert load_config().profiles["pw"].base_url == url  # stored as given: requests need the password
    assert {v["name"]: v["base_url"] for v in json.loads(run("profile", "list", "--json").stdout)}["pw"] == masked
    assert f"base_url            {masked}" in run("profile", "show", "pw").stdout
    logged = run("--debug", "doctor")
    assert f"HTTP GET {masked}/files?limit=1 -> " in logged.stderr
    for result in (listed, human, logged, run("--debug", "--json", "list"), run("profile", "list"), run("doctor", "--json")):
        assert "hunter2pass" not in result.output


@pytest.fixture
def tls_port():
    """A port on 127.0.0.1 that takes connections and never answers: an https:// URL to it builds the SSL
    context (after the connect, before any byte is sent) without reaching any server."""
    import socket

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


@pytest.mark.parametrize("command", [["doctor"], ["status", "batch_x"], ["list"], ["files", "list"]])
def test_a_missing_ssl_cert_file_is_named_with_what_to_do(command, tls_port, tmp_path, monkeypatch):
    missing = tmp_path / "no-ca.pem"
    monkeypatch.setenv("SSL_CERT_FILE", str(missing))
    base = f"https://127.0.0.1:{tls_port}/v1"
    assert run("profile", "add", "tls", "--base-url", base, "--provider", "openai", "--api-key", "sk-x").exit_code == 0
    message = f"cannot load CA certificates from SSL_CERT_FILE ({missing}): No such file or directory"
    hint = "Unset SSL_CERT_FILE (certifi's CA bundle is then used), or point it at a CA bundle (a PEM file of certificates)."
    result = run(*command)
    assert result.exit_code == 1, result.output
    assert result.stderr.splitlines()[-2:] == [f"Error: {message}", hint]  # doctor's "Probing ..." line comes first
    assert "Traceback" not in result.output
    error = json.loads(run(*command, "--json").stdout)["error"]
    assert (error["message"], error["hint"]) == (message, hint)


def test_doctor_full_round_trip_leaves_nothing_behind(gateway):
    add_profile(gateway)
    result = run("doctor", "--full", "--json")
    assert result.exit_code == 0, result.output
    assert checks_of(result)["round trip"]["status"] == "ok"
    assert gateway.files == {}  # the one-request input was deleted
    assert [b["status"] for b in gateway.batches.values()] == ["cancelled"]
    assert [b["endpoint"] for b in gateway.batches.values()] == ["/v1/chat/ds-test"]


def test_profile_test_is_doctor_for_a_named_profile(gateway):
    add_profile(gateway)
    assert run("profile", "use", "local").exit_code == 0
    result = run("profile", "test", "gw", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["profile"] == "gw"


def test_doctor_debug_logs_every_exchange_with_secrets_masked(gateway):
    add_profile(gateway)
    result = run("--debug", "doctor")
    assert "HTTP GET " in result.stderr and "/v1/files" in result.stderr
    assert "/api/channel/7" in result.stderr  # the channel check's exchange too
    assert ADMIN_KEY not in result.output and ADMIN_TOKEN not in result.output


def test_secrets_echoed_by_a_server_are_masked():
    import httpx

    from batchctl import newapi

    key, token = "sk-echoed-secret-key-0001", "access-token-echoed-0002"

    def echo_back(request: httpx.Request) -> httpx.Response:
        said = request.headers.get("authorization", "")
        return httpx.Response(401, json={"success": False, "message": f"invalid credential {said}"})

    transport = httpx.MockTransport(echo_back)
    settings = Settings(
        profile_name="gw", base_url="http://gw.test/v1", provider="newapi", api_key=key, channel="7",
        access_token=token, user_id="1",
    )  # fmt: skip
    report = doctor.run_doctor(settings, transport=transport, now=lambda: 0.0)
    text = json.dumps(report.to_dict())
    assert "invalid credential" in text  # the server's words are kept ...
    assert key not in text and token not in text  # ... its echo of the secrets is not
    check = newapi.check_channel(settings.base_url, "7", access_token=token, user_id="1", transport=transport)
    assert check.message and token not in check.message and token not in (check.hint or "")


# -- in the provider's words (issue #18) ------------------------------------------------------------------


class _NoFilesStandIn:
    """A Batch API stand-in whose `/files` routes do not exist (a bare 404, as Google's front end answers);
    `/batches` is served. Run by gateway_stub's runner on 127.0.0.1."""

    base_url = ""

    def app(self):
        from starlette.applications import Starlette
        from starlette.responses import JSONResponse, PlainTextResponse
        from starlette.routing import Route

        def missing(request):
            return PlainTextResponse("Not Found", status_code=404)

        def batches(request):
            if request.method == "GET":
                return JSONResponse({"object": "list", "data": [], "has_more": False})
            return JSONResponse({"error": {"message": "input_file_id is required", "code": "invalid_request"}}, status_code=400)

        def batch_item(request):
            return JSONResponse({"error": {"message": "batch not found", "code": "not_found"}}, status_code=404)

        prefix = "/v1beta/openai"
        return Starlette(
            routes=[
                Route(prefix + "/files{rest:path}", missing, methods=["GET", "POST"]),
                Route(prefix + "/batches", batches, methods=["GET", "POST"]),
                Route(prefix + "/batches/{rest:path}", batch_item, methods=["GET", "POST"]),
            ]
        )


@pytest.fixture
def no_files_server():
    from gateway_stub import _Running

    stub = _NoFilesStandIn()
    running = _Running(stub)
    running.start()
    try:
        yield stub.base_url.removesuffix("/v1") + "/v1beta/openai/"
    finally:
        running.stop()


def test_newapi_missing_files_is_explained_in_new_apis_words(gateway):
    gateway.files_not_implemented = True
    add_profile(gateway)
    result = run("doctor", "--json")
    assert result.exit_code == 1
    upload = checks_of(result)["files: upload"]
    assert upload["status"] == "fail"
    assert upload["detail"] == (
        "this gateway does not relay /v1/files: use `batchctl serve --upstream` in front of it "
        "(POST /v1/files -> 501 api_not_implemented)"
    )
    assert upload["hint"].startswith("batchctl serve --upstream GATEWAY_URL/v1")
    assert ADMIN_KEY not in result.stdout


def test_gemini_missing_files_is_explained_in_geminis_words(no_files_server):
    added = run("profile", "add", "gem", "--preset", "gemini", "--base-url", no_files_server, "--api-key", "AIza-test")
    assert added.exit_code == 0, added.output
    result = run("doctor", "--json")
    checks = checks_of(result)
    for name, status in (("files: list", "warn"), ("files: upload", "fail"), ("files: content", "fail")):
        assert checks[name]["status"] == status, checks[name]
        assert checks[name]["detail"].startswith("Gemini's OpenAI-compatible layer does not serve file upload/download (")
        assert "Google's Files API" in checks[name]["hint"]
    assert checks["files: upload"]["detail"].endswith("(POST /v1beta/openai/files -> 404)")
    assert checks["batches: list"]["status"] == "ok" and checks["batches: create"]["status"] == "ok"
    plain = run("doctor")
    assert "Gemini's OpenAI-compatible layer does not serve file upload/download" in plain.stdout


def test_other_providers_keep_the_plain_words_for_the_same_answer(no_files_server):
    assert run("profile", "add", "o", "--preset", "openai", "--base-url", no_files_server, "--api-key", "sk-t").exit_code == 0
    checks = checks_of(run("doctor", "--json"))
    assert checks["files: upload"]["detail"].startswith("this gateway does not serve POST /v1beta/openai/files (404)")
    assert "Gemini" not in json.dumps(checks)
    assert "provider" not in checks


def test_azure_doctor_says_model_is_the_deployment_name(local_server):
    added = run("profile", "add", "az", "--preset", "azure", "--base-url", local_server.base_url, "--api-key", "k")
    assert added.exit_code == 0, added.output
    result = run("doctor", "--json")
    assert result.exit_code == 0, result.output
    line = checks_of(result)["provider"]
    assert line["status"] == "ok"
    assert line["detail"].startswith("azure: on Azure, `model` in each request line is your deployment name")
    assert "deployment name" in run("doctor").stdout


# -- --full against the real local server ----------------------------------------------------------------

# Cancelled (with an output file too if its one request ran first), or ended before the cancel arrived.
ROUND_TRIP_ENDING = re.compile(r"\((batch cancelled|the batch ended \(completed\) before it could be cancelled), [12] file\(s\) deleted\)$")


@pytest.mark.e2e
def test_doctor_full_passes_on_the_local_echo_server_however_the_race_ends(server):
    # The echo server often finishes the one-request batch before the cancel arrives (a 409): a healthy
    # server, so the round trip passes whichever comes first, every time.
    for _ in range(5):
        result = run("doctor", "--full", "--json")
        assert result.exit_code == 0, result.output
        round_trip = checks_of(result)["round trip"]
        assert round_trip["status"] == "ok", round_trip
        assert ROUND_TRIP_ENDING.search(round_trip["detail"]), round_trip
    listed = json.loads(run("files", "list", "--json").stdout)
    assert [f for f in listed if f["purpose"] == "batch"] == [], listed  # no input left behind


REAL_BATCH = "/v1/batches/batch_[0-9a-f][0-9a-f][0-9a-f]*"  # not the route probes' made-up id


@pytest.mark.e2e
@pytest.mark.parametrize(
    "finalizing",
    [[], [{"method": "GET", "path": REAL_BATCH, "times": 2, "set": {"status": "finalizing"}}]],
    ids=["completed", "still-finalizing"],
)
def test_doctor_full_passes_when_the_batch_ends_before_the_cancel_arrives(finalizing, start_server, monkeypatch, tmp_path):
    # Forced: the round trip's retrieve says `in_progress`, and its cancel reaches the server 1 s late, when
    # the echo batch has long ended: the server refuses it (409), which is not a failure of its cancel route.
    # Then the batch is `completed`, or (second case) still `finalizing` for the next two looks, and waited for.
    rules = [
        {"method": "GET", "path": REAL_BATCH, "times": 1, "set": {"status": "in_progress"}},
        *finalizing,
        {"method": "POST", "path": REAL_BATCH + "/cancel", "delay": 1.0},
    ]
    faults = tmp_path / "faults.json"
    faults.write_text(json.dumps(rules))
    server = start_server(extra_args=["--faults", str(faults)])
    monkeypatch.setenv("BATCHCTL_BASE_URL", server.base_url)
    result = run("doctor", "--full", "--json")
    assert result.exit_code == 0, result.output
    round_trip = checks_of(result)["round trip"]
    assert round_trip["status"] == "ok", round_trip
    assert round_trip["detail"] == (
        "upload, create, retrieve, content, delete all worked"
        " (the batch ended (completed) before it could be cancelled, 2 file(s) deleted)"
    )
    # The cancel was sent (and refused: had it worked, the batch would be `cancelled`).
    assert re.search(r"fault .* on POST /v1/batches/batch_[0-9a-f]{24}/cancel", server.log()), server.log()


def test_a_base_url_with_a_password_and_an_api_key_is_refused_before_anything_is_sent():
    """HTTP sends the URL's user:password as Basic auth, in the header the key needs: the key would
    never reach the server. Said at once, password masked; without a key, Basic auth goes as asked."""
    from server_fixture import free_port

    url = f"http://bob:hunter2pass@127.0.0.1:{free_port()}/v1"
    for args in (["list"], ["doctor"], ["--json", "list"]):
        result = CliRunner().invoke(app, ["--base-url", url, "--api-key", "sk-test1234567890abcd", *args])
        assert result.exit_code == 1, result.output
        assert "has a user name or password, which is sent as HTTP Basic auth in place of the API key" in result.output
        assert "hunter2pass" not in result.output and "bob:****@" in result.output
    keyless = CliRunner().invoke(app, ["--base-url", url, "list"], env={"BATCHCTL_AUTOSTART": "0"})
    assert keyless.exit_code == 1 and "Basic auth" not in keyless.output  # no key: not refused (nothing there)
    assert "could not reach http://bob:****@127.0.0.1" in keyless.output  # it was asked, with Basic auth
    from batchctl.urls import userinfo_with_key

    assert userinfo_with_key(url, "sk-test1234567890abcd", key_header="api-key") is None  # azure: a header of its own


def test_doctor_names_the_unset_variable_the_profiles_key_comes_from(gateway, monkeypatch):
    """`profile test` / `doctor` said "no API key is configured" where every other command says the
    profile's variable is not set."""
    monkeypatch.delenv("TRIAL_NOPE", raising=False)
    added = run("profile", "add", "oa2", "--provider", "openai", "--base-url", gateway.base_url, "--api-key-env", "TRIAL_NOPE")
    assert added.exit_code == 0, added.output
    result = run("doctor")
    assert result.exit_code == 1, result.output
    assert "TRIAL_NOPE is not set (the profile reads its key from it)" in result.output
    assert "export TRIAL_NOPE=" in result.output
