"""Statistics read latency over a million stored clicks, as a ratio to a trivial endpoint timed
in the same run.

    python bench/stats.py [--clicks 1000000] [--calls 200] [--database-url URL]
                          [--bulk-clicks 9000000] [--keep-database]

Seeds a fresh database (a SQLite temp file, or a scratch database created beside --database-url on
PostgreSQL and dropped at the end): 1,000 amplifiers, a campaign with 5 messages on 4 networks
sent through the HTTP API in-process (40,000 share and visit links), its deliveries marked sent
(1% failed) three days ago, then --clicks clicks over those three days stored in time order with
the click flush's own `store_clicks` in batches of 5,000, so every rollup is written exactly as in
production. The mix: ~20% share clicks, ~75% visits (some visitors come back), ~5% crawler bots,
skewed over amplifiers, networks and messages, decaying after the send with a daily rhythm.

--bulk-clicks N (PostgreSQL) then adds N raw click rows over the last 90 days with
generate_series, in the month partitions: a clicks table of 10 M rows for 9 M more, in minutes
instead of the hours the flush would take here. They get no rollups, and none are needed: no
statistics endpoint reads raw clicks (the checks below count the flushed clicks only).

Then a fresh app (inside its lifespan) answers, one request at a time through httpx's
ASGITransport, 10 warm-up and --calls timed calls of each statistics endpoint and of the baseline
(GET /api/v1/keys?limit=1 with the same admin key: authentication, one indexed query, JSON),
taken round-robin so that machine noise falls on every endpoint alike. Prints p50/p95 per
endpoint, its p50 as a multiple of the baseline's, and whether its p95 is under the goal (50 ms).

Exits non-zero when an answer has an unexpected status or the numbers disagree with the clicks
seeded (visits + share clicks + bot clicks == clicks, and the finer checks printed).
"""

import argparse
import asyncio
import bisect
import math
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
from sqlalchemy import bindparam, case, null, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.config import Settings
from app.core.db import UTCDateTime, make_engine
from app.core.migrate import upgrade
from app.core.scratch_databases import drop_scratch_database
from app.main import create_app
from app.models import Campaign, Delivery, DeliveryStatus, Link, Role
from app.stats.caching import AnswerCache
from app.tracking.partitions import ensure_click_partitions
from app.tracking.recorder import ClickEvent, store_clicks
from bench.common import (
    NETWORKS,
    amplifier_rows,
    bench_database,
    bench_settings,
    create_campaign,
    run_bench,
    seed_organization,
)

NETWORK_WEIGHTS = {"linkedin": 0.45, "x": 0.25, "facebook": 0.2, "whatsapp": 0.1}
MESSAGE_WEIGHTS = [0.35, 0.25, 0.18, 0.12, 0.10]
REFERRERS = {
    "linkedin": "www.linkedin.com",
    "x": "t.co",
    "facebook": "l.facebook.com",
    "whatsapp": None,
}
HOURS = 72
BATCH = 5_000
PROGRESS_EVERY = 100_000
WARMUP_CALLS = 10
GOAL_MS = 50.0
FAILED_EVERY = 100  # one delivery in a hundred failed (its links get no clicks)
SHARE_SHARE, BOT_SHARE = 0.20, 0.05  # of all clicks; the rest are human visits
RETURNING_VISITOR = 0.15  # a visit by the link's previous visitor
BOT_UAS = ("bot", "other")


# --- database -----------------------------------------------------------------------------------


# --- seeding ------------------------------------------------------------------------------------


@dataclass
class Seeded:
    campaign_id: int
    message_ids: list[int]
    key: str
    amplifier_ids: list[int]
    top_amplifier: int  # the most active one, for /amplifiers/{id}/stats
    recipients: int
    failed: int
    sent_at: datetime


@dataclass
class LinkRow:
    id: int
    kind: str
    delivery_id: int
    amplifier_id: int
    message_id: int
    network: str


