"""The `amplify` command."""

import asyncio
import logging
import threading
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from pydantic import ValidationError

from app.core.config import Settings, get_settings
from app.core.db import make_engine, make_sessionmaker, session_scope
from app.core.logging import configure_logging
from app.core.migrate import upgrade
from app.models import Role

if TYPE_CHECKING:
    from aiosmtpd.controller import Controller

cli = typer.Typer(
    help="Amplify: email-campaign amplification with tracked share links.",
    no_args_is_help=True,
    add_completion=False,
)
keys_cli = typer.Typer(help="Manage API keys.", no_args_is_help=True)
cli.add_typer(keys_cli, name="keys")
dkim_cli = typer.Typer(help="DKIM signing keys.", no_args_is_help=True)
cli.add_typer(dkim_cli, name="dkim")


def _settings() -> Settings:
    try:
        return get_settings()
    except ValidationError as exc:
        typer.echo("Configuration error:\n" + "\n".join(_setting_errors(exc)), err=True)
        raise typer.Exit(2) from None


def _setting_errors(exc: ValidationError) -> list[str]:
    """One line per bad setting, named as the environment spells it."""
    lines = []
    for error in exc.errors(include_url=False):
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["loc"]:
            name = "AMPLIFY_" + "_".join(str(part) for part in error["loc"]).upper()
            lines.append(f"  {name}: {message} (got {error.get('input')!r})")
        else:
            lines.append(f"  {message}")
    return lines


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(help="HTTP worker processes.")] = 1,
) -> None:
    """Run the API, redirects, pages and (unless AMPLIFY_WORKER=off) the sending worker."""
    import uvicorn

    settings = _settings()
    if settings.is_sqlite:
        upgrade(settings.database_url)
    sink = _development_mailsink(settings)
    uvicorn.run(
        "app.asgi:app",
        host=host,
        port=port,
        workers=workers,
        proxy_headers=False,
        log_level="info",
        log_config=None,  # keep app.core.logging's handlers (JSON lines when not a terminal)
        # uvicorn's access log writes every client's IP address (no raw IP in logs) and costs
        # more than the redirect itself.
        access_log=False,
    )
    if sink is not None:
        sink.stop()


def _development_mailsink(settings: Settings) -> "Controller | None":
    """In development with the default SMTP settings and nothing listening there, start the
    built-in mail sink so sending works end to end with zero setup."""
    import socket

    from app.sending.mailsink import start_mailsink

    local = settings.smtp_host in ("127.0.0.1", "localhost") and settings.smtp_port == 1025
    if settings.env != "development" or settings.worker == "off" or not local:
        return None
    try:
        socket.create_connection((settings.smtp_host, settings.smtp_port), timeout=0.5).close()
        return None  # something (e.g. `amplify mailsink`) already listens there
    except OSError:
        pass
    outbox = (settings.var_dir / "outbox").resolve()
    controller = start_mailsink(settings.smtp_host, settings.smtp_port, outbox)
    typer.echo(f"Development mail sink on {settings.smtp_host}:1025; mail is stored in {outbox}")
    return controller


MetricsPort = Annotated[
    int | None,
    typer.Option(help="Serve this process's Prometheus metrics on this port (/metrics)."),
]
MetricsHost = Annotated[
    str, typer.Option(help="Address for --metrics-port (0.0.0.0 in a container).")
]


@cli.command()
def worker(
    metrics_port: MetricsPort = None,
    metrics_host: MetricsHost = "127.0.0.1",
) -> None:
    """Run the sending worker alone (run several against PostgreSQL)."""
    settings = _background_process(metrics_port, metrics_host)
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(_run_worker(settings))


def _background_process(metrics_port: int | None, metrics_host: str) -> Settings:
    """Settings, metrics and (on SQLite) migrations for a process without the API."""
    settings = _settings()
    if metrics_port is not None:
        from prometheus_client import start_http_server

        start_http_server(metrics_port, addr=metrics_host)
    if settings.is_sqlite:
        upgrade(settings.database_url)
    return settings


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop (as under `amplify serve`) when installed: markedly less per-mail overhead."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


async def _run_worker(settings: Settings) -> None:
    import signal

    from app.core.security import Signer
    from app.sending.engine import build_worker, start_click_retention
    from app.webhooks.dispatcher import start_dispatcher

    engine = make_engine(settings.database_url, **settings.pool_options())
    sessionmaker = make_sessionmaker(engine)
    worker = build_worker(settings, sessionmaker, Signer(settings.signing_key()))
    retention = start_click_retention(settings, sessionmaker)
    dispatcher, dispatching = start_dispatcher(settings, sessionmaker)

    def stop() -> None:
        worker.stop()
        dispatcher.stop()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop)
    try:
        await worker.run()
    finally:
        dispatcher.stop()
        await dispatching
        retention.cancel()
        await asyncio.gather(retention, return_exceptions=True)
        await engine.dispose()


@cli.command()
def bounces(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="SMTP port.")] = 2525,
    metrics_port: MetricsPort = None,
    metrics_host: MetricsHost = "127.0.0.1",
) -> None:
    """Receive the bounces and complaints mailed to AMPLIFY_BOUNCE_ADDRESS (an SMTP server)."""
    settings = _background_process(metrics_port, metrics_host)
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(_run_bounces(settings, host, port))


