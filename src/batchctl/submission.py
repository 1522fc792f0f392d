"""The steps of submitting a batch, without the CLI: check a New-API channel first (`preflight_channel`, at
the end), prepare the file to upload (model rewrite, blank lines dropped), upload it, create the batch,
remember it in the journal.

The user's file is never modified: every change is made in a private temporary copy, deleted when
the upload is over. Creating a batch is the one step that must not happen twice, so its failure is
reported with the uploaded file id and how to finish without uploading again.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from batchctl.errors import BatchctlError
from batchctl.validation import UTF8_BOM, iter_raw_lines, iter_request_lines

if TYPE_CHECKING:
    from batchctl.api import Batch, BatchClient, FileObject
    from batchctl.config import Settings
    from batchctl.journal import JournalEntry
    from batchctl.newapi import ChannelCheck
    from batchctl.validation import ValidationReport

ProgressCallback = Callable[[int, int], None]


def parse_metadata(items: Iterable[str]) -> dict[str, str] | None:
    """`["k=v", "team=nlp"]` -> `{"k": "v", "team": "nlp"}`; None when there are none."""
    metadata: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise BatchctlError(
                f"metadata {item!r} is not key=value",
                "Give each pair as --metadata key=value, e.g. --metadata project=eval.",
            )
        metadata[key] = value
    return metadata or None


def needs_normalizing(report: ValidationReport) -> bool:
    """Whether the file has blank lines or a BOM, which are dropped before upload (as the seed client does):
    the validator forgives them, servers may not."""
    return report.blank_lines > 0 or any(w.code == UTF8_BOM for w in report.warnings)


def first_request(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The first request line of a file (for its url and model when validation is skipped)."""
    for _, obj in iter_request_lines(path):
        return obj
    return None


def _rewrite_line(raw: bytes, model: str) -> bytes:
    """The line with body.model set to `model`; lines that are not request objects stay as they are."""
    try:
        obj = json.loads(raw)
    except ValueError:
        return raw
    if not isinstance(obj, dict) or not isinstance(obj.get("body"), dict):
        return raw
    obj["body"]["model"] = model
    ending = b"\r\n" if raw.endswith(b"\r\n") else b"\n"
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + ending


class UploadFile:
    """The file that will be uploaded: the user's own, or a private temporary copy once changed.

    A context manager: leaving it deletes any temporary copy (also on SIGTERM/SIGHUP, which raise
    `Terminated`). The copy lives in `<data dir>/tmp/` (`batchctl.scratch`: a later run sweeps what a
    killed one left) and keeps the original's name, since the server records the uploaded file name.
    """

    def __init__(self, source: str | os.PathLike[str]) -> None:
        self.source = Path(source)
        self.path = self.source
        self.models_rewritten = 0
        self.blank_lines_dropped = 0
        self._scratch: Path | None = None

    def rewrite(self, *, model: str | None = None, drop_blank_lines: bool = False) -> None:
        """Copy the current file, setting body.model on every request and/or dropping blank lines
        and a leading BOM. Line numbers are kept unless blank lines are dropped, so a rewritten file
        validates with the user's line numbers."""
        if self._scratch is None:
            from batchctl.scratch import make_scratch

            self._scratch = make_scratch("batchctl-upload-")
        target = self._scratch / self.source.name
        partial = target.with_name(target.name + ".part")
        with open(partial, "wb") as dst:
            for _, _, raw in iter_raw_lines(self.path):
                if not raw.strip():
                    if drop_blank_lines:
                        self.blank_lines_dropped += 1
                        continue
                elif model is not None:
                    new = _rewrite_line(raw, model)
                    self.models_rewritten += int(new is not raw)
                    raw = new
                dst.write(raw)
        os.replace(partial, target)
        self.path = target

    def close(self) -> None:
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None
        self.path = self.source

    def __enter__(self) -> UploadFile:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def describe_changes(upload: UploadFile, model: str | None) -> str:
    """What the upload changed in the user's file, as " (model set to m on 3 lines; 1 blank line left out)"."""
    changed = []
    if upload.models_rewritten:
        changed.append(f"model set to {model} on {upload.models_rewritten:,} lines")
    if upload.blank_lines_dropped:
        n = upload.blank_lines_dropped
        changed.append(f"{n:,} blank line{'s' if n != 1 else ''} left out")
    return f" ({'; '.join(changed)})" if changed else ""


def upload_input(client: BatchClient, path: Path, *, progress: ProgressCallback | None = None) -> FileObject:
    """Upload a batch input file, streamed from disk; `progress(bytes_sent, total)` as it goes."""
    return client.files.create(path=path, progress=progress)  # the provider's purpose (together: batch-api)


class BatchCreateError(BatchctlError):
    """The input was uploaded but no batch could be created; carries the uploaded file id."""

    def __init__(self, message: str, hint: str, file_id: str) -> None:
        super().__init__(message, hint)
        self.file_id = file_id


def retry_command(file_id: str, endpoint: str, completion_window: str, metadata: dict[str, str] | None) -> str:
    parts = ["batchctl submit --input-file-id", file_id, "--endpoint", endpoint]
    if completion_window != "24h":
        parts += ["--completion-window", completion_window]
    for key, value in (metadata or {}).items():
        parts += ["--metadata", shlex.quote(f"{key}={value}")]
    return " ".join(parts)


