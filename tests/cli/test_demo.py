"""`amplify demo` end to end: the real service on a real port, real SMTP to the demo's sink, real
HTTP clicks; then its printed summary is checked against the API with the printed viewer key."""

import asyncio
import random
import re
import socket
import threading
from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from app.core.config import Settings
from app.core.db import make_engine, session_scope
from app.core.migrate import upgrade
from app.core.scratch_databases import create_scratch_database, drop_scratch_database
from app.demo import DemoError, DemoResult, run_demo
from app.demo.clicks import LinkRow, plan_clicks
from app.demo.data import PREVIEW_BOTS, make_roster
from app.demo.sandbox import listen
from app.models import Campaign, Click, LinkKind, Organization
from tests.conftest import TEST_SECRET, _database_url
from tests.sending.smtp import free_port

READY_TIMEOUT = 40


@pytest.fixture
async def demo_settings(tmp_path: Path) -> AsyncIterator[Settings]:
    """The demo's defaults (a fresh SQLite demo.db in the var dir), or, when the suite runs on
    PostgreSQL, an explicit AMPLIFY_DATABASE_URL naming a scratch database of its own."""
    values: dict[str, Any] = {"var_dir": tmp_path / "var", "secret_key": TEST_SECRET}
    url = _database_url(tmp_path)
    if not url.startswith("postgresql"):
        yield Settings(_env_file=None, **values)
        return
    scratch = await create_scratch_database(url, "run")
    try:
        yield Settings(_env_file=None, database_url=scratch, **values)
    finally:
        await drop_scratch_database(url, scratch)


class DemoThread:
    """`run_demo` in a thread, its output collected line by line."""

    def __init__(self, settings: Settings, port: int) -> None:
        self.lines: list[str] = []
        self.ready = threading.Event()
        self.stop = threading.Event()
        self.result: DemoResult | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(
            target=self._run, args=(settings, port), name="amplify-demo", daemon=True
        )

    def _run(self, settings: Settings, port: int) -> None:
        try:
            self.result = run_demo(
                host="127.0.0.1",
                port=port,
                amplifiers=50,
                settings=settings,
                ready=self.ready,
                stop=self.stop,
                echo=self.lines.append,
            )
        except BaseException as exc:
            self.error = exc
        finally:
            self.ready.set()  # never leave the test waiting on a failed run

    def printed(self, label: str) -> str:
        matches = [line for line in self.lines if line.startswith(f"{label}:")]
        assert len(matches) == 1, (label, self.lines)
        return matches[0].split(":", 1)[1].strip()


def _numbers(text: str) -> list[float]:
    return [float(n.replace(",", "")) for n in text.split()]


def _table(lines: list[str], header: str) -> list[str]:
    """The rows under the line starting with `header`, up to the next blank line."""
    start = next(i for i, line in enumerate(lines) if line.startswith(header)) + 1
    end = next(i for i in range(start, len(lines)) if not lines[i].strip())
    return lines[start:end]


async def test_demo_end_to_end(demo_settings: Settings, tmp_path: Path) -> None:
    demo = DemoThread(demo_settings, free_port())
    demo.thread.start()
    try:
        assert await asyncio.to_thread(demo.ready.wait, READY_TIMEOUT), demo.lines
        assert demo.error is None, f"{demo.error!r}\n" + "\n".join(demo.lines)
        stats = await _check_running_demo(demo, demo_settings)
    finally:
        demo.stop.set()
        await asyncio.to_thread(demo.thread.join, 30)
    assert not demo.thread.is_alive(), "the demo did not stop"
    assert demo.error is None, repr(demo.error)
    assert demo.result is not None and not demo.result.interrupted
    assert demo.lines[-1] == "Stopped; every click is saved."
    # What the simulation sent is what the statistics showed: humans counted, bots flagged.
    tally = demo.result.tally
    assert stats["share_clicks"] == tally.shares > 0
    assert stats["sharers"] == tally.sharers == 30
    assert stats["visits"] == tally.visits > 0
    assert stats["bot_clicks"] == tally.previews + tally.scanner
    assert tally.previews > 0 and tally.scanner >= 3
    assert demo.result.stats == stats
    # Every answered redirect was committed by the shutdown (none lost in the buffer).
    engine = make_engine(demo.result.database_url)
    try:
        async with engine.connect() as connection:
            stored = await connection.scalar(select(func.count()).select_from(Click))
    finally:
        await engine.dispose()
    assert stored == tally.redirects == tally.planned and tally.failures == 0


