"""Shared test fixtures: every test runs with its own config and data dirs, no colour, 120 columns."""

from __future__ import annotations

import pytest

pytest_plugins = ["server_fixture"]


def pytest_configure(config: pytest.Config) -> None:
    """Bytecode for batchctl before the first test, once (in xdist's controller): the suite starts hundreds
    of `python -m batchctl` and server processes, and where PYTHONDONTWRITEBYTECODE is set (this machine's
    shell sets it) none of them writes it, so each compiled every module it imports again (~70 ms)."""
    if hasattr(config, "workerinput"):
        return
    import compileall
    from pathlib import Path

    import batchctl

    compileall.compile_dir(Path(batchctl.__file__).parent, quiet=1)


@pytest.fixture(autouse=True)
def isolation(tmp_path, monkeypatch):
    """Give each test a private config/data dir and a plain, fixed-width terminal."""
    config = tmp_path / "config"
    data = tmp_path / "data"
    monkeypatch.setenv("BATCHCTL_CONFIG_DIR", str(config))
    monkeypatch.setenv("BATCHCTL_DATA_DIR", str(data))
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "120")
    monkeypatch.setenv("LINES", "40")
    # A test must never start a background server on the real default port (8765): it would outlive
    # the test and its deleted data dir, and answer the next user command.
    monkeypatch.setenv("BATCHCTL_AUTOSTART", "0")
    for var in (
        "BATCHCTL_PROFILE",
        "BATCHCTL_BASE_URL",
        "BATCHCTL_API_KEY",
        "BATCHCTL_CHANNEL",
        "BATCHCTL_SERVE_PORT",
        "BATCHCTL_DEBUG",
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "CI",
    ):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    """Run in a scratch directory: default result names land in the cwd."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work