async def seed_campaign(
    settings: Settings, amplifiers: int, sent_at: datetime
) -> tuple[Seeded, list[LinkRow]]:
    """Org, admin key, amplifiers and a sent campaign through the app's own services and API."""
    rng = random.Random(11)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        joined = sent_at - timedelta(days=30)

        def audience() -> dict[str, int]:
            reach = {
                "linkedin": rng.randint(100, 5_000),
                "x": rng.randint(50, 20_000),
                "facebook": rng.randint(100, 2_000),
            }
            if rng.random() < 0.7:  # some never said how many they reach there
                reach["whatsapp"] = rng.randint(20, 300)
            return reach

        org = await seed_organization(
            app,
            name="Bench stats",
            role=Role.ADMIN,
            roster=lambda org_id: amplifier_rows(org_id, amplifiers, NETWORKS, joined, audience),
        )
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
            headers = org.headers
            campaign = await create_campaign(
                http,
                headers,
                name="Bench stats launch",
                intro="Five things worth sharing this week.",
                messages=len(MESSAGE_WEIGHTS),
            )
            campaign_id = campaign["id"]
            message_ids = [m["id"] for m in sorted(campaign["messages"], key=_position)]
            response = await http.post(f"/api/v1/campaigns/{campaign_id}/send", headers=headers)
            assert response.status_code == 202, response.text

        # What the worker would have done three days ago: every digest accepted (1% failed).
        engine: AsyncEngine = app.state.engine
        async with engine.begin() as connection:
            made = sent_at - timedelta(hours=1)
            failed = (Delivery.id % FAILED_EVERY) == 0
            await connection.execute(
                update(Delivery)
                .where(Delivery.campaign_id == campaign_id)
                .values(
                    status=case(
                        (failed, DeliveryStatus.FAILED.value), else_=DeliveryStatus.SENT.value
                    ),
                    attempts=1,
                    sent_at=case((failed, null()), else_=bindparam("at", sent_at, UTCDateTime)),
                    last_error=case((failed, "550 mailbox unavailable"), else_=null()),
                    created_at=made,
                    next_attempt_at=sent_at,
                    updated_at=sent_at,
                )
            )
            await connection.execute(
                update(Campaign)
                .where(Campaign.id == campaign_id)
                .values(status="sent", sent_at=sent_at, created_at=made, updated_at=sent_at)
            )
            await connection.execute(
                update(Link).where(Link.campaign_id == campaign_id).values(created_at=made)
            )
            params = {"c": campaign_id}
            counts = (
                await connection.execute(
                    text(
                        "SELECT count(*), sum(CASE WHEN status = 'failed' THEN 1 ELSE 0 END) "
                        "FROM deliveries WHERE campaign_id = :c"
                    ),
                    params,
                )
            ).one()
            links = [
                LinkRow(*row)
                for row in (
                    await connection.execute(
                        text(
                            "SELECT l.id, l.kind, l.delivery_id, l.amplifier_id, l.message_id, "
                            "l.network FROM links AS l JOIN deliveries AS d "
                            "ON d.id = l.delivery_id WHERE l.campaign_id = :c "
                            "AND d.status = 'sent' ORDER BY l.id"
                        ),
                        params,
                    )
                ).all()
            ]
            amplifier_ids = list(
                (
                    await connection.execute(
                        text("SELECT id FROM amplifiers WHERE organization_id = :o ORDER BY id"),
                        {"o": org.id},
                    )
                ).scalars()
            )
    seeded = Seeded(
        campaign_id=campaign_id,
        message_ids=message_ids,
        key=org.key,
        amplifier_ids=amplifier_ids,
        top_amplifier=0,
        recipients=int(counts[0]),
        failed=int(counts[1] or 0),
        sent_at=sent_at,
    )
    return seeded, links


def _position(message: dict[str, Any]) -> int:
    return int(message.get("position", 0))


@dataclass
class Expected:
    """What the stats must say, counted while generating (bursts adjust it after storing)."""

    clicks: int = 0
    share: int = 0
    visits: int = 0
    bots: int = 0
    visitors: set[tuple[int, int, int]] = field(default_factory=set)  # link, day, visitor
    per_amplifier: dict[int, int] = field(default_factory=dict)
    reflagged: int = 0

    @property
    def unique_visitors(self) -> int:
        return len(self.visitors)


