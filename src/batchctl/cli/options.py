"""Shared option and argument aliases, written once: a signature reads `profile: ProfileOpt = None`."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Annotated

import typer


def complete_profile_names(incomplete: str) -> list[str]:
    """Shell completion for --profile: the configured profile names (and the built-in `local`)."""
    from batchctl.config import load_config
    from batchctl.errors import ConfigError

    try:
        names = load_config().names()
    except ConfigError:
        return []
    return [name for name in names if name.startswith(incomplete)]


def complete_choices(choices: Callable[[], Iterable[str]]) -> Callable[[str], list[str]]:
    """Shell completion from a fixed set of values, read when completing (so importing stays cheap)."""

    def complete(incomplete: str) -> list[str]:
        return [choice for choice in choices() if choice.startswith(incomplete)]

    return complete


def _presets() -> Iterable[str]:
    from batchctl.config import PRESETS

    return PRESETS


def _provider_kinds() -> Iterable[str]:
    from batchctl.config import PROVIDER_KINDS

    return PROVIDER_KINDS


def _batch_statuses() -> Iterable[str]:
    from batchctl.api.models import BATCH_STATUSES

    return BATCH_STATUSES


complete_presets = complete_choices(_presets)
complete_provider_kinds = complete_choices(_provider_kinds)
complete_batch_statuses = complete_choices(_batch_statuses)

ProfileOpt = Annotated[
    str | None,
    typer.Option(
        "--profile",
        "-p",
        metavar="NAME",
        help="Profile to use. [env var: BATCHCTL_PROFILE]",
        envvar="BATCHCTL_PROFILE",
        show_envvar=False,
        autocompletion=complete_profile_names,
    ),
]
BaseUrlOpt = Annotated[
    str | None,
    typer.Option(
        "--base-url",
        metavar="URL",
        help="API root, e.g. https://api.openai.com/v1 (a bare host gets /v1). [env var: BATCHCTL_BASE_URL]",
        envvar="BATCHCTL_BASE_URL",
        show_envvar=False,
    ),
]
ApiKeyOpt = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        metavar="KEY",
        help="API key (prefer a profile or the env var: flags show up in shell history). [env var: BATCHCTL_API_KEY]",
        envvar="BATCHCTL_API_KEY",
        show_envvar=False,
    ),
]
ChannelOpt = Annotated[
    str | None,
    typer.Option(
        "--channel",
        "--channel_id",
        metavar="ID",
        help="New-API channel id to pin every request to (--channel_id as in the seed script). [env var: BATCHCTL_CHANNEL]",
        envvar="BATCHCTL_CHANNEL",
        show_envvar=False,
    ),
]
JsonOpt = Annotated[
    bool,
    typer.Option("--json", help="Print plain JSON for scripts instead of tables."),
]
QuietOpt = Annotated[
    bool,
    typer.Option(
        "--quiet",
        "-q",
        help="Print only ids, one per line (submit, list, status; download, prepare: the files' paths), and no progress or notes; warnings and errors still show.",
    ),
]
DebugOpt = Annotated[
    bool,
    typer.Option(
        "--debug",
        help="Log every HTTP exchange to stderr (secrets masked) and show tracebacks. [env var: BATCHCTL_DEBUG]",
        envvar="BATCHCTL_DEBUG",
        show_envvar=False,
    ),
]
def complete_ids(incomplete: str) -> list[tuple[str, str]]:
    """Shell completion for job and batch ids: from the journal, newest first; the help is the input file's name."""
    return journal_ids(incomplete, batches=True)


def complete_job_ids(incomplete: str) -> list[tuple[str, str]]:
    """Shell completion for job ids only."""
    return journal_ids(incomplete, batches=False)


def journal_ids(incomplete: str, *, batches: bool) -> list[tuple[str, str]]:
    import os

    try:
        from batchctl.jobs.store import Journal, journal_path

        if not journal_path().exists():
            return []
        with Journal.open() as journal:
            found = [(job.id, os.path.basename(job.input_path)) for job in journal.jobs()]
            if batches:
                found += [(b.batch_id, os.path.basename(b.input_path or "")) for b in journal.batches()]
    except Exception:  # completion must never print a traceback into the shell
        return []
    return [(value, help_) for value, help_ in found if value.startswith(incomplete)]


BatchIdArg = Annotated[
    str,
    typer.Argument(help="Batch id (batch_abc123), job id (job_…), or `last`: the newest submitted from here.",
                   show_default=False, metavar="BATCH_ID",
                   autocompletion=complete_ids),  # fmt: skip
]
BatchIdsArg = Annotated[
    list[str],
    typer.Argument(help="One or more batch ids or job ids (`last`: the newest submitted from here).",
                   show_default=False, metavar="BATCH_ID",
                   autocompletion=complete_ids),  # fmt: skip
]
OptionalBatchIdsArg = Annotated[
    list[str] | None,
    typer.Argument(help="Batch ids or job ids (`last`: the newest; none: the most recent submitted from here).",
                   show_default=False, metavar="BATCH_ID", autocompletion=complete_ids),  # fmt: skip
]
IntervalOpt = Annotated[
    float | None,
    typer.Option(
        "--interval",
        "--poll-interval",
        metavar="SECONDS",
        min=0.1,
        help="Seconds between status polls (default: the profile's, else the provider's: 10 s, DashScope 60 s, the local server 1 s).",
    ),
]
GiveUpAfterOpt = Annotated[
    float | None,
    typer.Option(
        "--give-up-after",
        metavar="SECONDS",
        min=0,
        help="While watching, keep retrying an unreachable server (connection errors, 5xx, 429) this long, "
        "then stop with exit 1 and the command to resume (default: 600).",
    ),
]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
ForceOpt = Annotated[bool, typer.Option("--force", "-f", help="Overwrite existing files.")]
DeleteRemoteOpt = Annotated[
    bool,
    typer.Option(
        "--delete-remote",
        help="After the results are saved, delete the batch's files from the server: input, output and error file "
        "(DashScope keeps at most 10,000 files / 100 GB).",
    ),
]
EndpointOpt = Annotated[
    str | None,
    typer.Option(
        "--endpoint",
        help="The batch's endpoint, e.g. /v1/chat/completions; every line's url must match it (default: the first line's url).",
    ),
]
OutputOpt = Annotated[
    Path | None,
    typer.Option(
        "--output",
        "-o",
        help="Where to write the results (default: results_<model>_<YYYYMMDD-HHMMSS>.jsonl in the current directory).",
        dir_okay=False,
    ),
]
ErrorsOutputOpt = Annotated[
    Path | None,
    typer.Option(
        "--errors-output",
        help="Where to write the error file, when the batch has one (default: beside --output as <name>.errors.jsonl).",
        dir_okay=False,
    ),
]
WaitOpt = Annotated[bool, typer.Option("--wait", "-w", help="Wait for the batch to finish (and download its results) before exiting.")]
