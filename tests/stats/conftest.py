"""The statistics scenario: a roster, two sent campaigns and clicks made through the real
`/r/{code}` redirect at chosen moments (the redirect's clock), so every expected number in the
stats tests can be worked out by hand from the table below.

Roster (created in this order, so ids ascend in it):
  ada    "Ada"    networks linkedin, x, facebook  audience linkedin 500, x 120, facebook 40
                  tags core
  bob    "Bob"    networks linkedin, x            audience linkedin 300 (none on x)
  carol  '=HYPERLINK("http://evil.example","click")'
                  networks x, facebook            audience x 1000, facebook 70
  dan    "-Dan"   networks (all three)            audience linkedin 999 (sent, never clicks)
  eve    "@Eve"   networks linkedin               audience linkedin 10  (delivery failed)
  finn   no name, email "+finn@example.com", networks linkedin           (delivery pending)

Campaign "Launch" (networks linkedin, x, facebook; messages M1 position 0, M2 position 1), sent
to all six: ada, bob, carol, dan sent at 2026-11-20 08:00:00Z, eve failed, finn still pending.
M1 has copy variants 0-3, dealt in roster order: ada 0, bob 1, carol 2, dan 3, eve 0, finn 1.
Campaign "Follow-up" (created after Launch; network linkedin; message M3), audience tag core:
ada only, sent at 2026-11-20 08:00:00Z.

Clicks: the CLICKS table below (S = human share click, v = human visit, b = bot click).
Conversions: the CONVERSIONS table below, each reported against the click id a human visit
brought to its landing page.
The tests work their expected numbers out from these tables in comments.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.models import Delivery, Link
from app.tracking.salts import VisitorSalts
from tests.factories import OrgClients
from tests.tracking import conftest as tracking
from tests.tracking.conftest import CHROME, FIREFOX, Clock

clock = tracking.clock  # the redirect's clock fixture, shared with the tracking tests

SAFARI = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_7_1) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Safari/605.1.15"
)
EDGE = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0"
)
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1"
)
ANDROID = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.6778.81 Mobile Safari/537.36"
)
LINUX_CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/130.0.0.0 Safari/537.36"
)
LINKEDIN_BOT = (
    "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)"
)

# The amplifiers' own browsers (share clicks) and four distinct readers (visits). Every request
# of a test comes from the same client address, so the User-Agent tells visitors apart.
ADA_UA, BOB_UA, CAROL_UA = CHROME, FIREFOX, SAFARI
V1, V2, V3, V4 = EDGE, IPHONE, ANDROID, LINUX_CHROME

CAROL_NAME = '=HYPERLINK("http://evil.example","click")'
SENT_AT = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
LAUNCH, FOLLOW = "launch", "follow"


def at(day: int, hour: int, minute: int, second: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, second, tzinfo=UTC)


# (label, amplifier, campaign, message position, network, kind, moment, User-Agent).
# Clicks of one visitor on different links of one delivery are minutes apart: no burst.
CLICKS: list[tuple[str, str, str, int, str, str, datetime, str]] = [
    # 2026-11-20, hour 08
    ("b5", "carol", LAUNCH, 1, "facebook", "share", at(20, 8, 0, 5), CHROME),  # scanner window
    # hour 09
    ("b3", "bob", LAUNCH, 0, "x", "share", at(20, 9, 5), ""),  # empty User-Agent
    ("S1", "ada", LAUNCH, 0, "linkedin", "share", at(20, 9, 10), ADA_UA),
    ("b1", "ada", LAUNCH, 0, "linkedin", "visit", at(20, 9, 12), LINKEDIN_BOT),
    ("S2", "ada", LAUNCH, 0, "linkedin", "share", at(20, 9, 20), ADA_UA),  # same link again
    ("S3", "ada", LAUNCH, 1, "x", "share", at(20, 9, 30), ADA_UA),
    ("v1", "ada", LAUNCH, 0, "linkedin", "visit", at(20, 9, 40), V1),
    ("v2", "ada", LAUNCH, 0, "linkedin", "visit", at(20, 9, 45), V1),  # repeat visitor
    ("v3", "ada", LAUNCH, 0, "linkedin", "visit", at(20, 9, 50), V2),
    # hour 10
    ("S4", "bob", LAUNCH, 0, "linkedin", "share", at(20, 10, 5), BOB_UA),
    ("S5", "carol", LAUNCH, 0, "x", "share", at(20, 10, 15), CAROL_UA),
    ("S6", "carol", LAUNCH, 0, "facebook", "share", at(20, 10, 25), CAROL_UA),
    ("v4", "ada", LAUNCH, 1, "x", "visit", at(20, 10, 30), V1),  # V1 again, another link
    ("v5", "bob", LAUNCH, 0, "linkedin", "visit", at(20, 10, 40), V3),
    ("b2", "carol", LAUNCH, 0, "x", "visit", at(20, 10, 45), ""),  # empty User-Agent
    # hour 11
    ("v6", "carol", LAUNCH, 0, "x", "visit", at(20, 11, 10), V2),
    ("v7", "carol", LAUNCH, 0, "facebook", "visit", at(20, 11, 20), V4),
    # 2026-11-21 (UTC), hour 02 = 2026-11-20 21:xx in New York
    ("v8", "ada", LAUNCH, 0, "linkedin", "visit", at(21, 2, 30), V1),  # a new UTC day
    ("b4", "ada", LAUNCH, 0, "linkedin", "visit", at(21, 2, 35), LINKEDIN_BOT),
    # hours 09-11
    ("S7", "bob", LAUNCH, 1, "x", "share", at(21, 9, 0), BOB_UA),
    ("S8", "ada", LAUNCH, 0, "linkedin", "share", at(21, 9, 10), ADA_UA),  # pair shared on 20th
    ("v9", "bob", LAUNCH, 0, "linkedin", "visit", at(21, 10, 0), V3),
    ("v10", "bob", LAUNCH, 1, "x", "visit", at(21, 10, 10), V4),
    ("S9", "ada", FOLLOW, 0, "linkedin", "share", at(21, 11, 0), ADA_UA),
    ("v11", "ada", FOLLOW, 0, "linkedin", "visit", at(21, 11, 30), V2),
    ("v12", "ada", FOLLOW, 0, "linkedin", "visit", at(21, 11, 40), V3),
]

# (label, the visit whose click id it reports, event, value, occurred at). The organization's
# currency is the default, USD.
CONVERSIONS: list[tuple[str, str, str, float | None, datetime]] = [
    ("c1", "v1", "signup", None, at(20, 9, 50)),  # ada Launch M1 linkedin, hour 09
    ("c2", "v3", "purchase", 49.9, at(20, 10, 20)),  # ada Launch M1 linkedin, hour 10
    ("c3", "v6", "purchase", 20.1, at(21, 12, 0)),  # carol Launch M1 x, 21st hour 12
    ("c4", "v11", "purchase", 10.0, at(21, 11, 45)),  # ada Follow-up M3 linkedin
]

ROSTER: list[dict[str, Any]] = [
    {
        "email": "ada@example.com",
        "name": "Ada",
        "tags": ["core"],
        "networks": ["linkedin", "x", "facebook"],
        "audience": {"linkedin": 500, "x": 120, "facebook": 40},
    },
    {
        "email": "bob@example.com",
        "name": "Bob",
        "networks": ["linkedin", "x"],
        "audience": {"linkedin": 300},
    },
    {
        "email": "carol@example.com",
        "name": CAROL_NAME,
        "networks": ["x", "facebook"],
        "audience": {"x": 1000, "facebook": 70},
    },
    {"email": "dan@example.com", "name": "-Dan", "audience": {"linkedin": 999}},
    {
        "email": "eve@example.com",
        "name": "@Eve",
        "networks": ["linkedin"],
        "audience": {"linkedin": 10},
    },
    {"email": "+finn@example.com", "networks": ["linkedin"]},
]
WHO = ("ada", "bob", "carol", "dan", "eve", "finn")


@pytest.fixture(autouse=True)
def _cold_salt_cache(app: FastAPI) -> Iterator[None]:
    """The redirect keeps each day's visitor salt in memory, while every test empties the
    tables: a day cached here would be missing from `visitor_salts` in a later test that
    clicks on the same fake day (the tracking retention test counts those rows). So the next
    test starts with a cold cache, as a fresh process would."""
    yield
    app.state.tracking.salts = VisitorSalts(app.state.engine)


@dataclass
class Scenario:
    client: httpx.AsyncClient
    app: FastAPI
    clock: Clock
    org: OrgClients
    campaign: dict[str, int]  # LAUNCH / FOLLOW → campaign id
    messages: dict[tuple[str, int], int]  # (campaign, position) → message id
    amplifier: dict[str, int]  # "ada" → amplifier id
    codes: dict[tuple[str, str, int, str, str], str] = field(default_factory=dict)
    click_ids: dict[str, str] = field(default_factory=dict)  # visit label → its click id

    async def click(
        self,
        who: str,
        campaign: str,
        position: int,
        network: str,
        kind: str,
        moment: datetime,
        agent: str,
        **headers: str,
    ) -> httpx.Response:
        self.clock.now = moment
        code = self.codes[(who, campaign, position, network, kind)]
        response = await self.client.get(f"/r/{code}", headers={"user-agent": agent, **headers})
        assert response.status_code == 302, response.text
        return response

    async def flush(self) -> None:
        await self.app.state.tracking.recorder.flush()


async def _create_campaign(org: OrgClients, payload: dict[str, Any]) -> dict[str, Any]:
    created = await org.editor.post("/api/v1/campaigns", json=payload)
    assert created.status_code == 201, created.text
    campaign: dict[str, Any] = created.json()
    sent = await org.editor.post(f"/api/v1/campaigns/{campaign['id']}/send")
    assert sent.status_code == 202, sent.text
    return campaign


async def build_roster(org: OrgClients) -> dict[str, int]:
    ids: dict[str, int] = {}
    for who, row in zip(WHO, ROSTER, strict=True):
        response = await org.editor.post("/api/v1/amplifiers", json=row)
        assert response.status_code == 201, response.text
        ids[who] = response.json()["id"]
    return ids


async def links_of(
    sessionmaker: async_sessionmaker[AsyncSession],
    campaign_id: int,
    campaign_key: str,
    positions: dict[int, int],
    who_of: dict[int, str],
) -> dict[tuple[str, str, int, str, str], str]:
    async with sessionmaker() as session:
        links = (await session.scalars(select(Link).where(Link.campaign_id == campaign_id))).all()
    return {
        (
            who_of[link.amplifier_id or 0],
            campaign_key,
            positions[link.message_id],
            link.network,
            link.kind,
        ): link.code
        for link in links
    }


async def mark_deliveries(
    sessionmaker: async_sessionmaker[AsyncSession],
    campaign_id: int,
    amplifier_ids: list[int],
    *,
    status: str,
    sent_at: datetime | None,
) -> None:
    async with sessionmaker.begin() as session:
        await session.execute(
            update(Delivery)
            .where(Delivery.campaign_id == campaign_id, Delivery.amplifier_id.in_(amplifier_ids))
            .values(status=status, sent_at=sent_at)
        )


@pytest.fixture
async def scenario(
    client: httpx.AsyncClient,
    app: FastAPI,
    clock: Clock,
    org_a: OrgClients,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> Scenario:
    amplifier = await build_roster(org_a)
    launch = await _create_campaign(
        org_a,
        {
            "name": "Launch",
            "subject": "Share our launch",
            "networks": ["linkedin", "x", "facebook"],
            "messages": [
                {
                    "text": "We launched",
                    "url": "https://example.com/launch",
                    "variants": [{"text": f"We launched ({n})"} for n in (1, 2, 3)],
                },
                {"text": "Read the story", "url": "https://example.com/story"},
            ],
        },
    )
    follow = await _create_campaign(
        org_a,
        {
            "name": "Follow-up",
            "subject": "One more",
            "networks": ["linkedin"],
            "audience": {"tags": ["core"]},
            "messages": [{"text": "Thanks", "url": "https://example.com/thanks"}],
        },
    )
    sent = [amplifier[w] for w in ("ada", "bob", "carol", "dan")]
    await mark_deliveries(sessionmaker, launch["id"], sent, status="sent", sent_at=SENT_AT)
    await mark_deliveries(
        sessionmaker, launch["id"], [amplifier["eve"]], status="failed", sent_at=None
    )
    await mark_deliveries(
        sessionmaker, follow["id"], [amplifier["ada"]], status="sent", sent_at=SENT_AT
    )
    messages = {
        (key, m["position"]): m["id"]
        for key, campaign in ((LAUNCH, launch), (FOLLOW, follow))
        for m in campaign["messages"]
    }
    who_of = {ident: who for who, ident in amplifier.items()}
    codes: dict[tuple[str, str, int, str, str], str] = {}
    for key, campaign in ((LAUNCH, launch), (FOLLOW, follow)):
        positions = {m["id"]: m["position"] for m in campaign["messages"]}
        codes |= await links_of(sessionmaker, campaign["id"], key, positions, who_of)
    built = Scenario(
        client=client,
        app=app,
        clock=clock,
        org=org_a,
        campaign={LAUNCH: launch["id"], FOLLOW: follow["id"]},
        messages=messages,
        amplifier=amplifier,
        codes=codes,
    )
    for label, who, key, position, network, kind, moment, agent in CLICKS:
        response = await built.click(who, key, position, network, kind, moment, agent)
        click_id = parse_qs(urlsplit(response.headers["location"]).query).get("amp_cid")
        if click_id:
            built.click_ids[label] = click_id[0]
    await built.flush()
    for _label, visit, event, value, moment in CONVERSIONS:
        reported = await org_a.editor.post(
            "/api/v1/conversions",
            json={
                "click_id": built.click_ids[visit],
                "event": event,
                "value": value,
                "occurred_at": moment.isoformat(),
            },
        )
        assert reported.status_code == 201, reported.text
    return built


SMALL = "small"


@pytest.fixture
def small_campaign(
    client: httpx.AsyncClient,
    app: FastAPI,
    clock: Clock,
    org_a: OrgClients,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> Callable[..., Awaitable[Scenario]]:
    """One amplifier, ada (audience linkedin 100), and one campaign sent to her at `sent_at`;
    no clicks yet."""

    async def make(*, networks: list[str], messages: int, sent_at: datetime) -> Scenario:
        response = await org_a.editor.post(
            "/api/v1/amplifiers",
            json={"email": "ada@example.com", "name": "Ada", "audience": {"linkedin": 100}},
        )
        assert response.status_code == 201, response.text
        ada = response.json()["id"]
        campaign = await _create_campaign(
            org_a,
            {
                "name": "Small",
                "subject": "Small",
                "networks": networks,
                "messages": [
                    {"text": f"Message {n}", "url": f"https://example.com/{n}"}
                    for n in range(messages)
                ],
            },
        )
        await mark_deliveries(sessionmaker, campaign["id"], [ada], status="sent", sent_at=sent_at)
        positions = {m["id"]: m["position"] for m in campaign["messages"]}
        return Scenario(
            client=client,
            app=app,
            clock=clock,
            org=org_a,
            campaign={SMALL: campaign["id"]},
            messages={(SMALL, m["position"]): m["id"] for m in campaign["messages"]},
            amplifier={"ada": ada},
            codes=await links_of(sessionmaker, campaign["id"], SMALL, positions, {ada: "ada"}),
        )

    return make


# --- Reading the routes ---------------------------------------------------------------------

API = "/api/v1"


def active(by_network: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The networks with any non-zero number (a route may list idle networks with zeros)."""
    return {n: v for n, v in by_network.items() if any(v.values())}


