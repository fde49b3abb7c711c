"""Fault benches for the two durability promises, on real processes.

    python bench/faults.py workers [--database-url URL] [--amplifiers 5000] [--kill-every 1.5]
    python bench/faults.py clicks  [--database-url URL] [--rate 300]

`workers`: two `amplify worker` processes send one campaign through a local SMTP sink that
records every accepted mail; the lease is 5 s and AMPLIFY_SEND_RATE caps each worker so
the queue takes more than three leases to drain. It prints the duplicates and the missing
digests (both must be 0). With `--kill-every S` one worker is SIGKILLed every S seconds (the two
take turns) and started again; duplicates must then stay within the mails that the killed worker
had accepted in the half second before each kill (mails sent but not yet marked).

`clicks`: `amplify serve` answers redirects at a fixed rate from distinct visitors and is
SIGKILLed mid-load; it prints the answered clicks that were not stored, and what that is in
seconds of traffic, against the promised bound (the flush interval plus one commit).
"""

import argparse
import asyncio
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
from aiosmtpd.controller import Controller
from sqlalchemy import text
from sqlalchemy.engine import make_url

from app.core.config import Settings
from app.core.db import make_engine
from app.core.migrate import upgrade
from bench.common import (
    bench_database,
    bench_settings,
    discard_bench_files,
)
from bench.load import Server, fixed_rate, free_port
from bench.redirect import redirect_requests, seed, service_env

WAIT_BUCKET = re.compile(r'amplify_click_wait_seconds_bucket\{le="([^"]+)"\} ([0-9.e+]+)')
LEASE_SECONDS = 5.0
KILL_WINDOW = 0.5


@dataclass
class Accepted:
    at: float
    sender: str
    recipient: str


@dataclass
class SinkHandler:
    accepted: list[Accepted] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        recipient = envelope.rcpt_tos[0]
        self.accepted.append(Accepted(time.monotonic(), envelope.mail_from, recipient))
        return "250 OK"


def worker_process(env: dict[str, str], name: str, tmp: Path) -> subprocess.Popen[bytes]:
    env = {**env, "AMPLIFY_MAIL_FROM": f"Bench <{name}@bench.test>"}
    log = (tmp / f"{name}.log").open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "app", "worker"],
        env=env,
        cwd=tmp,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )


async def campaign_status(url: str) -> tuple[str, int]:
    engine = make_engine(url)
    try:
        async with engine.connect() as connection:
            status = (await connection.execute(text("SELECT status FROM campaigns"))).scalar_one()
            sent = (
                await connection.execute(
                    text("SELECT count(*) FROM deliveries WHERE status = 'sent'")
                )
            ).scalar_one()
    finally:
        await engine.dispose()
    return str(status), int(sent)


async def bench_workers(args: argparse.Namespace, url: str, settings: Settings, tmp: Path) -> bool:
    await seed(settings, args.amplifiers)
    handler = SinkHandler()
    port = free_port()
    sink = Controller(handler, hostname="127.0.0.1", port=port)
    sink.start()
    # Both workers together need more than three leases for the queue.
    per_worker_rate = args.rate or round(args.amplifiers / (2 * 4 * LEASE_SECONDS))
    env = service_env(url, tmp, 8000) | {
        "AMPLIFY_SMTP_PORT": str(port),
        "AMPLIFY_LEASE_SECONDS": str(LEASE_SECONDS),
        "AMPLIFY_SEND_RATE": str(per_worker_rate),
        "AMPLIFY_WORKER_POLL_SECONDS": "0.2",
    }
    workers = {name: worker_process(env, name, tmp) for name in ("w1", "w2")}
    kills: list[tuple[float, str]] = []
    started = time.monotonic()
    turn = 0
    try:
        while True:
            await asyncio.sleep(args.kill_every or 0.5)
            status, sent = await campaign_status(url)
            if status != "sending":
                break
            if time.monotonic() - started > args.timeout:
                print(f"timed out: campaign still {status}, {sent} sent")
                break
            if args.kill_every:
                name = ("w1", "w2")[turn % 2]
                turn += 1
                workers[name].send_signal(signal.SIGKILL)
                workers[name].wait()
                kills.append((time.monotonic(), name))
                workers[name] = worker_process(env, name, tmp)
        seconds = time.monotonic() - started
    finally:
        for process in workers.values():
            process.send_signal(signal.SIGTERM)
        for process in workers.values():
            process.wait(timeout=60)
        sink.stop()

    # Each attempt has its own Message-ID: a digest sent twice is a recipient mailed twice.
    ids = Counter(a.recipient for a in handler.accepted)
    duplicates = sum(ids.values()) - len(ids)
    missing = args.amplifiers - len(ids)
    in_windows = sum(
        1
        for kill_at, name in kills
        for a in handler.accepted
        if a.sender == f"{name}@bench.test" and kill_at - KILL_WINDOW <= a.at <= kill_at
    )
    by_worker = Counter(a.sender for a in handler.accepted)
    print(f"amplifiers               {args.amplifiers}")
    print(f"lease / rate per worker  {LEASE_SECONDS} s / {per_worker_rate} mails/s")
    print(f"drain time               {seconds:.1f} s ({seconds / LEASE_SECONDS:.1f} leases)")
    print(f"mails accepted           {sum(ids.values())} ({dict(by_worker)})")
    print(f"distinct recipients      {len(ids)}")
    print(f"missing                  {missing}")
    print(f"duplicates               {duplicates}")
    if args.kill_every:
        print(f"SIGKILLs                 {len(kills)} (every {args.kill_every} s)")
        print(f"accepted in kill windows {in_windows} (the killed worker's last {KILL_WINDOW} s)")
        ok = missing == 0 and duplicates <= in_windows
    else:
        ok = missing == 0 and duplicates == 0
    print("check                    " + ("OK" if ok else "FAILED"))
    return ok


