from typing import Annotated

from fastapi import APIRouter, Query, Request, status
from starlette.concurrency import run_in_threadpool

from app.amplifiers import importer, service
from app.amplifiers.schemas import AmplifierCreate, AmplifierRead, AmplifierUpdate, ImportResult
from app.core.deps import ClockDep, EditorDep, SessionDep, SettingsDep, SignerDep, ViewerDep
from app.core.limits import read_body
from app.core.openapi import csv_request_body
from app.core.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery, Page
from app.models import AmplifierStatus

router = APIRouter(prefix="/api/v1/amplifiers", tags=["amplifiers"])
# `{amplifier_id:int}`: so that `/import` is no amplifier id (another method there is a 405).

_IMPORT_OPENAPI = csv_request_body(
    "email,name,tags,networks,audience_linkedin\n"
    "ada@example.com,Ada Lovelace,engineering;london,linkedin|x,1200\n",
    {
        "application/json": {
            "schema": {
                "type": "array",
                "description": "Amplifier objects (the fields of `AmplifierCreate`). Rows "
                "are checked one by one: a bad row is reported in the answer's `errors` "
                "and skipped, never a reason to refuse the whole body.",
                "items": {},
            }
        }
    },
)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=AmplifierRead,
    responses={409: {"description": "An amplifier with this email (in any case) exists."}},
)
async def create_amplifier(
    data: AmplifierCreate, session: SessionDep, principal: EditorDep
) -> AmplifierRead:
    """Add an amplifier to the roster; a duplicate email (any case) is a 409."""
    amplifier = await service.create(session, organization_id=principal.organization_id, data=data)
    return AmplifierRead.model_validate(amplifier)


@router.get("", response_model=Page[AmplifierRead])
async def list_amplifiers(
    session: SessionDep,
    principal: ViewerDep,
    signer: SignerDep,
    tag: Annotated[
        list[str] | None,
        Query(max_length=50, description="Amplifiers with any of these tags (repeatable)."),
    ] = None,
    status: Annotated[AmplifierStatus | None, Query()] = None,
    q: Annotated[
        str | None,
        Query(max_length=200, description="Case-insensitive substring of the email or name."),
    ] = None,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
) -> Page[AmplifierRead]:
    """List the roster in creation order, optionally filtered by tag, status and text."""
    amplifiers, next_cursor = await service.list_(
        session,
        organization_id=principal.organization_id,
        signer=signer,
        limit=limit,
        cursor=cursor,
        tags=tag or (),
        status=status,
        q=q,
    )
    return Page[AmplifierRead](
        items=[AmplifierRead.model_validate(a) for a in amplifiers], next_cursor=next_cursor
    )


@router.post(
    "/import",
    response_model=ImportResult,
    openapi_extra=_IMPORT_OPENAPI,
    responses={
        400: {"description": "A JSON body that is not well-formed JSON (or not UTF-8)."},
        413: {"description": "The body or its number of rows is over the limit."},
        415: {"description": "Neither CSV nor JSON, or not UTF-8."},
        409: {"description": "The roster changed meanwhile (a concurrent import); retry."},
        422: {"description": "The file as a whole is unusable (no header, unknown columns …)."},
    },
)
async def import_amplifiers(
    request: Request, session: SessionDep, principal: EditorDep, settings: SettingsDep
) -> ImportResult:
    """Upsert amplifiers by email from CSV or a JSON array; bad rows are reported and skipped."""
    kind = importer.media_type_of(request.headers.get("content-type"))
    body = await read_body(request, settings.max_body_bytes)
    # Parsing and validating thousands of rows is CPU work: keep it off the event loop.
    parsed = await run_in_threadpool(
        importer.parse, body, kind=kind, max_rows=settings.import_max_rows
    )
    return await service.import_rows(
        session, organization_id=principal.organization_id, parsed=parsed
    )


@router.get("/{amplifier_id:int}", response_model=AmplifierRead)
async def get_amplifier(
    amplifier_id: int, session: SessionDep, principal: ViewerDep
) -> AmplifierRead:
    """One amplifier of the roster."""
    amplifier = await service.get(
        session, organization_id=principal.organization_id, amplifier_id=amplifier_id
    )
    return AmplifierRead.model_validate(amplifier)


@router.patch(
    "/{amplifier_id:int}",
    response_model=AmplifierRead,
    responses={409: {"description": "The email is taken, or the status change is refused."}},
)
async def update_amplifier(
    amplifier_id: int,
    data: AmplifierUpdate,
    session: SessionDep,
    principal: EditorDep,
    clock: ClockDep,
) -> AmplifierRead:
    """Change the given fields; an unsubscribed amplifier cannot be made active again (409)."""
    amplifier = await service.update(
        session,
        organization_id=principal.organization_id,
        amplifier_id=amplifier_id,
        data=data,
        now=clock(),
    )
    return AmplifierRead.model_validate(amplifier)


@router.delete("/{amplifier_id:int}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_amplifier(amplifier_id: int, session: SessionDep, principal: EditorDep) -> None:
    """Delete an amplifier; an unsubscribed or bounced address stays suppressed (hash only)."""
    await service.delete(
        session, organization_id=principal.organization_id, amplifier_id=amplifier_id
    )