class Picker:
    """Weighted choice of a link of one kind: amplifier activity is heavily skewed, networks
    and earlier messages get more clicks."""

    def __init__(self, links: list[LinkRow], amplifier_weight: dict[int, float]) -> None:
        self.links = links
        messages = sorted({link.message_id for link in links})
        position = {message_id: i for i, message_id in enumerate(messages)}
        total = 0.0
        self.cumulative: list[float] = []
        for link in links:
            total += (
                amplifier_weight[link.amplifier_id]
                * NETWORK_WEIGHTS[link.network]
                * MESSAGE_WEIGHTS[position[link.message_id] % len(MESSAGE_WEIGHTS)]
            )
            self.cumulative.append(total)
        self.total = total

    def pick(self, rng: random.Random) -> LinkRow:
        index = bisect.bisect_right(self.cumulative, rng.random() * self.total)
        return self.links[min(index, len(self.links) - 1)]


def hourly_counts(clicks: int) -> list[int]:
    """Clicks per hour after the send: a decaying peak with a daily rhythm, summing exactly."""
    weights = [
        (0.25 + math.exp(-h / 10)) * (0.55 + 0.45 * math.sin((h - 9) / 24 * 2 * math.pi))
        for h in range(HOURS)
    ]
    total = sum(weights)
    raw = [w / total * clicks for w in weights]
    counts = [int(r) for r in raw]
    by_remainder = sorted(range(HOURS), key=lambda h: raw[h] - counts[h], reverse=True)
    for h in by_remainder[: clicks - sum(counts)]:
        counts[h] += 1
    return counts


def generate(
    clicks: int, sent_at: datetime, links: list[LinkRow], expected: Expected
) -> Iterator[ClickEvent]:
    """Clicks in time order (as the recorder flushes them), counted into `expected`."""
    rng = random.Random(7)
    amplifiers = sorted({link.amplifier_id for link in links})
    ranks = list(range(len(amplifiers)))
    rng.shuffle(ranks)
    weight = {a: 1.0 / (r + 5) ** 0.9 for a, r in zip(amplifiers, ranks, strict=True)}
    share = Picker([link for link in links if link.kind == "share"], weight)
    visit = Picker([link for link in links if link.kind == "visit"], weight)
    last_visitor: dict[int, int] = {}
    for hour, count in enumerate(hourly_counts(clicks)):
        start = sent_at + timedelta(hours=hour)
        for second in sorted(rng.random() * 3600 for _ in range(count)):
            at = start + timedelta(seconds=second)
            day = at.toordinal()
            r = rng.random()
            if r < BOT_SHARE:
                link = (share if rng.random() < 0.3 else visit).pick(rng)
                expected.bots += 1
                yield ClickEvent(
                    link_id=link.id,
                    delivery_id=link.delivery_id,
                    kind=link.kind,
                    at=at,
                    is_bot=True,
                    bot_reason="crawler",
                    visitor_key=f"{rng.getrandbits(128):032x}",
                    ua_class=rng.choice(BOT_UAS),
                    referrer_host=None,
                )
            elif r < BOT_SHARE + SHARE_SHARE:
                link = share.pick(rng)
                expected.share += 1
                expected.per_amplifier[link.amplifier_id] = (
                    expected.per_amplifier.get(link.amplifier_id, 0) + 1
                )
                yield ClickEvent(
                    link_id=link.id,
                    delivery_id=link.delivery_id,
                    kind=link.kind,
                    at=at,
                    is_bot=False,
                    bot_reason=None,
                    # the amplifier, from one device per network and day
                    visitor_key=f"{link.amplifier_id:012x}{NETWORKS.index(link.network):04x}"
                    f"{day:016x}",
                    ua_class="mobile" if link.network == "whatsapp" else "desktop",
                    referrer_host=None,
                )
            else:
                link = visit.pick(rng)
                visitor = last_visitor.get(link.id)
                if visitor is None or rng.random() >= RETURNING_VISITOR:
                    visitor = rng.getrandbits(128) | (1 << 127)  # never an amplifier's key
                    last_visitor[link.id] = visitor
                expected.visits += 1
                expected.visitors.add((link.id, day, visitor))
                expected.per_amplifier[link.amplifier_id] = (
                    expected.per_amplifier.get(link.amplifier_id, 0) + 1
                )
                yield ClickEvent(
                    link_id=link.id,
                    delivery_id=link.delivery_id,
                    kind=link.kind,
                    at=at,
                    is_bot=False,
                    bot_reason=None,
                    visitor_key=f"{visitor:032x}",
                    ua_class="mobile" if rng.random() < 0.6 else "desktop",
                    referrer_host=REFERRERS[link.network],
                )
            expected.clicks += 1


