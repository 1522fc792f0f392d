"""The root Typer app: global options, command registration (all in one place), and `main()`.

Importing this module stays cheap: command modules import httpx, pydantic models and the server
inside their functions, and a test guards that `import batchctl.cli.app` pulls in neither. `main()`
imports and builds only the command it runs (`batchctl validate` never loads `serve` or `submit`);
`app` (help, completion, the docs, tests) has them all.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from batchctl import __version__
from batchctl.cli.context import AppState
from batchctl.cli.options import ApiKeyOpt, BaseUrlOpt, ChannelOpt, DebugOpt, JsonOpt, ProfileOpt, QuietOpt
from batchctl.cli.output import Output

EXIT_CODES_HELP = (
    "Exit codes: 0 success; 1 error or invalid input; 2 usage error; 3 batch failed (or completed with 0 requests succeeded); 4 batch expired; "
    "5 batch cancelled; 6 batch not finished yet; 130 interrupted (Ctrl+C)."
)


# Root options that are not global settings: they act at once, so they stay where they are.
_NOT_HOISTED = frozenset({"--version", "-V", "--help", "-h", "--install-completion", "--show-completion"})


def _option_names(command: Any) -> dict[str, Any]:
    """Each option name of `command` (`--profile`, `-p`, `--no-use`) and its parameter."""
    return {
        name: param for param in command.params for name in (*getattr(param, "opts", ()), *getattr(param, "secondary_opts", ()))
    }


def _global_options(group: Any) -> dict[str, Any]:
    """The root's options that may stand anywhere (`-p`, `--json`, ...): all but those that act at once."""
    return {name: param for name, param in _option_names(group).items() if name not in _NOT_HOISTED}


def _takes_value(options: dict[str, Any], token: str) -> bool:
    """Whether the option `token` (of `options`) takes the next token as its value."""
    param = options.get(token.split("=", 1)[0])
    return param is not None and not (getattr(param, "is_flag", True) or getattr(param, "count", False)) and "=" not in token


def split_command_line(group: Any, ctx: Any, args: list[str]) -> tuple[int, list[tuple[str, Any, int, int]], int]:
    """Where `args` name their commands: `(first, levels, end)`. `args[:first]` are the root's options; each
    level `(name, command, start, stop)` is a command (a sub-group, then its sub-command, down to the leaf)
    and `args[start:stop]` what it parses: under a group its options (and global ones) up to the next
    name, under the leaf the rest; `args[end:]` are as typed (from `--`, or from a name no group knows)."""
    root = _global_options(group)
    first = 0
    while first < len(args) and args[first].startswith("-") and args[first] != "--":
        first += 2 if _takes_value(root, args[first]) else 1
    levels: list[tuple[str, Any, int, int]] = []
    command, j = group, first
    while j < len(args) and args[j] != "--" and hasattr(command, "get_command"):
        sub = command.get_command(ctx, args[j])
        if sub is None:
            break
        start = j = j + 1
        if hasattr(sub, "get_command"):  # a group's options and global ones, then its sub-command's name
            own = _option_names(sub)
            while j < len(args) and args[j].startswith("-") and args[j] != "--":
                j += 2 if _takes_value(own if args[j].split("=", 1)[0] in own else root, args[j]) else 1
            j = min(j, len(args))
        else:
            j = args.index("--", j) if "--" in args[j:] else len(args)
        levels.append((args[start - 1], sub, start, j))
        command = sub
    return first, levels, j


def hoist_global_options(group: Any, ctx: Any, args: list[str]) -> list[str]:
    """`batchctl list -p work` as `batchctl -p work list`: global options typed after the command
    move before it, so they work in either position with one definition.

    An option the command itself defines (`profile add --base-url`) is the command's and stays put, as
    does a sub-group's (`jobs --json`); a global option between a group and its sub-command moves too
    (`profile --json list`); everything after `--` is left alone.
    """
    root = _global_options(group)
    first, levels, end = split_command_line(group, ctx, args)
    moved: list[str] = []
    kept: list[str] = []
    for depth, (name, command, start, stop) in enumerate(levels):
        kept.append(name)
        own = _option_names(command)
        j = start
        while j < stop:
            token = args[j]
            key = token.split("=", 1)[0]
            if key in root and key not in own:
                width = 2 if _takes_value(root, token) else 1
                # Moved without its value, it would take the command's name for one; but completing that value
                # (`list --profile <TAB>`, parsed resiliently) wants it moved: the root completes it.
                if j + width > stop and not ctx.resilient_parsing:
                    raise _USAGE_ERRORS[0](f"Option {token!r} requires an argument.", ctx=_context_of(ctx, levels[: depth + 1]))
                moved += args[j : j + width]
                j += width
                continue
            kept.append(token)
            j += 1
    return args[:first] + moved + kept + args[end:]