async def get_json(client: Any, url: str, **params: Any) -> Any:
    response = await client.get(url, params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def all_pages(client: Any, url: str, limit: int, **params: Any) -> list[list[Any]]:
    """Every page of a list route, following next_cursor."""
    pages: list[list[Any]] = []
    cursor = None
    while True:
        query = {**params, "limit": limit, **({"cursor": cursor} if cursor else {})}
        body = await get_json(client, url, **query)
        pages.append(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) < 20


# --- Server-sent events over httpx ------------------------------------------------------------
# httpx's ASGITransport buffers a whole response before returning it, so an endless event
# stream never comes back through it. This transport hands the body over as the app sends it
# and tells the app the client went away when the response is closed.


class _LiveBody(httpx.AsyncByteStream):
    def __init__(
        self, chunks: asyncio.Queue[bytes | None], gone: asyncio.Event, task: asyncio.Task[None]
    ) -> None:
        self._chunks = chunks
        self._gone = gone
        self._task = task

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while (chunk := await self._chunks.get()) is not None:
            yield chunk

    async def aclose(self) -> None:
        self._gone.set()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout=5)
        except TimeoutError:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


class StreamingASGITransport(httpx.AsyncBaseTransport):
    def __init__(self, app: Callable[..., Awaitable[None]]) -> None:
        self.app = app

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = b"".join([chunk async for chunk in request.stream])  # type: ignore[union-attr]
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": request.method,
            "scheme": request.url.scheme,
            "path": request.url.path,
            "raw_path": request.url.raw_path.split(b"?")[0],
            "query_string": request.url.query,
            "root_path": "",
            "headers": [(k.lower(), v) for k, v in request.headers.raw],
            "client": ("127.0.0.1", 123),
            "server": (request.url.host, request.url.port or 80),
        }
        gone = asyncio.Event()
        chunks: asyncio.Queue[bytes | None] = asyncio.Queue()
        started: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        request_sent = False

        async def receive() -> dict[str, Any]:
            nonlocal request_sent
            if not request_sent:
                request_sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await gone.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start" and not started.done():
                started.set_result(message)
            elif message["type"] == "http.response.body":
                if message.get("body"):
                    chunks.put_nowait(message["body"])
                if not message.get("more_body", False):
                    chunks.put_nowait(None)

        async def run() -> None:
            try:
                await self.app(scope, receive, send)
            except Exception as exc:
                if not started.done():
                    started.set_exception(exc)
            finally:
                chunks.put_nowait(None)

        task = asyncio.create_task(run())
        start = await asyncio.wait_for(started, timeout=10)
        return httpx.Response(
            start["status"],
            headers=start.get("headers", []),
            stream=_LiveBody(chunks, gone, task),
        )


@pytest.fixture
async def streaming_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = StreamingASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http
