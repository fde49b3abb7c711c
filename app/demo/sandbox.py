"""Where the demo runs: its port, mail sink, database, settings and uvicorn server."""

import contextlib
import logging
import socket
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import uvicorn
from sqlalchemy import func, select

from app.core.config import Settings, parse_trusted_proxies
from app.core.db import make_engine
from app.demo.api import POLL_SECONDS
from app.demo.result import DemoError
from app.models import Campaign, CampaignStatus

DEMO_DATABASE = "demo.db"
SINK_HOST = "127.0.0.1"
SINK_PORT = 1025
DEMO_SCANNER_WINDOW = 2  # seconds, unless AMPLIFY_SCANNER_WINDOW is set


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


async def busy_campaigns(database_url: str) -> int:
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
def quiet_logs() -> Iterator[None]:
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


class DemoServer(uvicorn.Server):
    """uvicorn without its own signal handling: the demo stops it (Ctrl-C, SIGTERM or `stop`)
    once whatever step is running has been cancelled."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


async def serve_on(server: DemoServer, sock: socket.socket) -> None:
    try:
        await server.serve(sockets=[sock])
    except SystemExit as exc:  # uvicorn exits when the application's startup fails
        raise DemoError("The service failed to start (see the log above).") from exc
