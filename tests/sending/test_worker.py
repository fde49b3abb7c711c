import asyncio
import time
from collections import Counter

from sqlalchemy import select

from app.models import Amplifier, Delivery
from tests.factories import OrgClients
from tests.sending.conftest import (
    make_campaign,
    make_roster,
    send_campaign,
    wait_for_status,
    wait_until,
)
from tests.sending.smtp import SmtpServer


async def _deliveries(sessionmaker, campaign_id: int) -> list[Delivery]:
    async with sessionmaker() as session:
        return list(
            (
                await session.scalars(
                    select(Delivery)
                    .where(Delivery.campaign_id == campaign_id)
                    .order_by(Delivery.id)
                )
            ).all()
        )


class TestWorkerDelivers:
    async def test_every_amplifier_gets_exactly_one_digest(
        self, org_a: OrgClients, smtp_server: SmtpServer, run_worker, sessionmaker
    ) -> None:
        roster = await make_roster(org_a, 12)
        campaign = await make_campaign(org_a)
        await send_campaign(org_a, campaign["id"])
        async with run_worker():
            await wait_for_status(sessionmaker, campaign["id"])
        recipients = smtp_server.handler.recipients()
        assert sorted(recipients) == sorted(a["email"] for a in roster)
        deliveries = await _deliveries(sessionmaker, campaign["id"])
        assert {d.status for d in deliveries} == {"sent"}
        stored_ids = {d.message_id for d in deliveries}
        header_ids = {r.parsed()["Message-ID"] for r in smtp_server.handler.received}
        assert stored_ids == header_ids and len(header_ids) == 12
        body = (await org_a.viewer.get(f"/api/v1/campaigns/{campaign['id']}")).json()
        assert body["status"] == "sent" and body["sent_at"].endswith("Z")

    async def test_two_workers_send_each_digest_once(
        self, org_a: OrgClients, smtp_server: SmtpServer, run_worker, sessionmaker
    ) -> None:
        roster = await make_roster(org_a, 60)
        campaign = await make_campaign(org_a)
        await send_campaign(org_a, campaign["id"])
        async with run_worker(worker_batch=5), run_worker(worker_batch=5):
            await wait_for_status(sessionmaker, campaign["id"])
        counts = Counter(smtp_server.handler.recipients())
        assert set(counts) == {a["email"] for a in roster}
        assert max(counts.values()) == 1

    async def test_rate_cap_is_respected(
        self, org_a: OrgClients, smtp_server: SmtpServer, run_worker, sessionmaker
    ) -> None:
        await make_roster(org_a, 30)
        campaign = await make_campaign(org_a)
        await send_campaign(org_a, campaign["id"])
        started = time.monotonic()
        async with run_worker(send_rate=20):
            await wait_for_status(sessionmaker, campaign["id"])
        elapsed = time.monotonic() - started
        # 30 mails at 20/s with a burst of 2: at least ~1.4 s.
        assert elapsed >= 1.3
        assert len(smtp_server.handler.received) == 30

    async def test_leases_are_renewed_while_work_waits_behind_the_rate_cap(
        self, org_a: OrgClients, smtp_server: SmtpServer, run_worker, sessionmaker
    ) -> None:
        await make_roster(org_a, 15)
        campaign = await make_campaign(org_a)
        await send_campaign(org_a, campaign["id"])
        # 15 mails at 10/s take 1.5 s, three times the lease: without renewal the worker
        # would re-claim its own queued deliveries and send them twice.
        async with run_worker(send_rate=10, lease_seconds=0.5, worker_poll_seconds=0.05):
            await wait_for_status(sessionmaker, campaign["id"])
        counts = Counter(smtp_server.handler.recipients())
        assert len(counts) == 15 and max(counts.values()) == 1


