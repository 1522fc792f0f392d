"""``/batches``: create, inspect, list and cancel batch jobs."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from batchctl.api._base_client import _seg
from batchctl.api._dialect import adapt_batch, adapt_page, unwrap_created
from batchctl.api.models import Batch, BatchPage
from batchctl.api.pagination import _iter_pages

if TYPE_CHECKING:
    from batchctl.api._base_client import BaseClient


class Batches:
    """``/batches``: create, inspect, list and cancel batch jobs."""

    def __init__(self, client: BaseClient) -> None:
        self._client = client

    def create(
        self,
        *,
        input_file_id: str,
        endpoint: str,
        completion_window: str = "24h",
        metadata: dict[str, str] | None = None,
    ) -> Batch:
        body: dict[str, Any] = {
            "input_file_id": input_file_id,
            "endpoint": endpoint,
            "completion_window": completion_window,
        }
        if metadata is not None:
            body["metadata"] = metadata
        c = self._client
        if c.custom_llm_provider:
            body["custom_llm_provider"] = c.custom_llm_provider
        warnings: list[str] = []

        def adapt(payload: Any) -> Any:
            payload, warning = unwrap_created(payload, c.wire)
            if warning:
                warnings.append(warning)
            return payload

        batch = c._json(c._request("POST", f"{c.base_url}/batches", json_body=body, creates=True), Batch, adapt)
        for warning in warnings:
            c._notice(f"the server's note on batch {batch.id}: {warning}")
        return batch

    def retrieve(self, batch_id: str) -> Batch:
        c = self._client
        return c._json(c._request("GET", f"{c.base_url}/batches/{_seg(batch_id)}"), Batch, self._adapt)

    def cancel(self, batch_id: str) -> Batch:
        # Cancelling twice does no harm, so this POST is retried like a GET.
        c = self._client
        return c._json(c._request("POST", f"{c.base_url}/batches/{_seg(batch_id)}/cancel"), Batch, self._adapt)

    def _adapt(self, payload: Any) -> Any:
        return adapt_batch(payload, self._client.wire)

    def list(
        self,
        *,
        limit: int | None = None,
        after: str | None = None,
        extra_params: Mapping[str, Any] | None = None,
    ) -> BatchPage:
        """One page. ``extra_params`` go to the query string as given (DashScope's ``ds_name``, ``status``...)."""
        params: dict[str, Any] = {k: v for k, v in (extra_params or {}).items() if v is not None}
        params.update({k: v for k, v in (("limit", limit), ("after", after)) if v is not None})
        c = self._client
        page = c._request("GET", f"{c.base_url}/batches", params=params)
        return c._json(page, BatchPage, lambda payload: adapt_page(payload, c.wire))

    def iter(
        self,
        *,
        limit: int | None = None,
        after: str | None = None,
        extra_params: Mapping[str, Any] | None = None,
    ) -> Iterator[Batch]:
        """Every batch, page after page, following ``has_more``/``last_id`` (see ``_iter_pages``).

        ``limit`` is the page size asked for.
        """
        return _iter_pages(lambda cursor: self.list(limit=limit, after=cursor, extra_params=extra_params), after)
