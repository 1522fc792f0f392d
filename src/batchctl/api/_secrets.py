"""Keeping API keys out of reprs, logs and error messages."""

from __future__ import annotations

from collections.abc import Iterable

ELLIPSIS = "…"


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


class Redactor:
    """Replaces every occurrence of the given secrets in a text by their masked form."""

    def __init__(self, secrets: Iterable[str | None]) -> None:
        # Longest first, so a key that embeds another (``<key>-<channel>``) is masked whole.
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, mask_secret(secret))
        return text
