"""`amplify demo`: the whole product in one command, on throwaway data.

It starts a mail sink and the real service (API, redirects, worker) on a fresh demo database;
creates an organization, API keys, a roster and a campaign through the HTTP API; sends the
digests over real SMTP to the sink; simulates shares, visits, link previews and one mail-scanner
burst through the real `/r/` endpoint over sockets; prints the statistics the API answers, and
leaves the service running until Ctrl-C (or `stop` is set), then shuts it down cleanly (every
click committed).

`run_demo` blocks; a test runs it in a thread with `ready` and `stop` events.
"""

import asyncio
import contextlib
import ipaddress
import logging
import math
import random
import signal
import socket
import sys
import threading
import time
import unicodedata
from collections.abc import Callable, Coroutine, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import typer
import uvicorn
from sqlalchemy import func, select

from app.core.config import Settings, get_settings, parse_trusted_proxies
from app.core.db import make_engine, session_scope
from app.core.migrate import upgrade
from app.keys import service as keys_service
from app.models import Campaign, CampaignStatus, Link, LinkKind, Message, Role

ORGANIZATION = "Demo Co"
NETWORKS = ("linkedin", "x", "facebook", "whatsapp")
DEMO_DATABASE = "demo.db"
SINK_HOST = "127.0.0.1"
SINK_PORT = 1025
DEMO_SCANNER_WINDOW = 2  # seconds, unless AMPLIFY_SCANNER_WINDOW is set
SHARE_RATE = 0.6  # share of the roster that shares something
CONCURRENCY = 16  # simultaneous simulated clicks
SEND_TIMEOUT = 60.0
STATS_TIMEOUT = 15.0
POLL_SECONDS = 0.2
PROGRESS_SECONDS = 0.5  # how often a progress line is printed when stdout is not a terminal
TOP_AMPLIFIERS = 5
SEED = 2026

FIRST_NAMES = (
    "Ada", "Grace", "Alan", "Linus", "Margaret", "Tim", "Katherine", "Dennis", "Barbara", "Ken",
    "Frances", "Edsger", "Radia", "Vint", "Hedy", "Donald", "Anita", "Guido", "Sophie", "Yukihiro",
    "Mary", "John", "Lucia", "Mateo", "Amara", "Kenji", "Priya", "Omar", "Ingrid", "Diego",
    "Chloé", "Noah", "Fatima", "Lars", "Mei", "Tariq", "Elena", "Kwame", "Zoë", "José",
    "Aiko", "Rafael", "Nadia", "Hugo", "Leila", "Sven", "Isabel", "Tomás",
)  # fmt: skip
LAST_NAMES = (
    "Lovelace", "Hopper", "Turing", "Torvalds", "Hamilton", "Berners-Lee", "Johnson", "Ritchie",
    "Liskov", "Thompson", "Allen", "Dijkstra", "Perlman", "Cerf", "Lamarr", "Knuth", "Borg",
    "van Rossum", "Wilson", "Matsumoto", "Keller", "McCarthy", "Moreno", "García", "Okafor",
    "Tanaka", "Sharma", "Haddad", "Larsen", "Fernández", "Dubois", "Schmidt", "Rahman",
    "Nilsson", "Chen", "Khan", "Rossi", "Mensah", "Novak", "Silva", "Sato", "Costa", "Petrov",
    "Laurent", "Nasser", "Berg", "Ortega", "Almeida",
)  # fmt: skip
TEAMS = ("engineering", "sales", "marketing", "customer-success", "partners")
REGIONS = ("emea", "americas", "apac")
LOCALES = ("en", "en", "en", "en", "de", "fr", "es", "pt-BR")
# Chance that an amplifier uses a network, and the range of their followers there.
NETWORK_USE = {"linkedin": 0.9, "x": 0.5, "facebook": 0.4, "whatsapp": 0.35}
AUDIENCE_RANGE = {
    "linkedin": (150, 4_000),
    "x": (50, 12_000),
    "facebook": (80, 1_500),
    "whatsapp": (20, 250),
}
# Where a visitor comes from (WhatsApp sends no Referer).
REFERERS = {
    "linkedin": "https://www.linkedin.com/",
    "x": "https://t.co/",
    "facebook": "https://l.facebook.com/",
}
# The link-preview fetcher that reads a post's link as soon as it is posted.
PREVIEW_BOTS = {
    "linkedin": "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)",
    "x": "Twitterbot/1.0",
    "facebook": "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
    "whatsapp": "WhatsApp/2.24.8.85 A",
}
PREVIEW_ADDRESSES = {
    "linkedin": "192.0.2.10",
    "x": "192.0.2.20",
    "facebook": "192.0.2.30",
    "whatsapp": "192.0.2.40",
}
DESKTOP_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{v}.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{v}.0.0.0 Safari/537.36 Edg/{v}.0.0.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.{m} Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:{v}.0) Gecko/20100101 Firefox/{v}.0",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{v}.0.0.0 Safari/537.36",
)
MOBILE_AGENTS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_{m} like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.{m} Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel {p}) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{v}.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 13; SM-S91{p}B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{v}.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (iPad; CPU OS 17_{m} like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.{m} Mobile/15E148 Safari/604.1",
)
# Security gateways copy a browser's User-Agent: only their timing gives them away.
SCANNER_AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/118.0.0.0 Safari/537.36"
)
SCANNER_ADDRESS = "203.0.113.25"
ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"

