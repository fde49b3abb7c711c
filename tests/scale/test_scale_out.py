"""Scale-out, as production runs it: two `amplify worker` and two `amplify serve`
(AMPLIFY_WORKER=off) processes on one database, real sockets and real SMTP.

A 10,000-amplifier roster is imported through the API, a campaign (2 messages x 2 networks) is
sent, and the SMTP server in this process checks that every amplifier got exactly one digest and
that both workers sent part of them. Then redirects are spread over both API processes, both are
stopped with SIGTERM, and every answered redirect must be a stored click, with the campaign
statistics agreeing. Timings and throughput are printed (run with `-s` to see them).

Which worker sent a mail is told by its envelope sender: each worker process gets its own
AMPLIFY_MAIL_FROM. (Nothing in the database records it: a delivery's lease owner is cleared when
it is marked sent.)

Runs on both databases: PostgreSQL is what production scales out on; on SQLite the four processes
share one WAL file (one writer at a time), which `amplify worker` supports too. The printed
digests/s are bounded by the SMTP server (aiosmtpd, in this process); bench/send_digests.py
measures the workers against a C sink.
"""

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope, Session
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.config import Settings
from app.core.db import session_scope
from app.keys import service as keys_service
from app.models import Amplifier, Campaign, Click, Delivery, Link, Role
from tests.sending.smtp import free_port

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

AMPLIFIERS = 10_000
REDIRECTS = 2_000  # half on share links, half on visit links, every one a different link
NETWORKS = ["linkedin", "x"]
WORKER_SENDERS = {"worker-1": "w1@scale.amplify.test", "worker-2": "w2@scale.amplify.test"}
REDIRECT_CONNECTIONS = 8  # keep-alive connections per API process
START_TIMEOUT = 30.0
SEND_TIMEOUT = 120.0


# --- the SMTP server ----------------------------------------------------------------------------


