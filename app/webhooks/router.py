from typing import Any

from fastapi import APIRouter, status

from app.core.deps import AdminDep, SessionDep, SettingsDep, SignerDep
from app.core.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery, Page, paginate_by_id
from app.models import WebhookAttempt, WebhookEndpoint
from app.webhooks import service
from app.webhooks.events import EventType
from app.webhooks.schemas import (
    WebhookAttemptRead,
    WebhookCreate,
    WebhookCreated,
    WebhookRead,
    WebhookTestSent,
    WebhookUpdate,
)

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"])

NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No such webhook here."}}
REFUSED: dict[int | str, dict[str, Any]] = {
    422: {"description": "Invalid input, or a URL on a private or local address."}
}


@router.post(
    "", status_code=status.HTTP_201_CREATED, response_model=WebhookCreated, responses=REFUSED
)
async def create_webhook(
    data: WebhookCreate, session: SessionDep, principal: AdminDep, settings: SettingsDep
) -> WebhookCreated:
    """Subscribe a URL to events; the signing secret is in this answer only."""
    endpoint = await service.create(
        session,
        organization_id=principal.organization_id,
        data=data,
        allow_private=settings.webhook_allow_private,
    )
    read = WebhookRead.model_validate(endpoint).model_dump()
    return WebhookCreated.model_validate({**read, "secret": endpoint.secret})


@router.get("", response_model=Page[WebhookRead])
async def list_webhooks(
    session: SessionDep,
    principal: AdminDep,
    signer: SignerDep,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
) -> Page[WebhookRead]:
    """List the organization's webhook endpoints (never their secret)."""
    rows, next_cursor = await paginate_by_id(
        session,
        service.endpoints(organization_id=principal.organization_id),
        WebhookEndpoint.id,
        signer=signer,
        purpose="webhooks",
        limit=limit,
        cursor=cursor,
    )
    items = [WebhookRead.model_validate(row) for row in rows]
    return Page[WebhookRead](items=items, next_cursor=next_cursor)


@router.get("/{webhook_id}", response_model=WebhookRead, responses=NOT_FOUND)
async def get_webhook(webhook_id: int, session: SessionDep, principal: AdminDep) -> WebhookRead:
    """One webhook endpoint."""
    endpoint = await service.get(
        session, organization_id=principal.organization_id, webhook_id=webhook_id
    )
    return WebhookRead.model_validate(endpoint)


@router.patch("/{webhook_id}", response_model=WebhookRead, responses={**NOT_FOUND, **REFUSED})
async def update_webhook(
    webhook_id: int,
    data: WebhookUpdate,
    session: SessionDep,
    principal: AdminDep,
    settings: SettingsDep,
) -> WebhookRead:
    """Change an endpoint's URL, events or description, or enable it again."""
    endpoint = await service.update(
        session,
        organization_id=principal.organization_id,
        webhook_id=webhook_id,
        data=data,
        allow_private=settings.webhook_allow_private,
    )
    return WebhookRead.model_validate(endpoint)


@router.delete("/{webhook_id}", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND)
async def delete_webhook(webhook_id: int, session: SessionDep, principal: AdminDep) -> None:
    """Delete an endpoint; nothing more is posted to it."""
    await service.delete(session, organization_id=principal.organization_id, webhook_id=webhook_id)


@router.post(
    "/{webhook_id}/test",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=WebhookTestSent,
    responses=NOT_FOUND,
)
async def send_webhook_test(
    webhook_id: int, session: SessionDep, principal: AdminDep
) -> WebhookTestSent:
    """Post a `webhook.test` event to this endpoint now (see its attempts for the outcome)."""
    await service.send_test(
        session, organization_id=principal.organization_id, webhook_id=webhook_id
    )
    return WebhookTestSent(endpoint_id=webhook_id, type=EventType.WEBHOOK_TEST)


@router.get("/{webhook_id}/attempts", response_model=Page[WebhookAttemptRead], responses=NOT_FOUND)
async def list_webhook_attempts(
    webhook_id: int,
    session: SessionDep,
    principal: AdminDep,
    signer: SignerDep,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
) -> Page[WebhookAttemptRead]:
    """Every post to this endpoint, oldest first: status code or error, and the next try."""
    endpoint = await service.get(
        session, organization_id=principal.organization_id, webhook_id=webhook_id
    )
    rows, next_cursor = await paginate_by_id(
        session,
        service.attempts(endpoint_id=endpoint.id),
        WebhookAttempt.id,
        signer=signer,
        purpose=f"webhook-attempts.{endpoint.id}",
        limit=limit,
        cursor=cursor,
    )
    items = [_attempt(row) for row in rows]
    return Page[WebhookAttemptRead](items=items, next_cursor=next_cursor)


def _attempt(row: WebhookAttempt) -> WebhookAttemptRead:
    return WebhookAttemptRead(
        id=row.id,
        event_id=service.message_event_id(row.message_id),
        type=row.type,
        status_code=row.status_code,
        error=row.error,
        attempt=row.attempt,
        at=row.at,
        next_at=row.next_at,
    )