CAMPAIGN: dict[str, Any] = {
    "name": "Product launch",
    "subject": "Three posts to share for our launch week",
    "intro": "It's launch week! Each post below takes one click to share. Thank you for helping.",
    "networks": list(NETWORKS),
    "utm": True,
    "messages": [
        {
            "text": "We just launched Demo Co Cloud: analytics your whole team can read in "
            "minutes, not days.",
            "url": "https://example.com/launch",
            "hashtags": ["launch", "analytics"],
        },
        {
            "text": "How Northwind cut its reporting time by 60% with Demo Co. Read the "
            "customer story:",
            "url": "https://example.com/customers/northwind",
            "hashtags": ["customerstory"],
        },
        {
            "text": "We're hiring engineers and designers in Berlin, Lisbon and remote. Come "
            "build with us!",
            "url": "https://example.com/careers",
            "hashtags": ["hiring"],
        },
    ],
}

Echo = Callable[[str], None]


class DemoError(Exception):
    """The demo cannot go on; the message says why (shown without a traceback)."""


@dataclass
class ClickTally:
    """What the simulation sent, by kind, and how the redirects answered."""

    shares: int = 0
    sharers: int = 0
    visits: int = 0
    repeat_visits: int = 0
    previews: int = 0
    scanner: int = 0
    redirects: int = 0
    failures: int = 0

    @property
    def planned(self) -> int:
        return self.shares + self.visits + self.previews + self.scanner

    @property
    def bots(self) -> int:
        return self.previews + self.scanner


@dataclass
class DemoResult:
    host: str
    port: int
    base_url: str
    database_url: str
    outbox: Path
    campaign_id: int | None = None
    admin_key: str = ""
    viewer_key: str = ""
    mails: int = 0
    tally: ClickTally = field(default_factory=ClickTally)
    stats: dict[str, Any] = field(default_factory=dict)
    top: list[dict[str, Any]] = field(default_factory=list)
    summary: list[str] = field(default_factory=list)
    ready_seconds: float | None = None
    interrupted: bool = False  # stopped before it was ready


@dataclass(frozen=True)
class Hit:
    """One simulated click: a GET of /r/{code} from one visitor."""

    code: str
    user_agent: str
    address: str
    referer: str | None = None


@dataclass(frozen=True)
class LinkRow:
    code: str
    kind: str
    amplifier_id: int
    position: int
    network: str


# --- output -------------------------------------------------------------------------------------


