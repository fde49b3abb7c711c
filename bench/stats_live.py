"""Launch day, measured as a user would: a dashboard polling a campaign's statistics while share
and visit clicks pour in, and the redirects' latency with and without that dashboard.

    python bench/stats_live.py [--amplifiers 10000] [--rate 500] [--seconds 20]
                               [--idle-seconds 10] [--database-url URL]
    python bench/stats_live.py --roster-sizes 1000,10000,50000 [--database-url URL]

Seeds a fresh database (a SQLite temp file, or a scratch database beside --database-url on
PostgreSQL, dropped at the end): --amplifiers amplifiers and a campaign of 3 messages × 4
networks sent through the HTTP API in-process (its deliveries marked sent an hour ago). Then
starts `amplify serve` as a real process (worker off) and runs, in this order:

0. warm-up: one second of redirects on 2 % of the amplifiers (not measured);
1. idle: the poller alone for --idle-seconds (the statistics endpoints with nothing arriving);
2. redirects alone: an open-loop generator (request k is due at k / rate, whatever happened
   before; latency runs from the due time) at --rate for --seconds, each amplifier's first
   share click followed by visits from distinct visitors on its visit link: every link is cold;
3. redirects + poller: the same over other amplifiers (cold links again), the poller calling
   every endpoint once per 200 ms round, as a dashboard would.

With --roster-sizes it measures instead what a campaign stats answer costs as the roster grows:
for each size, a fresh database seeded as above where every amplifier shared once and brought
three visitors (so every amplifier is a sharer), then 100 campaign stats calls in-process with
the answer cache emptied before each (every poll follows a change), against the baseline.

The poller runs on its own thread and event loop, sends no If-None-Match (every poll follows a
change), and times: campaign stats, stats/amplifiers?limit=50, the all-time leaderboard, the
first message's stats, and GET /api/v1/keys?limit=1 as the baseline. Prints p50/p95/max per
endpoint idle and under load, the redirects' p50/p99/max with and without polling, the server's
CPU per phase, and checks stored clicks == answered redirects after a clean stop.
"""

import argparse
import asyncio
import math
import random
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
from sqlalchemy import insert, select, text, update
from sqlalchemy.engine import make_url

from app.core.config import Settings
from app.core.db import make_engine, session_scope, utcnow
from app.core.migrate import upgrade
from app.core.scratch_databases import drop_scratch_database
from app.keys import service as keys_service
from app.main import create_app
from app.models import Amplifier, Delivery, DeliveryStatus, Link, Role
from app.tracking.recorder import ClickEvent, store_clicks
from bench.common import (
    amplifier_rows,
    bench_database,
    bench_settings,
    discard_bench_files,
)
from bench.load import RateResult, Server, fixed_rate, free_port
from bench.redirect import redirect_requests, service_env

NETWORKS = ["linkedin", "x", "facebook", "whatsapp"]
MESSAGES = 3
VISITS_PER_SHARE = 3
POLL_PERIOD = 0.2
MAX_CONNECTIONS = 256
GOAL_MS = 50.0
WARM_UP_SECONDS = 1.0


@dataclass
class Seeded:
    campaign_id: int
    message_id: int
    admin_key: str
    # One launch sequence per amplifier: its first share click, then visits on its visit link.
    sequences: list[list[str]]


async def seed(settings: Settings, amplifiers: int) -> Seeded:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        maker = app.state.sessionmaker
        async for session in session_scope(maker):
            org = await keys_service.get_or_create_organization(session, name="Bench live")
            _key, plain = await keys_service.create(
                session, organization_id=org.id, role=Role.ADMIN, name="bench"
            )
            rows = amplifier_rows(org.id, amplifiers, NETWORKS, utcnow())
            for row, i in zip(rows, range(amplifiers), strict=True):
                row["audience"] = {"linkedin": 100 + i % 900, "x": 50 + i % 300}
            await session.execute(insert(Amplifier), rows)
        headers = {"Authorization": f"Bearer {plain}"}
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
            created = await http.post(
                "/api/v1/campaigns",
                headers=headers,
                json={
                    "name": "Launch",
                    "subject": "Help us spread the word",
                    "networks": NETWORKS,
                    "messages": [
                        {"text": f"Message {n}: we shipped", "url": f"https://example.com/{n}"}
                        for n in range(MESSAGES)
                    ],
                },
            )
            assert created.status_code == 201, created.text
            campaign = created.json()
            sent = await http.post(f"/api/v1/campaigns/{campaign['id']}/send", headers=headers)
            assert sent.status_code == 202, sent.text
        async for session in session_scope(maker):
            await session.execute(
                update(Delivery)
                .where(Delivery.campaign_id == campaign["id"])
                .values(status=DeliveryStatus.SENT, sent_at=utcnow() - timedelta(hours=1))
            )
        async with maker() as session:
            links = (
                await session.execute(
                    text(
                        "SELECT delivery_id, message_id, network, kind, code FROM links "
                        "WHERE campaign_id = :c ORDER BY id"
                    ),
                    {"c": campaign["id"]},
                )
            ).all()
    by_delivery: dict[int, dict[tuple[int, str, str], str]] = {}
    for delivery, message, network, kind, code in links:
        by_delivery.setdefault(delivery, {})[(message, network, kind)] = code
    rng = random.Random(13)
    message_ids = [m["id"] for m in campaign["messages"]]
    sequences = []
    for codes in by_delivery.values():
        message, network = rng.choice(message_ids), rng.choice(NETWORKS)
        share, visit = codes[(message, network, "share")], codes[(message, network, "visit")]
        sequences.append([share] + [visit] * VISITS_PER_SHARE)
    rng.shuffle(sequences)
    return Seeded(campaign["id"], message_ids[0], plain, sequences)


