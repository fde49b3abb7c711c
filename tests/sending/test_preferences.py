"""Held deliveries and combined digests over real SMTP, with the wall clock in the test's hand:
daily and weekly slots in the amplifier's time zone (across a DST change), pauses, the weekly
cap, expiry, and the preferences that release held mail at once."""

import asyncio
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.models import Delivery, Link, LinkKind
from tests.factories import OrgClients
from tests.sending.conftest import make_campaign, send_campaign, wait_for_status, wait_until
from tests.sending.smtp import SmtpServer
from tests.tracking.conftest import Clock

# Long enough for a worker to claim, compose and send several times over.
QUIET = 0.4


@pytest.fixture
def wall(app: FastAPI) -> Iterator[Clock]:
    """The wall clock of the API (slots, pauses) and of the workers started below."""
    original = app.state.clock
    clock = Clock(datetime(2026, 11, 30, 6, 0, tzinfo=UTC))
    app.state.clock = clock
    yield clock
    app.state.clock = original


@pytest.fixture
def worker_on_wall(run_worker: Callable[..., Any], wall: Clock) -> Callable[..., Any]:
    """A worker whose wall clock is the test's."""
    return lambda **overrides: run_worker(now=wall, **overrides)


async def add(org: OrgClients, email: str, **fields: Any) -> int:
    response = await org.editor.post("/api/v1/amplifiers", json={"email": email, **fields})
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


async def three_campaigns(org: OrgClients) -> list[int]:
    ids = []
    for n in (1, 2, 3):
        campaign = await make_campaign(
            org,
            name=f"Campaign {n}",
            subject=f"Subject number {n}",
            intro=f"Intro of campaign {n}",
            messages=[{"text": f"Post of campaign {n}", "url": f"https://example.com/{n}"}],
        )
        await send_campaign(org, campaign["id"])
        ids.append(campaign["id"])
    return ids


async def deliveries_of(
    sessionmaker: async_sessionmaker[AsyncSession], amplifier_id: int
) -> list[Delivery]:
    async with sessionmaker() as session:
        rows = await session.scalars(
            select(Delivery).where(Delivery.amplifier_id == amplifier_id).order_by(Delivery.id)
        )
        return list(rows.all())


def mails_to(smtp_server: SmtpServer, email: str) -> list[EmailMessage]:
    return [r.parsed() for r in smtp_server.handler.received if r.recipient == email]


def text_and_html(mail: EmailMessage) -> tuple[str, str]:
    text, html = (part.get_content() for part in mail.iter_parts())
    return text, html


async def quiet_period() -> None:
    await asyncio.sleep(QUIET)


async def assert_one_mail_at_the_slot(
    env: "Slot", *, email: str, campaigns: list[int], before: datetime, slot: datetime
) -> None:
    """Nothing for `email` while the clock reads `before`; one mail once it reads `slot`."""
    env.wall.now = before
    async with env.worker():
        await quiet_period()
        assert mails_to(env.smtp_server, email) == []
        env.wall.now = slot
        for campaign_id in campaigns:
            await wait_for_status(env.sessionmaker, campaign_id)
        await quiet_period()
    assert len(mails_to(env.smtp_server, email)) == 1


@dataclass
class Slot:
    wall: Clock
    worker: Callable[..., Any]
    smtp_server: SmtpServer
    sessionmaker: async_sessionmaker[AsyncSession]


