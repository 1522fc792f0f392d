"""Fixtures that start a real local Batch server (`python -m batchctl.server`) on 127.0.0.1.

Registered as a pytest plugin by tests/conftest.py. Each server is a subprocess on a free port with
its own data dir; all are killed when the test ends (stopped with SIGTERM under `--cov`).

    def test_something(start_server):
        server = start_server(latency=0.05, failure_rate=0.1)   # -> ServerHandle, already healthy
        client = openai.OpenAI(base_url=server.base_url, api_key="x")
        ...
        server.kill()        # SIGKILL, like a crash
        server.restart()     # same port and data dir, waits until healthy

    def test_simple(local_server):                              # start_server() with defaults
        httpx.get(local_server.base_url + "/models")

`ServerHandle`: `.base_url` ("http://127.0.0.1:PORT/v1"), `.root` (no /v1), `.port`, `.data_dir`,
`.api_key`, `.proc` (the Popen), `.log_path`, `.kill()`, `.stop()` (SIGTERM, wait), `.restart()`,
`.log()` (the server's output so far, for assertion messages).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

START_TIMEOUT = 15.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def app_in_thread(app, port: int | None = None) -> Iterator[str]:
    """Serve an ASGI `app` with uvicorn in a thread on 127.0.0.1; yields its root URL ("http://127.0.0.1:PORT")."""
    import threading

    import uvicorn

    port = port or free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(5)


class ThreadedApp:
    """A stand-in (a proxy in front of a server, say) whose ASGI app, `self.app`, is served by
    `app_in_thread` inside a `with` block; `base_url` is its /v1 root."""

    app: Any
    base_url: str

    def __enter__(self) -> Any:
        self._serving = app_in_thread(self.app)
        self.base_url = self._serving.__enter__() + "/v1"
        return self

    def __exit__(self, *exc: object) -> None:
        self._serving.__exit__(None, None, None)


def _child_env(api_key: str | None) -> dict[str, str]:
    """The test's environment, plus the path of the batchctl being tested (also when not installed)."""
    import batchctl

    env = dict(os.environ)
    src = str(Path(batchctl.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    env.pop("BATCHCTL_SERVER_API_KEY", None)
    if api_key:
        env["BATCHCTL_SERVER_API_KEY"] = api_key
    return env


class PortTaken(RuntimeError):
    """The server could not bind its port: another process took it after `free_port()` found it free."""


@dataclass
class ServerHandle:
    """A running `python -m batchctl.server` subprocess."""

    port: int
    data_dir: Path
    args: list[str]
    api_key: str | None = None
    proc: subprocess.Popen | None = None
    log_path: Path = field(init=False)
    # The command up to its own ARGS, for this handle's port and data dir: `python -m batchctl.server` by default.
    launcher: Callable[[ServerHandle], list[str]] | None = None
    _log_start: int = field(default=0, init=False)  # where the latest process's output begins in the log
    _answered: bool = field(default=False, init=False)  # once it has served, its URL is out there: the port stays

    def __post_init__(self) -> None:
        self.log_path = self.data_dir.parent / f"server-{self.port}.log"

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return self.root + "/v1"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def spawn(self) -> ServerHandle:
        """Start the process without waiting for it to answer (see `wait_healthy`)."""
        if self.launcher is not None:
            command = self.launcher(self)
        else:
            command = [sys.executable, "-m", "batchctl.server", "--port", str(self.port), "--data-dir", str(self.data_dir)]
        self._log_start = self.log_path.stat().st_size if self.log_path.exists() else 0  # this attempt's output
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [*command, *self.args], stdout=log, stderr=subprocess.STDOUT, env=_child_env(self.api_key)
            )
        return self

    def start(self) -> ServerHandle:
        self.spawn()
        self.wait_started()
        return self

    def wait_started(self) -> None:
        """`wait_healthy`, on another free port when something else took this one first.

        `free_port()` only finds a port that was free: between then and the server's bind, another test
        worker's server may take it. That is the harness's race, not the server's: try another port. Only
        on a handle's first start, though: a restart (`restart()`, or `start()` after `kill()`) keeps its
        port, as the test's clients, profiles and URLs still name it; if another server took it meanwhile,
        moving would leave them talking to that other server, so PortTaken is raised instead."""
        for attempt in range(3):
            try:
                self.wait_healthy()
                self._answered = True
                return
            except PortTaken:
                if attempt == 2 or self._answered:
                    raise
                self.port = free_port()
                self.spawn()

    def wait_healthy(self, timeout: float = START_TIMEOUT) -> None:
        """Until this handle's own process answers `/health` (by its pid: not another server that has the port)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                output = self.log(since=self._log_start)
                if "address already in use" in output or f"port {self.port} on 127.0.0.1 is in use" in output:
                    raise PortTaken(self.port)  # `python -m batchctl.server` says the former, `batchctl serve` the latter
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                response = httpx.get(self.root + "/health", timeout=0.5)
                if response.status_code == 200 and (self.proc is None or response.json().get("pid") == self.proc.pid):
                    return
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.05)
        raise RuntimeError(f"server did not become healthy in {timeout} s:\n{self.log()}")

    def kill(self) -> None:
        """SIGKILL: the server gets no chance to clean up, as in a crash."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        """SIGTERM and wait (SIGKILL after 10 s)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def restart(self) -> ServerHandle:
        """Stop if running, then start again on the same port and data dir."""
        self.stop()
        return self.start()

    def log(self, since: int = 0) -> str:
        try:
            return self.log_path.read_bytes()[since:].decode(errors="replace")
        except OSError:
            return ""


StartServer = Callable[..., ServerHandle]

DEFAULT_ARGS = ["--latency", "0.0", "--failure-rate", "0.0"]


def _server_env() -> tuple[tuple[str, str], ...]:
    """The part of the environment a server reads itself (fault rules, its key, coverage)."""
    return tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith(("BATCHCTL_SERVE", "BATCHCTL_UPSTREAM", "COVERAGE"))))