async def seed_clicks(
    url: str, clicks: int, sent_at: datetime, links: list[LinkRow], expected: Expected
) -> float:
    """Store the clicks batch by batch, each in its own transaction like a flush; returns
    the seconds spent."""
    engine = make_engine(url)
    started = time.perf_counter()
    stored = 0
    next_report = PROGRESS_EVERY
    batch: list[ClickEvent] = []

    async def flush() -> None:
        nonlocal stored, next_report
        async with engine.begin() as connection:
            expected.reflagged += await store_clicks(connection, batch)
        stored += len(batch)
        batch.clear()
        if stored >= next_report or stored == clicks:
            elapsed = time.perf_counter() - started
            print(
                f"  {stored:>9,} clicks stored, {elapsed:6.1f} s, {stored / elapsed:,.0f} clicks/s",
                flush=True,
            )
            while next_report <= stored:
                next_report += PROGRESS_EVERY

    try:
        for event in generate(clicks, sent_at, links, expected):
            batch.append(event)
            if len(batch) >= BATCH:
                await flush()
        if batch:
            await flush()
    finally:
        await engine.dispose()
    return time.perf_counter() - started


BULK_DAYS = 90  # the default click retention
BULK_PER_TRANSACTION = 1_000_000


async def bulk_raw_clicks(url: str, clicks: int, campaign_id: int) -> float:
    """PostgreSQL: `clicks` more raw click rows over the last BULK_DAYS, written by one
    generate_series INSERT per million into the campaign's links (no rollups: no statistic
    reads raw clicks, so these only make the table, its partitions and indexes as big as a
    busy deployment's); the month partitions they need are created first. Returns seconds."""
    engine = make_engine(url)
    started = time.perf_counter()
    now = datetime.now(UTC)
    async with engine.begin() as connection:
        month = now - timedelta(days=BULK_DAYS)
        while month <= now:
            await ensure_click_partitions(connection, now=month, months_ahead=0)
            month += timedelta(days=28)
        low, count = (
            await connection.execute(
                text("SELECT min(id), count(*) FROM links WHERE campaign_id = :c"),
                {"c": campaign_id},
            )
        ).one()
    done = 0
    while done < clicks:
        size = min(BULK_PER_TRANSACTION, clicks - done)
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    "INSERT INTO clicks (link_id, delivery_id, kind, at, is_bot, visitor_key, "
                    "ua_class) SELECT l.id, l.delivery_id, l.kind, CAST(:now AS timestamptz) "
                    "- (g % (CAST(:days AS bigint) * 86400)) * interval '1 second', "
                    "g % 20 = 0, md5((g / 3)::text), 'desktop' "
                    "FROM generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) AS g "
                    "JOIN links AS l ON l.id = CAST(:low AS bigint) + (g * 7919) % :count"
                ),
                {
                    "now": now,
                    "days": BULK_DAYS,
                    "first": done + 1,
                    "last": done + size,
                    "low": low,
                    "count": count,
                },
            )
        done += size
        elapsed = time.perf_counter() - started
        print(f"  {done:>11,} raw clicks bulk-inserted, {elapsed:6.1f} s", flush=True)
    await engine.dispose()
    return time.perf_counter() - started


async def settle_database(url: str) -> str:
    """What autovacuum does after a bulk load on PostgreSQL (planner statistics, visibility
    map); SQLite is left as the app leaves it (no ANALYZE)."""
    if make_url(url).get_backend_name() != "postgresql":
        return "none (SQLite: no ANALYZE, as the app runs it)"
    engine = make_engine(url, isolation_level="AUTOCOMMIT")
    async with engine.connect() as connection:
        await connection.execute(text("VACUUM (ANALYZE)"))
    await engine.dispose()
    return "VACUUM (ANALYZE) on every table, as autovacuum would after the load"


# --- timing -------------------------------------------------------------------------------------


@dataclass
class Target:
    label: str
    path: str
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    goal: bool = True  # judged against GOAL_MS (the baselines are not)
    cold: bool = False  # answer cache emptied before each call: the first poll after a change
    samples: list[float] = field(default_factory=list)
    bad: dict[int, int] = field(default_factory=dict)
    first_body: str = ""

    def p(self, percent: float) -> float:
        ordered = sorted(self.samples)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, max(0, math.ceil(percent / 100 * len(ordered)) - 1))]