@pytest.fixture
def slot_env(
    wall: Clock,
    worker_on_wall: Callable[..., Any],
    smtp_server: SmtpServer,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> Slot:
    return Slot(wall, worker_on_wall, smtp_server, sessionmaker)


class TestDailyDigest:
    async def test_three_campaigns_arrive_as_one_mail_at_nine_in_copenhagen(
        self,
        org_a: OrgClients,
        sessionmaker: async_sessionmaker[AsyncSession],
        smtp_server: SmtpServer,
        wall: Clock,
        worker_on_wall: Callable[..., Any],
    ) -> None:
        dora = await add(org_a, "dora@example.dk", frequency="daily", timezone="Europe/Copenhagen")
        await add(org_a, "eve@example.com")  # every campaign as it is sent
        wall.now = datetime(2026, 11, 30, 6, 30, tzinfo=UTC)  # 07:30 in Copenhagen
        campaigns = await three_campaigns(org_a)

        held = await deliveries_of(sessionmaker, dora)
        assert [d.status for d in held] == ["held"] * 3
        slot = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)  # 09:00 CET
        assert {d.due_at for d in held} == {slot}
        listed = await org_a.viewer.get(
            f"/api/v1/campaigns/{campaigns[0]}/deliveries", params={"status": "held"}
        )
        due = [datetime.fromisoformat(d["due_at"]) for d in listed.json()["items"]]
        assert due == [slot]
        stats = await org_a.viewer.get(f"/api/v1/campaigns/{campaigns[0]}/stats")
        assert stats.json()["held"] == 1

        wall.now = slot - timedelta(seconds=1)
        async with worker_on_wall():
            await wait_until(lambda: len(mails_to(smtp_server, "eve@example.com")) == 3)
            await quiet_period()
            assert mails_to(smtp_server, "dora@example.dk") == []
            assert (await org_a.viewer.get(f"/api/v1/campaigns/{campaigns[0]}")).json()[
                "status"
            ] == "sending"  # a held delivery keeps the campaign open

            wall.now = slot
            for campaign_id in campaigns:
                await wait_for_status(sessionmaker, campaign_id)
            await quiet_period()

        [mail] = mails_to(smtp_server, "dora@example.dk")
        assert mail["Subject"] == "Org A: 3 posts to share"
        assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert "/u/" in mail["List-Unsubscribe"]
        text, html = text_and_html(mail)
        for n in (1, 2, 3):
            assert f"Subject number {n}" in text and f"Subject number {n}" in html
            assert f"Post of campaign {n}" in html
        # Sections in campaign order, each with its own web version.
        assert text.index("Subject number 1") < text.index("Subject number 2")
        assert text.index("Subject number 2") < text.index("Subject number 3")
        assert len(set(re.findall(r"https://amplify\.test/a/[\w.-]+", html))) == 3
        assert re.search(r'href="https://amplify\.test/p/[\w.-]+"', html)
        # No digest-wide "View in browser" (there is none), so no empty link anywhere.
        assert 'href=""' not in html
        assert not re.search(r"View in browser: *$", text, flags=re.MULTILINE)

        sent = await deliveries_of(sessionmaker, dora)
        assert {d.status for d in sent} == {"sent"}
        assert {d.message_id for d in sent} == {mail["Message-ID"]}
        async with sessionmaker() as session:
            links = (
                await session.execute(
                    select(Link.delivery_id, Link.code).where(
                        Link.amplifier_id == dora, Link.kind == LinkKind.SHARE
                    )
                )
            ).all()
        # Every delivery's own share links are in the one mail.
        assert {delivery_id for delivery_id, _ in links} == {d.id for d in sent}
        for _, code in links:
            assert f"https://amplify.test/r/{code}" in html
        stats = await org_a.viewer.get(f"/api/v1/campaigns/{campaigns[0]}/stats")
        assert (stats.json()["held"], stats.json()["sent"]) == (0, 2)

    async def test_each_section_shows_the_copy_variant_the_amplifier_was_dealt(
        self, org_a: OrgClients, slot_env: Slot
    ) -> None:
        """Two daily amplifiers, two campaigns whose message has one variant: dealt in roster
        order, the first reads the base texts, the second the variants, in one mail each."""
        for name in ("first", "second"):
            await add(org_a, f"{name}@example.com", frequency="daily")
        slot_env.wall.now = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)
        campaigns = []
        for n in (1, 2):
            campaign = await make_campaign(
                org_a,
                name=f"Campaign {n}",
                messages=[
                    {
                        "text": f"Base wording {n}",
                        "url": f"https://example.com/{n}",
                        "variants": [{"text": f"Other wording {n}"}],
                    }
                ],
            )
            await send_campaign(org_a, campaign["id"])
            campaigns.append(campaign["id"])
        await assert_one_mail_at_the_slot(
            slot_env,
            email="second@example.com",
            campaigns=campaigns,
            before=datetime(2026, 11, 30, 8, 59, tzinfo=UTC),
            slot=datetime(2026, 11, 30, 9, 0, tzinfo=UTC),  # 09:00 UTC, the default
        )
        for email, shown, hidden in (
            ("first@example.com", "Base wording", "Other wording"),
            ("second@example.com", "Other wording", "Base wording"),
        ):
            [mail] = mails_to(slot_env.smtp_server, email)
            text, html = text_and_html(mail)
            for n in (1, 2):
                assert f"{shown} {n}" in text and f"{shown} {n}" in html
                assert f"{hidden} {n}" not in text and f"{hidden} {n}" not in html

    async def test_new_york_slot_follows_the_spring_dst_change(
        self, org_a: OrgClients, slot_env: Slot
    ) -> None:
        ny = await add(org_a, "ny@example.com", frequency="daily", timezone="America/New_York")
        # Saturday 7 March 2026, 10:00 EST: today's slot has passed; clocks go forward tonight.
        slot_env.wall.now = datetime(2026, 3, 7, 15, 0, tzinfo=UTC)
        campaigns = await three_campaigns(org_a)
        edt_slot = datetime(2026, 3, 8, 13, 0, tzinfo=UTC)  # 09:00 EDT, not 14:00 UTC
        assert {d.due_at for d in await deliveries_of(slot_env.sessionmaker, ny)} == {edt_slot}
        await assert_one_mail_at_the_slot(
            slot_env,
            email="ny@example.com",
            campaigns=campaigns,
            before=edt_slot - timedelta(minutes=1),
            slot=edt_slot,
        )


