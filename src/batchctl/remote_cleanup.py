"""Deleting a batch's files from the server (`--delete-remote`): DashScope keeps at most 10,000 files / 100 GB.

`remote_files_of` decides which files may go; `delete_remote_files` deletes them and reports each one,
never raising for a file that could not be deleted (the results are already safe on disk by then).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from batchctl.api import Batch, BatchClient


@dataclass
class RemoteDeletion:
    kind: str  # "input" | "output" | "error"
    file_id: str
    deleted: bool
    error: str | None = None

    def to_dict(self) -> dict:
        return {"kind": self.kind, "file_id": self.file_id, "deleted": self.deleted, "error": self.error}


def remote_files_of(batch: Batch, *, input_file_id: str | None = None) -> list[tuple[str, str]]:
    """(kind, file id) of every file a finished batch leaves on the server; `input_file_id` fills in a
    batch object that does not name its input (the journal remembers it)."""
    found = []
    for kind, file_id in (
        ("input", batch.input_file_id or input_file_id),
        ("output", batch.output_file_id),
        ("error", batch.error_file_id),
    ):
        if file_id and all(file_id != seen for _, seen in found):
            found.append((kind, file_id))
    return found


def delete_remote_files(client: BatchClient, files: list[tuple[str, str]]) -> list[RemoteDeletion]:
    """Delete each file; a file already gone counts as deleted."""
    from batchctl.api import APIError, NotFoundError

    done = []
    for kind, file_id in files:
        try:
            answer = client.files.delete(file_id)
            done.append(RemoteDeletion(kind, file_id, bool(answer.deleted), None if answer.deleted else "not confirmed by the server"))
        except NotFoundError:
            done.append(RemoteDeletion(kind, file_id, True, "already gone"))
        except APIError as exc:
            done.append(RemoteDeletion(kind, file_id, False, str(exc)))
    return done
