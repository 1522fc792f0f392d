"""The CLI shell: import budget, entry points, version, completion, error map, generated docs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from batchctl import __version__
from batchctl.cli.app import app
from test_cli_download import finished_batch, flaky  # noqa: F401 - flaky is a fixture (a failing server)

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()


def run_python(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=60)


def test_importing_the_app_does_not_import_httpx_or_pydantic():
    code = (
        "import sys, batchctl.cli.app\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in {'httpx', 'pydantic', 'starlette', 'uvicorn', 'openai'})\n"
        "print(','.join(heavy))"
    )
    result = run_python("-c", code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


def test_python_m_batchctl_help_smoke():
    result = run_python("-m", "batchctl", "--help")
    assert result.returncode == 0, result.stderr
    assert "Usage: batchctl" in result.stdout
    assert "profile" in result.stdout
    assert "Exit codes" in result.stdout


def test_the_cli_starts_without_walking_its_startup_objects_in_the_collector():
    """`python -m batchctl` and the console script (`batchctl.__main__:run`) raise the collector's youngest
    generation before importing the CLI: what the imports build lives until exit, and at Python's 700
    allocations a `download` spent ~12 ms of CPU in collections that found no garbage."""
    import tomllib

    from batchctl.__main__ import CLI_GC_YOUNG_THRESHOLD

    assert tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]["batchctl"] == "batchctl.__main__:run"
    code = (
        "import atexit, gc, runpy, sys\n"
        "before = gc.get_stats()[0]['collections']\n"
        "atexit.register(lambda: print('THRESHOLD', gc.get_threshold()[0], 'YOUNG', gc.get_stats()[0]['collections'] - before))\n"
        "sys.argv = ['batchctl', 'profile', 'list']\n"
        "runpy.run_module('batchctl', run_name='__main__')\n"
    )
    result = run_python("-c", code)
    assert result.returncode == 0, result.stderr
    assert f"THRESHOLD {CLI_GC_YOUNG_THRESHOLD} YOUNG 0" in result.stdout, result.stdout + result.stderr


def test_the_cli_collects_the_garbage_at_exit_then_spares_the_survivors_finalizations_walks():
    """At exit `run` collects what is garbage (its finalizers still run) and freezes the rest: Python's
    finalization then skips it instead of walking every object in two or three more full collections
    (~30-40 ms of CPU after a `download`, ~20 ms now). The freeze is seen by an exit handler registered
    before `run`'s (those run last)."""
    code = (
        "import atexit, gc, sys\n"
        "atexit.register(lambda: print('FROZEN', gc.get_freeze_count() > 1000))\n"
        "import batchctl.cli.app\n"
        "class Held:\n"
        "    def __del__(self):\n"
        "        print('FINALIZED')\n"
        "def main():\n"
        "    garbage = Held()\n"
        "    garbage.cycle = garbage  # garbage when main returns: only a collection finds it\n"
        "batchctl.cli.app.main = main\n"
        "from batchctl.__main__ import run\n"
        "run()\n"
    )
    result = run_python("-c", code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["FINALIZED", "FROZEN", "True"], result.stdout + result.stderr


@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM"])
def test_a_signal_while_exiting_ends_the_process_without_a_stray_message(signame):
    """The collection at exit runs finalizers (~10-20 ms after a `download`). A signal then used to raise
    (`KeyboardInterrupt`, `Terminated`) inside the exit handler: Python printed "Exception ignored in
    atexit callback" and exited 0. Here a finalizer that runs in that collection sends the signal itself."""
    code = (
        "import os, signal\n"
        "import batchctl.cli.app\n"
        "class Held:\n"
        "    def __del__(self):\n"
        f"        os.kill(os.getpid(), signal.{signame})\n"
        "        print('SURVIVED', flush=True)\n"
        "def build_app(only=None):\n"
        "    def command(prog_name):\n"
        "        garbage = Held()\n"
        "        garbage.cycle = garbage  # garbage when the command returns: found by the collection at exit\n"
        "    return command\n"
        "batchctl.cli.app.build_app = build_app  # the real main() and its signal handlers, a command of ours\n"
        "from batchctl.__main__ import run\n"
        "run()\n"
    )
    result = run_python("-c", code)
    assert result.returncode == -getattr(signal, signame), (result.returncode, result.stdout, result.stderr)
    assert "SURVIVED" not in result.stdout
    assert "Exception ignored" not in result.stderr and "Traceback" not in result.stderr, result.stderr


@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM"])
def test_a_second_signal_during_the_cleanup_of_the_first_ends_the_process(signame):
    """Ctrl+C twice (or `timeout`, which signals the process and then its group): the first raises where
    the program is, so it cleans up; a second one during that cleanup used to raise again inside the
    handler and print a traceback. It now ends the process as the signal ends any program."""
    code = (
        "import os, signal\n"
        "import batchctl.cli.app\n"
        "def build_app(only=None):\n"
        "    def command(prog_name):\n"
        "        try:\n"
        f"            os.kill(os.getpid(), signal.{signame})\n"
        "        except KeyboardInterrupt:  # Terminated is one too\n"
        "            print('CLEANING UP', flush=True)\n"
        f"            os.kill(os.getpid(), signal.{signame})\n"
        "            print('SURVIVED', flush=True)\n"
        "    return command\n"
        "batchctl.cli.app.build_app = build_app\n"
        "from batchctl.__main__ import run\n"
        "run()\n"
    )
    result = run_python("-c", code)
    assert result.returncode == -getattr(signal, signame), (result.returncode, result.stdout, result.stderr)
    assert result.stdout.split() == ["CLEANING", "UP"]
    assert "Traceback" not in result.stderr, result.stderr


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"batchctl {__version__}"


def test_shell_completion_offers_profile_names(isolation):
    assert runner.invoke(app, ["profile", "add", "zeta", "--base-url", "http://x", "--api-key", "k"]).exit_code == 0
    env = {
        "_BATCHCTL_COMPLETE": "complete_bash",
        "COMP_WORDS": "batchctl --profile ",
        "COMP_CWORD": "2",
    }
    result = subprocess.run(
        [sys.executable, "-c", "from batchctl.cli.app import main; main()"],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["local", "zeta"]


def test_show_completion_script():
    result = run_python("-m", "batchctl", "--show-completion", "bash")
    assert result.returncode == 0
    assert "_BATCHCTL_COMPLETE" in result.stdout or "batchctl" in result.stdout


def test_unknown_command_is_a_usage_error():
    result = runner.invoke(app, ["frobnicate"])
    assert result.exit_code == 2
    assert "Traceback" not in result.output


def test_cli_reference_is_up_to_date():
    result = run_python(str(ROOT / "scripts" / "gen_cli_docs.py"), "--check")
    assert result.returncode == 0, result.stderr + "\nRun: python scripts/gen_cli_docs.py"


def complete(shell: str, line: str) -> str:
    """What the shell completion of `line` offers, asked the way bash or zsh asks (Typer's env vars)."""
    words = line.split(" ")
    env = {"_BATCHCTL_COMPLETE": f"complete_{shell}"}
    if shell == "bash":
        env.update(COMP_WORDS=line, COMP_CWORD=str(len(words) - 1))
    else:
        env.update(_TYPER_COMPLETE_ARGS=line)
    result = subprocess.run(
        [sys.executable, "-c", "from batchctl.cli.app import main; main()"],
        capture_output=True, text=True, env={**os.environ, **env}, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_a_global_option_after_the_command_completes_its_value():
    # the value is what is being typed: it is not an option without its value (a usage error) yet
    assert complete("bash", "batchctl list --profile ").split() == ["local"]
    assert complete("bash", "batchctl profile --json l").split() == ["list"]


def test_fixed_choices_complete_in_bash_and_zsh():
    assert complete("bash", "batchctl list --status c").split() == ["completed", "cancelling", "cancelled"]
    assert complete("bash", "batchctl profile add x --provider d").split() == ["dashscope"]
    zsh = complete("zsh", "batchctl profile add x --preset dash")
    assert '"dashscope"' in zsh and '"dashscope-intl"' in zsh and '"openai"' not in zsh


def test_help_names_every_value_in_words():
    import re

    sys.path.insert(0, str(ROOT / "scripts"))
    from gen_cli_docs import render

    text = render()
    assert not re.findall(r"<(?:str|int|float|list|path|bool)[^>]*>|\{[A-Z_]+\}", text)
    assert "Usage: batchctl cancel [OPTIONS] BATCH_ID..." in text and "Usage: batchctl status [OPTIONS] [BATCH_ID...]" in text
    assert "--after BATCH_ID" in text and "--port N" in text


OFFLINE_COMMANDS = [
    ["validate", "{input}"], ["profile", "list"], ["profile", "show"], ["jobs"], ["--help"],
    ["validate", "--help"], ["status", "--help"], ["submit", "--help"], ["serve", "--help"],
]  # fmt: skip


@pytest.mark.parametrize("args", OFFLINE_COMMANDS, ids=" ".join)
def test_offline_commands_never_load_the_http_stack(args, tmp_path):
    """Commands that need no network import neither httpx, nor our pydantic models (`batchctl.api`), nor
    the server (their import time is paid only by commands that talk to a server), nor pydantic itself:
    Typer's parameter adapters (`typer._adapters`), which import it, are built only for values that need
    converting (`cli/coercion.py`), and these commands have none."""
    source = tmp_path / "in.jsonl"
    source.write_text('{"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", '
                      '"body": {"model": "m", "messages": [{"role": "user", "content": "hi"}]}}\n')
    code = (
        "import sys\n"
        f"sys.argv = ['batchctl', *{[a.replace('{input}', str(source)) for a in args]!r}]\n"
        "from batchctl.cli.app import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = {'httpx', 'starlette', 'uvicorn', 'aiohttp', 'batchctl.api', 'batchctl.server.app', 'pydantic', 'typer._adapters'}\n"
        "print('LOADED=' + ','.join(sorted(m for m in sys.modules if m in heavy or m.split('.')[0] in heavy)))\n"
        "print('PYDANTIC_WITHOUT_TYPER=' + str('pydantic' in sys.modules and 'typer._adapters' not in sys.modules))\n"
    )
    result = run_python("-c", code)
    assert "LOADED=\n" in result.stdout, result.stdout + result.stderr
    assert "PYDANTIC_WITHOUT_TYPER=False" in result.stdout, result.stdout + result.stderr


def test_batch_ids_complete_from_this_machines_journal_in_bash_and_zsh():
    import time

    from batchctl import journal

    for n, name in enumerate(("old.jsonl", "new.jsonl")):
        journal.record(journal.JournalEntry(batch_id=f"batch_c{n}", profile="local", base_url="http://127.0.0.1:1/v1",
                                            provider="local", input_path=f"/data/{name}", recorded_at=time.time() + n))  # fmt: skip
    assert complete("bash", "batchctl status batch_c").split() == ["batch_c1", "batch_c0"]  # newest first
    zsh = complete("zsh", "batchctl download batch_c")
    assert zsh.index('"batch_c1":"new.jsonl"') < zsh.index('"batch_c0":"old.jsonl"')  # the input file as the help


def test_running_a_command_imports_only_that_command(tmp_path):
    """`main()` builds only the command it runs: `validate` never imports `serve`, `submit` or `status`."""
    source = tmp_path / "in.jsonl"
    source.write_text('{"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", '
                      '"body": {"model": "m", "messages": [{"role": "user", "content": "hi"}]}}\n')
    code = (
        "import sys\n"
        f"sys.argv = ['batchctl', '--json', 'validate', {str(source)!r}]\n"
        "from batchctl.cli.app import main\n"
        "try:\n    main()\nexcept SystemExit as exc:\n    print('EXIT', exc.code)\n"
        "print('COMMANDS=' + ','.join(sorted(m.rsplit('.', 1)[1] for m in sys.modules if m.startswith('batchctl.cli.commands.'))))\n"
    )
    result = run_python("-c", code)
    assert "COMMANDS=validate\n" in result.stdout, result.stdout + result.stderr
    assert '"ok": true' in result.stdout


@pytest.mark.parametrize(
    ("argv", "command"),
    [
        (["validate", "x.jsonl"], "validate"),
        (["-p", "work", "--json", "status", "b"], "status"),
        (["--base-url=http://h/v1", "-q", "list"], "list"),
        (["--channel", "list", "jobs"], "jobs"),  # a root option's value is not the command
        (["--help"], None),
        (["--version"], None),
        (["valdate"], None),  # a typo gets every command, for "Did you mean 'validate'?"
        ([], None),
    ],
)
def test_the_command_main_builds_is_read_from_argv(argv, command):
    from batchctl.cli.app import command_in

    assert command_in(argv) == command


def test_emoji_codes_in_names_stay_text(tmp_path):
    """`:x:` in a file name is printed as it is, not as Rich's ❌ (nor is Rich's emoji table loaded)."""
    source = tmp_path / "runs:x:today.jsonl"
    source.write_text("{not json\n")
    result = runner.invoke(app, ["validate", str(source)])
    assert result.exit_code == 1
    assert f"Error: {source} is not a valid batch input" in result.stderr
    assert "❌" not in result.output


def test_commands_that_talk_to_a_server_load_no_pydantic(flaky, tmp_path):
    """`download` and `status` of a finished batch on a real server go through the API layer, whose
    models are plain classes (`api/models.py`): pydantic (~60 ms of import and schema building) is not
    loaded unless Typer converts a value with it."""
    batch_id = finished_batch(flaky, tmp_path)
    for args in (["status", batch_id], ["download", batch_id, "-o", str(tmp_path / "res.jsonl")]):
        code = (
            "import sys\n"
            f"sys.argv = ['batchctl', *{args!r}]\n"
            "from batchctl.cli.app import main\n"
            "try:\n    main()\nexcept SystemExit as exc:\n    print('EXIT', exc.code)\n"
            "print('API=' + str('batchctl.api.models' in sys.modules))\n"
            "print('PYDANTIC=' + str('pydantic' in sys.modules))\n"
        )
        result = run_python("-c", code, env={"BATCHCTL_BASE_URL": flaky.base_url})
        assert "API=True" in result.stdout and "PYDANTIC=False" in result.stdout, result.stdout + result.stderr
    assert (tmp_path / "res.jsonl").stat().st_size > 0


def test_downloading_a_finished_batch_loads_nothing_it_does_not_use(flaky, tmp_path):
    """A plain `download` pays for the imports it uses only: not the watch (`batchctl.watching`: the exit
    codes it needs live in `batchctl.errors`), nor --merge's, --content's or --join's modules, nor the
    dashboard's (Rich)."""
    batch_id = finished_batch(flaky, tmp_path)
    unused = ["batchctl.watching", "batchctl.cli.watch", "batchctl.cli.render", "batchctl.merging", "batchctl.answers",
              "batchctl.joining", "batchctl.validation", "batchctl.remote_cleanup", "rich"]  # fmt: skip
    code = (
        "import sys\n"
        f"sys.argv = ['batchctl', 'download', {batch_id!r}, '-o', {str(tmp_path / 'res.jsonl')!r}]\n"
        "from batchctl.__main__ import run\n"
        "try:\n    run()\nexcept SystemExit as exc:\n    print('EXIT', exc.code)\n"
        f"print('LOADED=' + ','.join(m for m in {unused!r} if m in sys.modules))\n"
    )
    result = run_python("-c", code, env={"BATCHCTL_BASE_URL": flaky.base_url})
    assert "LOADED=\n" in result.stdout, result.stdout + result.stderr
    assert (tmp_path / "res.jsonl").stat().st_size > 0
