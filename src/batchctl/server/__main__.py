"""`python -m batchctl.server --port P --data-dir D [...]`: the server without the CLI around it."""

from __future__ import annotations

import sys

from batchctl.server import run
from batchctl.server.config import ServerConfig


def main(argv: list[str] | None = None) -> None:
    from batchctl.errors import BatchctlError

    try:
        run(ServerConfig.from_argv(argv))
    except BatchctlError as exc:  # one line and the hint, as the CLI says it (the log shows it so)
        print(f"Error: {exc.message}" + (f"\n{exc.hint}" if exc.hint else ""), file=sys.stderr)
        raise SystemExit(exc.exit_code) from None


if __name__ == "__main__":
    main()
