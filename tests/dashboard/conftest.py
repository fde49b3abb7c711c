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

Organization overview (OVERVIEW): six amplifiers in three teams (sales s1 s2, eng e1 e2,
marketing m1 m2), created before last month, networks linkedin and x; three campaigns of one
message sent to all six. Clicks go through the real redirect, then their hourly rollups and the
digests' send times are moved to the month they stand for (EARLIER: mid last month; RECENT:
between the start of this month and now; a month the same in UTC and in Berlin):
  Autumn launch   EARLIER  shares s1 linkedin, s2 x, e1 linkedin; visits s1 linkedin ×3,
                           e1 linkedin ×1 → share rate 3/6 = 50%, 4 visits / 3 shares = 1.3,
                           EMV 4 × 5.58 = 22.32
  Winter webinar  RECENT   share m1 linkedin; visits m1 linkedin ×2 → 1/6 = 16.7%, 2.0,
                           EMV 11.16
  Quiet note      RECENT   nothing → 0%, visits per share "—", EMV 0.00
Engagement last month: 6 amplifiers, 6 reached, 3 sharers → 50%, 4 visits;
this month: 6, 6 (both digests count once), 1 sharer → 16.7%, 2 visits.
Teams (last 90 days): sales 2 reached, 2 sharers, 100%, 2 share clicks, 3 visits, EMV 16.74;
eng 2, 1, 50%, 1, 1, 5.58; marketing 2, 1, 50%, 1, 2, 11.16.

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
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.models import Amplifier, Campaign, ClickRollup, Delivery, Link
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
    await mark_sent(sessionmaker, campaign["id"], datetime.now(UTC) - timedelta(hours=2))
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


# --- the organization overview --------------------------------------------------------------------

TEAMS = {
    "s1": "sales",
    "s2": "sales",
    "e1": "eng",
    "e2": "eng",
    "m1": "marketing",
    "m2": "marketing",
}
OVERVIEW_CAMPAIGNS: dict[str, list[tuple[str, str, str, int]]] = {  # who, network, kind, clicks
    "Autumn launch": [
        ("s1", "linkedin", "share", 1),
        ("s2", "x", "share", 1),
        ("e1", "linkedin", "share", 1),
        ("s1", "linkedin", "visit", 3),
        ("e1", "linkedin", "visit", 1),
    ],
    "Winter webinar": [("m1", "linkedin", "share", 1), ("m1", "linkedin", "visit", 2)],
    "Quiet note": [],
}


@dataclass
class Overview:
    org: OrgClients
    earlier: datetime  # mid last month (UTC)
    recent: datetime  # this month, before now (UTC)
    campaigns: dict[str, int]  # name → id


def overview_moments(now: datetime) -> tuple[datetime, datetime]:
    """Mid last month, and a moment of this month before now: the same months in UTC and in
    any zone ahead of it by a few hours (Berlin)."""
    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    recent = month_start + (now - month_start) / 2
    earlier = (month_start - timedelta(days=15)).replace(hour=10)
    return earlier, recent


async def seed_overview(
    org: OrgClients,
    sessionmaker: async_sessionmaker[AsyncSession],
    http: httpx.AsyncClient,
    app: FastAPI,
) -> Overview:
    earlier, recent = overview_moments(datetime.now(UTC))
    when = {"Autumn launch": earlier, "Winter webinar": recent, "Quiet note": recent}
    amplifier: dict[str, int] = {}
    for who, team in TEAMS.items():
        response = await org.editor.post(
            "/api/v1/amplifiers",
            json={"email": f"{who}@example.com", "networks": ["linkedin", "x"], "tags": [team]},
        )
        assert response.status_code == 201, response.text
        amplifier[who] = response.json()["id"]
    async with sessionmaker.begin() as session:
        await session.execute(
            update(Amplifier)
            .where(Amplifier.id.in_(amplifier.values()))
            .values(created_at=earlier - timedelta(days=10))
        )
    who_of = {ident: who for who, ident in amplifier.items()}
    overview = Overview(org=org, earlier=earlier, recent=recent, campaigns={})
    agent = 500
    for name, clicks in OVERVIEW_CAMPAIGNS.items():
        created = await org.editor.post(
            "/api/v1/campaigns",
            json={
                "name": name,
                "subject": name,
                "networks": ["linkedin", "x"],
                "messages": [{"text": name, "url": "https://example.com/" + name[:4]}],
            },
        )
        assert created.status_code == 201, created.text
        campaign_id = created.json()["id"]
        overview.campaigns[name] = campaign_id
        sent = await org.editor.post(f"/api/v1/campaigns/{campaign_id}/send")
        assert sent.status_code == 202, sent.text
        # Sent two hours ago while the clicks arrive, so none falls in the scanner window.
        await mark_sent(sessionmaker, campaign_id, datetime.now(UTC) - timedelta(hours=2))
        async with sessionmaker() as session:
            links = (
                await session.scalars(select(Link).where(Link.campaign_id == campaign_id))
            ).all()
        codes = {
            (who_of[link.amplifier_id or 0], link.network, link.kind): link.code for link in links
        }
        for who, network, kind, times in clicks:
            for _ in range(times):
                agent += 1
                await click(http, codes[(who, network, kind)], human(agent))
        await app.state.tracking.recorder.flush()
        await mark_sent(sessionmaker, campaign_id, when[name])
        async with sessionmaker.begin() as session:
            await session.execute(
                update(Campaign)
                .where(Campaign.id == campaign_id)
                .values(status="sent", sent_at=when[name])
            )
        await _move_rollups(sessionmaker, [link.id for link in links], when[name])
    return overview


async def mark_sent(
    sessionmaker: async_sessionmaker[AsyncSession], campaign_id: int, at: datetime
) -> None:
    async with sessionmaker.begin() as session:
        await session.execute(
            update(Delivery)
            .where(Delivery.campaign_id == campaign_id)
            .values(status="sent", sent_at=at)
        )


async def _move_rollups(
    sessionmaker: async_sessionmaker[AsyncSession], link_ids: list[int], at: datetime
) -> None:
    """The links' hourly rollups, summed into the hour of `at` (the month they stand for)."""
    hour = at.replace(minute=0, second=0, microsecond=0)
    async with sessionmaker.begin() as session:
        rows = (
            await session.scalars(select(ClickRollup).where(ClickRollup.link_id.in_(link_ids)))
        ).all()
        totals: dict[int, list[int]] = {}
        for row in rows:
            total = totals.setdefault(row.link_id, [0, 0, 0])
            total[0] += row.clicks
            total[1] += row.bot_clicks
            total[2] += row.unique_visitors
        await session.execute(delete(ClickRollup).where(ClickRollup.link_id.in_(link_ids)))
        for link_id, (clicks, bots, visitors) in totals.items():
            session.add(
                ClickRollup(
                    link_id=link_id,
                    hour=hour,
                    clicks=clicks,
                    bot_clicks=bots,
                    unique_visitors=visitors,
                )
            )


@pytest.fixture
async def overview(
    dashboard_app: FastAPI,
    client: httpx.AsyncClient,
    org_a: OrgClients,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> Overview:
    return await seed_overview(org_a, sessionmaker, client, dashboard_app)


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