def _check_printed_files(demo: DemoThread, settings: Settings) -> None:
    """The demo database (unless one was named) and the sink's outbox: one .eml per digest."""
    if "database_url" not in settings.model_fields_set:
        database = Path(demo.printed("Database").split(" (", 1)[0])
        assert database == (settings.var_dir / "demo.db").resolve() and database.exists()
    outbox = Path(demo.printed("Outbox").split("  (", 1)[0])
    assert outbox.is_relative_to((settings.var_dir / "outbox").resolve())
    assert len(list(outbox.glob("*.eml"))) == 50


async def _check_running_demo(demo: DemoThread, settings: Settings) -> dict[str, Any]:
    """Checks through the running service's API with the printed keys; returns the stats."""
    lines = demo.lines
    base = re.search(r"Service running on (http://\S+) ", "\n".join(lines))
    assert base is not None, lines
    base_url = base.group(1)
    viewer = demo.printed("Viewer key")
    admin = demo.printed("Admin key")
    assert viewer.startswith("amp_") and admin.startswith("amp_") and viewer != admin
    assert demo.printed("Dashboard").startswith(f"{base_url}/dashboard")
    _check_printed_files(demo, settings)
    assert any(re.fullmatch(r"  sent \d+/50", line) for line in lines)  # progress was shown
    assert "  sent 50/50" in lines and any(re.fullmatch(r"  clicks \d+/\d+", x) for x in lines)
    assert any(line.startswith("Ready in ") and "Press Ctrl-C to stop" in line for line in lines)

    headers = {"Authorization": f"Bearer {viewer}"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, trust_env=False) as http:
        campaigns = (await http.get("/api/v1/campaigns")).json()["items"]
        assert [c["name"] for c in campaigns] == ["Product launch"]
        campaign = campaigns[0]
        assert len(campaign["messages"]) == 3 and len(campaign["networks"]) == 4
        assert campaign["status"] == "sent"
        cid = campaign["id"]
        sent = (await http.get(f"/api/v1/campaigns/{cid}/deliveries?status=sent&limit=500")).json()
        assert len(sent["items"]) == 50
        assert all(d["email"].endswith("@example.com") for d in sent["items"])
        stats = (await http.get(f"/api/v1/campaigns/{cid}/stats")).json()
        top = (await http.get(f"/api/v1/campaigns/{cid}/stats/amplifiers?limit=5")).json()
        # The viewer key is read-only.
        assert (
            await http.post("/api/v1/amplifiers", json={"email": "x@example.com"})
        ).status_code == 403
        admin_keys = await http.get("/api/v1/keys", headers={"Authorization": f"Bearer {admin}"})
        assert admin_keys.status_code == 200

    assert stats["sent"] == stats["recipients"] == 50 and stats["failed"] == 0
    assert stats["share_clicks"] > 0 and stats["visits"] > 0 and stats["emv"] > 0
    assert 0 < stats["unique_visitors"] <= stats["visits"]
    # Link previews (LinkedInBot, facebookexternalhit …) and the scanner burst.
    assert stats["bot_clicks"] > 3

    # The printed summary shows the API's numbers.
    rows = _table(lines, "network ")
    printed = {row.split()[0]: _numbers(row.split(None, 1)[1]) for row in rows[:-1]}
    assert set(printed) == set(stats["by_network"])
    for network, counts in stats["by_network"].items():
        assert printed[network] == [
            counts["share_clicks"],
            counts["visits"],
            counts["unique_visitors"],
            round(counts["emv"], 2),
        ]
    assert rows[-1].startswith("all networks")
    assert _numbers(rows[-1].removeprefix("all networks")) == [
        stats["share_clicks"],
        stats["visits"],
        stats["unique_visitors"],
        round(stats["emv"], 2),
    ]
    leaders = _table(lines, "top amplifiers")
    assert len(leaders) == 5
    for row, item in zip(leaders, top["items"], strict=True):
        name, points, shares, visits = row.rsplit(None, 3)
        assert name.strip() == item["name"]
        assert _numbers(f"{points} {shares} {visits}") == [
            item["points"],
            item["share_clicks"],
            item["visits"],
        ]
    assert demo.printed("Campaign EMV") == f"{stats['currency']} {stats['emv']:,.2f}"
    assert demo.printed("Bot clicks").split()[0] == f"{stats['bot_clicks']:,}"
    assert any(
        line.startswith(
            f"Campaign 'Product launch': 50/50 digests sent, {stats['sharers']} sharers"
        )
        for line in lines
    )
    return stats


