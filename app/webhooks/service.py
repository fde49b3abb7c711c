"""Webhook endpoint rules: tenancy, URL checks, the one-time secret, the test event."""

from collections.abc import Sequence

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import MAX_ID, utcnow
from app.core.errors import InvalidInput, NotFound
from app.models import WebhookAttempt, WebhookEndpoint
from app.webhooks.events import Event, EventType, emit_events
from app.webhooks.schemas import WebhookCreate, WebhookUpdate
from app.webhooks.signing import new_secret
from app.webhooks.targets import TargetRefused, parse_target


class WebhookNotFound(NotFound):
    pass


class WebhookUrlRefused(InvalidInput):
    pass


def message_event_id(message_id: int) -> str:
    """The `webhook-id` of a message: stable across its retries."""
    return f"msg_{message_id}"


def _checked_url(url: str, *, allow_private: bool) -> str:
    try:
        return parse_target(url, allow_private=allow_private).url
    except TargetRefused as exc:
        raise WebhookUrlRefused(
            str(exc), errors=[{"loc": ["body", "url"], "msg": str(exc)}]
        ) from None


def _events(values: Sequence[EventType]) -> list[str]:
    return [str(v) for v in values]


async def create(
    session: AsyncSession, *, organization_id: int, data: WebhookCreate, allow_private: bool
) -> WebhookEndpoint:
    endpoint = WebhookEndpoint(
        organization_id=organization_id,
        url=_checked_url(data.url, allow_private=allow_private),
        events=_events(data.events),
        description=data.description,
        secret=new_secret(),
        enabled=True,
        wants_clicks=EventType.CLICKS_RECORDED in data.events,
        created_at=utcnow(),
        updated_at=utcnow(),
    )
    session.add(endpoint)
    await session.flush()
    return endpoint


def endpoints(*, organization_id: int) -> Select[WebhookEndpoint]:
    return select(WebhookEndpoint).where(WebhookEndpoint.organization_id == organization_id)


async def get(session: AsyncSession, *, organization_id: int, webhook_id: int) -> WebhookEndpoint:
    endpoint = None
    if 0 < webhook_id <= MAX_ID:
        endpoint = await session.scalar(
            endpoints(organization_id=organization_id).where(WebhookEndpoint.id == webhook_id)
        )
    if endpoint is None:
        raise WebhookNotFound(f"Webhook {webhook_id} does not exist.")
    return endpoint


async def update(
    session: AsyncSession,
    *,
    organization_id: int,
    webhook_id: int,
    data: WebhookUpdate,
    allow_private: bool,
) -> WebhookEndpoint:
    endpoint = await get(session, organization_id=organization_id, webhook_id=webhook_id)
    if data.url is not None:
        endpoint.url = _checked_url(data.url, allow_private=allow_private)
    if data.events is not None:
        endpoint.events = _events(data.events)
        endpoint.wants_clicks = EventType.CLICKS_RECORDED in data.events
    if "description" in data.model_fields_set:
        endpoint.description = data.description
    if data.enabled is not None and data.enabled != endpoint.enabled:
        endpoint.enabled = data.enabled
        endpoint.disabled_reason = None if data.enabled else "disabled over the API"
        endpoint.failing_since = None
    endpoint.updated_at = utcnow()
    await session.flush()
    return endpoint


async def delete(session: AsyncSession, *, organization_id: int, webhook_id: int) -> None:
    endpoint = await get(session, organization_id=organization_id, webhook_id=webhook_id)
    await session.delete(endpoint)
    await session.flush()


async def send_test(session: AsyncSession, *, organization_id: int, webhook_id: int) -> None:
    """A `webhook.test` event for this endpoint alone, whatever it subscribes to."""
    endpoint = await get(session, organization_id=organization_id, webhook_id=webhook_id)
    data = {"webhook_id": endpoint.id, "message": "This is a test event from Amplify."}
    await emit_events(
        session, [Event(organization_id, EventType.WEBHOOK_TEST, data, endpoint_id=endpoint.id)]
    )


def attempts(*, endpoint_id: int) -> Select[WebhookAttempt]:
    return select(WebhookAttempt).where(WebhookAttempt.endpoint_id == endpoint_id)
