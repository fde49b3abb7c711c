from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import select, update

from app.models import Delivery, Link
from tests.factories import OrgClients

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock(app: FastAPI) -> Iterator[Clock]:
    """The redirect's clock, set by the test (restored afterwards)."""
    tracking = app.state.tracking
    original = tracking.clock
    fake = Clock(datetime(2026, 11, 20, 9, 0, tzinfo=UTC))
    tracking.clock = fake
    yield fake
    tracking.clock = original


@dataclass
class SentCampaign:
    campaign_id: int
    # (amplifier email, message position, network, kind) → code
    codes: dict[tuple[str, int, str, str], str]
    delivery_of: dict[str, int]

    def code(self, email: str, position: int, network: str, kind: str) -> str:
        return self.codes[(email, position, network, kind)]


@pytest.fixture
def sent_campaign(org_a: OrgClients, sessionmaker) -> Callable[..., Any]:
    async def make(
        emails: tuple[str, ...] = ("ada@example.com", "bob@example.com"),
        *,
        sent_ago: timedelta | None = timedelta(hours=2),
        now: datetime | None = None,
        messages: list[dict[str, Any]] | None = None,
    ) -> SentCampaign:
        rows = [{"email": e, "networks": ["linkedin", "x"]} for e in emails]
        assert (await org_a.editor.post("/api/v1/amplifiers/import", json=rows)).status_code == 200
        created = await org_a.editor.post(
            "/api/v1/campaigns",
            json={
                "name": "Launch",
                "subject": "Share",
                "networks": ["linkedin", "x"],
                "messages": messages
                or [
                    {"text": "One", "url": "https://example.com/one?ref=mail"},
                    {"text": "Two", "url": "https://example.com/two"},
                ],
            },
        )
        campaign = created.json()
        assert (
            await org_a.editor.post(f"/api/v1/campaigns/{campaign['id']}/send")
        ).status_code == 202
        positions = {m["id"]: m["position"] for m in campaign["messages"]}
        amplifiers = (await org_a.viewer.get("/api/v1/amplifiers")).json()["items"]
        email_of = {a["id"]: a["email"] for a in amplifiers}
        async with sessionmaker() as session:
            links = (
                (await session.execute(select(Link).where(Link.campaign_id == campaign["id"])))
                .scalars()
                .all()
            )
            deliveries = (
                (
                    await session.execute(
                        select(Delivery).where(Delivery.campaign_id == campaign["id"])
                    )
                )
                .scalars()
                .all()
            )
        if sent_ago is not None:
            moment = (now or datetime.now(UTC)) - sent_ago
            async with sessionmaker.begin() as session:
                await session.execute(
                    update(Delivery)
                    .where(Delivery.campaign_id == campaign["id"])
                    .values(status="sent", sent_at=moment)
                )
        return SentCampaign(
            campaign_id=campaign["id"],
            codes={
                (
                    email_of[link.amplifier_id],
                    positions[link.message_id],
                    link.network,
                    link.kind,
                ): link.code
                for link in links
            },
            delivery_of={email_of[d.amplifier_id]: d.id for d in deliveries},
        )

    return make