def test_a_taken_port_is_reported_and_another_one_used() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        sock, as_asked = listen("127.0.0.1", port)
        with sock:
            assert not as_asked and sock.getsockname()[1] not in (0, port)
    sock, as_asked = listen("127.0.0.1", port)
    with sock:
        assert as_asked and sock.getsockname()[1] == port


def test_the_simulated_people_never_look_like_a_burst() -> None:
    """Only the scanner opens three or more links of one digest; every visitor is distinct."""
    rng = random.Random(1)
    roster = make_roster(50, rng)
    links: list[LinkRow] = []
    audiences: dict[int, dict[str, int]] = {}
    for amplifier_id, amplifier in enumerate(roster, start=1):
        audiences[amplifier_id] = amplifier["audience"]
        for position in range(3):
            for network in amplifier["networks"]:
                for kind in (LinkKind.SHARE, LinkKind.VISIT):
                    code = f"{kind[0]}{amplifier_id}-{position}-{network}"
                    links.append(LinkRow(code, kind, amplifier_id, position, network))
    owner = {link.code: link.amplifier_id for link in links}
    plan = plan_clicks(links, audiences, rng)
    assert len({a["email"] for a in roster}) == 50
    assert len({hit.code for hit in plan.scanner}) >= 3
    assert len({owner[hit.code] for hit in plan.scanner}) == 1
    seen: dict[tuple[int, str, str], set[str]] = defaultdict(set)
    for hit in plan.shares + plan.follow_ups:
        seen[(owner[hit.code], hit.user_agent, hit.address)].add(hit.code)
    bots = set(PREVIEW_BOTS.values())
    humans = [codes for (_, agent, _), codes in seen.items() if agent not in bots]
    assert humans and max(len(codes) for codes in humans) <= 2
    tally = plan.tally
    assert tally.shares == len(plan.shares) and 0.5 <= tally.sharers / 50 <= 0.7
    assert tally.visits + tally.previews == len(plan.follow_ups)
    visitors = {(h.user_agent, h.address) for h in plan.follow_ups if h.user_agent not in bots}
    assert len(visitors) == tally.visits - tally.repeat_visits


async def test_refuses_a_named_database_with_campaigns_to_send(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'busy.db'}"
    await asyncio.to_thread(upgrade, url)
    engine = make_engine(url)
    try:
        from app.core.db import make_sessionmaker

        async for session in session_scope(make_sessionmaker(engine)):
            org = Organization(name="Real Co")
            session.add(org)
            await session.flush()
            session.add(
                Campaign(organization_id=org.id, name="Real", subject="Real", status="scheduled")
            )
    finally:
        await engine.dispose()
    settings = Settings(
        _env_file=None, database_url=url, var_dir=tmp_path / "var", secret_key=TEST_SECRET
    )
    lines: list[str] = []
    with pytest.raises(DemoError, match="sending or scheduled"):
        await asyncio.to_thread(run_demo, port=free_port(), settings=settings, echo=lines.append)
