"""Which server, channel and key reach a batch: the journal's record of it against today's settings.

A batch created through a New-API channel pin must keep that pin (and server) for its whole life, even
after the active profile changes; explicit choices (a flag or env var, as `Settings.sources` records)
still win. Pure: the caller passes a way to resolve another profile's settings.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING

from batchctl.config import ENV_BASE_URL, ENV_CHANNEL, ENV_PROFILE

if TYPE_CHECKING:
    from batchctl.config import Settings
    from batchctl.journal import JournalEntry


def _explicit(settings: Settings, key: str, env_name: str) -> bool:
    """Whether `key` was chosen for this command (by flag or by the env var), not by a profile."""
    return settings.sources.get(key) in ("flag", f"env {env_name}")


def settings_for_batch(
    entry: JournalEntry | None,
    settings: Settings,
    settings_of_profile: Callable[[str], Settings | None],
) -> Settings:
    """The settings that reach the batch `entry` describes (None: not submitted from here: `settings`).

    `settings_of_profile(name)` resolves another profile with this command's flags, or None when no such
    profile exists any more. The journal's server and pin go only with a key meant for that server: the
    batch's own profile, or settings that already point at the same URL. Anything else (another profile
    named explicitly, the batch's profile removed) is used as it is, so a key is never sent to a server
    its profile does not name.
    """
    if entry is None:
        return settings
    if not _explicit(settings, "profile", ENV_PROFILE) and entry.profile != settings.profile_name:
        settings = settings_of_profile(entry.profile) or settings
    if _explicit(settings, "base_url", ENV_BASE_URL) or (
        settings.profile_name != entry.profile and settings.base_url != entry.base_url
    ):
        return settings
    return dataclasses.replace(
        settings,
        base_url=entry.base_url,
        channel=settings.channel if _explicit(settings, "channel", ENV_CHANNEL) else entry.channel,
        # A local server is started only for the profile's own URL.
        autostart=settings.autostart and entry.base_url == settings.base_url,
    )
