import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.config import Settings
from app.core.db import utcnow
from app.models import Campaign
from app.sending.engine import build_worker
from app.sending.worker import Worker
from tests.conftest import make_settings
from tests.factories import OrgClients, campaign_payload
from tests.sending.smtp import SmtpServer


@pytest.fixture
def worker_settings(
    database_url: str, tmp_root: Path, smtp_server: SmtpServer
) -> Callable[..., Settings]:
    def build(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "smtp_port": smtp_server.port,
            "retry_base_seconds": 0.05,
            "retry_max_seconds": 0.2,
            "lease_seconds": 5,
            "worker_poll_seconds": 0.02,
            "mail_from": "Acme Advocacy <advocacy@acme.test>",
            **overrides,
        }
        return make_settings(database_url, tmp_root, **values)

    return build


@pytest.fixture
def run_worker(app: FastAPI, worker_settings: Callable[..., Settings]) -> Callable[..., Any]:
    @asynccontextmanager
    async def running(
        now: Callable[[], datetime] = utcnow, **overrides: Any
    ) -> AsyncIterator[Worker]:
        """A worker on the settings' `overrides`; `now` is its wall clock (held deliveries)."""
        worker = build_worker(
            worker_settings(**overrides), app.state.sessionmaker, app.state.signer, now=now
        )
        task = asyncio.create_task(worker.run())
        try:
            yield worker
        finally:
            worker.stop()
            await asyncio.wait_for(task, timeout=30)

    return running


async def wait_for_status(
    sessionmaker: async_sessionmaker[AsyncSession],
    campaign_id: int,
    statuses: tuple[str, ...] = ("sent",),
    timeout: float = 20,
) -> str:
    deadline = time.monotonic() + timeout
    while True:
        async with sessionmaker() as session:
            status = await session.scalar(select(Campaign.status).where(Campaign.id == campaign_id))
        if status in statuses:
            return str(status)
        if time.monotonic() > deadline:
            raise AssertionError(f"campaign {campaign_id} still {status!r} after {timeout}s")
        await asyncio.sleep(0.02)


async def wait_until(predicate: Callable[[], Awaitable[bool] | bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if isinstance(result, Awaitable):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


async def make_roster(org: OrgClients, count: int, **fields: Any) -> list[dict[str, Any]]:
    rows = [{"email": f"amp{i}@example.com", "name": f"Amp {i}", **fields} for i in range(count)]
    response = await org.editor.post("/api/v1/amplifiers/import", json=rows)
    assert response.status_code == 200, response.text
    listed = await org.editor.get("/api/v1/amplifiers", params={"limit": 500})
    return list(listed.json()["items"])


async def make_campaign(org: OrgClients, **fields: Any) -> dict[str, Any]:
    payload = campaign_payload(**fields)
    response = await org.editor.post("/api/v1/campaigns", json=payload)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def send_campaign(org: OrgClients, campaign_id: int, **body: Any) -> dict[str, Any]:
    response = await org.editor.post(f"/api/v1/campaigns/{campaign_id}/send", json=body or None)
    assert response.status_code == 202, response.text
    return dict(response.json())