class TestWeeklyDigest:
    async def test_weekly_goes_out_on_monday(self, org_a: OrgClients, slot_env: Slot) -> None:
        settings = await org_a.admin.put(
            "/api/v1/settings/sending", json={"daily_at": "08:30", "weekly_on": "monday"}
        )
        assert settings.status_code == 200, settings.text
        weekly = await add(org_a, "wes@example.com", frequency="weekly")
        slot_env.wall.now = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)  # a Wednesday
        campaigns = await three_campaigns(org_a)
        monday = datetime(2026, 11, 30, 8, 30, tzinfo=UTC)
        assert {d.due_at for d in await deliveries_of(slot_env.sessionmaker, weekly)} == {monday}
        await assert_one_mail_at_the_slot(
            slot_env,
            email="wes@example.com",
            campaigns=campaigns,
            before=monday - timedelta(days=1),  # Sunday
            slot=monday,
        )


class TestPause:
    async def test_a_paused_amplifier_gets_one_mail_after_the_pause(
        self, org_a: OrgClients, slot_env: Slot
    ) -> None:
        paused = await add(org_a, "pat@example.com", paused_until="2026-12-05T12:00:00Z")
        slot_env.wall.now = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
        campaigns = await three_campaigns(org_a)
        after_pause = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)  # the day after, at the slot
        held = await deliveries_of(slot_env.sessionmaker, paused)
        assert {d.due_at for d in held} == {after_pause}
        await assert_one_mail_at_the_slot(
            slot_env,
            email="pat@example.com",
            campaigns=campaigns,
            before=datetime(2026, 12, 5, 23, 0, tzinfo=UTC),
            slot=after_pause,
        )

    async def test_ending_the_pause_releases_held_mail_at_once(
        self,
        org_a: OrgClients,
        sessionmaker: async_sessionmaker[AsyncSession],
        smtp_server: SmtpServer,
        wall: Clock,
        worker_on_wall: Callable[..., Any],
    ) -> None:
        paused = await add(org_a, "pat@example.com", paused_until="2026-12-20T00:00:00Z")
        wall.now = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
        campaigns = await three_campaigns(org_a)
        async with worker_on_wall():
            await quiet_period()
            assert mails_to(smtp_server, "pat@example.com") == []
            wall.advance(minutes=5)
            ended = await org_a.editor.patch(
                f"/api/v1/amplifiers/{paused}", json={"paused_until": None}
            )
            assert ended.status_code == 200 and ended.json()["paused_until"] is None
            for campaign_id in campaigns:
                await wait_for_status(sessionmaker, campaign_id)
        assert len(mails_to(smtp_server, "pat@example.com")) == 1
        assert {d.due_at for d in await deliveries_of(sessionmaker, paused)} == {wall.now}


