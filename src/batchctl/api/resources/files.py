"""``/files``: upload batch input, download output (as a stream or atomically to disk), list and delete."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from batchctl.api._base_client import _seg
from batchctl.api._multipart import MultipartFileUpload, ProgressCallback
from batchctl.api._response import ContentStream
from batchctl.api.errors import FilesNotServedError
from batchctl.api.models import FileDeleted, FileObject, FilePage
from batchctl.api.pagination import _iter_pages
from batchctl.api.retry import should_retry_exception

if TYPE_CHECKING:
    from batchctl.api._base_client import BaseClient


class Files:
    """``/files``: upload batch input, download output, list and delete."""

    def __init__(self, client: BaseClient) -> None:
        self._client = client

    def check_served(self, action: str, provider: str | None = None) -> None:
        """Raise FilesNotServedError, before anything is sent, when the provider has no /files routes."""
        wire = self._client.wire
        if not wire.serves_files:
            raise FilesNotServedError(action, wire.files_hint, provider, url=self._client.base_url)

    def create(
        self,
        *,
        path: str | os.PathLike[str],
        purpose: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> FileObject:
        """Upload ``path`` as multipart/form-data, streamed from disk in chunks.

        ``purpose`` defaults to the provider's for batch input (``batch``; together: ``batch-api``).
        ``progress(bytes_sent, total)`` is called as file bytes are handed to the connection
        (and again from 0 if the upload is retried).
        """
        self.check_served("uploading a file")
        c = self._client
        fields = {"purpose": purpose or c.wire.upload_purpose, **dict(c.wire.upload_form_fields)}
        if c.custom_llm_provider:
            fields["custom_llm_provider"] = c.custom_llm_provider
        upload = MultipartFileUpload(path, fields=fields, progress=progress)
        response = c._request("POST", f"{c.base_url}/files", upload=upload, creates=True)
        return c._json(response, FileObject)

    def retrieve(self, file_id: str) -> FileObject:
        self.check_served("reading a file")
        c = self._client
        return c._json(c._request("GET", f"{c.base_url}/files/{_seg(file_id)}"), FileObject)

    def list(self, *, purpose: str | None = None, limit: int | None = None, after: str | None = None) -> FilePage:
        self.check_served("listing files")
        c = self._client
        params = {"purpose": purpose, "limit": limit, "after": after}
        return c._json(c._request("GET", f"{c.base_url}/files", params=params), FilePage)

    def iter(self, *, purpose: str | None = None, limit: int | None = None) -> Iterator[FileObject]:
        """Every file, page after page, with the stop rules of ``Batches.iter``.

        ``limit`` is the page size asked for; cap the total with ``itertools.islice``.
        """
        return _iter_pages(lambda after: self.list(purpose=purpose, limit=limit, after=after))

    def delete(self, file_id: str) -> FileDeleted:
        self.check_served("deleting a file")
        c = self._client
        return c._json(c._request("DELETE", f"{c.base_url}/files/{_seg(file_id)}"), FileDeleted)

    def content(self, file_id: str) -> ContentStream:
        """A file's bytes as a stream of chunks (``close()`` it, or exhaust it); not retried once begun."""
        c = self._client
        url = self._content_url(file_id)
        response = c._request("GET", url, stream=True)
        return ContentStream(response, lambda exc: c._download_error(exc, url))

    def download_to(
        self, file_id: str, path: str | os.PathLike[str], *, progress: ProgressCallback | None = None,
        on_chunk: Callable[[bytes], object] | None = None,
    ) -> int:  # fmt: skip
        """Save a file's bytes at ``path``; returns the byte count.

        Streams to ``<path>.part`` and renames it to ``path`` once complete, so a failed download leaves
        neither. A connection lost mid-way restarts the download, within ``max_retries``.
        ``progress(bytes_received, total)`` gets ``total`` 0 when the server sends no length; each
        attempt starts with ``progress(0, total)``. ``on_chunk(chunk)`` gets the bytes as each chunk is
        written (a retry's from the start again, after its ``progress(0, total)``); what it raises ends
        the download, ``<path>.part`` removed, and is not retried.
        """
        c = self._client
        url = self._content_url(file_id)
        target = Path(path)
        partial = target.with_name(target.name + ".part")
        retries_done = 0
        while True:
            try:
                received = self._save(url, partial, progress, on_chunk)
            except httpx.TransportError as exc:
                partial.unlink(missing_ok=True)
                if retries_done < c.max_retries and should_retry_exception(exc, creates=False):
                    c._pause(retries_done, None)
                    retries_done += 1
                    continue
                raise c._download_error(exc, url) from exc
            except BaseException:
                partial.unlink(missing_ok=True)
                raise
            os.replace(partial, target)
            return received

    def _content_url(self, file_id: str) -> str:
        self.check_served("downloading a file")
        return f"{self._client.base_url}/files/{_seg(file_id)}/content"

    def _save(
        self, url: str, partial: Path, progress: ProgressCallback | None, on_chunk: Callable[[bytes], object] | None
    ) -> int:
        response = self._client._request("GET", url, stream=True)
        try:
            if response.headers.get("content-type", "").lower().startswith("text/html"):
                # A proxy's page answered 200 is not the file: refuse it before a byte is saved.
                from batchctl.api._answers import not_json, unexpected

                text = self._client._redact(next(response.iter_bytes(), b"")[:4096].decode("utf-8", "replace"))
                raise unexpected(response.status_code, "FileContent", not_json(text), url=url)
            length = response.headers.get("content-length")
            total = int(length) if length and length.isdigit() else 0
            received = 0
            if progress:
                progress(0, total)
            with partial.open("wb") as out:
                for chunk in response.iter_bytes():
                    out.write(chunk)
                    if on_chunk:
                        on_chunk(chunk)
                    received += len(chunk)
                    if progress:
                        progress(received, total)
            return received
        finally:
            response.close()
