"""Everything the webhook dispatcher reads and writes.

Two steps, each one transaction, each safe for any number of dispatchers at once:
- fan-out: outbox events → one message per subscribed endpoint, the events deleted. Rows are
  locked with `FOR UPDATE SKIP LOCKED` on PostgreSQL (SQLite serialises writers), so an event
  becomes messages exactly once.
- claim: due messages are leased like deliveries; a dispatcher that dies holding some leaves
  them to be claimed again when the lease ends (at least once, never lost).
"""

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from app.core.config import Settings
from app.core.db import utcnow
from app.core.schemas import format_utc
from app.models import (
    WebhookAttempt,
    WebhookEndpoint,
    WebhookEvent,
    WebhookMessage,
    WebhookMessageStatus,
)
from app.webhooks.events import EventType

MAX_CLICKS_PER_EVENT = 500
CLICK_EVENT_SPACING = timedelta(seconds=1)
CLICK_FIELDS = ("link_kind", "campaign_id", "message_id", "amplifier_id", "network", "at")


@dataclass(frozen=True, slots=True)
class Claimed:
    message_id: int
    endpoint_id: int
    type: str
    body: bytes
    attempt: int
    url: str
    secret: str


@dataclass(frozen=True, slots=True)
class PostResult:
    claimed: Claimed
    status_code: int | None
    error: str | None
    at: datetime

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def event_body(type_: str, at: datetime, data: dict[str, Any]) -> str:
    return json.dumps(
        {"type": type_, "timestamp": format_utc(at), "data": data},
        separators=(",", ":"),
        ensure_ascii=False,
    )


def click_chunks(clicks: Sequence[Sequence[Any]]) -> list[list[dict[str, Any]]]:
    """Compact click rows (see `CLICK_FIELDS`) as payload items, ≤ 500 per event."""
    items = [dict(zip(CLICK_FIELDS, click, strict=True)) for click in clicks]
    return [
        items[start : start + MAX_CLICKS_PER_EVENT]
        for start in range(0, len(items), MAX_CLICKS_PER_EVENT)
    ]


