"""Compile batchctl's modules to bytecode before timing processes that import them.

An installed batchctl comes with its bytecode (pip compiles what it installs). A checkout run with
PYTHONDONTWRITEBYTECODE=1, as on the machines these figures come from, would compile every module it
imports in every timed process (40-150 ms a command, measured), which no user pays. So the scripts
that time whole `batchctl` processes write the `__pycache__` of the tree they measure first.
"""

from __future__ import annotations

import compileall
import importlib.util


def ensure_bytecode(package_dir: str | None = None) -> None:
    """Write the bytecode of `package_dir` (default: the batchctl that imports here), quietly."""
    if package_dir is None:
        spec = importlib.util.find_spec("batchctl")
        dirs = list(spec.submodule_search_locations or []) if spec else []
    else:
        dirs = [package_dir]
    for directory in dirs:
        compileall.compile_dir(directory, quiet=1)