async def call(http: httpx.AsyncClient, target: Target, answers: AnswerCache) -> float:
    if target.cold:
        answers.clear()
    started = time.perf_counter()
    response = await http.get(target.path, headers=target.headers)
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code != target.status:
        target.bad[response.status_code] = target.bad.get(response.status_code, 0) + 1
        if not target.first_body:
            target.first_body = response.text[:500]
    return elapsed


async def time_all(
    http: httpx.AsyncClient, targets: list[Target], calls: int, answers: AnswerCache
) -> None:
    """Warm-up, then `calls` timed rounds; each round calls every target once, in order."""
    for _ in range(WARMUP_CALLS):
        for target in targets:
            await call(http, target, answers)
    for target in targets:
        target.bad.clear()
    for _ in range(calls):
        for target in targets:
            target.samples.append(await call(http, target, answers))


# --- checks -------------------------------------------------------------------------------------


class Checks:
    def __init__(self) -> None:
        self.failed = 0
        self.lines: list[str] = []

    def equal(self, label: str, got: object, want: object) -> None:
        ok = got == want
        self.failed += not ok
        self.lines.append(
            f"  {'ok      ' if ok else 'MISMATCH'} {label}: {got}" + ("" if ok else f" != {want}")
        )

    def true(self, label: str, ok: bool, detail: str = "") -> None:
        self.failed += not ok
        self.lines.append(
            f"  {'ok      ' if ok else 'FAILED  '} {label}" + (f" ({detail})" if detail else "")
        )


async def check_answers(
    http: httpx.AsyncClient,
    headers: dict[str, str],
    seeded: Seeded,
    expected: Expected,
    checks: Checks,
) -> str | None:
    """The numbers against the clicks seeded; returns the campaign stats ETag."""
    base = f"/api/v1/campaigns/{seeded.campaign_id}/stats"
    response = await http.get(base, headers=headers)
    checks.equal("GET campaign stats status", response.status_code, 200)
    etag: str | None = None
    visits = expected.visits
    if response.status_code == 200:
        stats = response.json()
        etag = response.headers.get("etag")
        visits = stats["visits"]
        total = stats["visits"] + stats["share_clicks"] + stats["bot_clicks"]
        checks.equal("visits + share_clicks + bot_clicks == clicks seeded", total, expected.clicks)
        checks.equal("share_clicks", stats["share_clicks"], expected.share - expected.reflagged)
        checks.equal("visits", stats["visits"], expected.visits)
        checks.equal("bot_clicks", stats["bot_clicks"], expected.bots + expected.reflagged)
        checks.equal("unique_visitors", stats["unique_visitors"], expected.unique_visitors)
        checks.equal("recipients", stats["recipients"], seeded.recipients)
        checks.equal("sent", stats["sent"], seeded.recipients - seeded.failed)
        checks.equal("failed", stats["failed"], seeded.failed)
        by_network = stats.get("by_network", {})
        checks.equal("by_network networks", sorted(by_network), sorted(NETWORKS))
        checks.equal("by_network visits sum", sum(n["visits"] for n in by_network.values()), visits)
        by_message = stats.get("by_message", [])
        checks.equal("by_message ids", [m["message_id"] for m in by_message], seeded.message_ids)
        checks.true("ETag header", bool(etag), f"{etag}")
        response = await http.get(base, headers={**headers, "If-None-Match": etag or ""})
        checks.equal("If-None-Match with the ETag", response.status_code, 304)
    else:
        checks.true(
            "visits + share_clicks + bot_clicks == clicks seeded",
            False,
            "no campaign stats to compare: " + response.text[:300],
        )

    response = await http.get(f"{base}/amplifiers", headers=headers)
    checks.equal("GET stats/amplifiers status", response.status_code, 200)
    if response.status_code == 200:
        page = response.json()
        items = page["items"]
        checks.equal("stats/amplifiers first page size", len(items), min(50, seeded.recipients))
        points = [item["points"] for item in items]
        checks.true("stats/amplifiers ordered by points", points == sorted(points, reverse=True))
        checks.true("stats/amplifiers next_cursor", bool(page.get("next_cursor")))

    for query, label in (
        ("interval=hour", "hour, UTC"),
        ("interval=day&tz=Europe/Berlin", "day, Europe/Berlin"),
    ):
        response = await http.get(f"{base}/timeseries?{query}", headers=headers)
        checks.equal(f"GET timeseries ({label}) status", response.status_code, 200)
        if response.status_code == 200:
            points = response.json()["points"]
            checks.equal(
                f"timeseries ({label}) sum of {len(points)} buckets == visits",
                sum(p["value"] for p in points),
                visits,
            )

    response = await http.get("/api/v1/leaderboard", headers=headers)
    checks.equal("GET leaderboard status", response.status_code, 200)
    if response.status_code == 200:
        items = response.json()["items"]
        checks.true("leaderboard has items", bool(items), f"{len(items)} on the first page")
        if items:
            seeded.top_amplifier = items[0]["amplifier_id"]
            points = [item["points"] for item in items]
            checks.true("leaderboard ordered by points", points == sorted(points, reverse=True))
    if not seeded.top_amplifier:
        seeded.top_amplifier = max(expected.per_amplifier, key=expected.per_amplifier.__getitem__)
    return etag


