"""BatchClient: one OpenAI-compatible Batch API (files, batches, New-API's extras) over the base client's HTTP."""

from __future__ import annotations

from functools import cached_property

from batchctl.api._base_client import USER_AGENT, BaseClient
from batchctl.api._response import ContentStream, RawResponse
from batchctl.masking import mask_secret
from batchctl.api.resources import Batches, Files, NewAPI
from batchctl.urls import display_url, normalize_base_url

__all__ = ["BatchClient", "ContentStream", "RawResponse", "normalize_base_url", "USER_AGENT"]


class BatchClient(BaseClient):
    """A client for one OpenAI-compatible Batch API (OpenAI, DashScope compatible-mode, New-API, local).

    ``channel`` pins a New-API channel: the key is sent as ``Bearer <key>-<channel>``.
    ``debug_log`` receives one line of text at a time describing each HTTP exchange, secrets masked.
    ``transport`` is handed to httpx (tests pass an ``httpx.MockTransport``).
    """

    def __repr__(self) -> str:
        return (
            f"BatchClient(base_url={display_url(self.base_url)!r}, api_key={mask_secret(self._api_key) or None!r}, "
            f"channel={self.channel!r})"
        )

    @cached_property
    def files(self) -> Files:
        return Files(self)

    @cached_property
    def batches(self) -> Batches:
        return Batches(self)

    @cached_property
    def newapi(self) -> NewAPI:
        """New-API's channel and status routes, and `/models` (any gateway may answer that one)."""
        return NewAPI(self)