class TestSmtpReplies:
    async def test_451_then_250_is_retried(
        self, org_a: OrgClients, smtp_server: SmtpServer, run_worker, sessionmaker
    ) -> None:
        await make_roster(org_a, 3)
        smtp_server.handler.rcpt_replies["amp1@example.com"].extend(
            ["451 4.7.1 Try again later", "451 4.7.1 Try again later"]
        )
        campaign = await make_campaign(org_a)
        await send_campaign(org_a, campaign["id"])
        async with run_worker():
            await wait_for_status(sessionmaker, campaign["id"])
        assert Counter(smtp_server.handler.recipients()) == Counter(
            {"amp0@example.com": 1, "amp1@example.com": 1, "amp2@example.com": 1}
        )
        retried = next(d for d in await _deliveries(sessionmaker, campaign["id"]) if d.attempts > 1)
        assert retried.attempts == 3 and retried.status == "sent"

    async def test_550_fails_delivery_and_bounces_only_that_amplifier(
        self, org_a: OrgClients, smtp_server: SmtpServer, run_worker, sessionmaker
    ) -> None:
        roster = await make_roster(org_a, 4)
        smtp_server.handler.rcpt_replies["amp2@example.com"].append("550 5.1.1 No such user")
        campaign = await make_campaign(org_a)
        await send_campaign(org_a, campaign["id"])
        async with run_worker():
            await wait_for_status(sessionmaker, campaign["id"])
        assert sorted(smtp_server.handler.recipients()) == sorted(
            a["email"] for a in roster if a["email"] != "amp2@example.com"
        )
        assert smtp_server.handler.attempts["amp2@example.com"] == 1
        failed = (
            await org_a.viewer.get(
                f"/api/v1/campaigns/{campaign['id']}/deliveries", params={"status": "failed"}
            )
        ).json()["items"]
        assert [d["email"] for d in failed] == ["amp2@example.com"]
        assert "550" in failed[0]["last_error"]
        statuses = {
            a["email"]: (a["status"], a["status_reason"])
            for a in (await org_a.viewer.get("/api/v1/amplifiers")).json()["items"]
        }
        assert statuses["amp2@example.com"] == ("bounced", "hard_bounce")
        assert {s for e, s in statuses.items() if e != "amp2@example.com"} == {("active", None)}

    async def test_421_and_data_4xx_back_off_and_succeed(
        self, org_a: OrgClients, smtp_server: SmtpServer, run_worker, sessionmaker
    ) -> None:
        await make_roster(org_a, 3)
        smtp_server.handler.data_replies["amp0@example.com"].append(
            "421 4.3.2 Service shutting down"
        )
        smtp_server.handler.data_replies["amp1@example.com"].append("454 4.7.0 Temporary failure")
        campaign = await make_campaign(org_a)
        await send_campaign(org_a, campaign["id"])
        async with run_worker():
            await wait_for_status(sessionmaker, campaign["id"])
        assert Counter(smtp_server.handler.recipients()) == Counter(
            {"amp0@example.com": 1, "amp1@example.com": 1, "amp2@example.com": 1}
        )

    async def test_transient_errors_give_up_after_max_attempts(
        self, org_a: OrgClients, smtp_server: SmtpServer, run_worker, sessionmaker
    ) -> None:
        await make_roster(org_a, 2)
        smtp_server.handler.rcpt_replies["amp0@example.com"].extend(["451 busy"] * 10)
        campaign = await make_campaign(org_a)
        await send_campaign(org_a, campaign["id"])
        async with run_worker(max_attempts=3):
            await wait_for_status(sessionmaker, campaign["id"])
        deliveries = {d.amplifier_id: d for d in await _deliveries(sessionmaker, campaign["id"])}
        failed = [d for d in deliveries.values() if d.status == "failed"]
        assert len(failed) == 1 and failed[0].attempts == 3
        assert "gave up after 3 attempts" in (failed[0].last_error or "")
        assert smtp_server.handler.attempts["amp0@example.com"] == 3
        async with sessionmaker() as session:
            status = await session.scalar(
                select(Amplifier.status).where(Amplifier.id == failed[0].amplifier_id)
            )
        assert status == "active"

    async def test_error_threshold_pauses_then_resume_finishes(
        self, org_a: OrgClients, smtp_server: SmtpServer, run_worker, sessionmaker
    ) -> None:
        await make_roster(org_a, 10)
        for i in range(10):
            smtp_server.handler.rcpt_replies[f"amp{i}@example.com"].append("554 5.7.1 Rejected")
        campaign = await make_campaign(org_a)
        await send_campaign(org_a, campaign["id"])
        # A send rate cap keeps the pause (applied with each outcome batch) ahead of the sending.
        async with run_worker(
            pause_min_errors=3, pause_error_rate=0.5, worker_batch=1, send_rate=20
        ):
            await wait_for_status(sessionmaker, campaign["id"], ("paused",))
            deliveries = await _deliveries(sessionmaker, campaign["id"])
            assert any(d.status == "pending" for d in deliveries)
            for i in range(10):
                smtp_server.handler.rcpt_replies[f"amp{i}@example.com"].clear()
            response = await org_a.editor.post(f"/api/v1/campaigns/{campaign['id']}/resume")
            assert response.status_code == 200 and response.json()["status"] == "sending"
            await wait_for_status(sessionmaker, campaign["id"])
        deliveries = await _deliveries(sessionmaker, campaign["id"])
        assert {d.status for d in deliveries} == {"sent", "failed"}
        assert len(smtp_server.handler.received) == sum(d.status == "sent" for d in deliveries)


