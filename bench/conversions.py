"""Conversions (`POST /api/v1/conversions`) through a real `amplify serve` process, against two
floors measured on the same server in the same run: `GET /healthz` (no key, no database) and
`GET /api/v1/campaigns/{id}` (what any API call costs: the key looked up, one indexed read).

    python bench/conversions.py [--seconds 10] [--connections 64] [--rate 1000]
                                [--database-url postgresql+asyncpg://…]

Seeds a campaign (200 amplifiers x 3 messages x 4 networks) in a fresh database, sends it,
starts `amplify serve` and collects click ids the way landing pages get them: human visits
through its own redirects, stored by its click recorder. Then:
  1. closed loop: --connections keep-alive connections post conversions (each with its own
     `external_id` and value) as fast as they are answered for --seconds, and the same
     connections ask each floor as fast: requests/s of each and the ratios;
  2. open loop: --rate conversions/s for --seconds (bench/load.py's fixed-rate generator),
     latency from each request's due time.
Checks that every conversion was answered 201, that the conversions stored equal those answered
and that the campaign's stats count them all. Exits 1 when a check fails or the closed loop
stays under 1,000 conversions/s.
"""

import argparse
import asyncio
import json
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
from sqlalchemy import text
from sqlalchemy.engine import make_url

from app.core.db import make_engine
from app.core.migrate import upgrade
from bench.common import (
    bench_database,
    bench_settings,
    discard_bench_files,
    run_bench,
)
from bench.load import REQUEST_TIMEOUT, RawConnection, Server, fixed_rate, free_port
from bench.redirect import seed, service_env, user_agent

TARGET = 1_000
VISITS = 2_000


@dataclass
class LoopResult:
    seconds: float
    statuses: dict[int, int] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)

    @property
    def responses(self) -> int:
        return sum(self.statuses.values())

    @property
    def rps(self) -> float:
        return self.responses / self.seconds

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


async def closed_loop(
    port: int, requests: list[bytes], seconds: float, connections: int
) -> LoopResult:
    """Each connection sends the next unused request as soon as its last one is answered."""
    result = LoopResult(seconds=seconds)
    next_index = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal next_index
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        connection = RawConnection(reader, writer)
        try:
            while time.perf_counter() < deadline and next_index < len(requests):
                raw = requests[next_index]
                next_index += 1
                started = time.perf_counter()
                status, _ = await asyncio.wait_for(connection.fetch(raw), REQUEST_TIMEOUT)
                result.latencies_ms.append((time.perf_counter() - started) * 1000)
                result.statuses[status] = result.statuses.get(status, 0) + 1
        finally:
            connection.close()

    await asyncio.gather(*(worker() for _ in range(connections)))
    return result


