"""Combined digests against plain ones, in one run, into postfix's C `smtp-sink`.

    python bench/combined_digests.py [--amplifiers 10000] [--connections 4] [--database-url URL]

Half the roster gets every campaign as it is sent, half a daily digest. Three campaigns are
sent (snapshots taken) with the API's clock two days back, so the daily half's slot has passed.
Phase 1: one in-process worker whose clock is before the slot sends the plain digests alone
(3 × half the roster). Phase 2: a fresh worker on the real clock releases the slot: one
combined mail per daily amplifier carrying its three campaigns. Prints both rates in mails/s
and their ratio (the target: combined ≥ 0.8× plain), and checks that every plain amplifier got
three mails, every daily one exactly one, and that each combined mail's Message-ID is on its
three deliveries.

Then the transport alone: the first plain and the first combined mail of the run, as the
engine rendered them, are sent again as many times over the same number of connections into
the same sink, with no database and no composing: the ratio a combined mail's size allows on
this machine, whatever the engine does.
"""

import argparse
import asyncio
import cProfile
import pstats
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
from sqlalchemy import func, select

from app.core.db import utcnow
from app.core.migrate import upgrade
from app.main import create_app
from app.models import Campaign, Delivery, DeliveryStatus, Role
from app.sending.engine import build_worker
from app.sending.mailer import SmtpConfig
from app.sending.parts import CampaignState, ComposedMail, Composer, Job
from bench.common import (
    NETWORKS,
    amplifier_rows,
    bench_database,
    create_campaign,
    discard_bench_files,
    run_bench,
    seed_organization,
    sending_bench_settings,
)
from bench.load import free_port
from bench.send_digests import Sink, blast, ensure_smtp_sink

CAMPAIGNS = 3


async def send_campaigns(app: Any, headers: dict[str, str]) -> list[int]:
    """Three campaigns to the whole roster, snapshots taken two days ago by the API's clock."""
    app.state.clock = lambda: utcnow() - timedelta(days=2)
    ids = []
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
        for n in range(CAMPAIGNS):
            campaign = await create_campaign(http, headers, name=f"Bench combined {n}")
            response = await http.post(f"/api/v1/campaigns/{campaign['id']}/send", headers=headers)
            assert response.status_code == 202, response.text
            ids.append(int(campaign["id"]))
    app.state.clock = utcnow
    return ids


class FirstMail:
    """A composer that keeps the bytes of the first mail it makes."""

    def __init__(self, inner: Composer) -> None:
        self.inner = inner
        self.raw = b""

    async def compose(
        self, job: Job, *, states: Mapping[int, CampaignState], eight_bit: bool
    ) -> ComposedMail:
        mail = await self.inner.compose(job, states=states, eight_bit=eight_bit)
        self.raw = self.raw or mail.raw
        return mail


async def run_until(
    app: Any,
    settings: Any,
    now: Callable[[], datetime],
    done: Callable[[], Any],
    *,
    profile: bool = False,
) -> tuple[float, bytes]:
    """Seconds one worker on clock `now` takes until `done()` says so, and its first mail."""
    worker = build_worker(settings, app.state.sessionmaker, app.state.signer, now=now)
    worker.composer = first = FirstMail(worker.composer)
    profiler = cProfile.Profile() if profile else None
    if profiler:
        profiler.enable()
    started = time.perf_counter()
    task = asyncio.create_task(worker.run())
    while True:
        if await done():
            break
        await asyncio.sleep(0.05)
    seconds = time.perf_counter() - started
    worker.stop()
    await task
    if profiler:
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
    return seconds, first.raw


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--amplifiers", type=int, default=10_000)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--profile", action="store_true", help="cProfile both phases")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="amplify-bench-"))
    url, scratch = await bench_database(args.database_url, "combined", tmp)
    try:
        return await run(args, url, tmp)
    finally:
        await discard_bench_files(args.database_url, url, scratch, tmp, keep_logs=False)


