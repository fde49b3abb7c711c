"""Conversion files (offline sales, CRM exports) parsed into validated rows with the roster
import's CSV reading (app/amplifiers/importer.py); no I/O here."""

from dataclasses import dataclass, field

from pydantic import ValidationError

from app.amplifiers.importer import InvalidImportFile, RowError, describe, read_csv
from app.conversions.schemas import ConversionCreate

COLUMNS = ("click_id", "event", "value", "currency", "external_id", "occurred_at")
REQUIRED = ("click_id", "event")


@dataclass(frozen=True, slots=True)
class ConversionRow:
    row: int
    data: ConversionCreate


@dataclass(slots=True)
class ParsedConversions:
    rows: list[ConversionRow] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)


def _header(record: list[str], line: int) -> list[str]:
    columns = [cell.strip().lower() for cell in record]
    unknown = [c for c in columns if c not in COLUMNS]
    duplicates = sorted({c for c in columns if columns.count(c) > 1})
    missing = [c for c in REQUIRED if c not in columns]
    if unknown or duplicates or missing:
        problems = [
            *(f"unknown column {c!r}" for c in unknown),
            *(f"duplicate column {c!r}" for c in duplicates),
            *(f"no {c!r} column" for c in missing),
        ]
        raise InvalidImportFile(
            f"The header (line {line}) does not fit: {'; '.join(problems)}. Columns: "
            f"{', '.join(COLUMNS)} (click_id and event required).",
            errors=[{"loc": ["body", "header"], "msg": problem} for problem in problems],
        )
    return columns


def parse_csv(body: bytes, *, max_rows: int) -> ParsedConversions:
    """Rows of a CSV file with a header line; empty cells are absent fields."""
    file = read_csv(body, max_rows=max_rows, header=_header, example_header=",".join(COLUMNS))
    parsed = ParsedConversions(errors=file.errors)
    for line, record in file.records:
        data = {
            column: cell.strip()
            for column, cell in zip(file.columns, record, strict=True)
            if cell.strip()
        }
        missing = [c for c in REQUIRED if c not in data]
        if missing:
            parsed.errors.append(RowError(line, "; ".join(f"{c}: is required" for c in missing)))
            continue
        try:
            parsed.rows.append(ConversionRow(line, ConversionCreate.model_validate(data)))
        except ValidationError as exc:
            parsed.errors.append(RowError(line, describe(exc)))
    return parsed