# --- the run ------------------------------------------------------------------------------------


def targets_for(seeded: Seeded, headers: dict[str, str], etag: str | None) -> list[Target]:
    campaign = f"/api/v1/campaigns/{seeded.campaign_id}"
    return [
        Target("baseline: GET /keys?limit=1", "/api/v1/keys?limit=1", headers=headers, goal=False),
        Target("GET /healthz (no auth)", "/healthz", goal=False),
        Target("campaign stats", f"{campaign}/stats", headers=headers),
        Target(
            "campaign stats, 304",
            f"{campaign}/stats",
            status=304,
            headers={**headers, "If-None-Match": etag or '"none"'},
        ),
        Target("per-amplifier stats, page 1", f"{campaign}/stats/amplifiers", headers=headers),
        Target(
            "campaign stats, cold (no cache)",
            f"{campaign}/stats",
            headers=headers,
            goal=False,
            cold=True,
        ),
        Target(
            "per-amplifier page 1, cold",
            f"{campaign}/stats/amplifiers",
            headers=headers,
            goal=False,
            cold=True,
        ),
        Target(
            "timeseries hour (default range)",
            f"{campaign}/stats/timeseries?interval=hour",
            headers=headers,
        ),
        Target(
            "timeseries day, Europe/Berlin",
            f"{campaign}/stats/timeseries?interval=day&tz=Europe/Berlin",
            headers=headers,
        ),
        Target("leaderboard", "/api/v1/leaderboard", headers=headers),
        Target(
            "message stats (first message)",
            f"/api/v1/messages/{seeded.message_ids[0]}/stats",
            headers=headers,
        ),
        Target(
            "amplifier stats (top amplifier)",
            f"/api/v1/amplifiers/{seeded.top_amplifier}/stats",
            headers=headers,
        ),
    ]