class Console:
    """Lines to `echo`; progress overwrites one terminal line, else a line every half second."""

    def __init__(self, echo: Echo | None) -> None:
        self.live = echo is None and sys.stdout.isatty()
        self.echo: Echo = echo or typer.echo
        self._last = 0.0
        self._open = False  # a live progress line waits for its end

    def line(self, text: str = "") -> None:
        if self._open:
            typer.echo("")
            self._open = False
        self.echo(text)

    def progress(self, label: str, done: int, total: int, *, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now - self._last < (0.1 if self.live else PROGRESS_SECONDS):
            return
        self._last = now
        text = f"  {label} {done}/{total}"
        if self.live:
            typer.echo(f"\r{text}", nl=final)
            self._open = not final
        else:
            self.echo(text)


# --- the roster and the clicks ------------------------------------------------------------------


def _ascii(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in folded.lower() if ch.isalnum() or ch in ".-")


def make_roster(count: int, rng: random.Random) -> list[dict[str, Any]]:
    """`count` amplifiers with distinct names and example.com addresses, networks and audiences."""
    names = [(first, last) for first in FIRST_NAMES for last in LAST_NAMES]
    rng.shuffle(names)
    roster = []
    for index in range(count):
        first, last = names[index % len(names)]
        round_ = index // len(names)
        email = f"{_ascii(first)}.{_ascii(last.replace(' ', ''))}"
        if round_:
            email += str(round_ + 1)
        networks = [n for n in NETWORKS if rng.random() < NETWORK_USE[n]] or ["linkedin"]
        audience = {}
        for network in networks:
            low, high = AUDIENCE_RANGE[network]
            audience[network] = round(math.exp(rng.uniform(math.log(low), math.log(high))))
        roster.append(
            {
                "email": f"{email}@example.com",
                "name": f"{first} {last}",
                "tags": [rng.choice(TEAMS), rng.choice(REGIONS)],
                "networks": networks,
                "audience": audience,
                "locale": rng.choice(LOCALES),
            }
        )
    return roster


def _agent(templates: tuple[str, ...], rng: random.Random) -> str:
    return rng.choice(templates).format(
        v=rng.randint(118, 126), m=rng.randint(0, 5), p=rng.randint(6, 8)
    )


class Addresses:
    """Distinct client addresses (from 198.18.0.0/15, reserved for tests), one per visitor."""

    def __init__(self, rng: random.Random) -> None:
        self._next = int(ipaddress.IPv4Address("198.18.0.0")) + rng.randint(1, 50_000)

    def __call__(self) -> str:
        self._next += 1
        return str(ipaddress.IPv4Address(self._next))


@dataclass
class ClickPlan:
    scanner: list[Hit]
    shares: list[Hit]
    follow_ups: list[Hit]  # link previews and visits, after the shares
    tally: ClickTally


def plan_clicks(
    links: list[LinkRow], audiences: dict[int, dict[str, int]], rng: random.Random
) -> ClickPlan:
    """Realistic clicks on a sent campaign's links.

    - ~60% of the amplifiers share 1-3 (message, network) pairs: at most two from their
      computer, a third from their phone (a person clicking three links of their own digest
      within seconds from one browser would rightly be flagged as a burst);
    - every post is previewed once by its network's fetcher (LinkedInBot, facebookexternalhit …);
    - each post brings visitors (more for bigger audiences), each a distinct address and browser,
      one in ten of them clicking twice;
    - a mail-security gateway opens every share link of one digest at once (a burst).
    """
    tally = ClickTally()
    share_codes: dict[int, dict[tuple[int, str], str]] = {}
    visit_codes: dict[tuple[int, int, str], str] = {}
    for link in links:
        key = (link.position, link.network)
        if link.kind == LinkKind.SHARE:
            share_codes.setdefault(link.amplifier_id, {})[key] = link.code
        else:
            visit_codes[(link.amplifier_id, *key)] = link.code
    address = Addresses(rng)
    amplifiers = sorted(share_codes)

    scanned = rng.choice(amplifiers)
    scanner = [Hit(code, SCANNER_AGENT, SCANNER_ADDRESS) for code in share_codes[scanned].values()]
    tally.scanner = len(scanner)

    shares: list[Hit] = []
    follow_ups: list[Hit] = []
    sharers = rng.sample(amplifiers, max(1, round(SHARE_RATE * len(amplifiers))))
    for amplifier_id in sorted(sharers):
        devices = [
            (_agent(DESKTOP_AGENTS, rng), address()),
            (_agent(MOBILE_AGENTS, rng), address()),
        ]
        options = sorted(share_codes[amplifier_id])
        picks = rng.sample(options, min(len(options), rng.choice((1, 1, 2, 2, 3))))
        for index, (position, network) in enumerate(picks):
            agent, home = devices[0 if index < 2 else 1]
            shares.append(Hit(share_codes[amplifier_id][(position, network)], agent, home))
            visit = visit_codes[(amplifier_id, position, network)]
            follow_ups.append(Hit(visit, PREVIEW_BOTS[network], PREVIEW_ADDRESSES[network]))
            tally.previews += 1
            followers = audiences.get(amplifier_id, {}).get(network, 0)
            for _ in range(min(25, rng.randint(1, 3) + round(math.sqrt(followers) / 10))):
                templates = MOBILE_AGENTS if rng.random() < 0.6 else DESKTOP_AGENTS
                visitor = Hit(visit, _agent(templates, rng), address(), REFERERS.get(network))
                follow_ups.append(visitor)
                tally.visits += 1
                if rng.random() < 0.1:
                    follow_ups.append(visitor)
                    tally.visits += 1
                    tally.repeat_visits += 1
    tally.shares = len(shares)
    tally.sharers = len(sharers)
    rng.shuffle(follow_ups)
    return ClickPlan(scanner, shares, follow_ups, tally)


# --- setup: ports, sink, database, settings -----------------------------------------------------


def listen(host: str, port: int) -> tuple[socket.socket, bool]:
    """A listening socket on host:port, or on a free port when that one is taken.
    Returns the socket and whether it got the port asked for."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise DemoError(f"Cannot listen on {host!r}: {exc}") from None
    family, _, _, _, address = infos[0]
    for wanted in (port, 0):
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((address[0], wanted, *address[2:]))
            sock.listen(2048)
            sock.set_inheritable(True)
            return sock, wanted == port
        except OSError as exc:
            sock.close()
            if wanted == 0:
                raise DemoError(f"Cannot listen on {host}: {exc}") from None
    raise AssertionError("unreachable")


def _free_local_port(preferred: int) -> int:
    for wanted in (preferred, 0):
        with socket.socket() as sock:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((SINK_HOST, wanted))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise DemoError(f"No free port on {SINK_HOST} for the demo's mail sink.")


def start_sink(outbox: Path) -> tuple[Any, int]:
    """The mail sink on 127.0.0.1:1025, or a free port when 1025 is taken."""
    from app.sending.mailsink import start_mailsink

    outbox.mkdir(parents=True, exist_ok=True)
    for old in outbox.glob("*.eml"):  # the demo's own folder: last run's mails
        old.unlink()
    last: Exception | None = None
    for _ in range(3):
        port = _free_local_port(SINK_PORT)
        try:
            return start_mailsink(SINK_HOST, port, outbox), port
        except Exception as exc:  # lost a race for the port: try another
            last = exc
    raise DemoError(f"The demo's mail sink did not start: {last}")


def fresh_sqlite(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm", "-journal"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
    return f"sqlite+aiosqlite:///{path}"


def url_host(host: str) -> str:
    """The host a browser on this machine uses to reach a server listening on `host`."""
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def demo_settings(
    settings: Settings, *, database_url: str, base_url: str, sink_port: int, client_host: str
) -> Settings:
    """The service's settings for the demo: its database, its sink (never a real relay: the
    roster's addresses are made up), links to this server, and X-Forwarded-For trusted from this
    machine so that the simulated visitors have their own addresses."""
    trusted = list(settings.trusted_proxies)
    for proxy in parse_trusted_proxies(f"127.0.0.1, ::1, {client_host.strip('[]')}"):
        if proxy not in trusted:
            trusted.append(proxy)
    update: dict[str, Any] = {
        "database_url": database_url,
        "public_url": base_url,
        "smtp_host": SINK_HOST,
        "smtp_port": sink_port,
        "smtp_user": None,
        "smtp_password": None,
        "smtp_tls": "none",
        "send_rate": 0.0,
        "worker": "on",
        "worker_poll_seconds": min(settings.worker_poll_seconds, POLL_SECONDS),
        "trusted_proxies": tuple(trusted),
    }
    if "scanner_window" not in settings.model_fields_set:
        update["scanner_window"] = DEMO_SCANNER_WINDOW
    return settings.model_copy(update=update)


async def _busy_campaigns(database_url: str) -> int:
    """Campaigns that a worker would send now or later (in a database the user named)."""
    engine = make_engine(database_url)
    try:
        async with engine.connect() as connection:
            count = await connection.scalar(
                select(func.count())
                .select_from(Campaign)
                .where(Campaign.status.in_([CampaignStatus.SENDING, CampaignStatus.SCHEDULED]))
            )
            return int(count or 0)
    finally:
        await engine.dispose()


@contextlib.contextmanager
def _quiet_logs() -> Iterator[None]:
    """The demo prints its own story: per-mail and per-request INFO lines would drown it."""
    names = (
        "amplify",
        "uvicorn",
        "uvicorn.error",
        "uvicorn.access",
        "mail.log",
        "httpx",
        "httpcore",
        "alembic",
    )
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


# --- the running service ------------------------------------------------------------------------


class DemoServer(uvicorn.Server):
    """uvicorn without its own signal handling: the demo stops it (Ctrl-C, SIGTERM or `stop`)
    once whatever step is running has been cancelled."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


async def _serve(server: DemoServer, sock: socket.socket) -> None:
    try:
        await server.serve(sockets=[sock])
    except SystemExit as exc:  # uvicorn exits when the application's startup fails
        raise DemoError("The service failed to start (see the log above).") from exc


class Api:
    """The demo's HTTP client: real sockets, never a proxy, never following a redirect."""

    def __init__(self, base_url: str) -> None:
        self.http = httpx.AsyncClient(
            base_url=base_url,
            timeout=30,
            trust_env=False,
            follow_redirects=False,
            limits=httpx.Limits(max_connections=CONCURRENCY * 2),
        )
        self.admin = ""
        self.viewer = ""

    async def call(
        self, method: str, path: str, *, key: str, expect: int = 200, **kwargs: Any
    ) -> Any:
        response = await self.http.request(
            method, path, headers={"Authorization": f"Bearer {key}"}, **kwargs
        )
        if response.status_code != expect:
            raise DemoError(
                f"{method} {path} answered {response.status_code}: {response.text[:500]}"
            )
        return response.json() if response.content else None

    async def click(self, hit: Hit) -> int:
        headers = {"User-Agent": hit.user_agent, "X-Forwarded-For": hit.address, "Accept": ACCEPT}
        if hit.referer:
            headers["Referer"] = hit.referer
        response = await self.http.get(f"/r/{hit.code}", headers=headers)
        return response.status_code


async def create_keys(app: Any, api: Api) -> None:
    """The admin key straight in the database (as `amplify keys create` does), the viewer key
    through the API with it."""
    async for session in session_scope(app.state.sessionmaker):
        org = await keys_service.get_or_create_organization(session, name=ORGANIZATION)
        _key, api.admin = await keys_service.create(
            session, organization_id=org.id, role=Role.ADMIN, name="demo admin"
        )
    created = await api.call(
        "POST",
        "/api/v1/keys",
        key=api.admin,
        expect=201,
        json={"role": "viewer", "name": "demo dashboard"},
    )
    api.viewer = created["key"]


async def send_campaign(api: Api, console: Console, roster: list[dict[str, Any]]) -> int:
    imported = await api.call(
        "POST", "/api/v1/amplifiers/import", key=api.admin, json=roster, timeout=60
    )
    counts = {n: sum(n in a["networks"] for a in roster) for n in NETWORKS}
    console.line(
        f"Imported {imported['created'] + imported['updated'] + imported['unchanged']} "
        "amplifiers (" + ", ".join(f"{network} {count}" for network, count in counts.items()) + ")."
    )
    campaign = await api.call("POST", "/api/v1/campaigns", key=api.admin, expect=201, json=CAMPAIGN)
    await api.call("POST", f"/api/v1/campaigns/{campaign['id']}/send", key=api.admin, expect=202)
    console.line(
        f"Campaign #{campaign['id']} {campaign['name']!r}: {len(CAMPAIGN['messages'])} messages "
        f"on {', '.join(NETWORKS)}; sending the digests over SMTP to the mail sink ..."
    )
    return int(campaign["id"])


async def wait_delivered(api: Api, console: Console, campaign_id: int) -> dict[str, Any]:
    deadline = time.monotonic() + SEND_TIMEOUT
    while True:
        stats = await api.call("GET", f"/api/v1/campaigns/{campaign_id}/stats", key=api.viewer)
        done = stats["sent"] + stats["failed"]
        finished = stats["recipients"] > 0 and done >= stats["recipients"]
        console.progress("sent", stats["sent"], stats["recipients"], final=finished)
        if finished:
            if stats["failed"]:
                console.line(f"  {stats['failed']} digests failed (see the log).")
            return dict(stats)
        if time.monotonic() > deadline:
            raise DemoError(
                f"Only {stats['sent']} of {stats['recipients']} digests were sent within "
                f"{SEND_TIMEOUT:.0f} s; is the worker running?"
            )
        await asyncio.sleep(POLL_SECONDS)


async def read_links(app: Any, campaign_id: int) -> list[LinkRow]:
    """Every tracked code of the campaign, with its amplifier, message position and network."""
    async with app.state.sessionmaker() as session:
        rows = await session.execute(
            select(Link.code, Link.kind, Link.amplifier_id, Message.position, Link.network)
            .join(Message, Message.id == Link.message_id)
            .where(Link.campaign_id == campaign_id, Link.amplifier_id.is_not(None))
            .order_by(Link.id)
        )
        return [LinkRow(code, kind, amp, pos, net) for code, kind, amp, pos, net in rows.all()]


async def audiences(api: Api) -> dict[int, dict[str, int]]:
    result: dict[int, dict[str, int]] = {}
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 500, **({"cursor": cursor} if cursor else {})}
        page = await api.call("GET", "/api/v1/amplifiers", key=api.viewer, params=params)
        for amplifier in page["items"]:
            result[int(amplifier["id"])] = dict(amplifier["audience"])
        cursor = page["next_cursor"]
        if not cursor:
            return result


