import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.config import Settings
from app.main import create_app
from app.webhooks.dispatcher import Dispatcher
from tests.conftest import make_settings
from tests.factories import OrgClients, make_org_clients
from tests.sending.conftest import run_worker, worker_settings  # noqa: F401 (fixtures used here too)
from tests.tracking.conftest import clock, sent_campaign  # noqa: F401 (fixtures used here too)
from tests.webhooks.receiver import Receiver

FAST_RETRIES = (0.05, 0.05, 0.05)


@pytest.fixture(scope="session")
async def private_app(database_url: str, tmp_root: Path) -> AsyncIterator[FastAPI]:
    """The app with AMPLIFY_WEBHOOK_ALLOW_PRIVATE=true, so endpoints on 127.0.0.1 are allowed."""
    application = create_app(make_settings(database_url, tmp_root, webhook_allow_private=True))
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def private_org(app: FastAPI, private_app: FastAPI) -> AsyncIterator[OrgClients]:
    """Org A's keys over the private-targets app (`app` is requested so tables are emptied)."""
    transport = httpx.ASGITransport(app=private_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield await make_org_clients(app.state.sessionmaker, http, "Org A")


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    server = Receiver()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def dispatcher_settings(database_url: str, tmp_root: Path) -> Callable[..., Settings]:
    def build(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "webhook_allow_private": True,
            "webhook_retry_seconds": FAST_RETRIES,
            "webhook_poll_seconds": 0.02,
            "webhook_timeout_seconds": 2,
            **overrides,
        }
        return make_settings(database_url, tmp_root, **values)

    return build


@pytest.fixture
def run_dispatcher(
    app: FastAPI, dispatcher_settings: Callable[..., Settings]
) -> Callable[..., Any]:
    @asynccontextmanager
    async def running(**overrides: Any) -> AsyncIterator[Dispatcher]:
        sessionmaker: async_sessionmaker[AsyncSession] = app.state.sessionmaker
        dispatcher = Dispatcher(dispatcher_settings(**overrides), sessionmaker)
        task = asyncio.create_task(dispatcher.run())
        try:
            yield dispatcher
        finally:
            dispatcher.stop()
            await asyncio.wait_for(task, timeout=30)

    return running


async def create_endpoint(org: OrgClients, url: str, events: list[str]) -> dict[str, Any]:
    response = await org.admin.post("/api/v1/webhooks", json={"url": url, "events": events})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body
