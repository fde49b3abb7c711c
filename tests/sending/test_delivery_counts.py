"""The per-campaign delivery counts (delivery_counts, kept by database triggers) always equal a
full recount of the deliveries, after any sequence of the changes the product makes: send
snapshots, worker outcomes, cancels, bounces, a campaign or an amplifier deleted, and a status
written by code the counters know nothing about (a plain UPDATE to a status they never saw)."""

import random
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.bounces import service as bounces
from app.bounces.reports import BounceReport
from app.models import (
    BounceKind,
    Delivery,
    DeliveryCount,
    DeliveryStatus,
    Organization,
)
from app.sending.parts import Outcome, OutcomeStatus
from app.sending.store import SqlDeliveryStore
from tests.factories import OrgClients, campaign_payload

AMPLIFIERS = 12
STEPS = 40
OUTCOMES = list(OutcomeStatus)
UNSEEN_STATUS = "held"  # a status no code of this revision writes


async def recount(sessionmaker: async_sessionmaker[AsyncSession]) -> dict[tuple[int, str], int]:
    async with sessionmaker() as session:
        rows = await session.execute(
            select(Delivery.campaign_id, Delivery.status, func.count()).group_by(
                Delivery.campaign_id, Delivery.status
            )
        )
        return {(c, s): int(n) for c, s, n in rows.all()}


async def counted(sessionmaker: async_sessionmaker[AsyncSession]) -> dict[tuple[int, str], int]:
    async with sessionmaker() as session:
        rows = await session.execute(select(DeliveryCount))
        return {(r.campaign_id, r.status): r.deliveries for r in rows.scalars() if r.deliveries}