@dataclass
class Endpoint:
    name: str
    path: str
    samples: list[float] = field(default_factory=list)
    bad: int = 0


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))]


class Poller:
    """A dashboard on its own thread: every endpoint once per POLL_PERIOD round."""

    def __init__(self, port: int, seeded: Seeded) -> None:
        c = seeded.campaign_id
        self.endpoints = [
            Endpoint("campaign stats", f"/api/v1/campaigns/{c}/stats"),
            Endpoint(
                "stats/amplifiers?limit=50", f"/api/v1/campaigns/{c}/stats/amplifiers?limit=50"
            ),
            Endpoint("leaderboard", "/api/v1/leaderboard?limit=50"),
            Endpoint("message stats", f"/api/v1/messages/{seeded.message_id}/stats"),
            Endpoint("keys?limit=1 (baseline)", "/api/v1/keys?limit=1"),
        ]
        self.base = f"http://127.0.0.1:{port}"
        self.headers = {"Authorization": f"Bearer {seeded.admin_key}"}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        for endpoint in self.endpoints:
            endpoint.samples, endpoint.bad = [], 0
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        self._thread.start()

    def stop(self) -> dict[str, Endpoint]:
        self._stop.set()
        assert self._thread is not None
        self._thread.join()
        return {e.name: Endpoint(e.name, e.path, list(e.samples), e.bad) for e in self.endpoints}

    async def _run(self) -> None:
        async with httpx.AsyncClient(base_url=self.base, headers=self.headers) as http:
            while not self._stop.is_set():
                started = time.perf_counter()
                for endpoint in self.endpoints:
                    began = time.perf_counter()
                    response = await http.get(endpoint.path)
                    endpoint.samples.append((time.perf_counter() - began) * 1000)
                    if response.status_code != 200:
                        endpoint.bad += 1
                rest = POLL_PERIOD - (time.perf_counter() - started)
                if rest > 0:
                    await asyncio.sleep(rest)


@dataclass
class Phase:
    name: str
    cpu_percent: float
    redirects: RateResult | None = None
    endpoints: dict[str, Endpoint] = field(default_factory=dict)


async def measure(
    server: Server, name: str, seconds: float, work: "asyncio.Future[RateResult] | None"
) -> tuple[float, RateResult | None]:
    cpu, wall = server.cpu_seconds(), time.perf_counter()
    result = await work if work is not None else None
    if work is None:
        await asyncio.sleep(seconds)
    return 100 * (server.cpu_seconds() - cpu) / (time.perf_counter() - wall), result


