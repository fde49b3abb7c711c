"""Fixtures: a migrated database (SQLite file or the PostgreSQL in AMPLIFY_DATABASE_URL),
the app over httpx, and two organizations with a key of every role."""

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.config import Settings
from app.core.db import Base
from app.core.migrate import upgrade
from app.core.scratch_databases import create_scratch_database, drop_scratch_database
from app.main import create_app
from app.tracking.salts import VisitorSalts
from tests.factories import OrgClients, make_org_clients
from tests.sending.smtp import SmtpServer

TEST_SECRET = "test-secret-key-that-is-long-enough-to-sign-things"
HOOK_SECRET = "bounce-hook-secret-for-tests"


def _database_url(tmp_dir: Path) -> str:
    url = os.environ.get("AMPLIFY_DATABASE_URL", "")
    if not url.startswith("postgresql"):
        return f"sqlite+aiosqlite:///{tmp_dir / 'amplify-test.db'}"
    database = make_url(url).database or ""
    if "test" not in database:
        raise pytest.UsageError(
            f"Refusing to run the tests against database {database!r}: the suite wipes it. "
            "Point AMPLIFY_DATABASE_URL at a database whose name contains 'test'."
        )
    return url


@pytest.fixture(scope="session")
def tmp_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("amplify")


@pytest.fixture(scope="session")
async def database_url(tmp_root: Path) -> AsyncIterator[str]:
    url = _database_url(tmp_root)
    if not url.startswith("postgresql"):
        await asyncio.to_thread(upgrade, url)
        yield url
        return
    run_url = await create_scratch_database(url, "run")
    try:
        await asyncio.to_thread(upgrade, run_url)
        yield run_url
    finally:
        await drop_scratch_database(url, run_url)


def make_settings(database_url: str, tmp_root: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": database_url,
        "secret_key": TEST_SECRET,
        "public_url": "https://amplify.test",
        "var_dir": tmp_root / "var",
        "worker": "off",
        "bounce_webhook_secret": HOOK_SECRET,
        **overrides,
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg, arg-type]


@pytest.fixture(scope="session")
def settings(database_url: str, tmp_root: Path) -> Settings:
    return make_settings(database_url, tmp_root)


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture(scope="session")
def sessionmaker(app: FastAPI) -> async_sessionmaker[AsyncSession]:
    maker: async_sessionmaker[AsyncSession] = app.state.sessionmaker
    return maker


@pytest.fixture(autouse=True)
async def _clean_tables(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    """Every test starts from empty tables (real commits happen, so no rollback trick)."""
    yield
    if "app" not in request.fixturenames:
        return
    application: FastAPI = request.getfixturevalue("app")
    await application.state.tracking.recorder.flush()  # no click of this test leaks into the next
    # The day's visitor salt is cached; the table is about to be emptied.
    application.state.tracking.salts = VisitorSalts(application.state.engine)
    application.state.answers.clear()  # ids restart with the emptied tables
    application.state.api_keys.forget_all()  # the keys are about to be deleted
    engine = application.state.engine
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    async with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            await connection.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                await connection.execute(text(f"DELETE FROM {table}"))


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@pytest.fixture
async def org_a(
    client: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
) -> OrgClients:
    return await make_org_clients(sessionmaker, client, "Org A")


@pytest.fixture
async def org_b(
    client: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
) -> OrgClients:
    return await make_org_clients(sessionmaker, client, "Org B")


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 that records or refuses mail."""
    server = SmtpServer()
    server.start()
    yield server
    server.stop()