class Scenario:
    def __init__(
        self, app: FastAPI, org: OrgClients, sessionmaker: Any, rng: random.Random
    ) -> None:
        self.org, self.sessionmaker, self.rng = org, sessionmaker, rng
        self.store = SqlDeliveryStore(sessionmaker, app.state.settings, "counting-worker")
        self.campaigns: list[int] = []
        self.events = 0

    async def send_campaign(self) -> None:
        created = await self.org.editor.post("/api/v1/campaigns", json=campaign_payload())
        campaign_id = created.json()["id"]
        sent = await self.org.editor.post(f"/api/v1/campaigns/{campaign_id}/send")
        assert sent.status_code == 202, sent.text
        self.campaigns.append(campaign_id)

    async def work(self) -> None:
        """The worker's real claim and outcome writes, with random outcomes."""
        claims = await self.store.claim(self.rng.randint(1, 6))
        jobs = await self.store.load_jobs(claims)
        outcomes = [
            Outcome(
                job,
                self.rng.choice(OUTCOMES),
                message_id=f"<{job.delivery_id}.{self.rng.random()}@test>",
                bounce=self.rng.random() < 0.3,
            )
            for job in jobs
        ]
        await self.store.apply(outcomes)

    async def cancel(self) -> None:
        campaign_id = self.rng.choice(self.campaigns)
        await self.org.editor.post(f"/api/v1/campaigns/{campaign_id}/cancel")

    async def bounce(self) -> None:
        async with self.sessionmaker.begin() as session:
            sent = (
                await session.scalars(
                    select(Delivery.id).where(Delivery.status == DeliveryStatus.SENT).limit(3)
                )
            ).all()
            for delivery_id in sent:
                self.events += 1
                report = BounceReport(
                    kind=self.rng.choice([BounceKind.HARD, BounceKind.COMPLAINT]),
                    source="smtp",
                    event_key=f"event-{self.events}",
                    delivery_id=delivery_id,
                )
                await bounces.record(session, report, now=datetime.now(UTC))

    async def hold_and_release(self) -> None:
        """What another module's new status would do: plain UPDATEs the counters never saw."""
        async with self.sessionmaker.begin() as session:
            pending = (
                await session.scalars(
                    select(Delivery.id).where(Delivery.status == DeliveryStatus.PENDING).limit(4)
                )
            ).all()
            await session.execute(
                update(Delivery).where(Delivery.id.in_(pending)).values(status=UNSEEN_STATUS)
            )
            if self.rng.random() < 0.5:
                await session.execute(
                    update(Delivery)
                    .where(Delivery.status == UNSEEN_STATUS)
                    .values(status=self.rng.choice([DeliveryStatus.PENDING, "cancelled"]))
                )

    async def delete_campaign(self) -> None:
        campaign_id = self.rng.choice(self.campaigns)
        deleted = await self.org.editor.delete(f"/api/v1/campaigns/{campaign_id}")
        if deleted.status_code == 204:
            self.campaigns.remove(campaign_id)

    async def delete_amplifier(self) -> None:
        listed = await self.org.editor.get("/api/v1/amplifiers?limit=1")
        items = listed.json()["items"]
        if items:
            await self.org.editor.delete(f"/api/v1/amplifiers/{items[0]['id']}")


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_the_counts_equal_a_recount_after_random_changes(
    app: FastAPI, org_a: OrgClients, sessionmaker: Any, seed: int
) -> None:
    rows = [
        {"email": f"a{i}@example.com", "networks": ["linkedin", "x"]} for i in range(AMPLIFIERS)
    ]
    imported = await org_a.editor.post("/api/v1/amplifiers/import", json=rows)
    assert imported.status_code == 200, imported.text
    scenario = Scenario(app, org_a, sessionmaker, random.Random(seed))
    await scenario.send_campaign()
    actions = [
        (scenario.work, 8),
        (scenario.send_campaign, 1),
        (scenario.cancel, 1),
        (scenario.bounce, 2),
        (scenario.hold_and_release, 2),
        (scenario.delete_campaign, 1),
        (scenario.delete_amplifier, 1),
    ]
    seen: set[str] = set()
    for _ in range(STEPS):
        (action,) = scenario.rng.choices([a for a, _ in actions], weights=[w for _, w in actions])
        await action()
        expected = await recount(sessionmaker)
        assert await counted(sessionmaker) == expected, action.__name__
        seen.update(status for _, status in expected)
    # The sequence moved deliveries through every status, the unseen one included.
    assert {"pending", "sent", "failed", "bounced", "cancelled", UNSEEN_STATUS} <= seen


async def test_campaign_stats_read_the_counts(org_a: OrgClients, sessionmaker: Any) -> None:
    rows = [{"email": f"s{i}@example.com", "networks": ["linkedin"]} for i in range(5)]
    await org_a.editor.post("/api/v1/amplifiers/import", json=rows)
    created = await org_a.editor.post("/api/v1/campaigns", json=campaign_payload())
    campaign_id = created.json()["id"]
    await org_a.editor.post(f"/api/v1/campaigns/{campaign_id}/send")
    async with sessionmaker.begin() as session:
        ids = (await session.scalars(select(Delivery.id).order_by(Delivery.id))).all()
        for delivery_id, status in zip(ids, ["sent", "sent", "failed", "bounced"], strict=False):
            await session.execute(
                update(Delivery).where(Delivery.id == delivery_id).values(status=status)
            )
    stats = (await org_a.viewer.get(f"/api/v1/campaigns/{campaign_id}/stats")).json()
    assert (stats["recipients"], stats["sent"], stats["failed"], stats["bounced"]) == (5, 2, 1, 1)


async def test_a_deleted_amplifier_moves_the_statistics_version(
    org_a: OrgClients, sessionmaker: Any
) -> None:
    created = await org_a.editor.post(
        "/api/v1/amplifiers", json={"email": "gone@example.com", "networks": ["x"]}
    )
    await org_a.editor.delete(f"/api/v1/amplifiers/{created.json()['id']}")
    async with sessionmaker() as session:
        deletions = await session.scalar(
            select(Organization.roster_deletions).where(Organization.id == org_a.organization_id)
        )
    assert deletions == 1
