"""Watching many batches: one client (and one health check) per server for the whole command, counted in
TCP connections through a proxy in front of a real server; a dashboard drawn once per poll, never on a
timer; a table taller than the screen built only for the rows that fit."""

from __future__ import annotations

import io
import json
import socket
import threading
import time

import httpx
import pytest
from typer.testing import CliRunner

from batch_factory import create_batch
from batchctl.cli.app import app
from batchctl.cli.watch import FETCHERS

runner = CliRunner()


class CountingProxy:
    """A TCP proxy on 127.0.0.1 that forwards to `port` and counts the connections it accepted."""

    def __init__(self, port: int) -> None:
        self.target = port
        self.accepted = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.accepted += 1
            upstream = socket.create_connection(("127.0.0.1", self.target))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def proxied(start_server):
    """A real server with a proxy in front, and an active `local` profile pointing at the proxy (so the
    watch does the local server's health check first)."""
    server = start_server()
    proxy = CountingProxy(server.port)
    result = runner.invoke(app, ["profile", "add", "mine", "--provider", "local", "--base-url", f"http://127.0.0.1:{proxy.port}/v1"])
    assert result.exit_code == 0, result.output
    yield server, proxy
    proxy.close()


def _watch(ids: list[str]) -> list[dict]:
    result = runner.invoke(app, ["-p", "mine", "status", "--watch", "--json", "--interval", "0.1", *ids])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_one_batch_health_check_and_polls_share_one_connection(proxied, tmp_path):
    server, proxy = proxied
    batch_id = create_batch(server.base_url, tmp_path, 3)
    objects = _watch([batch_id])
    assert objects[-1]["status"] == "completed"
    assert proxy.accepted == 1  # the health check's connection carried every GET after it


def test_many_batches_use_one_pool_not_a_client_each(proxied, tmp_path):
    server, proxy = proxied
    ids = [create_batch(server.base_url, tmp_path, 2) for _ in range(40)]
    objects = _watch(ids)
    assert {o["id"] for o in objects if o["status"] == "completed"} == set(ids)
    # At most one connection per concurrent GET, whatever the number of batches and poll cycles
    # (a client per batch, with a health check each, opened two per batch: 80).
    assert 1 <= proxy.accepted <= FETCHERS


def test_the_dashboard_is_drawn_once_per_poll_not_on_a_timer(monkeypatch):
    """No refresh thread: between polls nothing is drawn (a waiting watch costs no CPU)."""
    from batchctl.api import BatchClient
    from batchctl.cli import output as output_module
    from batchctl.cli import watch as watch_module
    from batchctl.cli.context import AppState
    from batchctl.cli.output import Output
    from rich.console import Console

    counts = iter([0, 1, 2, 3])
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json={
        "id": "batch_x", "status": "completed" if (done := next(counts)) == 3 else "in_progress",
        "request_counts": {"total": 3, "completed": done, "failed": 0}}))  # fmt: skip
    monkeypatch.setenv("BATCHCTL_BASE_URL", "http://gateway.invalid/v1")
    monkeypatch.setattr(output_module, "is_interactive", lambda stream=None: True)
    out = Output()
    out.console = Console(file=io.StringIO(), force_terminal=True, width=120, height=40)
    drawn = []
    from batchctl.cli import render  # watch_batches imports dashboard from here when it starts

    original = render.dashboard
    monkeypatch.setattr(render, "dashboard", lambda *a, **k: drawn.append(time.monotonic()) or original(*a, **k))
    pauses: list[float] = []

    def sleep(seconds: float) -> None:
        pauses.append(seconds)
        time.sleep(0.6)  # long enough for a 4-per-second refresh thread to draw twice in between

    client = BatchClient("http://gateway.invalid/v1", transport=transport)
    final = watch_module.watch_batches(AppState(out=out), ["batch_x"], interval=0.3, clients={"batch_x": client}, sleep=sleep)
    assert final[0].status == "completed"
    assert len(pauses) == 3
    # Drawn when the region opens, after each of the three polls that were followed by a wait, and
    # once as it closes: nothing while sleeping.
    assert len(drawn) == 1 + len(pauses) + 1, (drawn, pauses)


def test_a_dashboard_taller_than_the_screen_builds_only_the_rows_that_fit():
    from rich.console import Console

    from batchctl.api.models import Batch
    from batchctl.cli.render import BatchView, dashboard

    def view(i: int, status: str) -> BatchView:
        return BatchView(Batch.model_validate({"id": f"batch_{i:04d}", "status": status, "request_counts": {"total": 2}}))

    views = [view(i, "completed" if i % 2 else "in_progress") for i in range(500)]
    console = Console(file=io.StringIO(), width=120, height=30, color_system=None)
    console.print(dashboard(views, header="Watching 500 batches"))
    lines = console.file.getvalue().splitlines()
    assert len(lines) <= 30
    assert "... and 476 more (250 finished, 226 not yet)" in lines[-1]
    shown = [line.split()[0] for line in lines if line.startswith("batch_")]
    assert shown == [f"batch_{i:04d}" for i in range(0, 48, 2)]  # unfinished first, in their order