class TestFaults:
    async def test_smtp_server_down_mid_campaign(
        self, org_a: OrgClients, smtp_server: SmtpServer, run_worker, sessionmaker
    ) -> None:
        roster = await make_roster(org_a, 40)
        campaign = await make_campaign(org_a)
        await send_campaign(org_a, campaign["id"])
        first = smtp_server.handler
        async with run_worker(worker_batch=5, send_rate=100, max_attempts=50):
            await wait_until(lambda: len(first.received) >= 10)
            smtp_server.stop()
            await asyncio.sleep(0.5)
            smtp_server.start()
            await wait_for_status(sessionmaker, campaign["id"], timeout=30)
        counts = Counter(smtp_server.handler.recipients())
        assert set(counts) == {a["email"] for a in roster}
        # Only mails in flight when the server went away can arrive twice.
        assert sum(counts.values()) - len(counts) <= 5

    async def test_unsubscribed_after_snapshot_is_not_mailed(
        self, org_a: OrgClients, smtp_server: SmtpServer, run_worker, sessionmaker
    ) -> None:
        roster = await make_roster(org_a, 3)
        campaign = await make_campaign(org_a)
        await send_campaign(org_a, campaign["id"])
        await org_a.editor.patch(
            f"/api/v1/amplifiers/{roster[0]['id']}", json={"status": "unsubscribed"}
        )
        async with run_worker():
            await wait_for_status(sessionmaker, campaign["id"])
        assert roster[0]["email"] not in smtp_server.handler.recipients()
        cancelled = (
            await org_a.viewer.get(
                f"/api/v1/campaigns/{campaign['id']}/deliveries", params={"status": "cancelled"}
            )
        ).json()["items"]
        assert [d["amplifier_id"] for d in cancelled] == [roster[0]["id"]]

    async def test_scheduled_campaign_sends_once_at_its_time(
        self, org_a: OrgClients, smtp_server: SmtpServer, run_worker, sessionmaker
    ) -> None:
        from datetime import UTC, datetime, timedelta

        await make_roster(org_a, 2)
        campaign = await make_campaign(org_a)
        at = (datetime.now(UTC) + timedelta(seconds=1.5)).isoformat().replace("+00:00", "Z")
        assert (await send_campaign(org_a, campaign["id"], scheduled_at=at))[
            "status"
        ] == "scheduled"
        async with run_worker():
            await asyncio.sleep(0.5)
            assert smtp_server.handler.received == []
        async with run_worker():
            await wait_for_status(sessionmaker, campaign["id"])
        assert sorted(smtp_server.handler.recipients()) == ["amp0@example.com", "amp1@example.com"]
