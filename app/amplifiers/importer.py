"""Roster files (CSV or a JSON array) parsed into validated rows; no I/O here.

Whole-file problems (encoding, header, size) raise; a bad row is reported with its
number and skipped, so one typo never costs the rest of the file.
"""

import codecs
import csv
import io
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from app.amplifiers.schemas import DEFAULT_LOCALE, AmplifierCreate, email_key
from app.core.errors import InvalidInput, MalformedBody, PayloadTooLarge, UnsupportedMediaType
from app.core.schemas import NETWORKS
from app.models import Frequency

CSV_MEDIA_TYPES = frozenset({"text/csv", "application/csv", "text/plain"})
JSON_MEDIA_TYPES = frozenset({"application/json"})
UTF8_CHARSETS = frozenset({"utf-8", "utf8", "us-ascii", "ascii"})

FIELD_COLUMNS = ("email", "name", "tags", "networks", "locale", "frequency", "timezone")
AUDIENCE_PREFIX = "audience_"
KNOWN_COLUMNS = frozenset(FIELD_COLUMNS) | {AUDIENCE_PREFIX + n for n in NETWORKS}
_LIST_SEPARATORS = re.compile(r"[;|]")


class InvalidImportFile(InvalidInput):
    pass


class ImportTooLarge(PayloadTooLarge):
    pass


@dataclass(frozen=True, slots=True)
class RowError:
    row: int
    error: str


@dataclass(frozen=True, slots=True)
class ImportRow:
    """One valid row. `fields` are the fields its source gave: only those change an existing
    amplifier. `audience_networks` are the audience entries it owns (CSV: one per column)."""

    row: int
    data: AmplifierCreate
    fields: frozenset[str]
    audience_networks: frozenset[str]


@dataclass(slots=True)
class ParsedImport:
    rows: list[ImportRow] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    _seen: dict[str, int] = field(default_factory=dict)

    def add(self, row: ImportRow) -> None:
        key = email_key(row.data.email)
        first = self._seen.get(key)
        if first is not None:
            self.errors.append(RowError(row.row, f"email: duplicate of row {first}"))
            return
        self._seen[key] = row.row
        self.rows.append(row)


def media_type_of(content_type: str | None) -> str:
    """'csv' or 'json' for a Content-Type header, else 415."""
    media, _, params = (content_type or "").partition(";")
    media = media.strip().lower()
    charset = None
    for param in params.split(";"):
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            charset = value.strip().strip('"').lower()
    if media in CSV_MEDIA_TYPES or media in JSON_MEDIA_TYPES:
        if charset is not None and charset not in UTF8_CHARSETS:
            raise UnsupportedMediaType(f"Import files must be UTF-8, not {charset!r}.")
        return "csv" if media in CSV_MEDIA_TYPES else "json"
    raise UnsupportedMediaType(
        "Send the roster as text/csv (also application/csv, text/plain) or as a JSON array "
        f"(application/json), not {media or 'a body without Content-Type'!r}."
    )


def _too_many_rows(max_rows: int) -> ImportTooLarge:
    return ImportTooLarge(
        f"The file has more than {max_rows} rows, the most one import accepts; "
        "nothing was imported. Split it into smaller files."
    )


def describe(exc: ValidationError, *, csv_columns: bool = False) -> str:
    """'<field>: <reason>' for every problem of one row."""
    parts = []
    for error in exc.errors(include_url=False):
        loc = [str(p) for p in error["loc"]]
        if csv_columns and len(loc) >= 2 and loc[0] == "audience":
            loc = [AUDIENCE_PREFIX + loc[1], *loc[2:]]
        message = str(error["msg"]).removeprefix("Value error, ")
        parts.append(f"{'.'.join(loc) or 'row'}: {message}")
    return "; ".join(parts)


# CSV


def _decode(body: bytes) -> str:
    start = len(codecs.BOM_UTF8) if body.startswith(codecs.BOM_UTF8) else 0
    try:
        return str(memoryview(body)[start:], "utf-8")
    except UnicodeDecodeError as exc:
        offset = start + exc.start
        line = body.count(b"\n", 0, offset) + 1
        raise InvalidImportFile(
            f"The file is not valid UTF-8: byte 0x{body[offset]:02x} at byte offset {offset} "
            f"(line {line}). Save it as UTF-8 and import it again."
        ) from None


def _columns(record: list[str], line: int) -> list[str]:
    columns = [cell.strip().lower() for cell in record]
    unknown = [c for c in columns if c not in KNOWN_COLUMNS]
    if unknown:
        names = ", ".join(repr(c) for c in unknown)
        raise InvalidImportFile(
            f"Unknown column(s) in the header (line {line}): {names}. Known columns: "
            f"{', '.join(FIELD_COLUMNS)} and {AUDIENCE_PREFIX}<network>.",
            errors=[{"loc": ["body", "header", c], "msg": "unknown column"} for c in unknown],
        )
    duplicates = sorted({c for c in columns if columns.count(c) > 1})
    if duplicates:
        raise InvalidImportFile(
            f"Duplicate column(s) in the header (line {line}): {', '.join(duplicates)}.",
            errors=[{"loc": ["body", "header", c], "msg": "duplicate column"} for c in duplicates],
        )
    if "email" not in columns:
        raise InvalidImportFile(
            f"The header (line {line}) has no 'email' column; the first line must name the "
            "columns, e.g. 'email,name,tags,networks'."
        )
    return columns


def _split(cell: str) -> list[str]:
    return [piece for piece in _LIST_SEPARATORS.split(cell) if piece.strip()]


