from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import aiosmtplib
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.bounces.receiver import BounceHandler, start_receiver
from app.bounces.verp import ReturnPaths
from app.models import Amplifier, BounceEvent, Delivery
from tests.bounces.samples import Sent
from tests.conftest import TEST_SECRET
from tests.factories import OrgClients
from tests.sending.conftest import (
    make_campaign,
    make_roster,
    run_worker,  # noqa: F401  (fixtures shared with the sending tests)
    send_campaign,
    wait_for_status,
    worker_settings,  # noqa: F401
)
from tests.sending.smtp import SmtpServer, free_port

BOUNCE_ADDRESS = "bounces@acme.test"


@dataclass
class Receiver:
    port: int
    handler: BounceHandler

    async def deliver(self, raw: bytes, *, to: str, sender: str = "") -> aiosmtplib.SMTPResponse:
        """Over SMTP, as the reporting server would: null sender, one recipient."""
        async with aiosmtplib.SMTP(hostname="127.0.0.1", port=self.port, timeout=10) as smtp:
            await smtp.ehlo()
            await smtp.mail(sender)
            await smtp.rcpt(to)
            return await smtp.data(raw)


@pytest.fixture
async def receiver(app: FastAPI) -> AsyncIterator[Receiver]:
    handler = BounceHandler(app.state.sessionmaker, ReturnPaths(BOUNCE_ADDRESS, TEST_SECRET))
    port = free_port()
    server = await start_receiver(handler, host="127.0.0.1", port=port, max_bytes=64 * 1024)
    try:
        yield Receiver(port, handler)
    finally:
        server.close()


def header_block(raw: bytes) -> str:
    return raw.split(b"\r\n\r\n", 1)[0].decode("ascii")


@pytest.fixture
def send_digests(
    smtp_server: SmtpServer,
    run_worker: Callable[..., Any],  # noqa: F811
    sessionmaker: async_sessionmaker[AsyncSession],
) -> Callable[..., Any]:
    """Send one campaign to `count` new amplifiers with the bounce address on; what went out."""

    async def send(org: OrgClients, count: int = 1, *, roster: bool = True) -> list[Sent]:
        if roster:
            await make_roster(org, count)
        campaign = await make_campaign(org)
        await send_campaign(org, campaign["id"])
        before = len(smtp_server.handler.received)
        async with run_worker(bounce_address=BOUNCE_ADDRESS):
            await wait_for_status(sessionmaker, campaign["id"])
        return [
            Sent(
                headers=header_block(r.raw),
                message_id=str(r.parsed()["Message-ID"]),
                recipient=r.recipient,
                return_path=r.sender,
            )
            for r in smtp_server.handler.received[before:]
        ]

    return send


async def amplifier_state(
    sessionmaker: async_sessionmaker[AsyncSession], email: str
) -> tuple[str, str | None]:
    async with sessionmaker() as session:
        row = (
            await session.execute(
                select(Amplifier.status, Amplifier.status_reason).where(
                    Amplifier.email_key == email
                )
            )
        ).one()
    return row.status, row.status_reason


async def delivery_state(
    sessionmaker: async_sessionmaker[AsyncSession], message_id: str
) -> tuple[str, str | None]:
    async with sessionmaker() as session:
        row = (
            await session.execute(
                select(Delivery.status, Delivery.last_error).where(
                    Delivery.message_id == message_id
                )
            )
        ).one()
    return row.status, row.last_error


async def event_count(sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    async with sessionmaker() as session:
        return len((await session.scalars(select(BounceEvent.id))).all())