async def run(args: argparse.Namespace, url: str, tmp: Path) -> bool:
    settings = bench_settings(url, tmp, scanner_window=0)
    started = time.perf_counter()
    seeded = await seed(settings, args.amplifiers)
    links = sum(len(s) for s in seeded.sequences)
    seconds = time.perf_counter() - started
    print(
        f"  seeded {args.amplifiers:,} amplifiers, campaign {seeded.campaign_id} "
        f"({MESSAGES} messages x {len(NETWORKS)} networks) in {seconds:.1f} s",
        flush=True,
    )
    # A few amplifiers' links warm the server up (pools open, the day's visitor salt made);
    # the others are cold when their phase starts.
    warm = len(seeded.sequences) // 50
    half = (len(seeded.sequences) + warm) // 2
    warming = [code for sequence in seeded.sequences[:warm] for code in sequence]
    alone = [code for sequence in seeded.sequences[warm:half] for code in sequence]
    polled = [code for sequence in seeded.sequences[half:] for code in sequence]
    needed = int(args.rate * args.seconds)
    if needed > min(len(alone), len(polled)):
        print(f"  note: {needed:,} requests per phase reuse codes ({links:,} in the sequences)")

    port = free_port()
    server = Server("app", port, service_env(url, tmp, port), tmp / "amplify.log", tmp)
    poller = Poller(port, seeded)
    phases: list[Phase] = []
    warm_up = RateResult(scheduled=0, seconds=0)
    try:
        await server.wait_ready("/readyz", 200)
        warm_up = await fixed_rate(
            port, redirect_requests(port, warming), args.rate, WARM_UP_SECONDS, MAX_CONNECTIONS
        )
        poller.start()
        await asyncio.sleep(2)  # warm-up rounds, discarded
        poller.stop()
        poller.start()
        cpu, _ = await measure(server, "idle", args.idle_seconds, None)
        phases.append(Phase("idle", cpu, endpoints=poller.stop()))
        print("  idle done", flush=True)
        load = asyncio.ensure_future(
            fixed_rate(
                port, redirect_requests(port, alone), args.rate, args.seconds, MAX_CONNECTIONS
            )
        )
        cpu, result = await measure(server, "redirects alone", args.seconds, load)
        phases.append(Phase("redirects alone", cpu, redirects=result))
        print("  redirects alone done", flush=True)
        await asyncio.sleep(2)
        poller.start()
        load = asyncio.ensure_future(
            fixed_rate(
                port, redirect_requests(port, polled), args.rate, args.seconds, MAX_CONNECTIONS
            )
        )
        cpu, result = await measure(server, "redirects + poller", args.seconds, load)
        phases.append(Phase("redirects + poller", cpu, redirects=result, endpoints=poller.stop()))
    finally:
        await server.stop()
    answered = sum(p.redirects.redirects for p in phases if p.redirects)
    answered += warm_up.redirects
    engine = make_engine(url)
    async with engine.connect() as connection:
        stored = int((await connection.execute(text("SELECT count(*) FROM clicks"))).scalar_one())
    await engine.dispose()
    return report(phases, answered, stored, server.returncode)


def report(phases: list[Phase], answered: int, stored: int, returncode: int | None) -> bool:
    idle, alone, loaded = phases
    print(
        f"\n{'endpoint (ms)':28} {'p50':>7} {'p95':>7} {'max':>7} | {'idle p50':>8} "
        f"{'p95':>7} {'max':>7} | p95 < {GOAL_MS:.0f} under load"
    )
    ok = True
    for name, endpoint in loaded.endpoints.items():
        quiet = idle.endpoints[name]
        p95 = percentile(endpoint.samples, 95)
        met = p95 < GOAL_MS
        ok = ok and met and endpoint.bad == 0 and quiet.bad == 0
        print(
            f"{name:28} {percentile(endpoint.samples, 50):7.1f} {p95:7.1f} "
            f"{max(endpoint.samples, default=float('nan')):7.1f} | "
            f"{percentile(quiet.samples, 50):8.1f} {percentile(quiet.samples, 95):7.1f} "
            f"{max(quiet.samples, default=float('nan')):7.1f} | {'yes' if met else 'NO'}"
            + (f"  ({endpoint.bad + quiet.bad} non-200)" if endpoint.bad + quiet.bad else "")
        )
        print(f"{'':28} ({len(endpoint.samples)} calls under load, {len(quiet.samples)} idle)")
    print(f"\n{'redirects (ms)':28} {'p50':>7} {'p99':>7} {'max':>7} {'answered':>9} {'errors':>7}")
    for phase in (alone, loaded):
        r = phase.redirects
        assert r is not None
        first = [ms for ms, due in zip(r.latencies_ms, r.due_s, strict=True) if due < 1.0]
        print(
            f"{phase.name:28} {r.percentile(50):7.1f} {r.percentile(99):7.1f} "
            f"{max(r.latencies_ms, default=float('nan')):7.1f} {r.redirects:9,} {r.errors:7,}"
            f"   first second p99 {r.percentile(99, first):.1f}"
        )
        ok = ok and r.errors == 0
    ratio = loaded.redirects.percentile(99) / alone.redirects.percentile(99)  # type: ignore[union-attr]
    print(f"redirect p99 with polling / without: {ratio:.2f}x (goal < 2x)")
    print("\nserver CPU: " + ", ".join(f"{p.name} {p.cpu_percent:.0f} %" for p in phases))
    print(
        f"clicks stored {stored:,} == redirects answered {answered:,}: {stored == answered}"
        f" (server exit {returncode})"
    )
    return ok and stored == answered and ratio < 2


