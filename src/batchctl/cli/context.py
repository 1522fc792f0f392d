"""Per-invocation state (`ctx.obj`): global options, resolved settings, the output object and the API client.

Heavy things (settings resolution, httpx, the local server) are built lazily, on first use.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import typer

from batchctl.cli.output import Output

if TYPE_CHECKING:
    from batchctl.api import BatchClient
    from batchctl.config import Settings
    from batchctl.jobs.records import Job
    from batchctl.jobs.store import Journal
    from batchctl.providers import ProviderSpec


LAST_ALIAS = "last"  # `status last`, `download last`: the newest thing submitted from this machine


class AppState:
    """Global options, the Output, and what is built from them on first use.

    `json` and `debug` are the Output's own modes, so the two cannot disagree; `json=True` or
    `debug=True` given here switch them on in `out`.
    """

    def __init__(
        self,
        profile: str | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        channel: str | None = None,
        json: bool = False,
        debug: bool = False,
        out: Output | None = None,
    ) -> None:
        self.profile = profile
        self.base_url = base_url
        self.api_key = api_key
        self.channel = channel
        self.out = out if out is not None else Output()
        if json:
            self.json = True
        if debug:
            self.debug = True
        self._settings: Settings | None = None
        self._clients: list[Any] = []
        self._journal: Journal | None = None
        self._routes: dict[tuple[Any, ...], BatchClient] = {}  # client_for_batch's clients, by route

    @property
    def json(self) -> bool:
        return self.out.json_mode

    @json.setter
    def json(self, value: bool) -> None:
        self.out.json_mode = value

    @property
    def debug(self) -> bool:
        return self.out.debug_mode

    @debug.setter
    def debug(self, value: bool) -> None:
        self.out.debug_mode = value

    @classmethod
    def get(cls, ctx: typer.Context, *, json_: bool = False, debug: bool = False) -> AppState:
        """The state of this invocation; a command's own `--json` (or `--debug`, the seed client's
        flag accepted after the command too) switches that mode on as well."""
        root = ctx.find_root()
        state = root.obj if isinstance(root.obj, AppState) else None
        if state is None:
            state = cls()
            root.obj = state
        if json_:
            state.json = True
        if debug:
            state.debug = True
        return state

    def settings(self) -> Settings:
        if self._settings is None:
            from batchctl.config import resolve_settings

            self._settings = resolve_settings(
                profile=self.profile, base_url=self.base_url, api_key=self.api_key, channel=self.channel
            )
        return self._settings

    def provider_spec(self) -> ProviderSpec:
        """The limits of the active profile's provider, with the profile's overrides. No network."""
        from batchctl.providers import spec_of

        return spec_of(self.settings())

    def client(self, settings: Settings | None = None) -> BatchClient:
        """A BatchClient for `settings` (default: this command's resolved settings).

        For the built-in `local` provider, a background `batchctl serve` is started when nothing answers.
        """
        from batchctl.api import BatchClient

        settings = settings or self.settings()
        if settings.missing_key_env:
            from batchctl.errors import ConfigError

            raise ConfigError(
                f"{settings.missing_key_env} is not set (profile {settings.profile_name} reads its key from it)",
                f"Set it (export {settings.missing_key_env}=...), or give a key: --api-key, BATCHCTL_API_KEY.",
            )
        _check_auth_fits(settings)
        from batchctl.quirks import wire_of

        client = BatchClient(
            settings.base_url,
            settings.api_key,
            channel=settings.channel,
            debug_log=self.out.debug if self.debug else None,
            wire=wire_of(settings.provider),  # = spec.wire: auth header, purpose, statuses (quirks.py)
            warn=self.out.warn,
            custom_llm_provider=settings.custom_llm_provider,
        )
        self._clients.append(client)
        # The health check rides this client's connection, which its first request then reuses.
        if settings.autostart:
            from batchctl.config import LOCAL_PROFILE

            # The `local` profile uses the server on its port only if it keeps this data dir; a profile of
            # another name names its server by its own base URL, and uses the one there.
            own_only = settings.profile_name == LOCAL_PROFILE
            health = client.health()
            if health is None:
                self._ensure_local_server(settings.base_url, own_only=own_only)
            elif own_only:
                from batchctl.config import data_dir
                from batchctl.server.autostart import require_own_server

                require_own_server(health, settings.base_url, data_dir())
        return client

    def _ensure_local_server(self, url: str, *, own_only: bool = True) -> None:
        """Nothing healthy answered at `url`: start a background server, unless BATCHCTL_AUTOSTART=0."""
        from batchctl.config import data_dir
        from batchctl.server.autostart import ensure_local_server

        if os.environ.get("BATCHCTL_AUTOSTART", "1").lower() in {"0", "false", "no"}:
            from batchctl.errors import BatchctlError
            from batchctl.server.autostart import serve_command

            raise BatchctlError(
                f"nothing answers at {url} and BATCHCTL_AUTOSTART=0 forbids starting a local server",
                hint=f"Start one with `{serve_command(url, '--background')}`, or unset BATCHCTL_AUTOSTART.",
            )
        ensure_local_server(url, data_dir(), notify=self.out.info, own_only=own_only, warn=self.out.warn)

    def journal(self) -> Journal:
        """The journal, opened once for this command (closed in `close`)."""
        if self._journal is None:
            from batchctl.jobs.store import Journal

            self._journal = Journal.open()
        return self._journal

    def resolve_ids(self, ids: list[str] | None) -> list[str]:
        """The ids as given, with `last` read as the newest job (or plain batch) submitted from here."""
        resolved = []
        for item in ids or []:
            if item == LAST_ALIAS:
                newest = self.recent_ids(1)
                if not newest:
                    from batchctl.errors import BatchctlError

                    raise BatchctlError("nothing was submitted from this machine yet: there is no `last`", "Submit one: batchctl submit FILE")
                item = newest[0]
            resolved.append(item)
        return resolved

    def recent_ids(self, count: int) -> list[str]:
        """The `count` newest jobs and plain batches this machine submitted, newest first (a one-part
        job by its batch id, as `submit` printed it)."""
        found: list[str] = []
        journal = self.journal()
        part_counts: dict[str, int] = {}  # a job's parts are asked for once, not once per part (0: forgotten)
        for record in journal.newest_batches():
            job_id = record.job_id
            if job_id and job_id not in part_counts:
                job = journal.get_job(job_id)
                part_counts[job_id] = 0 if job is not None and job.state == "forgotten" else len(journal.parts(job_id))
            if job_id and not part_counts[job_id]:
                continue  # `jobs forget` took it out of `last` and the lists
            item = job_id if job_id and part_counts[job_id] > 1 else record.batch_id
            if item not in found:
                found.append(item)
            if len(found) == count:
                break
        return found

    def find_job(self, id_or_batch: str) -> Job | None:
        """The job a `job_…` id (or a unique prefix of one) names; None for anything else (a batch id)."""
        from batchctl.jobs import JOB_PREFIX

        if not id_or_batch.startswith(JOB_PREFIX):
            return None
        found = self.journal().resolve(id_or_batch)
        return found if not hasattr(found, "batch_id") else None  # type: ignore[return-value]

    def expand_ids(self, ids: list[str]) -> list[str]:
        """Batch ids with each job id replaced by its parts' batch ids."""
        expanded: list[str] = []
        for item in ids:
            job = self.find_job(item)
            expanded += [p.batch_id for p in self.journal().parts(job.id) if p.batch_id] if job else [item]
        return expanded

    def settings_for_batch(self, batch_id: str) -> Settings:
        """The settings that reach `batch_id` the way it was submitted (see `batchctl.routing`)."""
        from batchctl.config import load_config, resolve_settings
        from batchctl.routing import settings_for_batch

        def settings_of_profile(name: str) -> Settings | None:
            if name not in load_config().names():
                return None
            return resolve_settings(profile=name, base_url=self.base_url, api_key=self.api_key, channel=self.channel)

        return settings_for_batch(self.journal().lookup_batch(batch_id), self.settings(), settings_of_profile)

    def client_for_batch(self, batch_id: str) -> BatchClient:
        """A client that reaches `batch_id` through the server and channel pin it was submitted with.

        Batches reached the same way share one client (a job's parts all do).
        """
        settings = self.settings_for_batch(batch_id)
        route = (settings.base_url, settings.api_key, settings.channel, settings.provider, settings.custom_llm_provider)
        if route not in self._routes:
            self._routes[route] = self.client(settings)
        return self._routes[route]

    def provider_for_batch(self, batch_id: str) -> str:
        """The provider kind a batch was submitted to (the journal's), else the current settings'."""
        entry = self.journal().lookup_batch(batch_id)
        return entry.provider if entry is not None else self.settings().provider

    def close(self) -> None:
        for client in self._clients:
            client.close()
        self._clients.clear()
        self._routes.clear()
        if self._journal is not None:
            self._journal.close()
            self._journal = None


def _check_auth_fits(settings: Settings) -> None:
    """Refuse a base URL with a user name or password together with an API key (`urls.userinfo_with_key`):
    the server would never see the key, and answer 401 in its own words."""
    from batchctl.quirks import wire_of
    from batchctl.urls import USERINFO_WITH_KEY_HINT, userinfo_with_key

    problem = userinfo_with_key(settings.base_url, settings.api_key, key_header=wire_of(settings.provider).auth_header)
    if problem is not None:
        from batchctl.errors import ConfigError

        raise ConfigError(problem, USERINFO_WITH_KEY_HINT)
