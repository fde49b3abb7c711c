"""Bounces and complaints are reported to webhooks in the transaction that records them."""

from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.models import WebhookEvent
from tests.bounces import samples
from tests.bounces.conftest import Receiver
from tests.factories import OrgClients


async def _events(sessionmaker: async_sessionmaker[AsyncSession], type_: str) -> list[Any]:
    async with sessionmaker() as session:
        rows = await session.scalars(select(WebhookEvent).where(WebhookEvent.type == type_))
        return [(row.organization_id, row.data) for row in rows]


class TestBounceWebhookEvents:
    async def test_hard_bounce_reports_delivery_bounced(
        self,
        org_a: OrgClients,
        send_digests: Callable[..., Any],
        receiver: Receiver,
        sessionmaker: async_sessionmaker[AsyncSession],
    ) -> None:
        bounced, _kept = await send_digests(org_a, 2)
        report = samples.postfix_user_unknown(bounced)
        for _ in range(2):  # a repeated report is reported once
            assert (await receiver.deliver(report, to=bounced.return_path)).code == 250
        [(organization_id, data)] = await _events(sessionmaker, "delivery.bounced")
        assert organization_id == org_a.organization_id
        assert data["campaign_id"] == int(bounced.message_id.split(".")[1])
        assert "5.1." in data["error"]

    async def test_complaint_reports_amplifier_complained(
        self,
        org_a: OrgClients,
        send_digests: Callable[..., Any],
        receiver: Receiver,
        sessionmaker: async_sessionmaker[AsyncSession],
    ) -> None:
        complained, _kept = await send_digests(org_a, 2)
        report = samples.yahoo_complaint(complained)
        assert (await receiver.deliver(report, to="fbl@acme.test")).code == 250
        [(organization_id, data)] = await _events(sessionmaker, "amplifier.complained")
        assert organization_id == org_a.organization_id
        assert data["campaign_id"] == int(complained.message_id.split(".")[1])