async def roster_cost(url: str, tmp: Path, amplifiers: int, calls: int) -> tuple[float, ...]:
    """(campaign stats p50, p95, baseline p50, p95) in ms for a roster of `amplifiers`."""
    settings = bench_settings(url, tmp, scanner_window=0)
    seeded = await seed(settings, amplifiers)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        engine = app.state.engine
        rows = await _link_rows(engine, [code for s in seeded.sequences for code in s[:2]])
        now = utcnow()
        clicks = [
            ClickEvent(link, delivery, kind, now, False, None, f"{i:032x}", "desktop", None)
            for link, delivery, kind in rows
            for i in range(1 if kind == "share" else VISITS_PER_SHARE)
        ]
        for start in range(0, len(clicks), 5_000):
            async with engine.begin() as connection:
                await store_clicks(connection, clicks[start : start + 5_000])
        headers = {"Authorization": f"Bearer {seeded.admin_key}"}
        transport = httpx.ASGITransport(app=app)
        stats_path = f"/api/v1/campaigns/{seeded.campaign_id}/stats"
        samples: dict[str, list[float]] = {stats_path: [], "/api/v1/keys?limit=1": []}
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
            body = (await http.get(stats_path, headers=headers)).json()
            assert body["sharers"] == amplifiers, body["sharers"]
            for round_ in range(calls + 10):
                for path, times in samples.items():
                    app.state.answers.clear()
                    began = time.perf_counter()
                    response = await http.get(path, headers=headers)
                    if round_ >= 10:
                        times.append((time.perf_counter() - began) * 1000)
                    assert response.status_code == 200, response.text
    stats, baseline = samples.values()
    return (
        percentile(stats, 50),
        percentile(stats, 95),
        percentile(baseline, 50),
        percentile(baseline, 95),
    )


async def _link_rows(engine: Any, codes: list[str]) -> list[tuple[int, int, str]]:
    rows: list[tuple[int, int, str]] = []
    async with engine.connect() as connection:
        for start in range(0, len(codes), 5_000):
            found = await connection.execute(
                select(Link.id, Link.delivery_id, Link.kind).where(
                    Link.code.in_(codes[start : start + 5_000])
                )
            )
            rows += [(row.id, row.delivery_id, row.kind) for row in found.all()]
    return rows


async def roster_sizes(args: argparse.Namespace) -> int:
    print(
        f"{'amplifiers':>10} {'stats p50':>10} {'p95':>8} {'baseline p50':>13} {'p95':>8} "
        f"{'p50 / baseline':>15}"
    )
    for size in (int(n) for n in args.roster_sizes.split(",")):
        tmp = Path(tempfile.mkdtemp(prefix="amplify-bench-live-"))
        url, scratch = await bench_database(args.database_url, f"roster{size}", tmp)
        try:
            await asyncio.to_thread(upgrade, url)
            p50, p95, base50, base95 = await roster_cost(url, tmp, size, args.calls)
        finally:
            await discard_bench_files(args.database_url, url, scratch, tmp, keep_logs=False)
        print(
            f"{size:>10,} {p50:10.2f} {p95:8.2f} {base50:13.2f} {base95:8.2f} "
            f"{p50 / base50:14.2f}x",
            flush=True,
        )
    return 0


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=None, help="PostgreSQL: a scratch db beside it")
    parser.add_argument("--amplifiers", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=500, help="redirects per second")
    parser.add_argument("--seconds", type=float, default=20, help="per redirect phase")
    parser.add_argument("--idle-seconds", type=float, default=10)
    parser.add_argument("--roster-sizes", default=None, help="e.g. 1000,10000,50000")
    parser.add_argument("--calls", type=int, default=100, help="per roster size")
    args = parser.parse_args()
    if args.roster_sizes:
        return await roster_sizes(args)
    tmp = Path(tempfile.mkdtemp(prefix="amplify-bench-live-"))
    url, scratch = await bench_database(args.database_url, "live", tmp)
    print(f"database {make_url(url).get_backend_name()}", flush=True)
    try:
        await asyncio.to_thread(upgrade, url)
        ok = await run(args, url, tmp)
    finally:
        if scratch and args.database_url:
            await drop_scratch_database(args.database_url, url)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
