"""Generate docs/cli.md from the CLI's own --help texts; `--check` fails when the file is stale."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "docs" / "cli.md"


def _walk(command, ctx_parent, path):
    ctx = command.make_context(path[-1], [], parent=ctx_parent, resilient_parsing=True, terminal_width=100, max_content_width=100)
    yield " ".join(path), command.get_help(ctx)
    subcommands = getattr(command, "commands", None)
    if subcommands:
        for name in sorted(subcommands):
            sub = subcommands[name]
            if getattr(sub, "hidden", False):
                continue
            yield from _walk(sub, ctx, [*path, name])


def render() -> str:
    os.environ["NO_COLOR"] = "1"
    os.environ["COLUMNS"] = "100"
    import typer.main

    from batchctl.cli.app import app

    root = typer.main.get_command(app)
    parts = [
        "# CLI reference\n",
        "Generated from `--help` by `python scripts/gen_cli_docs.py`; a test fails when it is stale.\n",
    ]
    for name, text in _walk(root, None, ["batchctl"]):
        parts.append(f"\n## `{name}`\n\n```text\n{text.rstrip()}\n```\n")
    return "".join(parts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if docs/cli.md is not up to date")
    args = parser.parse_args()
    text = render()
    if args.check:
        current = TARGET.read_text(encoding="utf-8") if TARGET.exists() else ""
        if current != text:
            print(f"{TARGET} is stale: run python scripts/gen_cli_docs.py", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text, encoding="utf-8")
    print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