async def run_clicks(
    api: Api, console: Console, hits: list[Hit], tally: ClickTally, done: list[int], total: int
) -> None:
    semaphore = asyncio.Semaphore(CONCURRENCY)

    async def one(hit: Hit) -> None:
        async with semaphore:
            status = await api.click(hit)
        if status == 302:
            tally.redirects += 1
        else:
            tally.failures += 1
        done[0] += 1
        console.progress("clicks", done[0], total)

    await asyncio.gather(*(one(hit) for hit in hits))


async def simulate(
    app: Any, api: Api, console: Console, campaign_id: int, settings: Settings
) -> ClickTally:
    delivered_at = time.monotonic()
    rng = random.Random(SEED + campaign_id)
    plan = plan_clicks(await read_links(app, campaign_id), await audiences(api), rng)
    tally = plan.tally
    console.line(
        f"Simulating {tally.planned} clicks through {api.http.base_url}/r/… over HTTP: "
        f"{tally.shares} share clicks by {tally.sharers} amplifiers, {tally.visits} visits, "
        f"{tally.previews} link previews (LinkedInBot, Twitterbot, facebookexternalhit, WhatsApp) "
        f"and a mail scanner opening {tally.scanner} links of one digest at once ..."
    )
    done = [0]
    # Security gateways click everything as the mail arrives: a burst, flagged as a bot.
    await run_clicks(api, console, plan.scanner, tally, done, tally.planned)
    # People read their mail a little later than the scanner window.
    wait = settings.scanner_window + 0.5 - (time.monotonic() - delivered_at)
    if wait > 0:
        await asyncio.sleep(wait)
    await run_clicks(api, console, plan.shares, tally, done, tally.planned)
    await run_clicks(api, console, plan.follow_ups, tally, done, tally.planned)
    console.progress("clicks", done[0], tally.planned, final=True)
    if tally.failures:
        console.line(f"  {tally.failures} clicks were not redirected (see the log).")
    return tally