class TestWeeklyCap:
    async def test_the_fourth_mail_of_a_week_is_held(
        self,
        org_a: OrgClients,
        sessionmaker: async_sessionmaker[AsyncSession],
        smtp_server: SmtpServer,
        wall: Clock,
        worker_on_wall: Callable[..., Any],
    ) -> None:
        capped = await org_a.admin.put("/api/v1/settings/sending", json={"max_digests_per_week": 3})
        assert capped.json()["max_digests_per_week"] == 3
        amplifier = await add(org_a, "cap@example.com")
        wall.now = datetime.now(UTC)
        async with worker_on_wall():
            for n in range(1, 5):
                campaign = await make_campaign(org_a, name=f"Campaign {n}")
                await send_campaign(org_a, campaign["id"])
                if n < 4:
                    await wait_for_status(sessionmaker, campaign["id"])
            await quiet_period()
        assert len(mails_to(smtp_server, "cap@example.com")) == 3
        fourth = (await deliveries_of(sessionmaker, amplifier))[-1]
        assert fourth.status == "held"
        first_sent = (await deliveries_of(sessionmaker, amplifier))[0].sent_at
        assert first_sent is not None and fourth.due_at is not None
        # The first slot after the oldest of the three leaves the 7-day window.
        assert first_sent + timedelta(days=7) <= fourth.due_at
        assert fourth.due_at - (first_sent + timedelta(days=7)) <= timedelta(days=1)
        stats = await org_a.viewer.get(f"/api/v1/campaigns/{fourth.campaign_id}/stats")
        assert stats.json()["held"] == 1


class TestExpiry:
    async def test_held_deliveries_of_an_expired_campaign_are_cancelled(
        self,
        org_a: OrgClients,
        sessionmaker: async_sessionmaker[AsyncSession],
        smtp_server: SmtpServer,
        wall: Clock,
        worker_on_wall: Callable[..., Any],
    ) -> None:
        daily = await add(org_a, "dan@example.com", frequency="daily")
        wall.now = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
        campaign = await make_campaign(org_a, expires_at="2026-11-30T18:00:00Z")
        assert datetime.fromisoformat(campaign["expires_at"]) == datetime(
            2026, 11, 30, 18, 0, tzinfo=UTC
        )
        await send_campaign(org_a, campaign["id"])
        wall.now = datetime(2026, 11, 30, 18, 0, tzinfo=UTC)
        async with worker_on_wall():
            await wait_for_status(sessionmaker, campaign["id"])
        [delivery] = await deliveries_of(sessionmaker, daily)
        assert (delivery.status, delivery.last_error) == ("cancelled", "expired")
        assert mails_to(smtp_server, "dan@example.com") == []


class TestImportedPreferences:
    async def test_an_import_releases_held_mail_only_when_nothing_holds_it_any_more(
        self, org_a: OrgClients, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        """Like a PATCH: a pause ended releases a plain amplifier's held mail at once, but not
        a daily amplifier's (still held for its slot), and `each` while paused releases
        nothing."""
        until = (datetime.now(UTC) + timedelta(days=20)).isoformat()
        plain = await add(org_a, "plain@example.com", paused_until=until)
        daily = await add(org_a, "daily@example.com", frequency="daily", paused_until=until)
        paused = await add(org_a, "paused@example.com", frequency="weekly", paused_until=until)
        await three_campaigns(org_a)
        before = {a: await deliveries_of(sessionmaker, a) for a in (plain, daily, paused)}
        assert all(d.status == "held" for ds in before.values() for d in ds)

        rows = [
            {"email": "plain@example.com", "paused_until": None},
            {"email": "daily@example.com", "paused_until": None},
            {"email": "paused@example.com", "frequency": "each"},
        ]
        imported = await org_a.editor.post(
            "/api/v1/amplifiers/import",
            content=json.dumps(rows).encode(),
            headers={"content-type": "application/json"},
        )
        assert imported.status_code == 200 and imported.json()["updated"] == 3, imported.text

        released = {d.due_at for d in await deliveries_of(sessionmaker, plain)}
        assert len(released) == 1 and released.pop() <= datetime.now(UTC)
        for still_held in (daily, paused):
            after = await deliveries_of(sessionmaker, still_held)
            assert [d.due_at for d in after] == [d.due_at for d in before[still_held]]
            assert all(d.due_at is not None and d.due_at > datetime.now(UTC) for d in after)
