"""Private temporary copies, swept later: the `--model` rewrite of an upload under `<data dir>/tmp/`,
and the scratch folders of a download, a join or a retry beside their output (`.batchctl-download-…`,
renamed into place from there: one file system).

A copy is named `<prefix><pid>-<random>`. A run that was killed (`kill -9`, a power cut) cannot delete
its copy, so each new copy first sweeps the ones older than a few minutes whose process is gone.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

STALE_AFTER_S = 300.0  # a copy this old whose process is gone is a leftover
_OWNED = re.compile(r"^\.?batchctl-[a-z]+-(\d+)-")


def scratch_root() -> Path:
    from batchctl.config import data_dir

    root = data_dir() / "tmp"
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    return root


def make_scratch(prefix: str = "batchctl-upload-") -> Path:
    """A new private directory for a temporary copy, after sweeping leftovers of dead runs."""
    root = scratch_root()
    sweep(root)
    return Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-", dir=root))


@contextmanager
def scratch_beside(parent: Path, kind: str) -> Iterator[Path]:
    """A hidden scratch folder in `parent` (`.batchctl-<kind>-<pid>-<random>`), removed on leaving; the
    ones a killed run left there are swept first, as `make_scratch` sweeps its own."""
    sweep(parent, prefix=f".batchctl-{kind}-")
    with tempfile.TemporaryDirectory(dir=parent, prefix=f".batchctl-{kind}-{os.getpid()}-") as scratch:
        yield Path(scratch)


def sweep(root: Path, *, now: float | None = None, min_age: float = STALE_AFTER_S, prefix: str = "") -> list[Path]:
    """Remove the copies under `root` (named `prefix…`, when given) older than `min_age` seconds whose
    owning process is gone."""
    now = time.time() if now is None else now
    removed = []
    for entry in root.iterdir() if root.is_dir() else ():
        if not entry.name.startswith(prefix):
            continue
        match = _OWNED.match(entry.name)
        try:
            old = now - entry.lstat().st_mtime >= min_age
        except OSError:
            continue
        if match and old and not process_alive(int(match.group(1))):
            shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink(missing_ok=True)
            removed.append(entry)
    return removed


def process_alive(pid: int) -> bool:
    """Whether process `pid` is running (one owned by another user counts; a zombie child does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
        return waited == 0
    except ChildProcessError:
        return True
