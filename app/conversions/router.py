from fastapi import APIRouter, Request, Response, status
from starlette.concurrency import run_in_threadpool

from app.amplifiers.importer import media_type_of
from app.conversions import importer
from app.conversions.schemas import ConversionCreate, ConversionImportResult, ConversionRead
from app.conversions.service import Recorded, Reported
from app.conversions.writer import ConversionWriter
from app.core.db import utcnow
from app.core.deps import EditorDep, SettingsDep
from app.core.errors import UnsupportedMediaType
from app.core.limits import read_body
from app.core.openapi import csv_request_body

router = APIRouter(prefix="/api/v1/conversions", tags=["conversions"])

# One import is one batch, committed while other conversions wait: kept moderate.
MAX_IMPORT_ROWS = 10_000

_IMPORT_OPENAPI = csv_request_body(
    "click_id,event,value,currency,external_id,occurred_at\n"
    "pVw3…(32 characters),purchase,49.90,EUR,order-1042,2026-11-30T10:15:00Z\n"
)


def _writer(request: Request) -> ConversionWriter:
    writer: ConversionWriter = request.app.state.conversions
    return writer


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ConversionRead,
    responses={
        200: {
            "description": "A conversion with this `external_id` exists: it is answered, "
            "nothing is counted twice.",
            "model": ConversionRead,
        },
        404: {"description": "Unknown, changed or another organization's click id."},
        422: {
            "description": "Invalid input, a currency other than the organization's, or a "
            "conversion outside the attribution window."
        },
    },
)
async def create_conversion(
    data: ConversionCreate,
    request: Request,
    response: Response,
    principal: EditorDep,
) -> ConversionRead:
    """Report a conversion (signup, sale …) against the click id its visitor brought."""
    # No session of its own: a request waiting for its batch must hold no pooled connection,
    # or waiting requests could hold every connection the batches need.
    outcome = await _writer(request).record(Reported(principal.organization_id, data, utcnow()))
    if not isinstance(outcome, Recorded):
        raise outcome
    if not outcome.created:
        response.status_code = status.HTTP_200_OK
    return outcome.conversion


@router.post(
    "/import",
    response_model=ConversionImportResult,
    openapi_extra=_IMPORT_OPENAPI,
    responses={
        413: {"description": "The body or its number of rows is over the limit."},
        415: {"description": "Not CSV, or not UTF-8."},
        422: {"description": "The file as a whole is unusable (no header, unknown columns …)."},
    },
)
async def import_conversions(
    request: Request, principal: EditorDep, settings: SettingsDep
) -> ConversionImportResult:
    """Conversions from a CSV file (offline sales); bad rows are reported and skipped."""
    if media_type_of(request.headers.get("content-type")) != "csv":
        raise UnsupportedMediaType("Send conversions as text/csv (also application/csv).")
    body = await read_body(request, settings.max_body_bytes)
    parsed = await run_in_threadpool(
        importer.parse_csv, body, max_rows=min(settings.import_max_rows, MAX_IMPORT_ROWS)
    )
    return await _writer(request).import_rows(
        organization_id=principal.organization_id, parsed=parsed, now=utcnow()
    )