def print_table(targets: list[Target], calls: int) -> bool:
    baseline = targets[0].p(50)
    print()
    print(
        f"{'endpoint':<34} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} "
        f"{'p50/base':>9}  p95 < {GOAL_MS:.0f} ms"
    )
    met = True
    for target in targets:
        p50, p95 = target.p(50), target.p(95)
        if target.bad:
            verdict = "ERROR: " + ", ".join(f"{n}x {status}" for status, n in target.bad.items())
            met = False
        elif target.goal:
            verdict = "pass" if p95 < GOAL_MS else "FAIL"
            met = met and p95 < GOAL_MS
        else:
            verdict = "(baseline)" if target is targets[0] else "-"
        print(
            f"{target.label:<34} {p50:>8.2f} {p95:>8.2f} {max(target.samples):>8.2f} "
            f"{p50 / baseline:>8.1f}x  {verdict}"
        )
    print(
        f"({calls} timed calls each after {WARMUP_CALLS} warm-up calls, one request at a time, "
        "round-robin over the endpoints; in-process httpx ASGITransport; p50/base = the "
        "endpoint's p50 over the baseline's p50)"
    )
    return met


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=None, help="PostgreSQL: a scratch db beside it")
    parser.add_argument("--clicks", type=int, default=1_000_000)
    parser.add_argument("--calls", type=int, default=200, help="timed calls per endpoint")
    parser.add_argument("--amplifiers", type=int, default=1_000)
    parser.add_argument(
        "--bulk-clicks",
        type=int,
        default=0,
        help="PostgreSQL: this many more raw clicks by generate_series (e.g. 9000000 for 10 M)",
    )
    parser.add_argument(
        "--strict", action="store_true", help="also exit non-zero when a p95 misses the goal"
    )
    parser.add_argument(
        "--keep-database", action="store_true", help="keep the seeded database (to EXPLAIN)"
    )
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="amplify-bench-stats-"))
    base_url = args.database_url
    url, scratch = await bench_database(base_url, "stats", tmp)
    backend = make_url(url).get_backend_name()
    keep = args.keep_database
    try:
        await asyncio.to_thread(upgrade, url)
        settings = bench_settings(url, tmp, scanner_window=0)
        now = datetime.now(UTC)
        sent_at = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=HOURS)
        print(f"database {backend}; seeding {args.amplifiers:,} amplifiers ...", flush=True)
        started = time.perf_counter()
        seeded, links = await seed_campaign(settings, args.amplifiers, sent_at)
        campaign_seconds = time.perf_counter() - started
        print(
            f"  campaign {seeded.campaign_id}: {len(seeded.message_ids)} messages x "
            f"{len(NETWORKS)} networks, {seeded.recipients:,} deliveries ({seeded.failed} failed), "
            f"{len(links):,} links of sent deliveries, in {campaign_seconds:.1f} s "
            "(amplifiers, HTTP create + send, mark sent)",
            flush=True,
        )
        print(
            f"storing {args.clicks:,} clicks over {HOURS} h from {sent_at:%Y-%m-%d %H:%M}Z with "
            f"store_clicks, {BATCH:,} per transaction ...",
            flush=True,
        )
        expected = Expected()
        click_seconds = await seed_clicks(url, args.clicks, sent_at, links, expected)
        del links
        if args.bulk_clicks:
            if backend != "postgresql":
                raise SystemExit("--bulk-clicks is written for PostgreSQL")
            print(f"bulk-inserting {args.bulk_clicks:,} raw clicks ...", flush=True)
            bulk_seconds = await bulk_raw_clicks(url, args.bulk_clicks, seeded.campaign_id)
            print(f"  in {bulk_seconds:.1f} s", flush=True)
        started = time.perf_counter()
        settled = await settle_database(url)
        settle_seconds = time.perf_counter() - started
        print(
            f"seeded {expected.clicks:,} clicks in {click_seconds:.1f} s "
            f"({expected.clicks / click_seconds:,.0f} clicks/s, generation included): "
            f"{expected.share:,} share, {expected.visits:,} visits "
            f"({expected.unique_visitors:,} unique visitors), {expected.bots:,} bots; "
            f"{expected.reflagged} re-flagged as bursts by the flush",
            flush=True,
        )
        print(f"after the load: {settled} ({settle_seconds:.1f} s)", flush=True)

        checks = Checks()
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            headers = {"Authorization": f"Bearer {seeded.key}"}
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
                etag = await check_answers(http, headers, seeded, expected, checks)
                targets = targets_for(seeded, headers, etag)
                print(f"timing {len(targets)} endpoints, {args.calls} calls each ...", flush=True)
                # Cold calls empty the answer cache: timed apart, they leave the others warm.
                answers = app.state.answers
                await time_all(http, [t for t in targets if not t.cold], args.calls, answers)
                await time_all(http, [t for t in targets if t.cold], args.calls, answers)
        met = print_table(targets, args.calls)
        for target in targets:
            if target.bad:
                checks.true(
                    f"{target.label}: every answer {target.status}",
                    False,
                    f"got {target.bad}; first body: {target.first_body}",
                )
        print()
        print("checks:")
        for line in checks.lines:
            print(line)
        ok = checks.failed == 0
        print(
            f"goal (p95 < {GOAL_MS:.0f} ms on every statistics endpoint): "
            + ("MET" if met else "NOT MET")
        )
        print("check: " + ("OK" if ok else f"FAILED ({checks.failed})"))
        return 0 if ok and (met or not args.strict) else 1
    finally:
        if keep:
            print(f"database kept: {url}")
        elif scratch and base_url:
            await drop_scratch_database(base_url, url)
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(run_bench(main))