async def settled_stats(
    api: Api, console: Console, campaign_id: int, clicks: int
) -> dict[str, Any]:
    """The campaign's stats once every answered click is counted (the flush is asynchronous)."""
    deadline = time.monotonic() + STATS_TIMEOUT
    while True:
        stats: dict[str, Any] = await api.call(
            "GET", f"/api/v1/campaigns/{campaign_id}/stats", key=api.viewer
        )
        counted = stats["share_clicks"] + stats["visits"] + stats["bot_clicks"]
        if counted >= clicks:
            return stats
        if time.monotonic() > deadline:
            console.line(
                f"  only {counted} of {clicks} clicks are counted after {STATS_TIMEOUT:.0f} s; "
                "the numbers below are partial (see the log)."
            )
            return stats
        await asyncio.sleep(0.1)


def _money(amount: float) -> str:
    return f"{amount:,.2f}"


def summary_lines(stats: dict[str, Any], top: list[dict[str, Any]], name: str) -> list[str]:
    """The summary table: per network, the top amplifiers, EMV and bot clicks."""
    currency = stats["currency"]
    emv_head = f"EMV ({currency})"
    lines = [
        f"Campaign {name!r}: {stats['sent']}/{stats['recipients']} digests sent, "
        f"{stats['sharers']} sharers ({stats['share_rate']:.0%}), potential reach "
        f"{stats['potential_reach']:,}",
        "",
        f"{'network':<14}{'share clicks':>14}{'visits':>10}{'unique visitors':>17}{emv_head:>14}",
    ]
    for network, counts in stats["by_network"].items():
        lines.append(
            f"{network:<14}{counts['share_clicks']:>14,}{counts['visits']:>10,}"
            f"{counts['unique_visitors']:>17,}{_money(counts['emv']):>14}"
        )
    lines.append(
        f"{'all networks':<14}{stats['share_clicks']:>14,}{stats['visits']:>10,}"
        f"{stats['unique_visitors']:>17,}{_money(stats['emv']):>14}"
    )
    lines += ["", f"{'top amplifiers':<26}{'points':>8}{'share clicks':>14}{'visits':>10}"]
    for row in top:
        who = row["name"] or row["email"]
        who = who if len(who) <= 24 else who[:23] + "…"
        lines.append(f"{who:<26}{row['points']:>8,}{row['share_clicks']:>14,}{row['visits']:>10,}")
    lines += [
        "",
        f"Campaign EMV: {currency} {_money(stats['emv'])}",
        f"Bot clicks: {stats['bot_clicks']:,} (link previews and a mail-scanner burst; flagged, "
        "never counted above)",
    ]
    return lines


