"""The root Typer app: global options, command registration (all in one place), and `main()`.

Importing this module stays cheap: command modules import httpx, pydantic models and the server
inside their functions, and a test guards that `import batchctl.cli.app` pulls in neither.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from batchctl import __version__
from batchctl.cli.commands import cancel as cancel_cmd
from batchctl.cli.commands import doctor as doctor_cmd
from batchctl.cli.commands import download as download_cmd
from batchctl.cli.commands import files as files_cmd
from batchctl.cli.commands import jobs as jobs_cmd
from batchctl.cli.commands import list_ as list_cmd
from batchctl.cli.commands import profile as profile_cmd
from batchctl.cli.commands import serve as serve_cmd
from batchctl.cli.commands import status as status_cmd
from batchctl.cli.commands import submit as submit_cmd
from batchctl.cli.commands import validate as validate_cmd
from batchctl.cli.context import AppState
from batchctl.cli.options import ApiKeyOpt, BaseUrlOpt, ChannelOpt, DebugOpt, JsonOpt, ProfileOpt
from batchctl.cli.output import Output

EXIT_CODES_HELP = (
    "Exit codes: 0 success; 1 error or invalid input; 2 usage error; 3 batch failed; 4 batch expired; "
    "5 batch cancelled; 6 batch not finished yet; 130 interrupted (Ctrl+C)."
)


class BatchctlGroup(TyperGroup):
    """Routes every exception raised by a command through the one error map (`cli/errors.py`)."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.exceptions.TyperException):
            raise
        except (Exception, KeyboardInterrupt) as exc:
            from batchctl.cli.errors import report_exception

            state = ctx.obj if isinstance(ctx.obj, AppState) else AppState()
            raise typer.Exit(report_exception(exc, state.out, debug=state.debug)) from None


app = typer.Typer(
    name="batchctl",
    cls=BatchctlGroup,
    help=(
        "Run LLM batch jobs on OpenAI-compatible Batch APIs (OpenAI, DashScope, New-API gateways) "
        "or the embedded local server.\n\n"
        "Quick start: batchctl submit examples/chat.jsonl --wait"
    ),
    epilog=EXIT_CODES_HELP,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"batchctl {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    profile: ProfileOpt = None,
    base_url: BaseUrlOpt = None,
    api_key: ApiKeyOpt = None,
    channel: ChannelOpt = None,
    json_: JsonOpt = False,
    debug: DebugOpt = False,
    version: Annotated[
        bool,
        typer.Option("--version", "-V", help="Show the version and exit.", callback=_version_callback, is_eager=True),
    ] = False,
) -> None:
    """Global options apply to every command."""

    def flag_only(name: str, value: str | None) -> str | None:
        # Typer fills options from their env vars too; config.resolve_settings reads the env itself,
        # so passing only real flags lets `profile show` say where each value came from.
        source = ctx.get_parameter_source(name)
        return None if source is not None and source.name == "ENVIRONMENT" else value

    profile, base_url, api_key, channel = (
        flag_only("profile", profile),
        flag_only("base_url", base_url),
        flag_only("api_key", api_key),
        flag_only("channel", channel),
    )
    state = AppState(
        profile=profile,
        base_url=base_url,
        api_key=api_key,
        channel=channel,
        json=json_,
        debug=debug,
        out=Output(json_mode=json_, debug=debug),
    )
    ctx.obj = state
    ctx.call_on_close(state.close)


# -- command registration: every command of batchctl is listed here ------------------------------------
app.command("validate", epilog=validate_cmd.EPILOG)(validate_cmd.validate)
app.command("submit", epilog=submit_cmd.EPILOG)(submit_cmd.submit)
app.command("download", epilog=download_cmd.EPILOG)(download_cmd.download)
profile_cmd.app.command("test")(doctor_cmd.test_profile)
app.add_typer(profile_cmd.app, name="profile", help="Manage connection profiles (base URL, key, channel).")
app.command("status", epilog=status_cmd.EPILOG)(status_cmd.status)
app.command("list")(list_cmd.list_batches)
app.command("cancel", epilog=cancel_cmd.EPILOG)(cancel_cmd.cancel)
app.add_typer(files_cmd.app, name="files", help="List, show and delete files stored on the server.")
app.add_typer(jobs_cmd.app, name="jobs", help="Jobs from the local journal (no network): list, show, forget.")
app.command("doctor")(doctor_cmd.doctor)
app.command("serve", epilog=serve_cmd.EPILOG)(serve_cmd.serve)


def main() -> None:
    """Console-script entry point."""
    app(prog_name="batchctl")
