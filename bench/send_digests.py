"""Digest sending throughput against postfix's C `smtp-sink`, with the sink's ceiling measured
in the same run (one pre-rendered message blasted over the same number of connections).

    python bench/send_digests.py [--amplifiers 10000] [--connections 4] [--database-url URL]
                                 [--dkim off,ed25519,rsa] [--rounds 2] [--variants 0]

Each DKIM mode sends the whole roster once per round (a campaign each), rounds interleaved, in the
same run, so signing costs read as ratios to the unsigned send. Every send shows the personal
impact block (the default); one more unsigned send per round has it off (the organization's
`show_impact`), so the block's cost reads as a ratio too, and the composer alone is then timed
with it on and off in CPU seconds. The roster speaks the 13 shipped languages in turn and half
of it has points in the counters, so digests go out in every language with both kinds of block.

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
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
from sqlalchemy import func, insert, select, update

from app.core.config import Settings
from app.core.db import utcnow
from app.core.migrate import upgrade
from app.i18n import SUPPORTED
from app.main import create_app
from app.models import Amplifier, AmplifierDay, Campaign, Delivery, Organization, Role
from app.sending.compose import DigestComposer
from app.sending.dkim import DkimKey
from app.sending.engine import build_worker
from app.sending.mailer import SmtpConfig, SmtpConnection
from app.sending.parts import Claim
from app.sending.store import SqlDeliveryStore
from bench.common import (
    NETWORKS,
    amplifier_rows,
    create_campaign,
    run_bench,
    seed_organization,
    sending_bench_settings,
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
    if settings.dkim_selector and settings.dkim_private_key_file:
        env["AMPLIFY_DKIM_SELECTOR"] = settings.dkim_selector
        env["AMPLIFY_DKIM_PRIVATE_KEY_FILE"] = str(settings.dkim_private_key_file)
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


async def send_campaign(
    app: Any, headers: dict[str, str], label: str, variants: int = 0
) -> tuple[int, float]:
    """A campaign to the whole roster, sent (snapshot taken); its id and the snapshot's time."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
        campaign = await create_campaign(
            http, headers, name=f"Bench launch {label}", variants=variants
        )
        started = time.perf_counter()
        response = await http.post(f"/api/v1/campaigns/{campaign['id']}/send", headers=headers)
        assert response.status_code == 202, response.text
    return int(campaign["id"]), time.perf_counter() - started


def dkim_settings(settings: Settings, mode: str, tmp: Path) -> Settings:
    """The bench settings with DKIM signing in `mode` (off, ed25519 or rsa)."""
    if mode == "off":
        return settings
    key_file = tmp / f"dkim-{mode}.pem"
    if not key_file.exists():
        key_file.write_bytes(DkimKey.generate(mode).pem())  # type: ignore[arg-type]
    return settings.model_copy(update={"dkim_selector": "bench", "dkim_private_key_file": key_file})


async def pre_rendered_digest(app: Any, settings: Settings, campaign_id: int) -> bytes:
    """One real digest of the campaign, for the blast baseline; the campaign is then cancelled."""
    maker = app.state.sessionmaker
    worker = build_worker(settings, maker, app.state.signer)
    async with maker() as session:
        first_id, first_amplifier = (
            await session.execute(
                select(Delivery.id, Delivery.amplifier_id)
                .where(Delivery.campaign_id == campaign_id)
                .limit(1)
            )
        ).one()
    store = SqlDeliveryStore(maker, settings, worker.worker_id)
    job = (await store.load_jobs([Claim(first_id, campaign_id, first_amplifier, 1)]))[0]
    states = await store.campaign_states([campaign_id])
    message = (await worker.composer.compose(job, states=states, eight_bit=True)).raw
    async with maker() as session:
        await session.execute(
            update(Campaign).where(Campaign.id == campaign_id).values(status="cancelled")
        )
        await session.commit()
    return message


async def send_phase(
    args: argparse.Namespace, app: Any, headers: dict[str, str], settings: Settings, mode: str
) -> tuple[float, int, int, float]:
    """Send one campaign to the roster with DKIM `mode`: seconds, sent, unique ids, snapshot."""
    maker = app.state.sessionmaker
    campaign_id, snapshot_seconds = await send_campaign(app, headers, mode, args.variants)
    worker = build_worker(settings, maker, app.state.signer)  # signs as the settings say
    profiler = cProfile.Profile() if args.profile else None
    if profiler:
        profiler.enable()
    started = time.perf_counter()
    if args.processes:
        children = [worker_process(settings, args.connections) for _ in range(args.processes)]
        task = None
    else:
        children = []
        task = asyncio.create_task(worker.run())
    while True:
        async with maker() as session:
            status = await session.scalar(select(Campaign.status).where(Campaign.id == campaign_id))
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
    async with maker() as session:
        sent, unique_ids = (
            await session.execute(
                select(func.count(), func.count(func.distinct(Delivery.message_id))).where(
                    Delivery.campaign_id == campaign_id, Delivery.status == "sent"
                )
            )
        ).one()
    return send_seconds, int(sent), int(unique_ids), snapshot_seconds