class WarmServers:
    """One default server booting in the background while the current test runs, for the next test that
    asks for a default server: most tests want a fresh one, and half a second of start-up each adds up.
    A warm server is only handed out when the environment it started with is the test's own."""

    def __init__(self, factory: pytest.TempPathFactory) -> None:
        self.factory = factory
        self.spare: tuple[tuple[tuple[str, str], ...], ServerHandle] | None = None

    def take(self) -> ServerHandle:
        env = _server_env()
        spare, self.spare = self.spare, None
        if spare is not None and (spare[0] != env or spare[1].proc is None or spare[1].proc.poll() is not None):
            spare[1].kill()
            spare = None
        handle = spare[1] if spare is not None else self._spawn()
        self.spare = (env, self._spawn())
        handle.wait_started()
        return handle

    def _spawn(self) -> ServerHandle:
        data_dir = self.factory.mktemp("server") / "data"
        return ServerHandle(port=free_port(), data_dir=data_dir, args=list(DEFAULT_ARGS)).spawn()

    def close(self) -> None:
        if self.spare is not None:
            self.spare[1].kill()


@pytest.fixture(scope="session")
def warm_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WarmServers]:
    pool = WarmServers(tmp_path_factory)
    yield pool
    pool.close()


@pytest.fixture
def start_server(tmp_path_factory: pytest.TempPathFactory, warm_servers: WarmServers) -> Iterator[StartServer]:
    """A factory: `start_server(latency=0.0, failure_rate=0.0, api_key=None, data_dir=None, extra_args=())`."""
    handles: list[ServerHandle] = []

    def start(
        latency: float = 0.0,
        failure_rate: float = 0.0,
        api_key: str | None = None,
        data_dir: Path | None = None,
        extra_args: Sequence[str] = (),
    ) -> ServerHandle:
        args = ["--latency", str(latency), "--failure-rate", str(failure_rate), *extra_args]
        if data_dir is None and api_key is None and args == DEFAULT_ARGS:
            handle = warm_servers.take()
            handles.append(handle)
            return handle
        if data_dir is None:
            data_dir = tmp_path_factory.mktemp("server") / "data"
        handle = ServerHandle(port=free_port(), data_dir=Path(data_dir), args=args, api_key=api_key)
        handles.append(handle)
        return handle.start()

    yield start
    # SIGKILL is quickest, but under `--cov` (coverage's subprocess patch sets COVERAGE_PROCESS_CONFIG)
    # a server must exit through SIGTERM to write its coverage data (docs/testing.md).
    measuring = "COVERAGE_PROCESS_CONFIG" in os.environ
    for handle in handles:
        handle.stop() if measuring else handle.kill()


@pytest.fixture
def local_server(start_server: StartServer) -> ServerHandle:
    """A server with the default echo model (no latency, no failures)."""
    return start_server()


