"""Reading register files into records, and checking records against a format's JSON Schema.

CSV (header row; comma or semicolon, as spreadsheets in Indonesia often save), a JSON array,
or NDJSON (one object a line), chosen by the file's extension (over HTTP, by Content-Type).
CSV cells are strings: they are converted to the types the schema declares (numbers with a
decimal point or comma, booleans as ya/tidak, dates as YYYY-MM-DD or DD/MM/YYYY), and empty
cells are left out.  Row numbers are what a person finds in the file: the line in CSV
(header = 1) and NDJSON, the position (from 1) in a JSON array.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import orjson
from jsonschema import Draft202012Validator, FormatChecker, ValidationError

from mappers.base import Record, RecordError

_TRUE = {"ya", "y", "true", "t", "1", "aktif", "yes"}
_FALSE = {"tidak", "tdk", "n", "false", "f", "0", "nonaktif", "tidak aktif", "no"}
_DMY = re.compile(r"^(\d{1,2})[/-](\d{1,2})[/-](\d{4})$")


def load_schema(path: Path) -> Draft202012Validator:
    """A validator of the JSON Schema at ``path`` (draft 2020-12, formats checked)."""
    schema = orjson.loads(path.read_bytes())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=FormatChecker())


# File kinds by extension: what the CLI reads; $import-records takes the kind from Content-Type.
# One row of a file: its number, and its record or why it cannot be read.
Row = tuple[int, Record | RecordError]
KINDS = {".csv": "csv", ".ndjson": "ndjson", ".jsonl": "ndjson", ".json": "json"}
_GUESS_ROWS = 50  # JSON records whose keys stand for the file's columns


def read_records(path: Path, schema: dict[str, Any]) -> Iterator[Row]:
    """(row number, record) of every row of a CSV, JSON or NDJSON file; a row that cannot be
    read (a line that is not JSON, not an object, extra CSV cells) comes as its RecordError,
    and reading goes on.  RecordError raised for what spoils the whole file (an unknown
    extension, a JSON file that is not an array)."""
    kind = kind_of(path)
    yield from read_text(path.read_text(encoding="utf-8-sig"), kind, schema)


def kind_of(path: Path) -> str:
    """``csv``, ``ndjson`` or ``json`` from the file's extension; RecordError otherwise."""
    suffix = path.suffix.lower()
    if suffix not in KINDS:
        raise RecordError(0, "", f"unknown file type {suffix!r}: use .csv, .json or .ndjson")
    return KINDS[suffix]


def read_text(text: str, kind: str, schema: dict[str, Any]) -> Iterator[Row]:
    """The rows of ``text``, a file of ``kind`` (see ``KINDS``), as ``read_records`` gives them."""
    text = text.removeprefix("\ufeff")
    if kind == "csv":
        yield from _read_csv(text, schema)
    elif kind == "ndjson":
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                yield number, _readable(number, schema, line=line)
    else:
        for number, row in enumerate(_json_rows(text), start=1):
            yield number, _readable(number, schema, value=row)


def _readable(
    number: int, schema: dict[str, Any], *, line: str | None = None, value: Any = None
) -> Record | RecordError:
    """The record of one JSON row (an NDJSON ``line``, or a ``value`` of an array), or why it
    cannot be read."""
    try:
        return _object(number, _parse(number, line) if line is not None else value, schema)
    except RecordError as exc:
        return exc


def columns_of(text: str, kind: str) -> list[str]:
    """The column names of a file, as the records will have them: the CSV header row, or the
    keys of the first JSON/NDJSON records.  RecordError when there is nothing to read."""
    text = text.removeprefix("\ufeff")
    if kind == "csv":
        first = text.split("\n", 1)[0]
        header = next(csv.reader(io.StringIO(first), delimiter=_delimiter(first)), [])
        columns = [name.strip().lower() for name in header if name.strip()]
    else:
        if kind == "ndjson":
            lines = [line for line in text.splitlines() if line.strip()][:_GUESS_ROWS]
            rows = [_loads_or_none(line) for line in lines]  # a bad line is its row's error
        else:
            rows = _json_rows(text)[:_GUESS_ROWS]
        columns = list(dict.fromkeys(k for row in rows if isinstance(row, dict) for k in row))
    if not columns:
        raise RecordError(0, "", "the file has no header row or records")
    return columns