async def _run_bounces(settings: Settings, host: str, port: int) -> None:
    import signal

    from app.bounces.receiver import BounceHandler, start_receiver
    from app.bounces.verp import ReturnPaths

    engine = make_engine(settings.database_url, **settings.pool_options())
    handler = BounceHandler(make_sessionmaker(engine), ReturnPaths.from_settings(settings))
    try:
        server = await start_receiver(
            handler, host=host, port=port, max_bytes=settings.bounce_max_bytes
        )
    except OSError as exc:
        await engine.dispose()
        typer.echo(f"amplify bounces: cannot listen on {host}:{port}: {exc.strerror}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"Bounce receiver on {host}:{port} (SMTP).", err=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        server.close()
        await engine.dispose()


@cli.command()
def demo(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(help="Port to listen on (another free one if it is taken).")
    ] = 8000,
    amplifiers: Annotated[
        int, typer.Option(min=1, max=10_000, help="How many amplifiers to generate.")
    ] = 50,
) -> None:
    """The whole product in one command, on throwaway data: a fresh demo database, a built-in
    mail sink, a roster, a campaign sent over SMTP, simulated clicks and the statistics."""
    from app.demo import DemoError, run_demo

    settings = _settings()
    try:
        run_demo(host=host, port=port, amplifiers=amplifiers, settings=settings)
    except DemoError as exc:
        typer.echo(f"amplify demo: {exc}", err=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:  # Ctrl-C before the service took over the signal
        typer.echo("Interrupted.", err=True)
        raise typer.Exit(130) from None


@cli.command()
def mailsink(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="SMTP port.")] = 1025,
    directory: Annotated[
        Path, typer.Option("--dir", help="Where each mail is stored as an .eml file.")
    ] = Path("./var/outbox"),
) -> None:
    """A local SMTP server that stores every mail it receives as an .eml file."""
    from app.sending.mailsink import start_mailsink

    controller = start_mailsink(host, port, directory.resolve())
    typer.echo(f"Mail sink on {host}:{port}, storing mail in {directory.resolve()} (Ctrl-C stops).")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()


@cli.command()
def migrate() -> None:
    """Apply pending migrations to the configured database (alembic upgrade head)."""
    settings = _settings()
    upgrade(settings.database_url)
    typer.echo("Database is at the newest migration.")


async def _create_key(settings: Settings, org: str, role: Role, name: str | None) -> str:
    from app.keys import service

    engine = make_engine(settings.database_url, **settings.pool_options())
    try:
        async for session in session_scope(make_sessionmaker(engine)):
            organization = await service.get_or_create_organization(session, name=org)
            _key, plain = await service.create(
                session, organization_id=organization.id, role=role, name=name
            )
        return plain
    finally:
        await engine.dispose()


@keys_cli.command("create")
def keys_create(
    org: Annotated[str, typer.Option(help="Organization name (created if it does not exist).")],
    role: Annotated[Role, typer.Option(help="Role of the key.")] = Role.ADMIN,
    name: Annotated[str | None, typer.Option(help="A label for the key.")] = None,
) -> None:
    """Create an API key and print it alone on the last line (it is not shown again)."""
    if not org.strip() or any(ch in org for ch in "\r\n\x00"):
        typer.echo("--org must be a non-empty single-line name.", err=True)
        raise typer.Exit(2)
    settings = _settings()
    if settings.is_sqlite:
        upgrade(settings.database_url)
    plain = asyncio.run(_create_key(settings, org.strip(), role, name))
    typer.echo(f"Created a {role} key for organization {org.strip()!r}. Keep it safe:", err=True)
    typer.echo(plain)


class KeyAlgorithm(StrEnum):
    RSA = "rsa"
    ED25519 = "ed25519"


@dkim_cli.command("keygen")
def dkim_keygen(
    selector: Annotated[str, typer.Option(help="The DKIM selector (a DNS label, e.g. 2026a).")],
    algorithm: Annotated[
        KeyAlgorithm, typer.Option(help="rsa (2048 bits, read everywhere) or ed25519 (RFC 8463).")
    ] = KeyAlgorithm.RSA,
    out: Annotated[
        Path | None,
        typer.Option(help="Where to write the private key (PEM, mode 0600; never overwritten)."),
    ] = None,
    domain: Annotated[
        str | None, typer.Option(help="Signing domain (default: the AMPLIFY_MAIL_FROM domain).")
    ] = None,
) -> None:
    """Write a new DKIM private key and print the DNS TXT record that publishes it."""
    import os

    from app.sending.dkim import DkimConfigError, DkimKey, check_domain, check_selector, txt_record

    try:
        check_selector(selector)
        domain = check_domain(domain or _default_dkim_domain())
    except DkimConfigError as exc:
        typer.echo(f"amplify dkim keygen: {exc}", err=True)
        raise typer.Exit(2) from None
    path = out or Path("var") / "dkim" / f"{selector}.pem"
    key = DkimKey.generate(algorithm.value)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        typer.echo(f"amplify dkim keygen: {path} exists; not overwriting it.", err=True)
        raise typer.Exit(1) from None
    with os.fdopen(fd, "wb") as file:
        file.write(key.pem())
    typer.echo(f"Wrote the private key to {path.resolve()} (mode 0600).", err=True)
    typer.echo("Publish this TXT record, then set:", err=True)
    typer.echo(
        f"  AMPLIFY_DKIM_SELECTOR={selector}\n  AMPLIFY_DKIM_PRIVATE_KEY_FILE={path.resolve()}\n"
        f"  AMPLIFY_DKIM_DOMAIN={domain}",
        err=True,
    )
    typer.echo(txt_record(key, selector=selector, domain=domain))


def _default_dkim_domain() -> str:
    from app.sending.mime import domain_of

    try:
        settings = get_settings()
    except Exception:  # a broken setting (perhaps the very key being replaced) must not block
        return domain_of(Settings.model_fields["mail_from"].default)
    return settings.dkim_domain or domain_of(settings.mail_from)


def main() -> None:
    configure_logging()
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd's per-command chatter
    cli()
