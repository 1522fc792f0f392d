"""`batchctl files ...`: list, show and delete files stored on the server (DashScope keeps at most 10,000 / 100 GB)."""

from __future__ import annotations

from typing import Annotated

import typer

from batchctl.cli.context import AppState
from batchctl.cli.options import JsonOpt, YesOpt
from batchctl.errors import EXIT_ERROR

app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode=None)

FileIdArg = Annotated[str, typer.Argument(help="File id, e.g. file-batch-abc123.", show_default=False, metavar="FILE_ID")]
FileIdsArg = Annotated[list[str], typer.Argument(help="One or more file ids.", show_default=False, metavar="FILE_ID")]


def client_for_file(state: AppState, file_id: str):
    """A client that reaches `file_id`: a batch input uploaded by `submit` keeps its server and channel pin."""
    from batchctl import journal

    for entry in journal.entries().values():
        if entry.input_file_id == file_id:
            return state.client_for_batch(entry.batch_id)
    return state.client()


def _when(timestamp: int | None) -> str:
    """A file's time as the batch panels write it (`watching.format_timestamp`, no Rich); "" when unknown."""
    from batchctl.watching import format_timestamp

    return format_timestamp(timestamp, seconds=False) if timestamp else ""


@app.command("list")
def list_files(
    ctx: typer.Context,
    purpose: Annotated[str | None, typer.Option("--purpose", help="Only files with this purpose: batch, batch_output, ...")] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Show at most this many files.")] = None,
    json_: JsonOpt = False,
) -> None:
    """List files stored on the server (uploads and batch results).

    Example: batchctl files list --purpose batch
    """
    from itertools import islice

    from batchctl.providers import format_size

    state = AppState.get(ctx, json_=json_)
    client = state.client()
    pages = client.files.iter(purpose=purpose, limit=min(limit, 100) if limit else None)
    files = list(islice(pages, limit) if limit else pages)
    state.out.result(
        files,
        human=lambda: state.out.table(
            ["id", "purpose", "size", "created", "filename"],
            [[f.id, f.purpose or "", format_size(f.bytes) if f.bytes is not None else "", _when(f.created_at), f.filename or ""] for f in files],
            empty="No files.",
            keep=("id",),
        ),
        ids=[f.id for f in files],
    )


@app.command("show")
def show_file(ctx: typer.Context, file_id: FileIdArg, json_: JsonOpt = False) -> None:
    """Show one file's details.

    Example: batchctl files show file-batch-abc123
    """
    state = AppState.get(ctx, json_=json_)
    info = client_for_file(state, file_id).files.retrieve(file_id)

    def show() -> None:
        for key, value in info.model_dump().items():
            if key in ("created_at", "expires_at"):
                value = _when(value)
            state.out.line(f"{key:<15}{'-' if value in (None, '') else value}")

    state.out.result(info, human=show)


@app.command("delete")
def delete_files(ctx: typer.Context, file_ids: FileIdsArg, yes: YesOpt = False, json_: JsonOpt = False) -> None:
    """Delete files from the server; asks first unless --yes. Exit code 1 if any could not be deleted.

    Example: batchctl files delete file-batch-abc123 file-batch_output-def456 --yes
    """
    from batchctl.api import NotFoundError
    from batchctl.urls import display_url

    state = AppState.get(ctx, json_=json_)
    if not yes and not state.out.confirm(
        f"Delete {len(file_ids)} file(s) from {display_url(state.settings().base_url)}?",
        refusal=f"refusing to delete {len(file_ids)} file(s) without confirmation",
        hint="Add --yes to delete without asking.",
    ):
        state.out.info("Nothing deleted.")
        raise typer.Exit(EXIT_ERROR)
    results, failed = [], 0
    # Any other API error (a 501, a 401, no connection) will not get better for the next id: it stops here.
    for file_id in file_ids:
        try:
            deleted = client_for_file(state, file_id).files.delete(file_id)
            results.append({"id": file_id, "deleted": bool(deleted.deleted), "error": None})
            if not deleted.deleted:
                failed += 1
                state.out.warn(f"{file_id}: the server did not confirm the deletion")
            else:
                state.out.success(f"Deleted {file_id}")
        except NotFoundError as exc:
            failed += 1
            results.append({"id": file_id, "deleted": False, "error": f"not found: {exc.message}"})
            where = display_url(state.settings().base_url)
            state.out.error(f"no file {file_id} on {where}: nothing to delete",
                            "It may be deleted already, or live on another server: check the id with "
                            "`batchctl files list` (-p PROFILE for another one).")  # fmt: skip
    state.out.result(results)
    if failed:
        raise typer.Exit(EXIT_ERROR)