@dataclass
class CountingHandler:
    """Accepts every mail and counts it per recipient and per envelope sender (bodies are not
    kept, except a few samples)."""

    per_recipient: Counter[str] = field(default_factory=Counter)
    per_sender: Counter[str] = field(default_factory=Counter)
    samples: list[tuple[str, bytes]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        for recipient in envelope.rcpt_tos:
            self.per_recipient[recipient] += 1
        self.per_sender[str(envelope.mail_from)] += 1
        if len(self.samples) < 20:
            self.samples.append((envelope.rcpt_tos[0], envelope.original_content or b""))
        return "250 Message accepted"

    @property
    def total(self) -> int:
        return sum(self.per_sender.values())


@pytest.fixture
def counting_smtp() -> Iterator[tuple[CountingHandler, int]]:
    handler = CountingHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


# --- the processes ------------------------------------------------------------------------------


@dataclass
class Child:
    """`python -m app <args>` as a real child process, its output in a log file."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path
    port: int | None = None

    @classmethod
    def start(cls, name: str, args: list[str], env: dict[str, str], cwd: Path) -> "Child":
        log = cwd / f"{name}.log"
        with log.open("wb") as output:  # the child keeps its own descriptor
            process = subprocess.Popen(
                [sys.executable, "-m", "app", *args],
                env=env,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        port = int(args[args.index("--port") + 1]) if "--port" in args else None
        return cls(name, process, log, port)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def tail(self, lines: int = 25) -> str:
        return f"--- {self.name} ---\n" + "\n".join(self.output().splitlines()[-lines:])

    async def wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        async with httpx.AsyncClient(timeout=2) as http:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    pytest.fail(f"{self.name} exited with {self.process.returncode}\n{self.tail()}")
                if self.port is None:
                    if "started" in self.output():  # "worker <id> started (...)"
                        return
                else:
                    try:
                        if (await http.get(f"{self.base_url}/readyz")).status_code == 200:
                            return
                    except httpx.TransportError:
                        pass
                await asyncio.sleep(0.1)
        pytest.fail(f"{self.name} not ready after {START_TIMEOUT} s\n{self.tail()}")

    def terminate(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    async def wait(self, timeout: float = 30) -> int:
        try:
            return await asyncio.to_thread(self.process.wait, timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            pytest.fail(f"{self.name} did not stop {timeout} s after SIGTERM\n{self.tail()}")

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def _env(settings: Settings, tmp: Path, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("AMPLIFY_")}
    env.update(
        {
            "AMPLIFY_ENV": "production",
            "AMPLIFY_DATABASE_URL": settings.database_url,
            "AMPLIFY_SECRET_KEY": settings.signing_key(),
            "AMPLIFY_PUBLIC_URL": "https://amplify.test",
            "AMPLIFY_VAR_DIR": str(tmp / "var"),
            **extra,
        }
    )
    return env


@pytest.fixture
async def children() -> AsyncIterator[list[Child]]:
    started: list[Child] = []
    yield started
    for child in started:  # whatever the test left running (it stops them itself on success)
        child.kill()


# --- helpers ------------------------------------------------------------------------------------


def _roster_csv() -> str:
    lines = ["email,name,tags,networks,audience_linkedin"]
    lines += [
        f"amp{i:05d}@example.com,Amplifier {i},scale,linkedin|x,{100 + i % 900}"
        for i in range(AMPLIFIERS)
    ]
    return "\n".join(lines) + "\n"


def _browser_request(port: int, code: str, index: int) -> bytes:
    """`GET /r/{code}` from a distinct browser per redirect: every click is its own human
    visitor (so no burst, no bot, one unique visitor per link)."""
    return (
        f"GET /r/{code} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        f"Chrome/124.0.{index // 1000}.{index % 1000} Safari/537.36\r\n"
        "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
        "Accept-Language: en-US,en;q=0.9\r\n\r\n"
    ).encode()


@dataclass
class RedirectRun:
    statuses: Counter[int] = field(default_factory=Counter)  # -302: a 302 without Location
    latencies_ms: list[float] = field(default_factory=list)


async def _redirects(port: int, picked: list[tuple[str, str]], offset: int) -> RedirectRun:
    """Send the redirects over REDIRECT_CONNECTIONS keep-alive connections (a plain HTTP/1.1
    client: httpx's pool costs more CPU per request than the redirect itself), counting the
    answers by status and timing each."""
    pending = deque(
        _browser_request(port, code, 2 * i + offset) for i, (code, _kind) in enumerate(picked)
    )
    run = RedirectRun()

    async def connection() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while pending:
                started = time.perf_counter()
                writer.write(pending.popleft())
                head = await reader.readuntil(b"\r\n\r\n")
                fields = {
                    name.strip().lower(): value.strip()
                    for name, _, value in (line.partition(b":") for line in head.split(b"\r\n")[1:])
                }
                if length := int(fields.get(b"content-length", b"0")):
                    await reader.readexactly(length)
                status = int(head[9:12])
                run.latencies_ms.append((time.perf_counter() - started) * 1000)
                run.statuses[status if status != 302 or fields.get(b"location") else -302] += 1
        finally:
            writer.close()
            await writer.wait_closed()

    await asyncio.wait_for(
        asyncio.gather(*(connection() for _ in range(REDIRECT_CONNECTIONS))), timeout=60
    )
    return run


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux; NaN elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _count(maker: async_sessionmaker[AsyncSession], statement: Any) -> Any:
    async with maker() as session:
        return (await session.execute(statement)).one()


async def _visible_after(
    maker: async_sessionmaker[AsyncSession], model: Any, rows: int, timeout: float = 10
) -> tuple[int, float]:
    """How many reads from another connection missed the `rows` rows of `model` just answered
    2xx for, and the seconds until one saw them."""
    started = time.perf_counter()
    missed = 0
    while (await _count(maker, select(func.count()).select_from(model)))[0] < rows:
        missed += 1
        if time.perf_counter() - started > timeout:
            pytest.fail(f"{model.__tablename__}: fewer than {rows} rows after {timeout} s")
        await asyncio.sleep(0.002)
    return missed, time.perf_counter() - started


async def _count_all(maker: async_sessionmaker[AsyncSession], statement: Any) -> list[Any]:
    async with maker() as session:
        return [tuple(row) for row in (await session.execute(statement)).all()]


# --- the test -----------------------------------------------------------------------------------


async def test_two_workers_and_two_api_processes(
    app: FastAPI,
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    tmp_path: Path,
    counting_smtp: tuple[CountingHandler, int],
    children: list[Child],
) -> None:
    smtp, smtp_port = counting_smtp
    database = "postgresql" if settings.database_url.startswith("postgresql") else "sqlite"
    timings: dict[str, float] = {}
    began = time.perf_counter()

    # Two stateless API processes and two workers, all started at once.
    api_env = _env(
        settings,
        tmp_path,
        AMPLIFY_WORKER="off",
        # Share clicks seconds after the digest arrived would be flagged as a mail scanner.
        AMPLIFY_SCANNER_WINDOW="0",
        # Clicks wait in memory up to 5 s: the shutdown flush has to store the last ones.
        AMPLIFY_CLICK_FLUSH_SECONDS="5",
    )
    apis = [
        Child.start(
            name, ["serve", "--host", "127.0.0.1", "--port", str(free_port())], api_env, tmp_path
        )
        for name in ("api-1", "api-2")
    ]
    workers = [
        Child.start(
            name,
            ["worker"],
            _env(
                settings,
                tmp_path,
                AMPLIFY_SMTP_HOST="127.0.0.1",
                AMPLIFY_SMTP_PORT=str(smtp_port),
                AMPLIFY_MAIL_FROM=f"Scale {name} <{sender}>",
                AMPLIFY_WORKER_POLL_SECONDS="0.1",
            ),
            tmp_path,
        )
        for name, sender in WORKER_SENDERS.items()
    ]
    children.extend(apis + workers)

    async for session in session_scope(sessionmaker):
        org = await keys_service.get_or_create_organization(session, name="Scale Org")
        _key, token = await keys_service.create(
            session, organization_id=org.id, role=Role.ADMIN, name="scale"
        )
    headers = {"Authorization": f"Bearer {token}"}
    api = [httpx.AsyncClient(base_url=c.base_url, headers=headers, timeout=60) for c in apis]
    # The workers finish starting while the roster is imported.
    workers_ready = asyncio.ensure_future(
        asyncio.gather(*(worker.wait_ready() for worker in workers))
    )
    try:
        await asyncio.gather(*(child.wait_ready() for child in apis))
        timings["API processes ready"] = time.perf_counter() - began

        # Roster through api-1, campaign and send through api-2: any process serves any call.
        started = time.perf_counter()
        imported = await api[0].post(
            "/api/v1/amplifiers/import",
            content=_roster_csv().encode(),
            headers={"content-type": "text/csv"},
        )
        timings["import"] = time.perf_counter() - started
        assert imported.status_code == 200, imported.text
        assert imported.json()["created"] == AMPLIFIERS, imported.json()
        # A 2xx can arrive before its transaction commits (FastAPI runs the session
        # dependency's exit, the commit, after the response is sent): wait until the roster is
        # visible before another process snapshots it. The lag is measured and printed.
        lags = {"import": await _visible_after(sessionmaker, Amplifier, AMPLIFIERS)}

        created = await api[1].post(
            "/api/v1/campaigns",
            json={
                "name": "Scale-out",
                "subject": "Two things worth sharing",
                "networks": NETWORKS,
                "messages": [
                    {"text": f"Message {n}: we shipped it", "url": f"https://example.com/{n}"}
                    for n in range(2)
                ],
            },
        )
        assert created.status_code == 201, created.text
        campaign_id = created.json()["id"]

        await workers_ready
        timings["workers ready"] = time.perf_counter() - began
        started = time.perf_counter()
        sent = await api[1].post(f"/api/v1/campaigns/{campaign_id}/send")
        assert sent.status_code == 202, sent.text
        sending_from = time.perf_counter()
        timings["send snapshot"] = sending_from - started

        lags["send"] = await _visible_after(sessionmaker, Delivery, AMPLIFIERS)
        # A 2xx is only sent once the request's transaction is committed.
        assert all(missed == 0 for missed, _ in lags.values()), lags
        # The campaign is `sent` once no delivery is pending (a worker notices within a poll).
        cpu_before = {child.name: _cpu_seconds(child.process.pid) for child in workers}
        cpu_before["test"] = _cpu_seconds(os.getpid())
        deadline = sending_from + SEND_TIMEOUT
        while True:
            (status,) = await _count(
                sessionmaker, select(Campaign.status).where(Campaign.id == campaign_id)
            )
            if status == "sent":
                break
            if time.perf_counter() > deadline or status != "sending":
                (done,) = await _count(
                    sessionmaker,
                    select(func.count()).where(
                        Delivery.campaign_id == campaign_id, Delivery.status != "pending"
                    ),
                )
                pytest.fail(
                    f"campaign {status}, {done}/{AMPLIFIERS} deliveries done after "
                    f"{time.perf_counter() - sending_from:.0f} s\n"
                    + "\n".join(w.tail() for w in workers)
                )
            await asyncio.sleep(0.1)
        timings["sending"] = time.perf_counter() - sending_from
        cpu = {
            child.name: _cpu_seconds(child.process.pid) - cpu_before[child.name]
            for child in workers
        }
        cpu["test"] = _cpu_seconds(os.getpid()) - cpu_before["test"]

        for worker in workers:
            worker.terminate()
        for worker in workers:
            assert await worker.wait() == 0, worker.tail()
            assert "stopped" in worker.output(), worker.tail()

        statuses = dict(
            await _count_all(
                sessionmaker,
                select(Delivery.status, func.count())
                .where(Delivery.campaign_id == campaign_id)
                .group_by(Delivery.status),
            )
        )
        assert statuses == {"sent": AMPLIFIERS}, statuses
        (unique_message_ids,) = await _count(
            sessionmaker,
            select(func.count(func.distinct(Delivery.message_id))).where(
                Delivery.campaign_id == campaign_id
            ),
        )
        assert unique_message_ids == AMPLIFIERS

        # Exactly one digest per amplifier, as the SMTP server saw it.
        expected = {f"amp{i:05d}@example.com" for i in range(AMPLIFIERS)}
        assert set(smtp.per_recipient) == expected
        duplicates = {r: n for r, n in smtp.per_recipient.items() if n != 1}
        assert not duplicates, list(duplicates.items())[:10]
        assert smtp.total == AMPLIFIERS
        for recipient, raw in smtp.samples:
            mail = message_from_bytes(raw, policy=policy.default)
            assert mail["To"].addresses[0].addr_spec == recipient and mail["Message-ID"]
        # Both workers did part of the work.
        shares = {name: smtp.per_sender[sender] for name, sender in WORKER_SENDERS.items()}
        assert set(smtp.per_sender) == set(WORKER_SENDERS.values()), smtp.per_sender
        assert all(n > 0 for n in shares.values()), shares

        # Redirects over both API processes: distinct share and visit links, distinct browsers.
        links = await _count_all(
            sessionmaker,
            select(Link.code, Link.kind).where(Link.campaign_id == campaign_id),
        )
        assert len(links) == AMPLIFIERS * 2 * len(NETWORKS) * 2
        rng = random.Random(6)
        by_kind: dict[str, list[str]] = {"share": [], "visit": []}
        for code, kind in links:
            by_kind[kind].append(code)
        picked = [
            (code, kind)
            for kind in ("share", "visit")
            for code in rng.sample(sorted(by_kind[kind]), REDIRECTS // 2)
        ]
        rng.shuffle(picked)
        started = time.perf_counter()
        results = await asyncio.gather(
            *(
                _redirects(child.port or 0, picked[index::2], offset=index)
                for index, child in enumerate(apis)
            )
        )
        timings["redirects"] = time.perf_counter() - started
        answered = {child.name: result for child, result in zip(apis, results, strict=True)}
        for name, result in answered.items():
            assert result.statuses == {302: REDIRECTS // 2}, (name, result.statuses)
        latencies = sorted(ms for result in results for ms in result.latencies_ms)
        (stored_before_stop,) = await _count(sessionmaker, select(func.count()).select_from(Click))

        started = time.perf_counter()
        for child in apis:
            child.terminate()
        for child in apis:
            # uvicorn shuts down gracefully, then re-raises SIGTERM so the exit status shows it.
            assert await child.wait() in (0, -signal.SIGTERM), child.tail()
        timings["API shutdown"] = time.perf_counter() - started
    finally:
        workers_ready.cancel()
        for http in api:
            await http.aclose()

    # Every answered redirect is a stored click, whichever process answered it.
    clicks = dict(
        await _count_all(sessionmaker, select(Click.kind, func.count()).group_by(Click.kind))
    )
    (bots,) = await _count(sessionmaker, select(func.count()).where(Click.is_bot.is_(True)))
    assert clicks == {"share": REDIRECTS // 2, "visit": REDIRECTS // 2}, clicks
    assert bots == 0

    # The campaign statistics (from the rollups both processes kept) agree with the clicks.
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver", headers=headers
    ) as local:
        stats = (await local.get(f"/api/v1/campaigns/{campaign_id}/stats")).json()
    (sharers,) = await _count(
        sessionmaker,
        select(func.count(func.distinct(Link.amplifier_id))).where(
            Link.id.in_(select(Click.link_id).where(Click.kind == "share"))
        ),
    )
    assert stats["recipients"] == stats["sent"] == AMPLIFIERS, stats
    assert stats["failed"] == 0
    assert stats["share_clicks"] == REDIRECTS // 2
    assert stats["visits"] == stats["unique_visitors"] == REDIRECTS // 2
    assert stats["bot_clicks"] == 0
    assert stats["sharers"] == sharers
    assert sum(n["share_clicks"] + n["visits"] for n in stats["by_network"].values()) == REDIRECTS
    assert sum(m["share_clicks"] + m["visits"] for m in stats["by_message"]) == REDIRECTS

    total = time.perf_counter() - began
    sending, redirecting = timings["sending"], timings["redirects"]
    links_made = AMPLIFIERS * len(NETWORKS) * 2 * 2
    report = [
        f"scale-out on {database}: {AMPLIFIERS:,} amplifiers, 2 x `amplify worker`, "
        "2 x `amplify serve` (AMPLIFY_WORKER=off)",
        f"processes ready    API {timings['API processes ready']:.2f} s, "
        f"workers {timings['workers ready']:.2f} s after start",
        f"import (CSV, API)  {timings['import']:.2f} s",
        "read after 2xx     "
        + ", ".join(
            f"{what}: {missed} stale read(s), visible after {seconds * 1000:.0f} ms"
            for what, (missed, seconds) in lags.items()
        ),
        f"send snapshot      {timings['send snapshot']:.2f} s ({links_made:,} links)",
        f"digests            {AMPLIFIERS:,} in {sending:.2f} s = {AMPLIFIERS / sending:,.0f}/s "
        f"(worker-1 {shares['worker-1']:,}, worker-2 {shares['worker-2']:,}; one each)",
        f"CPU while sending  worker-1 {cpu['worker-1']:.1f} s, worker-2 {cpu['worker-2']:.1f} s, "
        f"SMTP server (aiosmtpd, this process) {cpu['test']:.1f} s",
        f"redirects          {REDIRECTS:,} in {redirecting:.2f} s = "
        f"{REDIRECTS / redirecting:,.0f}/s (api-1 {answered['api-1'].statuses[302]:,}, "
        f"api-2 {answered['api-2'].statuses[302]:,}; {2 * REDIRECT_CONNECTIONS} connections, "
        f"p50 {latencies[len(latencies) // 2]:.1f} ms, "
        f"p99 {latencies[len(latencies) * 99 // 100]:.1f} ms)",
        f"clicks stored      {stored_before_stop:,} before SIGTERM, {REDIRECTS:,} after "
        f"(shutdown {timings['API shutdown']:.2f} s)",
        f"wall time          {total:.2f} s (load average {os.getloadavg()[0]:.1f}, "
        f"{os.cpu_count()} CPUs)",
    ]
    print("\n" + "\n  ".join(report))