def _row_data(columns: list[str], record: list[str]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    audience: dict[str, str] = {}
    for column, cell in zip(columns, record, strict=True):
        if column == "tags" or column == "networks":
            data[column] = _split(cell)
        elif column == "locale":
            data[column] = cell if cell.strip() else DEFAULT_LOCALE
        elif column == "frequency":
            data[column] = cell.strip().lower() or Frequency.EACH.value
        elif column == "timezone":
            data[column] = cell.strip() or None
        elif column.startswith(AUDIENCE_PREFIX):
            if cell.strip():
                audience[column.removeprefix(AUDIENCE_PREFIX)] = cell.strip()
        else:
            data[column] = cell
    if any(c.startswith(AUDIENCE_PREFIX) for c in columns):
        data["audience"] = audience
    return data


@dataclass(slots=True)
class CsvFile:
    """A CSV file's header columns and its records (each with its first line's number), the
    bad records already reported in `errors`."""

    columns: list[str]
    records: list[tuple[int, list[str]]]
    errors: list[RowError]


def read_csv(
    body: bytes,
    *,
    max_rows: int,
    header: Callable[[list[str], int], list[str]],
    example_header: str,
) -> CsvFile:
    """Records of a UTF-8 CSV file with a header line (`header` checks it and names the
    columns). Blank lines are skipped; a record that is not valid CSV, or whose number of
    fields differs from the header's, is reported and skipped, never shifted into wrong
    columns. More than `max_rows` records refuse the whole file."""
    reader = csv.reader(io.StringIO(_decode(body), newline=""), strict=True)
    columns: list[str] | None = None
    records: list[tuple[int, list[str]]] = []
    errors: list[RowError] = []
    count = 0
    line_done = 0
    while True:
        first_line = line_done + 1
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            line_done = reader.line_num
            if columns is None:
                raise InvalidImportFile(
                    f"The header (line {first_line}) is not valid CSV: {exc}."
                ) from None
            count += 1
            if count > max_rows:
                raise _too_many_rows(max_rows) from None
            errors.append(RowError(first_line, f"row: not valid CSV: {exc}"))
            continue
        line_done = reader.line_num
        if not any(cell.strip() for cell in record):
            continue
        if columns is None:
            columns = header(record, first_line)
            continue
        count += 1
        if count > max_rows:
            raise _too_many_rows(max_rows)
        if len(record) != len(columns):
            errors.append(
                RowError(
                    first_line,
                    f"columns: the row has {len(record)} fields, the header has {len(columns)}",
                )
            )
            continue
        records.append((first_line, record))
    if columns is None:
        raise InvalidImportFile(
            f"The file is empty; it needs a header line such as '{example_header}'."
        )
    return CsvFile(columns, records, errors)


def parse_csv(body: bytes, *, max_rows: int) -> ParsedImport:
    """Rows of a CSV file with a header line; row numbers are the record's first line."""
    file = read_csv(body, max_rows=max_rows, header=_columns, example_header="email,name")
    columns = file.columns
    audience_networks = frozenset(
        c.removeprefix(AUDIENCE_PREFIX) for c in columns if c.startswith(AUDIENCE_PREFIX)
    )
    fields = frozenset(c for c in columns if c in FIELD_COLUMNS)
    if audience_networks:
        fields |= {"audience"}
    parsed = ParsedImport(errors=file.errors)
    for line, record in file.records:
        data = _row_data(columns, record)
        if not data["email"].strip():
            parsed.errors.append(RowError(line, "email: is required"))
            continue
        try:
            amplifier = AmplifierCreate.model_validate(data)
        except ValidationError as exc:
            parsed.errors.append(RowError(line, describe(exc, csv_columns=True)))
            continue
        parsed.add(ImportRow(line, amplifier, fields, audience_networks))
    parsed.errors.sort(key=lambda error: error.row)
    return parsed


# JSON


def parse_json(body: bytes, *, max_rows: int) -> ParsedImport:
    """Rows of a JSON array of amplifier objects, numbered from 1."""
    try:
        payload = json.loads(body)
    except UnicodeDecodeError as exc:
        raise MalformedBody(f"The body is not valid UTF-8 (byte offset {exc.start}).") from None
    except json.JSONDecodeError as exc:
        raise MalformedBody(
            f"The body is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})."
        ) from None
    except (ValueError, RecursionError) as exc:
        raise MalformedBody(f"The body is not valid JSON: {exc}.") from None
    if not isinstance(payload, list):
        raise InvalidImportFile("The body must be a JSON array of amplifier objects.")
    if len(payload) > max_rows:
        raise _too_many_rows(max_rows)
    return _parse_objects(payload)


def _parse_objects(items: Iterable[Any]) -> ParsedImport:
    parsed = ParsedImport()
    every_network = frozenset(NETWORKS)
    for number, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            parsed.errors.append(RowError(number, "row: must be a JSON object"))
            continue
        try:
            amplifier = AmplifierCreate.model_validate(item)
        except ValidationError as exc:
            parsed.errors.append(RowError(number, describe(exc)))
            continue
        parsed.add(
            ImportRow(number, amplifier, frozenset(amplifier.model_fields_set), every_network)
        )
    return parsed


def parse(body: bytes, *, kind: str, max_rows: int) -> ParsedImport:
    """Parse a body whose kind came from `media_type_of`."""
    if kind == "csv":
        return parse_csv(body, max_rows=max_rows)
    return parse_json(body, max_rows=max_rows)