def create_batch(
    client: BatchClient,
    *,
    input_file_id: str,
    endpoint: str,
    completion_window: str = "24h",
    metadata: dict[str, str] | None = None,
    uploaded: bool = True,
) -> Batch:
    """Create the batch once. The API layer does not blindly retry this POST; when it fails, the
    error names the uploaded file and the command that creates the batch from it (`uploaded` False:
    the file was given, `submit --input-file-id`, and the error is about it). Without a journal only:
    the CLI's `submit --input-file-id` creates through `batchctl.jobs.file_id`, which reconciles."""
    from batchctl.api import APIConnectionError, APIError

    try:
        return client.batches.create(
            input_file_id=input_file_id, endpoint=endpoint, completion_window=completion_window, metadata=metadata
        )
    except APIError as exc:
        status = getattr(exc, "status", None)
        reason = f"HTTP {status}: {exc.message}" if status else exc.message
        retry = retry_command(input_file_id, endpoint, completion_window, metadata)
        # No answer (timeouts included) or a 5xx: the server may have made the batch all the same.
        ambiguous = isinstance(exc, APIConnectionError) or status is None or status >= 500
        if not uploaded:  # the user's file id: nothing of this run's to keep
            message = f"creating the batch from {input_file_id} failed: {reason}"
            if ambiguous:
                hint = "The request may still have reached the server: check `batchctl list` before running it again."
            elif status == 404:
                hint = "Check the file id: batchctl files list shows the files on the server."
            else:
                hint = "Fix the cause, then run the same command again."
            raise BatchCreateError(message, hint, input_file_id) from exc
        if ambiguous:
            hint = (
                f"The request may still have reached the server: check `batchctl list` first. "
                f"If no batch was created, create it without uploading again: {retry}"
            )
        else:
            hint = f"Fix the cause, then create the batch without uploading again: {retry}"
        raise BatchCreateError(
            f"the input was uploaded as {input_file_id}, but creating the batch failed: {reason}", hint, input_file_id
        ) from exc


def record_submission(
    settings: Settings,
    client: BatchClient,
    batch: Batch,
    *,
    input_path: Path | None,
    input_file_id: str,
    endpoint: str,
    model: str | None,
) -> JournalEntry:
    """Remember the batch with the server, channel and profile it was created through."""
    from batchctl import journal

    entry = journal.JournalEntry(
        batch_id=batch.id,
        profile=settings.profile_name,
        base_url=client.base_url,
        provider=settings.provider,
        channel=client.channel,
        input_path=str(input_path.resolve()) if input_path is not None else None,
        input_file_id=input_file_id,
        endpoint=endpoint,
        model=model,
    )
    journal.record(entry)
    return entry


# -- the New-API channel check before anything is uploaded ------------------------------------------


def preflight_channel(
    settings: Any,
    model: str | None,
    *,
    info: Callable[[str], None],
    warn: Callable[[str], None],
    timeout: float = 15.0,
    transport: Any = None,
    debug_log: Callable[[str], None] | None = None,
) -> ChannelCheck | None:
    """`submit`'s channel check for a `newapi` profile, before anything is uploaded.

    With an access token: the full check (exists, enabled, serves `model`); a failure raises a
    BatchctlError. Without one: says what could not be checked, then asks `/v1/models` with the pinned
    key -- a 401/403 there would fail the upload too, so it stops; a model it does not list is a warning.
    Returns the check (None for other providers or when nothing was pinned).
    """
    from batchctl.newapi import check_channel_for

    if settings.provider != "newapi":
        return None
    if not settings.channel:
        warn(
            "no New-API channel pinned: the gateway cannot route file uploads and batch calls by model; "
            "pin the DashScope channel with --channel ID (or in the profile)"
        )
        return None
    check = check_channel_for(settings, model, timeout=timeout, transport=transport, debug_log=debug_log)
    if check.checked:
        if not check.ok:
            raise check.to_error()
        info(f"Channel check: {check.message}")
        for line in check.summary_lines():
            info(f"  {line}")
        for warning in check.warnings:
            warn(warning)
        return check
    warn(check.message + "; carrying on (add --access-token and --user-id to the profile for the full check)")
    status, ids, message = _models_listed(settings, timeout=timeout, transport=transport, debug_log=debug_log)
    if status in (401, 403):
        what = "the key" if status == 401 else f"the pin to channel {settings.channel}"
        raise BatchctlError(
            f"the gateway refused {what} (HTTP {status}): {message}",
            "Only admin users may pin a channel, and the channel must be enabled; check the key and --channel."
            if status == 403
            else "Check the key: batchctl profile show, --api-key or BATCHCTL_API_KEY.",
        )
    if status == 200 and model and ids and model not in ids:
        warn(f"the gateway's /v1/models does not list {model!r} for this key; the batch may fail to route")
    elif status == 200 and model and model in ids:
        info(f"Weaker check: the gateway lists {model!r} (channel {settings.channel} itself was not checked)")
    return check


def _models_listed(
    settings: Any, *, timeout: float, transport: Any, debug_log: Callable[[str], None] | None = None
) -> tuple[int | None, list[str], str]:
    """`GET {base}/models` with the pinned key, sent once: (status, model ids, error message). The weaker check.

    Status None when no (usable) answer came: the check then says nothing.
    """
    from batchctl.api import APIError, APIStatusError, BatchClient

    client = BatchClient(
        settings.base_url, settings.api_key, channel=settings.channel,
        timeout=timeout, max_retries=0, debug_log=debug_log, transport=transport,
    )  # fmt: skip
    with client:
        try:
            return 200, client.newapi.models(), ""
        except APIStatusError as exc:
            return exc.status, [], exc.message
        except APIError:
            return None, [], ""