async def populate(
    app: Any, settings: Settings, result: DemoResult, console: Console, amplifiers: int
) -> None:
    """Everything between "the service is up" and "the summary is printed"."""
    api = Api(f"http://{url_host(result.host)}:{result.port}")
    try:
        await create_keys(app, api)
        result.admin_key, result.viewer_key = api.admin, api.viewer
        console.line(f"Organization {ORGANIZATION!r} with an admin and a viewer API key.")
        roster = make_roster(amplifiers, random.Random(SEED))
        campaign_id = await send_campaign(api, console, roster)
        result.campaign_id = campaign_id
        await wait_delivered(api, console, campaign_id)
        result.tally = await simulate(app, api, console, campaign_id, settings)
        result.stats = await settled_stats(api, console, campaign_id, result.tally.redirects)
        page = await api.call(
            "GET",
            f"/api/v1/campaigns/{campaign_id}/stats/amplifiers",
            key=api.viewer,
            params={"limit": TOP_AMPLIFIERS},
        )
        result.top = list(page["items"])
        result.summary = summary_lines(result.stats, result.top, str(CAMPAIGN["name"]))
    finally:
        await api.http.aclose()


async def _first(*aws: "asyncio.Future[Any]") -> None:
    await asyncio.wait(aws, return_when=asyncio.FIRST_COMPLETED)