@pytest.fixture
def server(start_server: StartServer, monkeypatch: pytest.MonkeyPatch) -> ServerHandle:
    """A default server that the commands under test reach (`BATCHCTL_BASE_URL` points at it).

    Modules that want a slower or failing one define their own `server` fixture, which wins."""
    handle = start_server()
    monkeypatch.setenv("BATCHCTL_BASE_URL", handle.base_url)
    return handle


# -- conformance with OpenAI's published OpenAPI description ----------------------------------

# The Batch and Files part of OpenAI's spec lives in the repository (tests/specs/README.md says where it
# comes from), so a fresh clone needs nothing beside it; BATCHCTL_OPENAPI_SPEC points at another copy
# (the full spec, say).
SPEC_PATH = Path(
    os.environ.get("BATCHCTL_OPENAPI_SPEC")
    or Path(__file__).resolve().parent / "specs" / "openai-openapi-batch.yaml"
)

# Version 2.3.0 of the spec no longer carries the schema of a result line; this is the
# `BatchRequestOutput` of the earlier versions of the same document, verbatim in substance.
BATCH_REQUEST_OUTPUT = {
    "type": "object",
    "description": "The per-line object of the batch output and error files",
    "properties": {
        "id": {"type": "string"},
        "custom_id": {"type": "string"},
        "response": {
            "type": ["object", "null"],
            "properties": {
                "status_code": {"type": "integer"},
                "request_id": {"type": "string"},
                "body": {"type": "object"},
            },
        },
        "error": {
            "type": ["object", "null"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
        },
    },
    # `response` and `error` are nullable, and nulls are stripped before validating (see strip_nulls),
    # so their presence is checked separately in `validate`.
    "required": ["id", "custom_id"],
}
RESULT_LINE_KEYS = ("id", "custom_id", "response", "error")


def strip_nulls(value):
    """`value` without null-valued keys, at any depth.

    The spec types optional fields such as `Batch.output_file_id` as plain `string`, while OpenAI's API
    (and the spec's own examples) answer `null` for them; an absent key and a null one mean the same
    to every client, so nulls are dropped before validating. Required keys must still be present.
    """
    if isinstance(value, dict):
        return {k: strip_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [strip_nulls(v) for v in value]
    return value


@pytest.fixture(scope="session")
def openapi_validate():
    """`openapi_validate(schema_name, obj)` checks `obj` against a schema of OpenAI's OpenAPI spec.

    Names: any of `#/components/schemas` (`Batch`, `OpenAIFile`, `ListBatchesResponse`,
    `ListFilesResponse`, `DeleteFileResponse`, ...) plus `BatchRequestOutput`. The 3 MB spec is
    loaded once per session. Raises AssertionError listing every violation.
    """
    import yaml
    from openapi_schema_validator import OAS31Validator
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    if not SPEC_PATH.exists():
        # A conformance check that silently skips would hide failures: say what is missing instead.
        pytest.fail(f"OpenAI spec not found at {SPEC_PATH}: restore tests/specs/ from git or set BATCHCTL_OPENAPI_SPEC")
    with open(SPEC_PATH, "rb") as f:
        spec = yaml.load(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    spec["components"]["schemas"].setdefault("BatchRequestOutput", BATCH_REQUEST_OUTPUT)
    registry = Registry().with_resource("urn:openai", Resource.from_contents(spec, default_specification=DRAFT202012))
    validators: dict = {}

    def validate(schema_name: str, obj) -> None:
        if schema_name not in validators:
            if schema_name not in spec["components"]["schemas"]:
                raise KeyError(f"no schema {schema_name!r} in the spec")
            ref = {"$ref": f"urn:openai#/components/schemas/{schema_name}"}
            validators[schema_name] = OAS31Validator(ref, registry=registry)
        errors = [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
                  for e in validators[schema_name].iter_errors(strip_nulls(obj))]
        if schema_name == "BatchRequestOutput":
            errors += [f"<root>: '{key}' is a required property" for key in RESULT_LINE_KEYS if key not in obj]
        assert not errors, f"{schema_name} does not conform:\n" + "\n".join(errors)

    return validate


def sigint_by_default() -> None:
    """`preexec_fn` for a child that a test interrupts: a shell runs background jobs with SIGINT
    ignored, which the child would inherit (and Python then never raises KeyboardInterrupt)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