class WebhookStore:
    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, owner: str
    ) -> None:
        self.sessionmaker = sessionmaker
        self.settings = settings
        self.owner = owner

    def _locked(self, session: AsyncSession, query: Any) -> Any:
        if session.get_bind().dialect.name == "postgresql":
            return query.with_for_update(skip_locked=True)
        return query

    # --- fan-out ------------------------------------------------------------------------

    async def fan_out(self, *, clicks: bool, limit: int = 1000) -> int:
        """Turn outbox events into messages; `clicks` includes the clicks.recorded batches
        (the caller does that at most once a second, so they coalesce). Returns events taken."""
        async with self.sessionmaker.begin() as session:
            query = select(WebhookEvent).order_by(WebhookEvent.id).limit(limit)
            if not clicks:
                query = query.where(WebhookEvent.type != EventType.CLICKS_RECORDED)
            events = list((await session.scalars(self._locked(session, query))).all())
            if not events:
                return 0
            endpoints = await self._endpoints(
                session,
                {e.organization_id for e in events},
                lock=any(e.type == EventType.CLICKS_RECORDED for e in events),
            )
            now = utcnow()
            rows = self._messages(events, endpoints, now)
            rows += self._click_messages(events, endpoints, now)
            if rows:
                await session.execute(insert(WebhookMessage), rows)
            await session.execute(
                delete(WebhookEvent).where(WebhookEvent.id.in_([e.id for e in events]))
            )
            return len(events)

    async def _endpoints(
        self, session: AsyncSession, organization_ids: set[int], *, lock: bool
    ) -> dict[int, list[WebhookEndpoint]]:
        query = (
            select(WebhookEndpoint)
            .where(
                WebhookEndpoint.organization_id.in_(organization_ids),
                WebhookEndpoint.enabled.is_(True),
            )
            .order_by(WebhookEndpoint.id)
        )
        if lock and session.get_bind().dialect.name == "postgresql":
            # Two dispatchers spacing clicks.recorded for one endpoint take turns, so the
            # second sees the first's `clicks_due_at` (locks in id order: no deadlock).
            query = query.with_for_update()
        rows = await session.scalars(query)
        by_org: dict[int, list[WebhookEndpoint]] = defaultdict(list)
        for endpoint in rows.all():
            by_org[endpoint.organization_id].append(endpoint)
        return by_org

    @staticmethod
    def _message(endpoint_id: int, type_: str, body: str, due: datetime) -> dict[str, Any]:
        return {
            "endpoint_id": endpoint_id,
            "type": type_,
            "body": body,
            "status": WebhookMessageStatus.PENDING,
            "attempts": 0,
            "next_attempt_at": due,
            "created_at": due,
        }

    def _messages(
        self,
        events: Sequence[WebhookEvent],
        endpoints: dict[int, list[WebhookEndpoint]],
        now: datetime,
    ) -> list[dict[str, Any]]:
        rows = []
        for event in events:
            if event.type == EventType.CLICKS_RECORDED:
                continue
            body = event_body(event.type, event.created_at, event.data)
            for endpoint in endpoints.get(event.organization_id, ()):
                if event.endpoint_id is not None:
                    wanted = endpoint.id == event.endpoint_id
                else:
                    wanted = event.type in endpoint.events and endpoint.created_at <= (
                        event.created_at
                    )
                if wanted:
                    rows.append(self._message(endpoint.id, event.type, body, now))
        return rows

    def _click_messages(
        self,
        events: Sequence[WebhookEvent],
        endpoints: dict[int, list[WebhookEndpoint]],
        now: datetime,
    ) -> list[dict[str, Any]]:
        """All waiting click batches of an organization coalesced into events of ≤ 500 clicks,
        spaced a second apart per endpoint."""
        clicks: dict[int, list[Any]] = defaultdict(list)
        for event in events:
            if event.type == EventType.CLICKS_RECORDED:
                clicks[event.organization_id] += event.data["clicks"]
        rows = []
        for organization_id, org_clicks in clicks.items():
            chunks = click_chunks(org_clicks)
            for endpoint in endpoints.get(organization_id, ()):
                if not endpoint.wants_clicks or not endpoint.enabled:
                    continue
                due = max(now, endpoint.clicks_due_at or now)
                for chunk in chunks:
                    body = event_body(EventType.CLICKS_RECORDED, now, {"clicks": chunk})
                    rows.append(self._message(endpoint.id, EventType.CLICKS_RECORDED, body, due))
                    due += CLICK_EVENT_SPACING
                endpoint.clicks_due_at = due
        return rows

    # --- claims -------------------------------------------------------------------------

    async def claim(self, limit: int) -> list[Claimed]:
        now = utcnow()
        lease = now + timedelta(seconds=self.settings.webhook_lease_seconds)
        async with self.sessionmaker.begin() as session:
            due = (
                select(WebhookMessage.id)
                .join(WebhookEndpoint, WebhookEndpoint.id == WebhookMessage.endpoint_id)
                .where(
                    WebhookMessage.status == WebhookMessageStatus.PENDING,
                    WebhookMessage.next_attempt_at <= now,
                    or_(
                        WebhookMessage.lease_expires_at.is_(None),
                        WebhookMessage.lease_expires_at < now,
                    ),
                    WebhookEndpoint.enabled.is_(True),
                )
                .order_by(WebhookMessage.next_attempt_at, WebhookMessage.id)
                .limit(limit)
            )
            if session.get_bind().dialect.name == "postgresql":
                due = due.with_for_update(skip_locked=True, of=WebhookMessage)
            claimed = (
                await session.execute(
                    update(WebhookMessage)
                    .where(WebhookMessage.id.in_(due.scalar_subquery()))
                    .values(
                        lease_owner=self.owner,
                        lease_expires_at=lease,
                        attempts=WebhookMessage.attempts + 1,
                    )
                    .returning(
                        WebhookMessage.id,
                        WebhookMessage.endpoint_id,
                        WebhookMessage.type,
                        WebhookMessage.body,
                        WebhookMessage.attempts,
                    )
                    .execution_options(synchronize_session=False)
                )
            ).all()
            if not claimed:
                return []
            targets = {
                row.id: row
                for row in (
                    await session.execute(
                        select(
                            WebhookEndpoint.id, WebhookEndpoint.url, WebhookEndpoint.secret
                        ).where(WebhookEndpoint.id.in_({row.endpoint_id for row in claimed}))
                    )
                ).all()
            }
        return [
            Claimed(
                message_id=row.id,
                endpoint_id=row.endpoint_id,
                type=row.type,
                body=row.body.encode(),
                attempt=row.attempts,
                url=targets[row.endpoint_id].url,
                secret=targets[row.endpoint_id].secret,
            )
            for row in sorted(claimed, key=lambda r: r.id)
        ]

    # --- outcomes -----------------------------------------------------------------------

    def next_attempt_at(self, result: PostResult) -> datetime | None:
        """When a failed message is tried again, or None when it has had its last try."""
        schedule = self.settings.webhook_retry_seconds
        if result.claimed.attempt > len(schedule):
            return None
        return result.at + timedelta(seconds=schedule[result.claimed.attempt - 1])

    async def record(self, results: Sequence[PostResult]) -> None:
        """Messages delivered or rescheduled, one attempt row each, endpoints' failure clocks
        (three days of failing disable an endpoint), all in one transaction."""
        if not results:
            return
        async with self.sessionmaker.begin() as session:
            await session.execute(
                update(WebhookMessage),
                [self._message_update(result) for result in results],
                execution_options={"synchronize_session": False},
            )
            await session.execute(
                insert(WebhookAttempt), [self._attempt(result) for result in results]
            )
            await self._failure_clocks(session, results)

    def _message_update(self, result: PostResult) -> dict[str, Any]:
        row: dict[str, Any] = {
            "id": result.claimed.message_id,
            "lease_owner": None,
            "lease_expires_at": None,
        }
        if result.ok:
            return row | {"status": WebhookMessageStatus.DELIVERED, "delivered_at": result.at}
        retry_at = self.next_attempt_at(result)
        if retry_at is None:
            return row | {"status": WebhookMessageStatus.FAILED}
        return row | {"status": WebhookMessageStatus.PENDING, "next_attempt_at": retry_at}

    def _attempt(self, result: PostResult) -> dict[str, Any]:
        return {
            "endpoint_id": result.claimed.endpoint_id,
            "message_id": result.claimed.message_id,
            "type": result.claimed.type,
            "attempt": result.claimed.attempt,
            "status_code": result.status_code,
            "error": result.error[:500] if result.error else None,
            "at": result.at,
            "next_at": None if result.ok else self.next_attempt_at(result),
        }

    async def _failure_clocks(self, session: AsyncSession, results: Sequence[PostResult]) -> None:
        last: dict[int, PostResult] = {}
        for result in sorted(results, key=lambda r: r.at):
            last[result.claimed.endpoint_id] = result
        healthy = [e for e, r in last.items() if r.ok]
        failing = [e for e, r in last.items() if not r.ok]
        now = utcnow()
        if healthy:
            await session.execute(
                update(WebhookEndpoint)
                .where(WebhookEndpoint.id.in_(healthy), WebhookEndpoint.failing_since.isnot(None))
                .values(failing_since=None)
            )
        if not failing:
            return
        await session.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.id.in_(failing), WebhookEndpoint.failing_since.is_(None))
            .values(failing_since=now)
        )
        limit = now - timedelta(seconds=self.settings.webhook_disable_after_seconds)
        await session.execute(
            update(WebhookEndpoint)
            .where(
                WebhookEndpoint.id.in_(failing),
                WebhookEndpoint.enabled.is_(True),
                WebhookEndpoint.failing_since <= limit,
            )
            .values(enabled=False, disabled_reason="failing for too long", updated_at=now)
        )


async def purge_finished(
    sessionmaker: async_sessionmaker[AsyncSession], *, older_than: timedelta
) -> int:
    """Delivered and given-up messages, and attempts, older than `older_than`."""
    limit = utcnow() - older_than
    async with sessionmaker.begin() as session:
        gone = await session.execute(
            delete(WebhookMessage).where(
                WebhookMessage.status != WebhookMessageStatus.PENDING,
                WebhookMessage.created_at < limit,
            )
        )
        await session.execute(delete(WebhookAttempt).where(WebhookAttempt.at < limit))
        return int(gone.rowcount)  # type: ignore[attr-defined]


async def pending_count(connection: AsyncConnection) -> int:
    """Events not delivered yet: in the outbox, or messages waiting for an attempt."""
    messages = await connection.scalar(
        select(func.count())
        .select_from(WebhookMessage)
        .where(WebhookMessage.status == WebhookMessageStatus.PENDING)
    )
    events = await connection.scalar(select(func.count()).select_from(WebhookEvent))
    return int(messages or 0) + int(events or 0)
