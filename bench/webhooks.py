"""Webhook delivery rate against a bare httpx loop measured in the same run.

    python bench/webhooks.py [--events 10000] [--database-url URL]

A receiver (uvicorn with httptools, one process, answering 204) listens on 127.0.0.1. The
baseline posts the same number of signed bodies to it with httpx from one process, with the
dispatcher's concurrency and nothing else: no database. Then the events are written to the
outbox of a fresh database (SQLite temp file, or a scratch PostgreSQL database beside the
given URL) and one dispatcher fans them out, claims, posts, and records every attempt; its
rate counts from the first claim to the last recorded outcome. Exits 1 when an event is lost
or duplicated, or the dispatcher stays under 500 events/s.
"""

import argparse
import asyncio
import multiprocessing
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.core.config import Settings  # noqa: E402
from app.core.db import make_engine, make_sessionmaker, session_scope  # noqa: E402
from app.core.migrate import upgrade  # noqa: E402
from app.core.scratch_databases import drop_scratch_database  # noqa: E402
from app.models import (  # noqa: E402
    Organization,
    WebhookEndpoint,
    WebhookMessage,
    WebhookMessageStatus,
)
from app.webhooks import signing  # noqa: E402
from app.webhooks.dispatcher import Dispatcher, lane_sizes  # noqa: E402
from app.webhooks.events import Event, EventType, emit_events  # noqa: E402
from bench.common import bench_database  # noqa: E402

GOAL_PER_SECOND = 500
CONCURRENCY = 64


def _receiver(port: int, counter: Any) -> None:
    import uvicorn

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        more = True
        while more:
            message = await receive()
            more = message.get("more_body", False)
        if scope["path"] == "/count":
            body = str(counter.value).encode()
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": body})
            return
        with counter.get_lock():
            counter.value += 1
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        interface="asgi3",
        lifespan="off",
        log_level="warning",
        access_log=False,
        http="httptools",
        loop="uvloop",
    )


def start_receiver() -> tuple[multiprocessing.Process, str, Any]:
    """Started before the bench's event loop: a fork must not inherit a running loop."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    context = multiprocessing.get_context("spawn")
    counter = context.Value("q", 0)
    process = context.Process(target=_receiver, args=(port, counter), daemon=True)
    process.start()
    return process, f"http://127.0.0.1:{port}", counter


async def wait_ready(base: str) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(200):
            try:
                await client.get(f"{base}/count")
                return
            except httpx.TransportError:
                await asyncio.sleep(0.05)
    raise RuntimeError("receiver did not start")


def body_of(i: int) -> bytes:
    return (
        b'{"type":"campaign.sent","timestamp":"2026-11-30T10:00:00.000000Z","data":{"campaign_id":%d}}'
        % i
    )


async def baseline(url: str, events: int, secret: str) -> float:
    """The same posts, signed, from a bare httpx loop with the dispatcher's concurrency
    spread the same way (clients of 4 connections, as many posts in flight as connections)."""
    key = signing.secret_key(secret)
    queue = iter(range(events))
    lanes = [
        (httpx.AsyncClient(limits=httpx.Limits(max_connections=n, max_keepalive_connections=n)), n)
        for n in lane_sizes(CONCURRENCY)
    ]

    async def post_many(client: httpx.AsyncClient) -> None:
        for i in queue:
            body = body_of(i)
            headers = signing.headers(key, f"msg_{i}", int(time.time()), body)
            response = await client.post(url, content=body, headers=headers)
            response.raise_for_status()

    started = time.perf_counter()
    await asyncio.gather(*(post_many(client) for client, n in lanes for _ in range(n)))
    rate = events / (time.perf_counter() - started)
    for client, _ in lanes:
        await client.aclose()
    return rate


async def dispatcher_rate(settings: Settings, url: str, events: int) -> tuple[float, int]:
    engine = make_engine(settings.database_url, **settings.pool_options())
    sessionmaker = make_sessionmaker(engine)
    async for session in session_scope(sessionmaker):
        org = Organization(name="Bench")
        session.add(org)
        await session.flush()
        session.add(
            WebhookEndpoint(
                organization_id=org.id,
                url=url,
                events=["campaign.sent"],
                secret=signing.new_secret(),
                enabled=True,
                wants_clicks=False,
            )
        )
        await session.flush()
        org_id = org.id
    for start in range(0, events, 1000):
        async for session in session_scope(sessionmaker):
            await emit_events(
                session,
                [
                    Event(org_id, EventType.CAMPAIGN_SENT, {"campaign_id": i})
                    for i in range(start, min(events, start + 1000))
                ],
            )
    dispatcher = Dispatcher(settings, sessionmaker)
    started = time.perf_counter()
    task = asyncio.create_task(dispatcher.run())
    while dispatcher.delivered + dispatcher.failed < events:  # noqa: ASYNC110 (a counter)
        await asyncio.sleep(0.01)
    elapsed = time.perf_counter() - started
    dispatcher.stop()
    await task
    async with sessionmaker() as session:
        delivered = await session.scalar(
            select(func.count())
            .select_from(WebhookMessage)
            .where(WebhookMessage.status == WebhookMessageStatus.DELIVERED)
        )
    await engine.dispose()
    return events / elapsed, int(delivered or 0)


async def main(args: argparse.Namespace, base: str, counter: Any) -> int:
    await wait_ready(base)
    bare = await baseline(f"{base}/bare", args.events, signing.new_secret())
    received_bare = counter.value
    with tempfile.TemporaryDirectory() as tmp:
        url, scratch = await bench_database(args.database_url, "webhooks", Path(tmp))
        try:
            await asyncio.to_thread(upgrade, url)
            settings = Settings(
                _env_file=None,  # type: ignore[call-arg]
                database_url=url,
                secret_key="bench-secret-key-that-is-long-enough-to-sign",
                webhook_allow_private=True,
                webhook_concurrency=CONCURRENCY,
                webhook_poll_seconds=0.05,
                var_dir=Path(tmp),
            )
            rate, delivered = await dispatcher_rate(settings, f"{base}/hooks", args.events)
        finally:
            if scratch:
                await drop_scratch_database(args.database_url or "", url)
    received = counter.value - received_bare
    engine_name = "postgresql" if (args.database_url or "").startswith("postgresql") else "sqlite"
    print(f"events: {args.events}  database: {engine_name}  concurrency: {CONCURRENCY}")
    print(f"bare httpx loop      {bare:8.0f} posts/s")
    print(f"dispatcher           {rate:8.0f} events/s  (ratio {rate / bare:.2f})")
    print(f"delivered (db)       {delivered:8d}   received by the receiver: {received}")
    ok = delivered == args.events and received == args.events and rate >= GOAL_PER_SECOND
    print("OK" if ok else f"FAIL (goal ≥ {GOAL_PER_SECOND}/s, none lost or doubled)")
    return 0 if ok else 1


def run() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    process, base, counter = start_receiver()
    try:
        return asyncio.run(main(args, base, counter))
    finally:
        process.terminate()
        process.join()


if __name__ == "__main__":
    sys.exit(run())
