"""Digest sending throughput against postfix's C `smtp-sink`, with the sink's ceiling measured
in the same run (one pre-rendered message blasted over the same number of connections).

    python bench/send_digests.py [--amplifiers 10000] [--connections 4] [--database-url URL]

Installs Debian's `postfix` (for smtp-sink) when it is missing. Prints mails/s for both and the
ratio, and checks every amplifier got exactly one digest (deliveries sent == audience, unique
Message-IDs, and the sink's own DATA counter).
"""

import argparse
import asyncio
import cProfile
import os
import pstats
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
from sqlalchemy import func, select

from app.core.config import Settings
from app.core.db import utcnow
from app.core.migrate import upgrade
from app.main import create_app
from app.models import Campaign, Delivery, Role
from app.sending.engine import build_worker
from app.sending.mailer import SmtpConfig, SmtpConnection
from app.sending.parts import Claim
from app.sending.store import SqlDeliveryStore
from bench.common import (
    NETWORKS,
    amplifier_rows,
    bench_settings,
    create_campaign,
    seed_organization,
)
from bench.load import apt_install, free_port


def ensure_smtp_sink() -> str:
    path = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
    if Path(path).exists():
        return path
    apt_install("postfix")
    return "/usr/sbin/smtp-sink"


class Sink:
    def __init__(self, binary: str, port: int, log: Path) -> None:
        # The counter goes to a file: an unread pipe would fill up and stall the sink.
        self.log = log
        self.process = subprocess.Popen(
            [
                binary,
                "-c",
                *(["-u", "nobody"] if os.geteuid() == 0 else []),
                f"127.0.0.1:{port}",
                "1024",
            ],
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        time.sleep(0.3)

    def stop(self) -> int:
        self.process.terminate()
        self.process.wait(timeout=10)
        counts = re.findall(rb"mesg=(\d+)", self.log.read_bytes())
        return int(counts[-1]) if counts else -1


def worker_process(settings: Settings, connections: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "AMPLIFY_DATABASE_URL": settings.database_url,
        "AMPLIFY_SECRET_KEY": settings.signing_key(),
        "AMPLIFY_PUBLIC_URL": settings.public_url,
        "AMPLIFY_SMTP_PORT": str(settings.smtp_port),
        "AMPLIFY_SMTP_CONNECTIONS": str(connections),
        "AMPLIFY_MAIL_FROM": settings.mail_from,
        "AMPLIFY_WORKER_POLL_SECONDS": "0.05",
        "AMPLIFY_VAR_DIR": str(settings.var_dir),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "app", "worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def blast(config: SmtpConfig, connections: int, total: int, message: bytes) -> float:
    per = [total // connections + (1 if i < total % connections else 0) for i in range(connections)]

    async def run(count: int) -> None:
        connection = SmtpConnection(config)
        for _ in range(count):
            await connection.send(
                "bench@amplify.test", "someone@example.com", message, eight_bit=True
            )
        await connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(run(n) for n in per))
    return time.perf_counter() - started


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--amplifiers", type=int, default=10_000)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--profile", action="store_true", help="cProfile the digest phase")
    parser.add_argument(
        "--processes",
        type=int,
        default=0,
        help="send with N `amplify worker` processes instead of one in-process worker",
    )
    args = parser.parse_args()

    sink_binary = ensure_smtp_sink()
    tmp = Path(tempfile.mkdtemp(prefix="amplify-bench-"))
    url = args.database_url or f"sqlite+aiosqlite:///{tmp / 'bench.db'}"
    port = free_port()
    settings = bench_settings(
        url,
        tmp,
        public_url="https://amplify.example",
        var_dir=tmp,
        smtp_port=port,
        smtp_connections=args.connections,
        mail_from="Acme Advocacy <advocacy@acme.example>",
    )
    await asyncio.to_thread(upgrade, url)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        maker = app.state.sessionmaker
        now = utcnow()
        org = await seed_organization(
            app,
            name=f"Bench {time.time()}",
            role=Role.EDITOR,
            roster=lambda org_id: amplifier_rows(org_id, args.amplifiers, NETWORKS, now),
        )
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
            headers = org.headers
            campaign = await create_campaign(http, headers)
            started = time.perf_counter()
            response = await http.post(f"/api/v1/campaigns/{campaign['id']}/send", headers=headers)
            snapshot_seconds = time.perf_counter() - started
            assert response.status_code == 202, response.text

        sink = Sink(sink_binary, port, tmp / "sink.log")
        try:
            sample = tmp / "sample.eml"
            config = SmtpConfig(host="127.0.0.1", port=port, tls="none", user=None, password=None)
            worker = build_worker(settings, maker, app.state.signer)
            # One real digest, pre-rendered, for the blast baseline.
            async with maker() as session:
                first_id, first_amplifier = (
                    await session.execute(
                        select(Delivery.id, Delivery.amplifier_id)
                        .where(Delivery.campaign_id == campaign["id"])
                        .limit(1)
                    )
                ).one()
            claim = Claim(first_id, campaign["id"], first_amplifier, 1)
            store = SqlDeliveryStore(maker, settings, worker.worker_id)
            job = (await store.load_jobs([claim]))[0]
            state = (await store.campaign_states([campaign["id"]]))[campaign["id"]]
            message = (await worker.composer.compose(job, state=state, eight_bit=True)).raw
            sample.write_bytes(message)
            blast_seconds = await blast(config, args.connections, args.amplifiers, message)

            profiler = cProfile.Profile() if args.profile else None
            if profiler:
                profiler.enable()
            started = time.perf_counter()
            if args.processes:
                children = [
                    worker_process(settings, args.connections) for _ in range(args.processes)
                ]
                task = None
            else:
                children = []
                task = asyncio.create_task(worker.run())
            while True:
                async with maker() as session:
                    status = await session.scalar(
                        select(Campaign.status).where(Campaign.id == campaign["id"])
                    )
                if status != "sending":
                    break
                await asyncio.sleep(0.05)
            send_seconds = time.perf_counter() - started
            worker.stop()
            if task is not None:
                await task
            for child in children:
                child.terminate()
                child.wait(timeout=20)
            if profiler:
                profiler.disable()
                pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
        finally:
            sink_count = sink.stop()
        async with maker() as session:
            sent, unique_ids = (
                await session.execute(
                    select(func.count(), func.count(func.distinct(Delivery.message_id))).where(
                        Delivery.campaign_id == campaign["id"], Delivery.status == "sent"
                    )
                )
            ).one()

    ours = args.amplifiers / send_seconds
    ceiling = args.amplifiers / blast_seconds
    print(f"database                 {url.split(':')[0]}")
    print(
        f"amplifiers               {args.amplifiers} (3 messages x {len(NETWORKS)} networks each)"
    )
    print(f"send snapshot (HTTP)     {snapshot_seconds:.2f} s ({args.amplifiers * 24} links)")
    print(f"sink ceiling (blast)     {ceiling:,.0f} mails/s over {args.connections} connections")
    how = f"{args.processes} worker processes" if args.processes else "one in-process worker"
    print(f"digests sent             {ours:,.0f} mails/s ({send_seconds:.2f} s, {how})")
    print(f"ratio digests / blast    {ours / ceiling:.2f}")
    print(f"deliveries sent          {sent} (unique Message-IDs {unique_ids})")
    print(f"sink DATA counter        {sink_count} (blast + digests)")
    ok = sent == args.amplifiers == unique_ids and sink_count in (-1, 2 * args.amplifiers)
    print(
        "check                    "
        + ("OK: every amplifier got exactly one digest" if ok else "FAILED")
    )
    shutil.rmtree(tmp, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    import uvloop  # what `amplify worker` and `amplify serve` run on

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        sys.exit(runner.run(main()))
