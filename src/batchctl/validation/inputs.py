"""`check_input_file` (and `check_model_name`): refuse what is not a readable regular file before a byte of it is read.

A FIFO would block `validate` forever, `/dev/zero` would grow memory without end, a directory or a
symlink loop would fail later with a misleading message. Called by `validate_file`, so `validate`,
`submit` and the local server all refuse them the same way.
"""

from __future__ import annotations

import errno
import os
import stat

from batchctl.errors import BatchctlError

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)
_HINT = "Give the path of a regular JSONL file (save a pipe's output to a file first)."


def check_input_file(path: str | os.PathLike[str], hint: str = _HINT) -> os.stat_result:
    """The `os.stat` of `path` when it is a regular file; BatchctlError (exit 1) saying what it is
    otherwise (`hint`: what to give instead, when it is not a file at all)."""
    name = os.fspath(path)
    try:
        info = os.stat(name)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise BatchctlError(f"{name} is a symbolic link loop", "Point the link at a real file.") from None
        if exc.errno == errno.ENOENT:
            if os.path.islink(name):
                raise BatchctlError(f"{name} is a broken symbolic link", "Point the link at a real file.") from None
            raise BatchctlError(f"no such file: {name}", "Check the path.") from None
        if exc.errno == errno.EACCES:
            raise BatchctlError(f"{name} cannot be read: permission denied", "Check the file's permissions.") from None
        raise BatchctlError(f"{name} cannot be read: {exc.strerror}", hint) from None
    for test, kind in _KINDS:
        if test(info.st_mode):
            raise BatchctlError(f"{name} is {kind}, not a regular file", hint)
    if not stat.S_ISREG(info.st_mode):
        raise BatchctlError(f"{name} is not a regular file", hint)
    if not os.access(name, os.R_OK):
        raise BatchctlError(f"{name} cannot be read: permission denied", "Check the file's permissions.")
    return info


def check_model_name(model: str) -> str:
    """`model` (an option such as `submit --model`) when it can be written into a JSON request; BatchctlError if not.

    Refuses an empty or blank name, control characters, and text that is not valid Unicode (a lone
    surrogate, from a shell that passed undecodable bytes), which would otherwise fail deep in the
    upload with `UnicodeEncodeError`.
    """
    if not model.strip():
        raise BatchctlError("--model is empty", "Give the model's name, e.g. --model gpt-4o-mini.")
    try:
        model.encode("utf-8")
    except UnicodeEncodeError:
        shown = model.encode("utf-8", "backslashreplace").decode("ascii", "replace")
        raise BatchctlError(
            f"--model {shown} is not valid text (it holds bytes that are not UTF-8)",
            "Type the model's name again, or check the terminal's encoding (LANG=C.UTF-8).",
        ) from None
    if any(ord(c) < 32 or ord(c) == 127 for c in model):
        raise BatchctlError(f"--model {model!r} holds control characters", "Give the model's name as plain text.")
    return model
