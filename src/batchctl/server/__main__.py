"""`python -m batchctl.server --port P --data-dir D [...]`: the server without the CLI around it."""

from __future__ import annotations

from batchctl.server import run
from batchctl.server.config import ServerConfig


def main(argv: list[str] | None = None) -> None:
    run(ServerConfig.from_argv(argv))


if __name__ == "__main__":
    main()