def conversion_requests(
    port: int, key: str, click_ids: list[str], count: int, prefix: str
) -> list[bytes]:
    """`count` conversion posts, each with its own external id, over the click ids in turn."""
    requests = []
    for k in range(count):
        body = json.dumps(
            {
                "click_id": click_ids[k % len(click_ids)],
                "event": "purchase",
                "value": round(10 + (k % 90) * 0.5, 2),
                "external_id": f"{prefix}-{k}",
            },
            separators=(",", ":"),
        ).encode()
        head = (
            f"POST /api/v1/conversions HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        requests.append(head + body)
    return requests


def get_requests(port: int, path: str, count: int, key: str | None = None) -> list[bytes]:
    auth = f"Authorization: Bearer {key}\r\n" if key else ""
    return [f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{auth}\r\n".encode()] * count


async def collect_click_ids(port: int, codes: list[str]) -> list[str]:
    """Human visits through the server's redirects; the click ids their Location carried."""
    found: list[str] = []
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        for i, code in enumerate(codes):
            response = await http.get(f"/r/{code}", headers={"user-agent": user_agent(i)})
            query = parse_qs(urlsplit(response.headers["location"]).query)
            found += query.get("amp_cid", [])
    return found


async def scalar(url: str, sql: str) -> int:
    engine = make_engine(url)
    try:
        async with engine.connect() as connection:
            return int((await connection.execute(text(sql))).scalar_one())
    finally:
        await engine.dispose()


async def wait_for_count(url: str, sql: str, expected: int, timeout: float = 10) -> int:
    deadline = time.perf_counter() + timeout
    while True:
        count = await scalar(url, sql)
        if count >= expected or time.perf_counter() > deadline:
            return count
        await asyncio.sleep(0.05)


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rate", type=float, default=1000, help="open-loop run, req/s")
    parser.add_argument("--pool", type=int, default=10, help="AMPLIFY_DB_POOL_SIZE")
    parser.add_argument("--database-url", default=None, help="PostgreSQL: a scratch db beside it")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="amplify-bench-conversions-"))
    url, scratch = await bench_database(args.database_url, "conversions", tmp)
    backend = make_url(url).get_backend_name()
    ok = False
    try:
        await asyncio.to_thread(upgrade, url)
        settings = bench_settings(url, tmp, scanner_window=0)
        seeded = await seed(settings, 200)
        key = seeded.key
        visit_codes = [code for code, kind in seeded.links if kind == "visit"][:VISITS]
        port = free_port()
        env = {**service_env(url, tmp, port), "AMPLIFY_DB_POOL_SIZE": str(args.pool)}
        server = Server("app", port, env, tmp / "amplify.log", tmp)
        try:
            await server.wait_ready("/readyz", 200)
            click_ids = await collect_click_ids(port, visit_codes)
            stored_ids = await wait_for_count(url, "SELECT count(*) FROM click_ids", len(click_ids))
            print(
                f"database {backend}; {len(click_ids)} click ids from {len(visit_codes)} human "
                f"visits, {stored_ids} stored; closed loop {args.connections} connections for "
                f"{args.seconds:.0f} s, then {args.rate:,.0f} req/s for {args.seconds:.0f} s",
                flush=True,
            )
            most = int(args.seconds * 5_000)
            warm = conversion_requests(port, key, click_ids, most, "warm")
            warmed = await closed_loop(port, warm, 2, args.connections)
            campaign = f"/api/v1/campaigns/{await scalar(url, 'SELECT min(id) FROM campaigns')}"
            await closed_loop(port, get_requests(port, "/healthz", 10_000), 2, args.connections)
            cpu = server.cpu_seconds()
            posted = await closed_loop(
                port,
                conversion_requests(port, key, click_ids, most, "loop"),
                args.seconds,
                args.connections,
            )
            cpu = server.cpu_seconds() - cpu
            floor = await closed_loop(
                port, get_requests(port, "/healthz", most * 4), args.seconds, args.connections
            )
            api_floor = await closed_loop(
                port, get_requests(port, campaign, most, key), args.seconds, args.connections
            )
            rate_requests = conversion_requests(
                port, key, click_ids, int(args.rate * args.seconds), "rate"
            )
            rate = await fixed_rate(
                port, rate_requests, args.rate, args.seconds, args.connections * 4
            )
        finally:
            await server.stop()
        created = sum(run.statuses.get(201, 0) for run in (warmed, posted)) + rate.statuses.get(
            201, 0
        )
        stored = await scalar(url, "SELECT count(*) FROM conversions")
        counted = await scalar(url, "SELECT coalesce(sum(conversions), 0) FROM campaign_hours")

        print()
        print(f"{'run':<36} {'requests/s':>10} {'p50':>9} {'p99':>9}  statuses")
        for label, loop in (
            ("POST /api/v1/conversions", posted),
            ("GET /healthz (floor)", floor),
            ("GET /api/v1/campaigns/{id} (floor)", api_floor),
        ):
            print(
                f"{label:<36} {loop.rps:>10,.0f} {loop.percentile(50):>7.2f}ms "
                f"{loop.percentile(99):>7.2f}ms  {dict(sorted(loop.statuses.items()))}"
            )
        print(
            f"ratio conversions/healthz: {posted.rps / floor.rps:.3f}; conversions/campaign "
            f"read: {posted.rps / api_floor.rps:.3f}; server CPU during the conversions loop "
            f"{100 * cpu / args.seconds:.0f}% (100% = one core)"
        )
        print(
            f"open loop at {args.rate:,.0f} req/s: answered {rate.responses} of {rate.scheduled} "
            f"in {rate.elapsed:.2f} s ({rate.responses / rate.elapsed:,.0f}/s), p50 "
            f"{rate.percentile(50):.2f} ms, p99 {rate.percentile(99):.2f} ms from due time, "
            f"statuses {dict(sorted(rate.statuses.items()))}, unsent {rate.unsent}, "
            f"abandoned {rate.abandoned}"
        )
        all_created = set(posted.statuses) | set(warmed.statuses) == {201} and set(
            rate.statuses
        ) <= {201}
        print(
            f"conversions answered 201 (warm-up included) {created}, stored {stored}, counted in "
            f"the campaign's stats {counted}: "
            + ("EQUAL" if created == stored == counted and all_created else "NOT EQUAL")
        )
        fast = posted.rps >= TARGET
        print(f"closed loop {posted.rps:,.0f} conversions/s (target >= {TARGET:,})")
        ok = fast and all_created and created == stored == counted
        print("check: " + ("OK" if ok else "FAILED"))
        return 0 if ok else 1
    finally:
        await discard_bench_files(args.database_url, url, scratch, tmp, keep_logs=not ok)


if __name__ == "__main__":
    sys.exit(run_bench(main))
