"""The demo's steps through the real HTTP API (and the real `/r/` endpoint) over sockets."""

import asyncio
import time
from typing import Any

import httpx
from sqlalchemy import select

from app.core.db import session_scope
from app.demo.clicks import ClickTally, Hit, LinkRow
from app.demo.console import Console
from app.demo.data import ACCEPT, CAMPAIGN, NETWORKS, ORGANIZATION
from app.demo.result import DemoError
from app.keys import service as keys_service
from app.models import Link, Message, Role

CONCURRENCY = 16  # simultaneous simulated clicks
SEND_TIMEOUT = 60.0
STATS_TIMEOUT = 15.0
POLL_SECONDS = 0.2


class Api:
    """The demo's HTTP client: real sockets, never a proxy, never following a redirect."""

    def __init__(self, base_url: str) -> None:
        self.http = httpx.AsyncClient(
            base_url=base_url,
            timeout=30,
            trust_env=False,
            follow_redirects=False,
            limits=httpx.Limits(max_connections=CONCURRENCY * 2),
        )
        self.admin = ""
        self.viewer = ""

    async def call(
        self, method: str, path: str, *, key: str, expect: int = 200, **kwargs: Any
    ) -> Any:
        response = await self.http.request(
            method, path, headers={"Authorization": f"Bearer {key}"}, **kwargs
        )
        if response.status_code != expect:
            raise DemoError(
                f"{method} {path} answered {response.status_code}: {response.text[:500]}"
            )
        return response.json() if response.content else None

    async def click(self, hit: Hit) -> int:
        headers = {"User-Agent": hit.user_agent, "X-Forwarded-For": hit.address, "Accept": ACCEPT}
        if hit.referer:
            headers["Referer"] = hit.referer
        response = await self.http.get(f"/r/{hit.code}", headers=headers)
        return response.status_code


async def create_keys(app: Any, api: Api) -> None:
    """The admin key straight in the database (as `amplify keys create` does), the viewer key
    through the API with it."""
    async for session in session_scope(app.state.sessionmaker):
        org = await keys_service.get_or_create_organization(session, name=ORGANIZATION)
        _key, api.admin = await keys_service.create(
            session, organization_id=org.id, role=Role.ADMIN, name="demo admin"
        )
    created = await api.call(
        "POST",
        "/api/v1/keys",
        key=api.admin,
        expect=201,
        json={"role": "viewer", "name": "demo dashboard"},
    )
    api.viewer = created["key"]


async def send_campaign(api: Api, console: Console, roster: list[dict[str, Any]]) -> int:
    imported = await api.call(
        "POST", "/api/v1/amplifiers/import", key=api.admin, json=roster, timeout=60
    )
    counts = {n: sum(n in a["networks"] for a in roster) for n in NETWORKS}
    console.line(
        f"Imported {imported['created'] + imported['updated'] + imported['unchanged']} "
        "amplifiers (" + ", ".join(f"{network} {count}" for network, count in counts.items()) + ")."
    )
    campaign = await api.call("POST", "/api/v1/campaigns", key=api.admin, expect=201, json=CAMPAIGN)
    await api.call("POST", f"/api/v1/campaigns/{campaign['id']}/send", key=api.admin, expect=202)
    console.line(
        f"Campaign #{campaign['id']} {campaign['name']!r}: {len(CAMPAIGN['messages'])} messages "
        f"on {', '.join(NETWORKS)}; sending the digests over SMTP to the mail sink ..."
    )
    return int(campaign["id"])


async def wait_delivered(api: Api, console: Console, campaign_id: int) -> dict[str, Any]:
    deadline = time.monotonic() + SEND_TIMEOUT
    while True:
        stats = await api.call("GET", f"/api/v1/campaigns/{campaign_id}/stats", key=api.viewer)
        done = stats["sent"] + stats["failed"]
        finished = stats["recipients"] > 0 and done >= stats["recipients"]
        console.progress("sent", stats["sent"], stats["recipients"], final=finished)
        if finished:
            if stats["failed"]:
                console.line(f"  {stats['failed']} digests failed (see the log).")
            return dict(stats)
        if time.monotonic() > deadline:
            raise DemoError(
                f"Only {stats['sent']} of {stats['recipients']} digests were sent within "
                f"{SEND_TIMEOUT:.0f} s; is the worker running?"
            )
        await asyncio.sleep(POLL_SECONDS)


async def read_links(app: Any, campaign_id: int) -> list[LinkRow]:
    """Every tracked code of the campaign, with its amplifier, message position and network."""
    async with app.state.sessionmaker() as session:
        rows = await session.execute(
            select(Link.code, Link.kind, Link.amplifier_id, Message.position, Link.network)
            .join(Message, Message.id == Link.message_id)
            .where(Link.campaign_id == campaign_id, Link.amplifier_id.is_not(None))
            .order_by(Link.id)
        )
        return [LinkRow(code, kind, amp, pos, net) for code, kind, amp, pos, net in rows.all()]


async def audiences(api: Api) -> dict[int, dict[str, int]]:
    result: dict[int, dict[str, int]] = {}
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 500, **({"cursor": cursor} if cursor else {})}
        page = await api.call("GET", "/api/v1/amplifiers", key=api.viewer, params=params)
        for amplifier in page["items"]:
            result[int(amplifier["id"])] = dict(amplifier["audience"])
        cursor = page["next_cursor"]
        if not cursor:
            return result


async def run_clicks(
    api: Api, console: Console, hits: list[Hit], tally: ClickTally, done: list[int], total: int
) -> None:
    semaphore = asyncio.Semaphore(CONCURRENCY)

    async def one(hit: Hit) -> None:
        async with semaphore:
            status = await api.click(hit)
        if status == 302:
            tally.redirects += 1
        else:
            tally.failures += 1
        done[0] += 1
        console.progress("clicks", done[0], total)

    await asyncio.gather(*(one(hit) for hit in hits))


async def settled_stats(
    api: Api, console: Console, campaign_id: int, clicks: int
) -> dict[str, Any]:
    """The campaign's stats once every answered click is counted (the flush is asynchronous)."""
    deadline = time.monotonic() + STATS_TIMEOUT
    while True:
        stats: dict[str, Any] = await api.call(
            "GET", f"/api/v1/campaigns/{campaign_id}/stats", key=api.viewer
        )
        counted = stats["share_clicks"] + stats["visits"] + stats["bot_clicks"]
        if counted >= clicks:
            return stats
        if time.monotonic() > deadline:
            console.line(
                f"  only {counted} of {clicks} clicks are counted after {STATS_TIMEOUT:.0f} s; "
                "the numbers below are partial (see the log)."
            )
            return stats
        await asyncio.sleep(0.1)