def _context_of(ctx: Any, levels: list[tuple[str, Any, int, int]]) -> Any:
    """A context for the last command of `levels` (`split_command_line`) under the root's `ctx`, nothing
    parsed: a usage error raised without one shows that command's usage and `-h` with it."""
    for name, command, _, _ in levels:
        ctx = command.context_class(command, parent=ctx, info_name=name)
    return ctx


def fill_optional_values(group: Any, ctx: Any, args: list[str]) -> list[str]:
    """`download B --join -o x.csv` as `download B --join "" -o x.csv`: an option whose placeholder is in
    brackets (`--join [DATA]`) may be given without its value, which then reads as ""."""
    command, names = group, set()
    for token in args:
        sub = command.get_command(ctx, token) if hasattr(command, "get_command") and not token.startswith("-") else None
        if sub is not None:
            command = sub
            names = {o for p in sub.params if (getattr(p, "metavar", None) or "").startswith("[") for o in getattr(p, "opts", ())}
    if not names:
        return args
    filled: list[str] = []
    for n, token in enumerate(args):
        filled.append(token)
        following = args[n + 1] if n + 1 < len(args) else None
        if token in names and (following is None or (following.startswith("-") and len(following) > 1)):
            filled.append("")
    return filled


# What a value is, in words, where an option does not name it itself (help shows `--host HOST`, not `<str>`).
_PLACEHOLDERS = {
    "--base-url": "URL", "--upstream": "URL", "--api-key": "KEY", "--upstream-key": "KEY", "--api-key-env": "VAR",
    "--access-token": "TOKEN", "--user-id": "ID", "--channel": "ID", "--after": "BATCH_ID", "--create-after": "TIME",
    "--create-before": "TIME", "--ds-name": "NAME", "--max-file-mb": "MB", "--max-line-mb": "MB",
    "--poll-interval": "SECONDS", "--latency": "SECONDS", "--timeout": "SECONDS", "--failure-rate": "SHARE",
}  # fmt: skip
_PLACEHOLDER_BY_TYPE = {int: "N", float: "NUMBER"}


def name_placeholders(command: Any) -> None:
    """Give every option value and argument of `command` (and its sub-commands) a placeholder in words."""
    for param in command.params:
        if param.param_type_name == "argument":
            # `BATCH_ID...` in usage and help, as people write it: no `{BATCH_ID}`, no `<list[str]>` beside it.
            shown = (param.metavar or param.name.upper()) + ("..." if param.nargs != 1 else "")
            param._rich_display_name = lambda shown=shown: shown
            param._usage_display_name = lambda shown=shown, required=param.required: shown if required else f"[{shown}]"
            param.display_type = lambda ctx: ""
        elif param.metavar is None and not getattr(param, "is_flag", False) and not getattr(param, "count", False):
            long_name = max(param.opts, key=len)
            annotation = getattr(getattr(param, "type_descriptor", None), "annotation", None)
            param.metavar = (
                _PLACEHOLDERS.get(long_name)
                or _PLACEHOLDER_BY_TYPE.get(annotation)
                or long_name.lstrip("-").replace("-", "_").upper()
            )
    for sub in getattr(command, "commands", {}).values():
        name_placeholders(sub)