async def count_clicks(url: str) -> int:
    engine = make_engine(url)
    try:
        async with engine.connect() as connection:
            return int((await connection.execute(text("SELECT count(*) FROM clicks"))).scalar_one())
    finally:
        await engine.dispose()


async def longest_click_wait(port: int, *, until: float) -> float:
    """Scrape /metrics until `until`; the upper bound of the longest click wait it reported."""
    longest = 0.0
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        while time.monotonic() < until:
            await asyncio.sleep(min(0.2, max(0.0, until - time.monotonic())))
            try:
                text_ = (await http.get("/metrics")).text
            except httpx.HTTPError:
                continue
            buckets = [
                (float(le), float(count))
                for le, count in WAIT_BUCKET.findall(text_)
                if le != "+Inf"
            ]
            total = max((count for _, count in buckets), default=0.0)
            reached = [le for le, count in buckets if count >= total > 0]
            if reached:
                longest = max(longest, min(reached))
    return longest


async def bench_clicks(args: argparse.Namespace, url: str, settings: Settings, tmp: Path) -> bool:
    links = await seed(settings, 200)
    codes = [code for code, kind in links if kind == "visit"]
    random.Random(3).shuffle(codes)
    port = free_port()
    server = Server("app", port, service_env(url, tmp, port), tmp / "serve.log", tmp)
    await server.wait_ready("/healthz", 200)
    flush_seconds = 0.1
    requests = redirect_requests(port, codes)
    load = asyncio.create_task(fixed_rate(port, requests, args.rate, args.seconds, 64))
    kill_after = args.seconds * 0.6
    max_wait = await longest_click_wait(port, until=time.monotonic() + kill_after)
    server.process.send_signal(signal.SIGKILL)
    server.process.wait()
    result = await load
    stored = await count_clicks(url)
    lost = result.redirects - stored
    promised = flush_seconds + args.commit_seconds
    # The recorder's own figure: how long the oldest click of any batch had waited when its
    # commit ended, i.e. what a crash at the worst moment so far would have lost.
    bound = args.rate * (max(promised, max_wait) + 0.05)
    print(f"rate                     {args.rate:.0f} redirects/s, SIGKILL after {kill_after:.1f} s")
    print(f"answered redirects       {result.redirects}")
    print(f"clicks stored            {stored}")
    print(f"answered but lost        {lost} = {lost / args.rate * 1000:.0f} ms of traffic")
    print(
        f"promised                 {promised * 1000:.0f} ms (flush {flush_seconds * 1000:.0f} ms + "
        f"one commit, taken as {args.commit_seconds * 1000:.0f} ms)"
    )
    print(f"longest wait (/metrics)  <= {max_wait * 1000:.0f} ms (amplify_click_wait_seconds)")
    ok = 0 <= lost <= bound
    print("check                    " + ("OK" if ok else "FAILED"))
    return ok


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenario", choices=("workers", "clicks"))
    parser.add_argument("--database-url", default=None, help="PostgreSQL: a scratch db beside it")
    parser.add_argument("--amplifiers", type=int, default=5000)
    parser.add_argument(
        "--rate",
        type=float,
        default=0,
        help="workers: mails/s per worker; clicks: redirects/s (default 300)",
    )
    parser.add_argument("--kill-every", type=float, default=0.0)
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--seconds", type=float, default=5.0, help="clicks: length of the load")
    parser.add_argument(
        "--commit-seconds",
        type=float,
        default=0.05,
        help="clicks: the commit time allowed for in the bound",
    )
    args = parser.parse_args()
    if args.scenario == "clicks" and not args.rate:
        args.rate = 300
    tmp = Path(tempfile.mkdtemp(prefix="amplify-bench-faults-"))
    url, scratch = await bench_database(args.database_url, "faults", tmp)
    ok = False
    try:
        await asyncio.to_thread(upgrade, url)
        settings = bench_settings(url, tmp, scanner_window=0)
        print(f"database                 {make_url(url).get_backend_name()}")
        if args.scenario == "workers":
            ok = await bench_workers(args, url, settings, tmp)
        else:
            ok = await bench_clicks(args, url, settings, tmp)
        return 0 if ok else 1
    finally:
        await discard_bench_files(args.database_url, url, scratch, tmp, keep_logs=not ok)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(asyncio.run(main()))
