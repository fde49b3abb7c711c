"""Dashboard fixtures: the router on the suite's app, a seeded campaign whose numbers are worked
out below, a real HTTP server for the browser, and headless Chromium (Debian's, never a
downloaded one).

Seeded campaign (SEED): three amplifiers, two messages, networks linkedin and x, every digest
sent two hours ago (so no click falls in the scanner window). Every click comes from its own
User-Agent (its own visitor, so no burst):
  ada  share  M1 linkedin          → share click 1
  bob  share  M1 x                 → share click 2
  ada  visit  M1 linkedin  ×2      → visits 1, 2 (two visitors)
  bob  visit  M1 x                 → visit 3
sent 3, sharers 2 (ada, bob), share clicks 2, visits 3, unique visitors 3,
potential reach ada linkedin 500 + bob x (no audience) 0 = 500,
EMV linkedin 2 × 5.58 + x 1 × 0.38 = 11.54 USD.
M1's copy variants, dealt in roster order: ada and cy the base text, bob variant 1. Base text:
2 recipients, 1 sharer (50%), 1 share click, 2 visits (2 per share); variant 1: 1 recipient,
1 sharer (100%), 1 share click, 1 visit.
"""

import asyncio
import contextlib
import os
import shutil
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.models import Delivery, Link
from tests.factories import OrgClients

CHROMIUM = "/usr/bin/chromium"
CAMPAIGN_NAME = 'Launch <script>window.__pwned = 1</script> & "friends"'
ROSTER: list[dict[str, Any]] = [
    {
        "email": "ada@example.com",
        "name": "Ada <b>Lovelace</b> & Co",
        "networks": ["linkedin", "x"],
        "audience": {"linkedin": 500, "x": 100},
    },
    {
        "email": "bob@example.com",
        "name": '<img src=x onerror="window.__pwned = 2">',
        "networks": ["linkedin", "x"],
        "audience": {"linkedin": 200},
    },
    {"email": "cy@example.com", "name": "Cy", "networks": ["linkedin"]},
]
MESSAGES = [
    {
        "text": "We <b>launched</b> & it's live",
        "url": "https://example.com/launch",
        "variants": [{"text": "Another <i>wording</i>"}],
    },
    {"text": "Read the story", "url": "https://example.com/story"},
]


def human(n: int) -> str:
    """A desktop browser's User-Agent, a different one (a different visitor) for every n."""
    return (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        f"Chrome/131.0.{6000 + n}.0 Safari/537.36"
    )


@dataclass
class Seed:
    org: OrgClients
    campaign_id: int
    message_ids: list[int]
    amplifier: dict[str, int]  # "ada" → id
    delivery: dict[str, int]  # "ada" → delivery id
    codes: dict[tuple[str, int, str, str], str]  # (who, position, network, kind) → code
    agents: list[int] = field(default_factory=lambda: [100])

    def next_agent(self) -> str:
        self.agents[0] += 1
        return human(self.agents[0])


@pytest.fixture(scope="session")
def dashboard_app(app: FastAPI) -> FastAPI:
    """The suite's app, which serves the dashboard (app/main.py includes its router)."""
    assert "/dashboard" in app.openapi()["paths"]
    return app


async def click(http: httpx.AsyncClient, code: str, agent: str) -> None:
    response = await http.get(f"/r/{code}", headers={"user-agent": agent})
    assert response.status_code == 302, response.text