async def _watch(stop: threading.Event | None, stopping: asyncio.Event) -> None:
    # A thread's event: polled, as a thread blocked on it would outlive a Ctrl-C.
    while stop is not None and not stop.is_set():  # noqa: ASYNC110
        await asyncio.sleep(0.1)
    if stop is not None:
        stopping.set()


def _task(coro: Coroutine[Any, Any, Any]) -> "asyncio.Task[Any]":
    return asyncio.get_running_loop().create_task(coro)


async def _run(
    settings: Settings,
    result: DemoResult,
    sock: socket.socket,
    console: Console,
    amplifiers: int,
    started: float,
    sink: Any,
    ready: threading.Event | None,
    stop: threading.Event | None,
) -> None:
    from app.main import create_app

    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=result.host,
        port=result.port,
        lifespan="on",
        log_config=None,
        log_level="warning",
        access_log=False,
        proxy_headers=False,
    )
    server = DemoServer(config)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    handled: list[signal.Signals] = []

    def on_signal() -> None:
        if stopping.is_set():
            server.force_exit = True  # a second Ctrl-C: stop without waiting for connections
        stopping.set()

    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, on_signal)
                handled.append(sig)
    serving = _task(_serve(server, sock))
    watcher = _task(_watch(stop, stopping))
    stopped = _task(stopping.wait())
    try:
        while not server.started and not serving.done() and not stopping.is_set():  # noqa: ASYNC110
            await asyncio.sleep(0.02)  # uvicorn's `started` is a flag, not an event
        if serving.done():
            serving.result()  # raises the start-up failure
            raise DemoError("The service stopped during start-up.")
        if stopping.is_set():
            result.interrupted = True
            return
        console.line(f"Service running on {result.base_url} (API, redirects, worker).")
        setup = _task(populate(app, settings, result, console, amplifiers))
        await _first(setup, serving, stopped)
        if not setup.done():
            setup.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await setup
            if serving.done():
                serving.result()
                raise DemoError("The service stopped unexpectedly.")
            result.interrupted = True
            return
        setup.result()
        result.mails = int(sink.handler.count)
        result.ready_seconds = time.monotonic() - started
        show_ready(console, result)
        if ready is not None:
            ready.set()
        await _first(serving, stopped)
    finally:
        server.should_exit = True
        watcher.cancel()
        stopped.cancel()
        if not serving.done():
            console.line("Stopping: finishing in-flight work and saving every click ...")
        try:
            # uvicorn's shutdown runs the app's: the worker stops, waiting clicks are committed.
            # The signal handlers stay until then: a second Ctrl-C only hurries uvicorn along.
            with contextlib.suppress(DemoError):
                await serving
        finally:
            for sig in handled:
                loop.remove_signal_handler(sig)


