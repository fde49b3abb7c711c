"""Events land in the outbox with the change they report, and only then."""

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import FastAPI
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook

from app.amplifiers import service as amplifiers
from app.core.db import session_scope
from app.models import AmplifierStatus, WebhookEvent
from tests.factories import OrgClients
from tests.sending.conftest import (
    make_campaign,
    make_roster,
    send_campaign,
    wait_for_status,
    wait_until,
)
from tests.sending.smtp import SmtpServer
from tests.tracking.conftest import CHROME
from tests.webhooks.conftest import create_endpoint
from tests.webhooks.receiver import Receiver


async def _outbox(app: FastAPI) -> list[WebhookEvent]:
    async with app.state.sessionmaker() as session:
        rows = await session.scalars(select(WebhookEvent).order_by(WebhookEvent.id))
        return list(rows.all())


async def _listen(org: OrgClients, events: list[str]) -> None:
    response = await org.admin.post(
        "/api/v1/webhooks", json={"url": "https://hooks.example.com/in", "events": events}
    )
    assert response.status_code == 201


class TestCampaignEvents:
    async def test_send_reports_sending(self, app: FastAPI, sent_campaign: Any) -> None:
        campaign = await sent_campaign(sent_ago=None)
        [event] = await _outbox(app)
        assert event.type == "campaign.sending"
        assert event.data == {
            "campaign_id": campaign.campaign_id,
            "name": "Launch",
            "status": "sending",
            "recipients": 2,
        }

    async def test_refused_send_reports_nothing(self, app: FastAPI, org_a: OrgClients) -> None:
        created = await org_a.editor.post(
            "/api/v1/campaigns",
            json={
                "name": "Empty",
                "subject": "s",
                "networks": ["x"],
                "messages": [{"text": "t", "url": "https://example.com"}],
            },
        )
        response = await org_a.editor.post(f"/api/v1/campaigns/{created.json()['id']}/send")
        assert response.status_code == 422  # nobody in the audience
        assert await _outbox(app) == []


class TestUnsubscribeEvents:
    async def test_unsubscribe_reported_once(self, app: FastAPI, org_a: OrgClients) -> None:
        created = await org_a.editor.post(
            "/api/v1/amplifiers", json={"email": "ada@example.com", "name": "Ada"}
        )
        amplifier_id = created.json()["id"]
        for _ in range(2):
            async for session in session_scope(app.state.sessionmaker):
                await amplifiers.set_status(
                    session, amplifier_id=amplifier_id, status=AmplifierStatus.UNSUBSCRIBED
                )
        [event] = await _outbox(app)
        assert event.type == "amplifier.unsubscribed"
        assert event.organization_id == org_a.organization_id
        assert event.data["amplifier_id"] == amplifier_id
        assert event.data["email"] == "ada@example.com"


class TestClickEvents:
    async def test_human_clicks_of_listening_organizations(
        self, app: FastAPI, client: Any, org_a: OrgClients, sent_campaign: Any, clock: Any
    ) -> None:
        await _listen(org_a, ["clicks.recorded"])
        campaign = await sent_campaign(now=clock.now)
        share = campaign.code("ada@example.com", 0, "linkedin", "share")
        visit = campaign.code("bob@example.com", 1, "x", "visit")
        await client.get(f"/r/{share}", headers={"user-agent": CHROME})
        await client.get(f"/r/{visit}", headers={"user-agent": "LinkedInBot/1.0"})  # a bot
        await client.get(f"/r/{visit}", headers={"user-agent": CHROME})
        await app.state.tracking.recorder.flush()
        events = [e for e in await _outbox(app) if e.type == "clicks.recorded"]
        clicks = [click for event in events for click in event.data["clicks"]]
        kinds = sorted((c[0], c[4]) for c in clicks)
        assert kinds == [("share", "linkedin"), ("visit", "x")]
        assert all(c[1] == campaign.campaign_id for c in clicks)
        assert clicks[0][5] == "2026-11-20T09:00:00.000000Z"

    async def test_nothing_written_without_a_listener(
        self, app: FastAPI, client: Any, org_a: OrgClients, sent_campaign: Any, clock: Any
    ) -> None:
        await _listen(org_a, ["campaign.sent"])
        campaign = await sent_campaign(now=clock.now)
        share = campaign.code("ada@example.com", 0, "linkedin", "share")
        await client.get(f"/r/{share}", headers={"user-agent": CHROME})
        await app.state.tracking.recorder.flush()
        assert [e.type for e in await _outbox(app)] == ["campaign.sending"]


class TestSendingEvents:
    async def test_a_campaign_reported_from_send_to_sent(
        self,
        private_org: OrgClients,
        smtp_server: SmtpServer,
        receiver: Receiver,
        run_worker: Any,
        run_dispatcher: Any,
        sessionmaker: Any,
    ) -> None:
        hook = await create_endpoint(
            private_org, receiver.url, ["campaign.sending", "campaign.sent", "delivery.failed"]
        )
        roster = await make_roster(private_org, 4)
        smtp_server.handler.rcpt_replies["amp2@example.com"].append("550 5.1.1 No such user")
        campaign = await make_campaign(private_org)
        await send_campaign(private_org, campaign["id"])
        async with run_dispatcher(), run_worker():
            await wait_for_status(sessionmaker, campaign["id"])
            await wait_until(lambda: len(receiver.received) == 3)
        payloads = [Webhook(hook["secret"]).verify(r.body, r.headers) for r in receiver.received]
        by_type = {p["type"]: p["data"] for p in payloads}
        assert by_type["campaign.sending"]["recipients"] == 4
        assert by_type["campaign.sent"] == {
            "campaign_id": campaign["id"],
            "name": campaign["name"],
            "status": "sent",
        }
        failed = by_type["delivery.failed"]
        amp2 = next(a["id"] for a in roster if a["email"] == "amp2@example.com")
        assert (failed["campaign_id"], failed["amplifier_id"]) == (campaign["id"], amp2)
        assert failed["permanent_bounce"] is True and "550" in failed["error"]

    async def test_scheduled_campaign_reported_when_it_starts(
        self, app: FastAPI, org_a: OrgClients, smtp_server: SmtpServer, run_worker: Any
    ) -> None:
        await make_roster(org_a, 2)
        campaign = await make_campaign(org_a)
        soon = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
        await send_campaign(org_a, campaign["id"], scheduled_at=soon)
        assert await _outbox(app) == []  # scheduled is not sending yet
        async with run_worker():
            await wait_for_status(app.state.sessionmaker, campaign["id"])
        types = [e.type for e in await _outbox(app)]
        assert types == ["campaign.sending", "campaign.sent"]

    async def test_paused_campaign_reported(
        self,
        app: FastAPI,
        org_a: OrgClients,
        smtp_server: SmtpServer,
        run_worker: Any,
        sessionmaker: Any,
    ) -> None:
        await make_roster(org_a, 3)
        for i in range(3):
            smtp_server.handler.rcpt_replies[f"amp{i}@example.com"].append("550 5.1.1 Gone")
        campaign = await make_campaign(org_a)
        await send_campaign(org_a, campaign["id"])
        async with run_worker(pause_min_errors=2, pause_error_rate=0.5):
            await wait_for_status(sessionmaker, campaign["id"], ("paused",))
        types = [e.type for e in await _outbox(app)]
        assert types.count("campaign.paused") == 1
        assert "campaign.sent" not in types
        assert types.count("delivery.failed") >= 2