# Typer's (or click's, before Typer 0.26) usage error: a mistyped command, option or value.
_USAGE_ERRORS = tuple(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")


def _usage_error_as_json(exc: Exception, *, json_requested: bool) -> None:
    """Under --json, the usage error on stdout as every other error is, `{"error": {"message", "hint",
    "exit_code"}}`, so a script reading stdout learns why there is nothing; Typer then shows it on
    stderr with the usage and exits 2, as without --json."""
    if not json_requested:
        return
    command = getattr(getattr(exc, "ctx", None), "command_path", None) or "batchctl"
    message = exc.format_message()
    # A group given no command: its whole help (NoArgsIsHelpError), or "Missing command." when it was
    # given options only (`batchctl --json`), says less than the commands it has.
    if type(exc).__name__ == "NoArgsIsHelpError" or message == "Missing command.":
        names = ", ".join(getattr(exc.ctx.command, "commands", {}))
        message = f"{command} needs a command" + (f": one of {names}" if names else "")
    Output(json_mode=True).result(
        {"error": {"message": message, "hint": f"Run '{command} -h' for usage.", "exit_code": exc.exit_code}}
    )


class BatchctlGroup(TyperGroup):
    """Takes global options in any position, routes every exception raised by a command through the one
    error map (`cli/errors.py`), names every value in help in words, and converts values without
    pydantic where Typer's conversion would change nothing (`cli/coercion.py`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        name_placeholders(self)

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        from batchctl.cli.coercion import quicken

        quicken(self, ctx)  # here: Typer adds the help and completion options after building the group
        # set by the first parse of the command line: the group may be parsed again on an error, with what
        # followed "--" but without it
        ctx.meta.setdefault("batchctl.json", "--json" in args[: args.index("--") if "--" in args else None])
        ctx.meta.setdefault("batchctl.args", list(args))
        try:
            return super().parse_args(ctx, fill_optional_values(self, ctx, hoist_global_options(self, ctx, list(args))))
        except _USAGE_ERRORS as exc:
            if exc.ctx is None:  # a root option without its value (`batchctl --profile`): click names no command
                exc.ctx, exc.cmd = ctx, self
            _usage_error_as_json(exc, json_requested=ctx.meta["batchctl.json"])
            raise

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except _USAGE_ERRORS as exc:  # a mistyped command, option or value: Typer shows it with the usage
            if exc.ctx is None:  # an option of the command without its value (`validate F --max-problems`)
                exc.ctx = _context_of(ctx, split_command_line(self, ctx, ctx.meta.get("batchctl.args", []))[1])
                exc.cmd = exc.ctx.command
            _usage_error_as_json(exc, json_requested=ctx.meta.get("batchctl.json", False))
            raise
        except (typer.Exit, typer.Abort, typer.exceptions.TyperException):
            raise
        except (Exception, KeyboardInterrupt) as exc:
            from batchctl.cli.errors import report_exception

            state = ctx.obj if isinstance(ctx.obj, AppState) else AppState()
            raise typer.Exit(report_exception(exc, state.out, debug=state.debug)) from None


def new_app() -> typer.Typer:
    """The root Typer app with its global options and no command yet."""
    root_app = typer.Typer(
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
    root_app.callback()(root)
    return root_app


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"batchctl {__version__}")
        raise typer.Exit()


def root(
    ctx: typer.Context,
    profile: ProfileOpt = None,
    base_url: BaseUrlOpt = None,
    api_key: ApiKeyOpt = None,
    channel: ChannelOpt = None,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
    version: Annotated[
        bool,
        typer.Option("--version", "-V", help="Show the version and exit.", callback=_version_callback, is_eager=True),
    ] = False,
) -> None:
    """Global options apply to every command, typed before or after it."""

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
        out=Output(json_mode=json_, debug=debug, quiet=quiet),
    )
    ctx.obj = state
    ctx.call_on_close(state.close)
    _warn_about_channel(state, pinned=bool(channel or os.environ.get("BATCHCTL_CHANNEL")))


def _warn_about_channel(state: AppState, *, pinned: bool) -> None:
    """A --channel (or BATCHCTL_CHANNEL) for a profile whose provider is not a New-API gateway: one
    warning line. A bad value or profile is left for the command to report (as its Error)."""
    if not pinned:
        return
    from batchctl.config import channel_warning
    from batchctl.errors import BatchctlError

    try:
        settings = state.settings()
    except BatchctlError:
        return
    if warning := channel_warning(settings.provider, settings.channel):
        state.out.warn(warning)


# -- command registration: every command of batchctl is listed here ------------------------------------
# name: (module in batchctl.cli.commands, its command function or Typer sub-app, help of a sub-app).
# A command's EPILOG (exit codes and the like) is its module's, where it has one.
COMMANDS: dict[str, tuple[str, str, str | None]] = {
    "validate": ("validate", "validate", None),
    "prepare": ("prepare", "prepare", None),
    "submit": ("submit", "submit", None),
    "download": ("download", "download", None),
    "retry": ("retry", "retry", None),
    "profile": ("profile", "app", "Manage connection profiles (base URL, key, channel)."),
    "status": ("status", "status", None),
    "list": ("list_", "list_batches", None),
    "cancel": ("cancel", "cancel", None),
    "files": ("files", "app", "List, show and delete files stored on the server."),
    "jobs": ("jobs", "app", "Jobs from the local journal (no network): list, show, forget."),
    "doctor": ("doctor", "doctor", None),
    "providers": ("providers", "providers", None),
    "serve": ("serve", "serve", None),
    "usage": ("usage", "usage", None),
}
# Root options that take a value, for finding the command's name in argv without building every command.
_VALUED_ROOT_OPTIONS = frozenset({"--profile", "-p", "--base-url", "--api-key", "--channel", "--channel_id"})
_FLAG_ROOT_OPTIONS = frozenset({"--json", "--quiet", "-q", "--debug"})


def _profile_app() -> typer.Typer:
    """`profile`, with `profile test` (doctor's) and `profile price` added once."""
    from batchctl.cli.commands import doctor, price, profile

    if not getattr(profile.app, "_batchctl_complete", False):
        profile.app.command("test")(doctor.test_profile)
        profile.app.add_typer(price.app, name="price", help="Model prices of the profile in use: set, list, remove (docs/cost.md).")
        profile.app._batchctl_complete = True  # type: ignore[attr-defined]
    return profile.app


def register(root_app: typer.Typer, name: str) -> None:
    """Import the command `name` and add it to `root_app`."""
    module_name, attribute, group_help = COMMANDS[name]
    if name == "profile":
        root_app.add_typer(_profile_app(), name=name, help=group_help)
        return
    module = importlib.import_module(f"batchctl.cli.commands.{module_name}")
    if group_help is not None:
        root_app.add_typer(getattr(module, attribute), name=name, help=group_help)
    else:
        root_app.command(name, epilog=getattr(module, "EPILOG", None))(getattr(module, attribute))


def build_app(only: str | None = None) -> typer.Typer:
    """The app with every command, or with just `only` (what `main()` runs: the rest is never imported)."""
    root_app = new_app()
    for name in [only] if only else COMMANDS:
        register(root_app, name)
    return root_app


def command_in(argv: list[str]) -> str | None:
    """The command `argv` runs, when that is certain from the root options before it; else None
    (help, --version, completion, a typo: those get every command)."""
    if any(key.endswith("_COMPLETE") for key in os.environ):
        return None
    i = 0
    while i < len(argv):
        token = argv[i]
        if token in _VALUED_ROOT_OPTIONS:
            i += 2
        elif token.split("=", 1)[0] in _VALUED_ROOT_OPTIONS or token in _FLAG_ROOT_OPTIONS:
            i += 1
        else:
            return token if token in COMMANDS else None
    return None


def __getattr__(name: str) -> Any:
    if name == "app":  # built on first use, with every command
        globals()["app"] = built = build_app()
        return built
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_STOP_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")  # by name: Windows has no SIGHUP


def main() -> None:
    """Console-script entry point. SIGTERM and SIGHUP raise `Terminated` (a KeyboardInterrupt) where the
    program is, so they clean up as Ctrl+C does (no `.part` file, no temporary copy) and exit 143 / 129.

    Only the first one raises: from then on the program is cleaning up and exiting, and a second Ctrl+C
    (or `timeout`, which signals the process and then its group) ends it as the signal ends any
    program, instead of interrupting the cleanup with a traceback."""
    import signal

    from batchctl.errors import Terminated

    def interrupt(signum: int, frame: object) -> None:
        stop_raising_on_signals()
        raise KeyboardInterrupt if signum == signal.SIGINT else Terminated(signum)

    for name in _STOP_SIGNALS:
        signum = getattr(signal, name, None)
        # Under nohup a hang-up stays ignored; a SIGINT ignored by the caller (a background job) too.
        if signum is not None and signal.getsignal(signum) is not signal.SIG_IGN:
            signal.signal(signum, interrupt)
    build_app(only=command_in(sys.argv[1:]))(prog_name="batchctl")


def stop_raising_on_signals() -> None:
    """SIGINT, SIGTERM and SIGHUP end the process as the system does (unless ignored): what `main` does
    after the first, and `batchctl.__main__.run` once the command is over. An exception raised while
    Python joins threads or runs its exit handlers only prints "Exception ignored ..." and a traceback."""
    import signal

    for name in _STOP_SIGNALS:
        signum = getattr(signal, name, None)
        if signum is not None and signal.getsignal(signum) is not signal.SIG_IGN:
            signal.signal(signum, signal.SIG_DFL)
