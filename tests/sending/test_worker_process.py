import asyncio
import os
import signal
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from app.core.config import Settings
from app.models import Delivery
from tests.conftest import TEST_SECRET
from tests.factories import OrgClients
from tests.sending.conftest import (
    make_campaign,
    make_roster,
    send_campaign,
    wait_for_status,
    wait_until,
)
from tests.sending.smtp import SmtpServer


async def _start_worker(
    settings: Settings, smtp_port: int, tmp_root: Path, **extra_env: str
) -> asyncio.subprocess.Process:
    env = {
        **os.environ,
        "AMPLIFY_DATABASE_URL": settings.database_url,
        "AMPLIFY_SECRET_KEY": TEST_SECRET,
        "AMPLIFY_PUBLIC_URL": settings.public_url,
        "AMPLIFY_SMTP_PORT": str(smtp_port),
        "AMPLIFY_MAIL_FROM": "Acme <advocacy@acme.test>",
        "AMPLIFY_SEND_RATE": "40",
        "AMPLIFY_LEASE_SECONDS": "1",
        "AMPLIFY_WORKER_POLL_SECONDS": "0.05",
        "AMPLIFY_VAR_DIR": str(tmp_root / "var"),
        **extra_env,
    }
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app",
        "worker",
        env=env,
        cwd=tmp_root,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )


async def _two_workers_until_sent(
    settings: Settings,
    smtp_server: SmtpServer,
    tmp_root: Path,
    sessionmaker: Any,
    campaign_ids: list[int],
    *,
    batch: int,
) -> list[int]:
    """Two healthy workers, a two-second lease, no rate cap, until the campaigns are sent;
    their exit codes."""
    env = {
        "AMPLIFY_SEND_RATE": "0",
        "AMPLIFY_LEASE_SECONDS": "2",
        "AMPLIFY_SMTP_CONNECTIONS": "2",
        "AMPLIFY_WORKER_BATCH": str(batch),
    }
    workers = [await _start_worker(settings, smtp_server.port, tmp_root, **env) for _ in "ab"]
    try:
        for campaign_id in campaign_ids:
            await wait_for_status(sessionmaker, campaign_id, timeout=90)
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        codes = [await asyncio.wait_for(w.wait(), timeout=20) for w in workers]
    return codes


class TestWorkerProcess:
    async def test_sigkill_mid_campaign_then_restart_misses_nobody(
        self,
        org_a: OrgClients,
        smtp_server: SmtpServer,
        settings: Settings,
        tmp_root: Path,
        sessionmaker,
    ) -> None:
        roster = await make_roster(org_a, 80)
        campaign = await make_campaign(org_a)
        await send_campaign(org_a, campaign["id"])
        first = await _start_worker(settings, smtp_server.port, tmp_root)
        try:
            await wait_until(lambda: len(smtp_server.handler.received) >= 20, timeout=30)
        finally:
            first.send_signal(signal.SIGKILL)
            await first.wait()
        killed_at = len(smtp_server.handler.received)
        assert killed_at < len(roster), "the worker finished before it could be killed"
        second = await _start_worker(settings, smtp_server.port, tmp_root)
        try:
            await wait_for_status(sessionmaker, campaign["id"], timeout=60)
        finally:
            second.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(second.wait(), timeout=20) == 0
        counts = Counter(smtp_server.handler.recipients())
        assert set(counts) == {a["email"] for a in roster}
        duplicates = sum(counts.values()) - len(counts)
        # At most the mails accepted but not yet marked when the worker died.
        assert duplicates <= 8, counts.most_common(10)

    async def test_two_healthy_workers_with_a_short_lease_send_each_digest_once(
        self,
        org_a: OrgClients,
        smtp_server: SmtpServer,
        settings: Settings,
        tmp_root: Path,
        sessionmaker,
    ) -> None:
        # 600 digests through a relay that answers in 10 ms, each worker keeping up to 200 in
        # hand while the lease is two seconds: a worker that renewed only when a claim came
        # back empty would see the other claim and send its queued mails again.
        smtp_server.handler.data_delay = 0.01
        await make_roster(org_a, 600)
        emails = {f"amp{i}@example.com" for i in range(600)}
        campaign = await make_campaign(org_a)
        await send_campaign(org_a, campaign["id"])
        codes = await _two_workers_until_sent(
            settings, smtp_server, tmp_root, sessionmaker, [campaign["id"]], batch=100
        )
        assert codes == [0, 0]
        counts = Counter(smtp_server.handler.recipients())
        assert set(counts) == emails
        assert set(counts.values()) == {1}, counts.most_common(5)
        assert len(set(smtp_server.handler.message_ids())) == len(emails)
        async with sessionmaker() as session:
            marked = (await session.execute(select(Delivery.status, Delivery.message_id))).all()
        assert {status for status, _ in marked} == {"sent"}
        assert {mid for _, mid in marked} == set(smtp_server.handler.message_ids())

    async def test_two_workers_never_send_one_amplifier_two_combined_mails_for_a_slot(
        self,
        org_a: OrgClients,
        smtp_server: SmtpServer,
        settings: Settings,
        tmp_root: Path,
        sessionmaker,
        app,
    ) -> None:
        # 200 daily amplifiers, three campaigns each, held for a slot that has passed: two
        # workers start together and race for the same amplifiers' due deliveries.
        smtp_server.handler.data_delay = 0.005
        roster = await make_roster(org_a, 200, frequency="daily")
        original = app.state.clock
        app.state.clock = lambda: datetime.now(UTC) - timedelta(days=2)
        try:
            campaigns = []
            for n in range(3):
                campaign = await make_campaign(org_a, name=f"Campaign {n}")
                await send_campaign(org_a, campaign["id"])
                campaigns.append(campaign["id"])
        finally:
            app.state.clock = original
        codes = await _two_workers_until_sent(
            settings, smtp_server, tmp_root, sessionmaker, campaigns, batch=30
        )
        assert codes == [0, 0]
        counts = Counter(smtp_server.handler.recipients())
        assert set(counts) == {a["email"] for a in roster}
        assert set(counts.values()) == {1}, counts.most_common(5)
        async with sessionmaker() as session:
            marked = (
                await session.execute(
                    select(Delivery.amplifier_id, Delivery.status, Delivery.message_id)
                )
            ).all()
        assert {status for _, status, _ in marked} == {"sent"}
        by_amplifier: dict[int | None, set[str | None]] = {}
        for amplifier_id, _, message_id in marked:
            by_amplifier.setdefault(amplifier_id, set()).add(message_id)
        # One Message-ID on all three of an amplifier's deliveries: the one mail it got.
        assert all(len(ids) == 1 for ids in by_amplifier.values())
        assert set().union(*by_amplifier.values()) == set(smtp_server.handler.message_ids())
