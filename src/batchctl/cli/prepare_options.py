"""The options `prepare` and `submit DATA --template` share, and the one place they become a PrepareRequest.

TEXT|@FILE values are read here: `@prompt.txt` means the file's text (UTF-8, or UTF-16 with a BOM),
anything else is the text.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from batchctl.errors import BatchctlError

if TYPE_CHECKING:
    from batchctl.joining import JoinRequest
    from batchctl.preparing import PrepareRequest

TemplateOpt = Annotated[
    str | None,
    typer.Option("--template", "-t", metavar="TEXT|@FILE",
                 help="The prompt for each row, with {column} placeholders ({{ and }} are literal braces); @FILE reads it from a file."),
]  # fmt: skip
SystemOpt = Annotated[
    str | None, typer.Option("--system", metavar="TEXT|@FILE", help="A system prompt (placeholders allowed); @FILE reads it from a file.")
]
MaxTokensOpt = Annotated[int | None, typer.Option("--max-tokens", min=1, help="max_tokens of each request.")]
TemperatureOpt = Annotated[float | None, typer.Option("--temperature", help="temperature of each request.")]
JsonSchemaOpt = Annotated[
    str | None,
    typer.Option("--json-schema", metavar="@FILE",
                 help="Ask for JSON following this schema (response_format json_schema); --join then parses each answer (one that is not JSON: error invalid_json)."),
]  # fmt: skip
IdColumnOpt = Annotated[
    str | None,
    typer.Option("--id-column", metavar="COL", help="Take each request's custom_id from this column (unique); default row-1, row-2, ..."),
]
BodyExtraOpt = Annotated[
    str | None, typer.Option("--body-extra", metavar="@FILE.json", help="JSON object of more body fields for every request.")
]
DelimiterOpt = Annotated[
    str | None, typer.Option("--delimiter", metavar="CHAR", help="The CSV delimiter (default: tab for .tsv, else comma); \\t for tab.")
]
EncodingOpt = Annotated[
    str | None,
    typer.Option("--encoding", metavar="NAME",
                 help="DATA's text encoding, e.g. gbk (default: UTF-8, or UTF-16 when the file starts with its BOM)."),
]  # fmt: skip
AllowEmptyOpt = Annotated[bool, typer.Option("--allow-empty", help="Accept empty cells in the placeholders' columns.")]
DataFormatOpt = Annotated[
    str | None, typer.Option("--data-format", metavar="FORMAT", help="Read DATA as csv, tsv, jsonl or parquet (default: by its extension).")
]


AT_FILE_MAX_BYTES = 16 * 2**20  # an @FILE (template, system prompt, schema, body fields) goes into every request


def text_or_file(value: str | None, option: str) -> str | None:
    """TEXT, or the contents of FILE for @FILE."""
    if value is None or not value.startswith("@"):
        return value
    from batchctl.prepare.encoding import read_text
    from batchctl.validation.inputs import check_input_file

    path = Path(value[1:])
    try:
        # Not a FIFO (it would hang) nor /dev/zero (memory without end).
        size = check_input_file(path, hint="Give the path of a text file after the @.").st_size
    except BatchctlError as exc:
        raise BatchctlError(f"{option} {value}: {exc.message}", exc.hint) from None
    if size > AT_FILE_MAX_BYTES:
        raise BatchctlError(f"{option} {value}: {path} is {size / 2**20:,.0f} MiB; a text repeated in every request is at most "
                            f"{AT_FILE_MAX_BYTES // 2**20} MiB", "Check the path after the @.")  # fmt: skip
    try:
        return read_text(path, what=f"{option} {value}")
    except OSError as exc:
        raise BatchctlError(f"{option} {value}: cannot read {path}: {exc.strerror or exc}", "Check the path after the @.") from None


def json_file(value: str | None, option: str) -> dict[str, Any] | None:
    """The JSON object in @FILE (or given inline)."""
    text = text_or_file(value, option)
    if text is None:
        return None
    try:
        obj = json.loads(text)
    except ValueError as exc:
        if not value.startswith("@") and Path(value).is_file():  # a file's name without its @
            raise BatchctlError(f"{option} {value}: not JSON, but a file of that name exists",
                                f"Write {option} @{value} to read the file.") from None  # fmt: skip
        raise BatchctlError(f"{option} {value}: not valid JSON: {exc}", "Give a file holding one JSON object: @FILE.json.") from None
    if not isinstance(obj, dict):
        raise BatchctlError(f"{option} {value}: expected a JSON object", "Give a file holding one JSON object: @FILE.json.")
    return obj


def delimiter_value(value: str | None) -> str | None:
    return "\t" if value in ("\\t", "tab", "TAB") else value


def encoding_value(value: str | None) -> str | None:
    """--encoding as given, refused (a usage error) when Python knows no such codec."""
    if value is None:
        return None
    from batchctl.prepare.encoding import codec_name

    try:
        codec_name(value)
    except BatchctlError as exc:
        raise typer.BadParameter(f"{exc.message}; name one Python knows, e.g. gbk, gb18030, utf-16, cp1252", param_hint="--encoding") from None
    return value


def prepare_request(
    data: Path | None, *, template: str | None, model: str | None, endpoint: str | None = None, system: str | None = None,
    max_tokens: int | None = None, temperature: float | None = None, json_schema: str | None = None,
    id_column: str | None = None, body_extra: str | None = None, delimiter: str | None = None,
    allow_empty: bool = False, data_format: str | None = None, output: Path | None = None, force: bool = False,
    encoding: str | None = None,
) -> PrepareRequest | None:
    """The options as a PrepareRequest: templates parsed, @FILEs read, the endpoint named. Without a
    template: None, and the options that only shape requests are refused."""
    from batchctl.prepare import PrepareSpec, Template
    from batchctl.prepare.requests import endpoint_path
    from batchctl.preparing import PrepareRequest

    if template is None:
        given = [name for name, value in (("--system", system), ("--max-tokens", max_tokens), ("--temperature", temperature),
                 ("--json-schema", json_schema), ("--id-column", id_column), ("--body-extra", body_extra),
                 ("--delimiter", delimiter), ("--allow-empty", allow_empty), ("--data-format", data_format),
                 ("--encoding", encoding)) if value]  # fmt: skip
        if given:
            raise typer.BadParameter(f"{given[0]} builds requests from a table: it needs --template", param_hint=given[0])
        return None
    if data is None:
        raise typer.BadParameter("--template needs DATA, the table of rows (not --input-file-id)", param_hint="--template")
    if not model:
        raise typer.BadParameter("--template needs --model (the model every request goes to)", param_hint="--model")
    system_text = text_or_file(system, "--system")
    spec = PrepareSpec(
        template=Template.parse(text_or_file(template, "--template") or "", "--template"),
        model=model, endpoint=endpoint_path(endpoint),
        system=Template.parse(system_text, "--system") if system_text else None,
        max_tokens=max_tokens, temperature=temperature, json_schema=json_file(json_schema, "--json-schema"),
        body_extra=json_file(body_extra, "--body-extra") or {}, id_column=id_column, allow_empty=allow_empty,
    )  # fmt: skip
    return PrepareRequest(data, spec, output=output, fmt=data_format, delimiter=delimiter_value(delimiter),
                          encoding=encoding_value(encoding), force=force)  # fmt: skip


def join_options(
    join: str | None, *, output: Path | None, fmt: str | None, id_column: str | None, delimiter: str | None,
    prefix: str, parse_json: bool, force: bool, merge: Path | None, content: bool, encoding: str | None = None,
) -> JoinRequest | None:
    """`download --join [DATA]` and its options as a JoinRequest (None without --join, where they are refused)."""
    if join is None:
        for name, given in (("--id-column", id_column), ("--delimiter", delimiter), ("--prefix", prefix), ("--parse-json", parse_json),
                            ("--encoding", encoding)):  # fmt: skip
            if given:
                raise typer.BadParameter(f"{name} applies to --join only", param_hint=name)
        return None
    if merge is not None or content:
        raise typer.BadParameter("--join writes the rows with their answers: leave out --merge and --content", param_hint="--join")
    from batchctl.joining import JoinRequest

    return JoinRequest(data=Path(join) if join else None, output=output, fmt=fmt, id_column=id_column,
                       delimiter=delimiter_value(delimiter), encoding=encoding_value(encoding), prefix=prefix, parse_json=True if parse_json else None,
                       force=force)  # fmt: skip