async def run(args: argparse.Namespace, url: str, tmp: Path) -> int:
    """The two phases on the database at `url` (a scratch one on PostgreSQL)."""
    sink_binary = ensure_smtp_sink()
    port = free_port()
    settings = sending_bench_settings(url, tmp, smtp_port=port, connections=args.connections)
    await asyncio.to_thread(upgrade, url)
    app = create_app(settings)
    daily = args.amplifiers // 2
    plain = args.amplifiers - daily
    async with app.router.lifespan_context(app):
        now = utcnow()

        def roster(org_id: int) -> list[dict[str, Any]]:
            rows = amplifier_rows(org_id, args.amplifiers, NETWORKS, now)
            for n, row in enumerate(rows):
                row["frequency"] = "daily" if n % 2 else "each"
            return rows

        org = await seed_organization(
            app, name=f"Bench {time.time()}", role=Role.EDITOR, roster=roster
        )
        maker = app.state.sessionmaker
        snapshot_started = time.perf_counter()
        campaign_ids = await send_campaigns(app, org.headers)
        snapshot_seconds = time.perf_counter() - snapshot_started

        async def plain_done() -> bool:
            async with maker() as session:
                left = await session.scalar(
                    select(func.count()).where(
                        Delivery.status == DeliveryStatus.PENDING, Delivery.due_at.is_(None)
                    )
                )
            return left == 0

        async def slot_done() -> bool:
            async with maker() as session:
                sending = await session.scalar(
                    select(func.count()).where(
                        Campaign.id.in_(campaign_ids), Campaign.status != "sent"
                    )
                )
            return sending == 0

        sink = Sink(sink_binary, port, tmp / "sink.log")
        try:
            before_slot = lambda: utcnow() - timedelta(days=3)  # noqa: E731
            plain_seconds, plain_mail = await run_until(
                app, settings, before_slot, plain_done, profile=False
            )
            combined_seconds, combined_mail = await run_until(
                app, settings, utcnow, slot_done, profile=args.profile
            )
            config = SmtpConfig.from_settings(settings)
            plain_blast = await blast(config, args.connections, plain * CAMPAIGNS, plain_mail)
            combined_blast = await blast(config, args.connections, daily, combined_mail)
        finally:
            sink_count = sink.stop()
        async with maker() as session:
            per_amplifier = (
                await session.execute(
                    select(
                        Delivery.amplifier_id,
                        func.count(),
                        func.count(func.distinct(Delivery.message_id)),
                    )
                    .where(Delivery.status == DeliveryStatus.SENT)
                    .group_by(Delivery.amplifier_id)
                )
            ).all()
            mails = await session.scalar(
                select(func.count(func.distinct(Delivery.message_id))).where(
                    Delivery.status == DeliveryStatus.SENT
                )
            )

    plain_mails = plain * CAMPAIGNS
    plain_rate = plain_mails / plain_seconds
    combined_rate = daily / combined_seconds
    shapes = sorted({(count, ids) for _, count, ids in per_amplifier})
    ok = (
        len(per_amplifier) == args.amplifiers
        and shapes == [(CAMPAIGNS, 1), (CAMPAIGNS, CAMPAIGNS)]
        and mails == plain_mails + daily
        and sink_count in (-1, 2 * (plain_mails + daily))
    )
    print(f"database                 {url.split(':')[0]}")
    print(
        f"amplifiers               {args.amplifiers}: {plain} every campaign, {daily} daily; "
        f"{CAMPAIGNS} campaigns of 3 messages x {len(NETWORKS)} networks (snapshots "
        f"{snapshot_seconds:.1f} s)"
    )
    print(
        f"plain digests            {plain_rate:,.0f} mails/s ({plain_mails} in "
        f"{plain_seconds:.2f} s, one in-process worker, {args.connections} connections)"
    )
    print(
        f"combined digests (slot)  {combined_rate:,.0f} mails/s ({daily} mails carrying "
        f"{daily * CAMPAIGNS} deliveries in {combined_seconds:.2f} s)"
    )
    print(f"combined / plain         {combined_rate / plain_rate:.2f}x mails/s (target >= 0.80)")
    plain_floor, combined_floor = plain_mails / plain_blast, daily / combined_blast
    print(
        f"transport alone          plain {plain_floor:,.0f} mails/s ({len(plain_mail) / 1024:.1f} "
        f"KiB), combined {combined_floor:,.0f} mails/s ({len(combined_mail) / 1024:.1f} KiB): "
        f"{combined_floor / plain_floor:.2f}x (the run's first mail of each kind sent again as "
        f"many times, {args.connections} connections, same sink, no database)"
    )
    print(f"sink DATA counter        {sink_count}")
    print(
        "check                    "
        + (
            "OK: 3 plain mails per each-amplifier, 1 combined mail (3 deliveries, one "
            "Message-ID) per daily one"
            if ok
            else f"FAILED {shapes} mails={mails}"
        )
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(run_bench(main))