async def seed_scores(maker: Any, organization_id: int) -> None:
    """Points for every other amplifier today, in the per-amplifier day counters."""
    today = utcnow().date()
    async with maker.begin() as session:
        ids = (
            await session.scalars(
                select(Amplifier.id)
                .where(Amplifier.organization_id == organization_id)
                .order_by(Amplifier.id)
            )
        ).all()
        rows = [
            {
                "organization_id": organization_id,
                "day": today,
                "amplifier_id": amplifier_id,
                "share_clicks": n % 3,
                "visits": n % 11,
                "unique_visitors": n % 7,
                "first_shares": 1 if n % 3 else 0,
                "points": (10 if n % 3 else 0) + n % 7,
            }
            for n, amplifier_id in enumerate(ids)
            if n % 2 == 0
        ]
        await session.execute(insert(AmplifierDay), rows)


async def set_show_impact(maker: Any, organization_id: int, show: bool) -> None:
    async with maker.begin() as session:
        await session.execute(
            update(Organization).where(Organization.id == organization_id).values(show_impact=show)
        )


async def compose_rates(
    app: Any, settings: Settings, campaign_id: int, rounds: int
) -> dict[bool, list[float]]:
    """Mails per CPU second of the composer alone over a sent campaign's jobs (no SMTP, no
    database writes), impact on and off alternating: the CPU the impact block costs, without
    the noise of the rest of the send or of other processes on a shared machine."""
    maker = app.state.sessionmaker
    store = SqlDeliveryStore(maker, settings, "bench-compose")
    async with maker() as session:
        rows = (
            await session.execute(
                select(Delivery.id, Delivery.amplifier_id).where(
                    Delivery.campaign_id == campaign_id
                )
            )
        ).all()
    claims = [Claim(delivery_id, campaign_id, amplifier, 1) for delivery_id, amplifier in rows]
    jobs = [
        job
        for n in range(0, len(claims), 500)
        for job in await store.load_jobs(claims[n : n + 500])
    ]
    states = await store.campaign_states([campaign_id])
    signer = app.state.signer
    composers = {
        True: DigestComposer(
            settings, signer, store.campaign_content, load_impact=store.impact_board
        ),
        False: DigestComposer(settings, signer, store.campaign_content),
    }
    rates: dict[bool, list[float]] = {False: [], True: []}
    for composer in composers.values():  # prototypes built before timing
        for job in jobs:
            await composer.compose(job, states=states, eight_bit=True)
    for round_ in range(rounds):
        for show in (False, True) if round_ % 2 == 0 else (True, False):
            started = time.process_time()
            for job in jobs:
                await composers[show].compose(job, states=states, eight_bit=True)
            rates[show].append(len(jobs) / (time.process_time() - started))
    return rates


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
    parser.add_argument(
        "--dkim",
        default="off,ed25519,rsa",
        help="comma-separated DKIM modes, one send of the roster each: off, ed25519, rsa",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=2,
        help="send the roster this many times per DKIM mode, modes interleaved; the best counts",
    )
    parser.add_argument(
        "--variants",
        type=int,
        default=0,
        help="copy variants per message beside its base text (0-10), dealt across the roster",
    )
    args = parser.parse_args()
    modes = [m.strip() for m in args.dkim.split(",") if m.strip()]
    if not modes or any(m not in ("off", "ed25519", "rsa") for m in modes):
        parser.error("--dkim takes off, ed25519 and rsa")

    sink_binary = ensure_smtp_sink()
    tmp = Path(tempfile.mkdtemp(prefix="amplify-bench-"))
    url = args.database_url or f"sqlite+aiosqlite:///{tmp / 'bench.db'}"
    port = free_port()
    settings = sending_bench_settings(url, tmp, smtp_port=port, connections=args.connections)
    await asyncio.to_thread(upgrade, url)
    app = create_app(settings)
    # (DKIM mode, impact block shown): every mode with the block, plus unsigned without it.
    phases = [(m, True) for m in modes] + ([("off", False)] if "off" in modes else [])
    results: dict[tuple[str, bool], list[tuple[float, int, int, float]]] = {p: [] for p in phases}
    async with app.router.lifespan_context(app):
        now = utcnow()

        def roster(org_id: int) -> list[dict[str, Any]]:
            rows = amplifier_rows(org_id, args.amplifiers, NETWORKS, now)
            for n, row in enumerate(rows):
                row["locale"] = SUPPORTED[n % len(SUPPORTED)]
            return rows

        org = await seed_organization(
            app, name=f"Bench {time.time()}", role=Role.EDITOR, roster=roster
        )
        await seed_scores(app.state.sessionmaker, org.id)
        sink = Sink(sink_binary, port, tmp / "sink.log")
        try:
            config = SmtpConfig(host="127.0.0.1", port=port, tls="none", user=None, password=None)
            campaign_id, _ = await send_campaign(app, org.headers, "blast")
            message = await pre_rendered_digest(app, settings, campaign_id)
            blast_seconds = await blast(config, args.connections, args.amplifiers, message)
            for round_ in range(args.rounds):
                for mode, impact in phases if round_ % 2 == 0 else phases[::-1]:
                    phase_settings = dkim_settings(settings, mode, tmp)
                    await set_show_impact(app.state.sessionmaker, org.id, impact)
                    label = f"{mode}-impact-{'on' if impact else 'off'}"
                    results[(mode, impact)].append(
                        await send_phase(args, app, org.headers, phase_settings, label)
                    )
            composed: dict[bool, list[float]] = {}
            if "off" in modes:
                await set_show_impact(app.state.sessionmaker, org.id, True)
                async with app.state.sessionmaker() as session:
                    last = await session.scalar(
                        select(func.max(Campaign.id)).where(
                            Campaign.name == "Bench launch off-impact-on"
                        )
                    )
                assert last is not None
                composed = await compose_rates(app, settings, int(last), 3 * args.rounds)
        finally:
            sink_count = sink.stop()

    ceiling = args.amplifiers / blast_seconds
    how = f"{args.processes} worker processes" if args.processes else "one in-process worker"
    print(f"database                 {url.split(':')[0]}")
    print(
        f"amplifiers               {args.amplifiers} (3 messages x {len(NETWORKS)} networks each,"
        f" {len(SUPPORTED)} languages, half with points, {1 + args.variants} wordings per message)"
    )
    print(f"sink ceiling (blast)     {ceiling:,.0f} mails/s over {args.connections} connections")
    ok = sink_count in (-1, (1 + len(phases) * args.rounds) * args.amplifiers)
    ok = ok and all(
        sent == args.amplifiers == unique_ids
        for runs in results.values()
        for _, sent, unique_ids, _ in runs
    )
    baseline = None
    for (mode, impact), runs in results.items():
        if not impact:
            continue
        seconds, sent, unique_ids, snapshot = min(runs)
        rate = args.amplifiers / seconds
        baseline = baseline or (rate if mode == "off" else None)
        versus = f", {rate / baseline:.2f}x unsigned" if baseline and mode != "off" else ""
        print(
            f"digests, DKIM {mode:<8}  {rate:,.0f} mails/s ({seconds:.2f} s, {how}; "
            f"{rate / ceiling:.2f} of the sink{versus}, best of {len(runs)}); "
            f"snapshot {snapshot:.2f} s; sent {sent}, unique Message-IDs {unique_ids}"
        )
    if ("off", False) in results:
        on_runs = [args.amplifiers / r[0] for r in results[("off", True)]]
        off_runs = [args.amplifiers / r[0] for r in results[("off", False)]]
        print(
            f"impact block, unsigned   on {', '.join(f'{r:,.0f}' for r in on_runs)} / "
            f"off {', '.join(f'{r:,.0f}' for r in off_runs)} mails/s: on/off "
            f"{max(on_runs) / max(off_runs):.2f} (best), "
            f"{statistics.median(on_runs) / statistics.median(off_runs):.2f} (median)"
        )
        ratio = statistics.median(composed[True]) / statistics.median(composed[False])
        print(
            f"composer alone           on {statistics.median(composed[True]):,.0f} / off "
            f"{statistics.median(composed[False]):,.0f} mails per CPU second (medians of "
            f"{len(composed[True])}): on/off {ratio:.2f}"
        )
    print(f"sink DATA counter        {sink_count} (blast + every send)")
    print(
        "check                    "
        + ("OK: every amplifier got exactly one digest per send" if ok else "FAILED")
    )
    shutil.rmtree(tmp, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(run_bench(main))