async def seed_campaign(
    org: OrgClients,
    sessionmaker: async_sessionmaker[AsyncSession],
    http: httpx.AsyncClient,
    app: FastAPI,
    *,
    name: str = CAMPAIGN_NAME,
) -> Seed:
    amplifier: dict[str, int] = {}
    for row in ROSTER:
        response = await org.editor.post("/api/v1/amplifiers", json=row)
        assert response.status_code == 201, response.text
        amplifier[row["email"].split("@")[0]] = response.json()["id"]
    created = await org.editor.post(
        "/api/v1/campaigns",
        json={
            "name": name,
            "subject": "Share our launch",
            "networks": ["linkedin", "x"],
            "messages": MESSAGES,
        },
    )
    assert created.status_code == 201, created.text
    campaign = created.json()
    sent = await org.editor.post(f"/api/v1/campaigns/{campaign['id']}/send")
    assert sent.status_code == 202, sent.text
    who_of = {ident: who for who, ident in amplifier.items()}
    positions = {m["id"]: m["position"] for m in campaign["messages"]}
    async with sessionmaker.begin() as session:
        await session.execute(
            update(Delivery)
            .where(Delivery.campaign_id == campaign["id"])
            .values(status="sent", sent_at=datetime.now(UTC) - timedelta(hours=2))
        )
    async with sessionmaker() as session:
        links = (
            await session.scalars(select(Link).where(Link.campaign_id == campaign["id"]))
        ).all()
        deliveries = (
            await session.scalars(select(Delivery).where(Delivery.campaign_id == campaign["id"]))
        ).all()
    seed = Seed(
        org=org,
        campaign_id=campaign["id"],
        message_ids=[m["id"] for m in campaign["messages"]],
        amplifier=amplifier,
        delivery={who_of[d.amplifier_id or 0]: d.id for d in deliveries},
        codes={
            (who_of[link.amplifier_id or 0], positions[link.message_id], link.network, link.kind): (
                link.code
            )
            for link in links
        },
    )
    for who, network, kind in [
        ("ada", "linkedin", "share"),
        ("bob", "x", "share"),
        ("ada", "linkedin", "visit"),
        ("ada", "linkedin", "visit"),
        ("bob", "x", "visit"),
    ]:
        await click(http, seed.codes[(who, 0, network, kind)], seed.next_agent())
    await app.state.tracking.recorder.flush()
    return seed


@pytest.fixture
async def seed(
    dashboard_app: FastAPI,
    client: httpx.AsyncClient,
    org_a: OrgClients,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> Seed:
    return await seed_campaign(org_a, sessionmaker, client, dashboard_app)


# --- a real HTTP server and a real browser -------------------------------------------------------


class _Server(uvicorn.Server):
    """uvicorn inside the test run: the signals stay pytest's."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@pytest.fixture(scope="session")
async def live_server(dashboard_app: FastAPI) -> AsyncIterator[str]:
    """The suite's app (its lifespan already running) on a free 127.0.0.1 port, served by
    uvicorn on the test event loop: the browser talks real HTTP while the tests keep the app's
    recorder, database and tables-cleaning fixture."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        dashboard_app, lifespan="off", log_level="warning", access_log=False, proxy_headers=False
    )
    server = _Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    for _ in range(500):
        if server.started or task.done():
            break
        await asyncio.sleep(0.01)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=10)
        sock.close()


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}. CI must run the browser tests.", pytrace=False)
    pytest.skip(reason)


def _chromium() -> str | None:
    return CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Any]:
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        _unavailable("Playwright is not installed: pip install -e '.[dev]'")
    executable = _chromium()
    if executable is None:
        _unavailable("Chromium not installed: apt-get install chromium (CI installs it)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=executable, args=["--no-sandbox"]
        )
        try:
            yield launched
        finally:
            await launched.close()


_ARTIFACT_DIRS: list[Path] = []


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots go: $AMPLIFY_TEST_ARTIFACTS, else a temporary directory (printed at the
    end of the run)."""
    configured = os.environ.get("AMPLIFY_TEST_ARTIFACTS")
    path = Path(configured) if configured else tmp_path_factory.mktemp("dashboard-screenshots")
    path.mkdir(parents=True, exist_ok=True)
    _ARTIFACT_DIRS.append(path.resolve())
    print(f"\nDashboard screenshots: {path.resolve()}")
    return path


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for path in _ARTIFACT_DIRS:
        terminalreporter.write_line(f"Dashboard screenshots: {path}")


@dataclass
class Tab:
    """A browser page on the live server, with what went wrong in its console."""

    page: Any
    base_url: str
    problems: list[str]
    responses: list[Any]


@pytest.fixture
async def tab(browser: Any, live_server: str) -> AsyncIterator[Tab]:
    context = await browser.new_context(
        base_url=live_server,
        timezone_id="Europe/Berlin",
        locale="en-US",
        viewport={"width": 1280, "height": 900},
    )
    context.set_default_timeout(10_000)
    page = await context.new_page()
    opened = Tab(page=page, base_url=live_server, problems=[], responses=[])

    def console(message: Any) -> None:
        # 4xx answers the page expects (a wrong key) are logged by Chromium as failed loads.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            opened.problems.append(message.text)

    page.on("console", console)
    page.on("pageerror", lambda error: opened.problems.append(f"page error: {error}"))
    page.on("response", lambda response: opened.responses.append(response))
    try:
        yield opened
    finally:
        await context.close()
