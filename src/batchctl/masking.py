"""Keeping API keys (and URLs' passwords) out of reprs, logs, error messages and output: masking, and a
redactor for text.

Stdlib only, so commands that never reach a server (`profile list`, `profile show`) mask keys without
loading the HTTP stack.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from batchctl.urls import display_url

ELLIPSIS = "…"
# Anything shaped like an OpenAI-style key (sk-..., sk-proj-...), whoever's it is.
KEY_SHAPED = re.compile(r"(?<![A-Za-z0-9])sk-[A-Za-z0-9_\-]{12,}")


def mask_secret(secret: str | None) -> str:
    """Show just enough of a secret to recognise it: ``sk-abcdef1234`` -> ``sk-…1234``.

    Secrets too short to keep 7 characters of them private are shown as ``…`` plus their
    last 2 characters, or ``****`` when even that would give away half of them.
    """
    if not secret:
        return ""
    if len(secret) >= 12:
        return f"{secret[:3]}{ELLIPSIS}{secret[-4:]}"
    if len(secret) >= 6:
        return f"{ELLIPSIS}{secret[-2:]}"
    return "****"


def _bearer_token(api_key: str | None, channel: str | None = None) -> str | None:
    """The token after `Bearer `: the key, suffixed `-<channel>` to pin a New-API channel."""
    if not api_key:
        return None
    return f"{api_key}-{channel}" if channel else api_key


def userinfo_secrets(url: str) -> tuple[str, ...]:
    """What a URL's `user:password@` is sent as, `Basic ` + base64 of `user:password` (a server that
    echoes the Authorization header shows it), and the password itself when it is long enough to mask
    without garbling other text."""
    from urllib.parse import unquote, urlsplit

    try:
        parts = urlsplit(url)
        user, password = parts.username, parts.password
    except ValueError:
        return ()
    if password is None:
        return ()
    import base64

    user, password = unquote(user or ""), unquote(password)
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return (token, password) if len(password) >= 8 else (token,)


class Redactor:
    """Replaces every occurrence of the given secrets in a text by their masked form."""

    @classmethod
    def for_key(cls, api_key: str | None, channel: str | None = None, others: Iterable[str | None] = ()) -> Redactor:
        """Masks a key, the `<key>-<channel>` token it is sent as (whole), and any ``others``."""
        return cls([api_key, _bearer_token(api_key, channel), *others])

    def __init__(self, secrets: Iterable[str | None]) -> None:
        # Longest first, so a key that embeds another (``<key>-<channel>``) is masked whole.
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        """`text` with the secrets, any key-shaped token and any URL's password masked. Redact before
        cutting a text short: a key cut in two would no longer be recognised, and its head would show."""
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, mask_secret(secret))
        if "sk-" in text:
            text = KEY_SHAPED.sub(lambda m: mask_secret(m.group()), text)
        return display_url(text)