def show_ready(console: Console, result: DemoResult) -> None:
    console.line()
    for line in result.summary:
        console.line(line)
    console.line()
    rows = [
        ("Dashboard", f"{result.base_url}/dashboard  (sign in with the viewer key)"),
        ("API docs", f"{result.base_url}/docs"),
        ("Viewer key", result.viewer_key),
        ("Admin key", result.admin_key),
        ("Outbox", f"{result.outbox}  ({result.mails} mails)"),
        ("Database", _shown_database(result.database_url)),
    ]
    for label, value in rows:
        console.line(f"{label + ':':<12}{value}")
    console.line()
    console.line(f"Ready in {result.ready_seconds:.1f} s. Press Ctrl-C to stop.")


def _shown_database(url: str) -> str:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return f"{parsed.database} (SQLite, recreated by every demo run)"
    return parsed.render_as_string(hide_password=True)


def run_demo(
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    amplifiers: int = 50,
    settings: Settings | None = None,
    ready: threading.Event | None = None,
    stop: threading.Event | None = None,
    echo: Echo | None = None,
) -> DemoResult:
    """Run the demo and keep the service up until Ctrl-C, SIGTERM or `stop` is set.

    `ready` is set once the summary and keys are printed. Output goes to `echo` (default:
    stdout). Raises DemoError for anything a user should read instead of a traceback.
    """
    if not 1 <= amplifiers <= 10_000:
        raise DemoError("--amplifiers must be between 1 and 10,000.")
    with _quiet_logs():
        return _run_demo(host, port, amplifiers, settings, ready, stop, echo)


def _run_demo(
    host: str,
    port: int,
    amplifiers: int,
    settings: Settings | None,
    ready: threading.Event | None,
    stop: threading.Event | None,
    echo: Echo | None,
) -> DemoResult:
    started = time.monotonic()
    console = Console(echo)
    settings = settings or get_settings()
    var_dir = settings.var_dir.resolve()
    console.line("Amplify demo: a fresh organization, roster and campaign, end to end.")
    if "database_url" in settings.model_fields_set:
        database_url = settings.database_url
        console.line(
            f"Using the database AMPLIFY_DATABASE_URL names, {_shown_database(database_url)}: "
            f"the demo adds the organization {ORGANIZATION!r} to it."
        )
    else:
        database_url = fresh_sqlite(var_dir / DEMO_DATABASE)
        console.line(f"Using a fresh SQLite database for the demo: {var_dir / DEMO_DATABASE}")
    upgrade(database_url)
    if "database_url" in settings.model_fields_set:
        busy = asyncio.run(_busy_campaigns(database_url))
        if busy:
            raise DemoError(
                f"That database has {busy} campaign(s) sending or scheduled: the demo's worker "
                "would deliver them to its mail sink. Unset AMPLIFY_DATABASE_URL (the demo then "
                "uses a database of its own) or point it at a scratch database."
            )

    sock, as_asked = listen(host, port)
    bound_port = int(sock.getsockname()[1])
    if not as_asked:
        console.line(f"Port {port} on {host} is in use; the demo uses port {bound_port} instead.")
    base_url = f"http://{url_host(host)}:{bound_port}"
    outbox = var_dir / "outbox" / "demo"
    result = DemoResult(
        host=host, port=bound_port, base_url=base_url, database_url=database_url, outbox=outbox
    )
    try:
        sink, sink_port = start_sink(outbox)
    except BaseException:
        sock.close()
        raise
    try:
        console.line(f"Mail sink: {SINK_HOST}:{sink_port}, storing every mail in {outbox}")
        service_settings = demo_settings(
            settings,
            database_url=database_url,
            base_url=base_url,
            sink_port=sink_port,
            client_host=url_host(host),
        )
        with asyncio.Runner() as runner:
            runner.run(
                _run(
                    service_settings,
                    result,
                    sock,
                    console,
                    amplifiers,
                    started,
                    sink,
                    ready,
                    stop,
                )
            )
    finally:
        sock.close()
        sink.stop()
    if result.ready_seconds is None:
        console.line("Stopped before the demo was ready; every click so far is saved.")
    else:
        console.line("Stopped; every click is saved.")
    return result
