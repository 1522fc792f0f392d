"""Typer's conversion of command-line values, without pydantic where there is nothing to convert.

Typer (0.26 and later) converts every parameter's value through a pydantic `TypeAdapter` it builds on
first use, so running any command imports pydantic (~70 ms with its plugin loader) and builds an adapter
per option, even for an option left out (None) or a string that stays a string. `quicken(command, ctx)`
gives each parameter of `command` (and of its sub-commands) a conversion that returns those values
as Typer would -- None as None, a `str` value of a `str` parameter as it is, a `Path` parameter's
value through Typer's own path checks, the strings of a `list[str]` argument (`status ID ...`) as a
list -- and hands every other value to the adapter Typer builds, built then. On a Typer outside `TESTED_TYPER` (older, or newer: its internals may differ) it does nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The Typer releases whose internals this was written against and tested with (tests/test_cli_coercion.py);
# on any other, Typer's own conversion stays as it is: a newer Typer may change what these internals mean.
TESTED_TYPER = ((0, 26), (0, 29))


def _tested_typer() -> bool:
    import typer

    try:
        version = tuple(int(part) for part in typer.__version__.split(".")[:2])
    except (AttributeError, ValueError):
        return False
    return TESTED_TYPER[0] <= version <= TESTED_TYPER[1]


try:
    if not _tested_typer():
        raise ImportError("an untested Typer")
    from typer._coercion import RuntimeParam, build_runtime_param
    from typer._param_types import coerce_cli_path
except ImportError:  # another Typer: its own conversion stays as it is
    RuntimeParam = None  # type: ignore[assignment,misc]


if RuntimeParam is not None:

    @dataclass(frozen=True)
    class QuickRuntimeParam(RuntimeParam):  # type: ignore[misc,valid-type]
        """A parameter's conversion: None and plain strings here, the rest by Typer's own (pydantic)."""

        descriptor: Any = None
        built: list[Any] = field(default_factory=list)  # Typer's conversion, once built (frozen: a list)

        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            # `coerce` (Typer's) has already answered None (and () for a list) without this method.
            info = self.parameter_info
            if type(value) is str and info.parser is None:
                if self.annotation is str:
                    return value  # Typer's str adapter: str(value), validated as a str
                path = Path(value) if self.annotation is Path and info.path_type is None else None
                if path is not None and str(path) == value:
                    # Typer's path adapter: pydantic's Path(value), then these checks (their messages
                    # name the value: as given, where Path writes it the same) and this result.
                    return coerce_cli_path(path, info, path_type=Path, param=param, ctx=ctx)
            elif type(value) is tuple and self.annotation == list[str] and info.parser is None:
                if all(type(v) is str for v in value):
                    return list(value)  # Typer's list adapter: a list of str(each), validated as str
            if not self.built:
                self.built.append(build_runtime_param(self.descriptor))
            return self.built[0]._coerce_value(value, param=param, ctx=ctx)


def quicken(command: Any, ctx: Any) -> None:
    """Give every parameter of `command` and its sub-commands the quick conversion (see the module),
    the help option each makes for `ctx` included."""
    if RuntimeParam is None:  # pragma: no cover
        return
    for param in command.get_params(ctx):
        descriptor = getattr(param, "type_descriptor", None)
        if descriptor is not None and descriptor.file_annotation is None and getattr(param, "_runtime_param", False) is None:
            param._runtime_param = QuickRuntimeParam(
                parameter_info=descriptor.parameter_info, annotation=descriptor.annotation, descriptor=descriptor
            )
    for sub in getattr(command, "commands", {}).values():
        quicken(sub, ctx)