def check_record(validator: Draft202012Validator, row: int, record: Record) -> list[RecordError]:
    """The schema errors of one record, each naming its field."""
    errors = sorted(validator.iter_errors(record), key=lambda e: (_field(e), e.message))
    return [RecordError(row, _field(e), _message(e)) for e in errors]


def _read_csv(text: str, schema: dict[str, Any]) -> Iterator[Row]:
    reader = csv.DictReader(io.StringIO(text), delimiter=_delimiter(text.split("\n", 1)[0]))
    properties = schema.get("properties", {})
    for row in reader:
        if None in row:  # more cells than columns
            yield (
                reader.line_num,
                RecordError(reader.line_num, "", "more cells than header columns"),
            )
            continue
        record: Record = {}
        for key, value in row.items():
            name = key.strip().lower()
            if value is not None and value.strip() != "":
                record[name] = _coerce(value.strip(), properties.get(name, {}))
        yield reader.line_num, record


def _delimiter(header: str) -> str:
    return ";" if header.count(";") > header.count(",") else ","


def _json_rows(text: str) -> list[Any]:
    rows = _parse(0, text)
    if not isinstance(rows, list):
        raise RecordError(0, "", "a JSON file must hold an array of records")
    return rows


def _loads_or_none(text: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return None


def _parse(row: int, text: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise RecordError(row, "", f"not JSON: {exc}") from None


def _object(row: int, value: Any, schema: dict[str, Any]) -> Record:
    if not isinstance(value, dict):
        raise RecordError(row, "", "a record must be a JSON object")
    properties = schema.get("properties", {})
    return {
        k: _coerce(v, properties.get(k, {})) if isinstance(v, str) else v
        for k, v in value.items()
        if v is not None and v != ""
    }


def _coerce(text: str, spec: dict[str, Any]) -> Any:
    """``text`` as the type ``spec`` declares; left as it is when it does not convert."""
    types = spec.get("type", "string")
    types = types if isinstance(types, list) else [types]
    lowered = text.lower()
    if "boolean" in types and (lowered in _TRUE or lowered in _FALSE):
        return lowered in _TRUE
    if "integer" in types and re.fullmatch(r"[+-]?\d+", text):
        return int(text)
    if "number" in types:
        number = text.replace(",", ".") if text.count(",") == 1 and "." not in text else text
        try:
            return float(number)
        except ValueError:
            return text
    if spec.get("format") == "date" and (match := _DMY.match(text)):
        day, month, year = (int(g) for g in match.groups())
        try:
            return date(year, month, day).isoformat()
        except ValueError:
            return text
    return text


def _field(error: ValidationError) -> str:
    if error.path:
        return str(error.path[0])
    if error.validator == "required":
        missing = [p for p in error.validator_value if p not in error.instance]
        return str(missing[0]) if missing else ""
    if error.validator == "dependentRequired" and (pair := _dependency(error)):
        return pair[1]
    for sub in error.context or ():
        if sub.validator == "required":
            return _field(sub)
    return ""


def _message(error: ValidationError) -> str:
    if error.validator == "required":
        return "is required"
    if error.validator == "dependentRequired" and (pair := _dependency(error)):
        return f"is required with {pair[0]}"
    if error.validator == "additionalProperties":
        return f"unknown column: {error.message}"
    description = error.schema.get("description") if isinstance(error.schema, dict) else None
    if error.validator == "anyOf" and all(s.validator == "required" for s in error.context or ()):
        names = [str(name) for s in error.context or () for name in s.validator_value]
        return f"give {' or '.join(names)}"
    if error.validator == "format":
        return f"{error.instance!r} is not a valid {error.validator_value}" + (
            f"; expected {description}" if description else ""
        )
    if error.validator in ("pattern", "minimum", "maximum") and description:
        return f"{error.instance!r} does not fit: {description}"
    return str(error.message)


def _dependency(error: ValidationError) -> tuple[str, str] | None:
    """(the column given, the column it needs) of a dependentRequired error: jsonschema
    raises one error per missing column, saying which in its message only."""
    for present, needed in error.validator_value.items():
        for column in needed:
            if present in error.instance and column not in error.instance:
                if error.message == f"{column!r} is a dependency of {present!r}":
                    return str(present), str(column)
    return None
