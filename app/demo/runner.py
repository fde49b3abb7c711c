"""The demo from start to Ctrl-C: the service, the steps through its API, a clean stop."""

import asyncio
import contextlib
import random
import signal
import socket
import threading
import time
from collections.abc import Coroutine
from typing import Any

import uvicorn

from app.core.config import Settings, get_settings
from app.core.migrate import upgrade
from app.demo.api import (
    Api,
    audiences,
    create_keys,
    read_links,
    run_clicks,
    send_campaign,
    settled_stats,
    wait_delivered,
)
from app.demo.clicks import ClickTally, plan_clicks
from app.demo.console import (
    TOP_AMPLIFIERS,
    Console,
    Echo,
    show_ready,
    shown_database,
    summary_lines,
)
from app.demo.data import CAMPAIGN, ORGANIZATION, SEED, make_roster
from app.demo.result import DemoError, DemoResult
from app.demo.sandbox import (
    DEMO_DATABASE,
    SINK_HOST,
    DemoServer,
    busy_campaigns,
    demo_settings,
    fresh_sqlite,
    listen,
    quiet_logs,
    serve_on,
    start_sink,
    url_host,
)


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
    serving = _task(serve_on(server, sock))
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
    with quiet_logs():
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
            f"Using the database AMPLIFY_DATABASE_URL names, {shown_database(database_url)}: "
            f"the demo adds the organization {ORGANIZATION!r} to it."
        )
    else:
        database_url = fresh_sqlite(var_dir / DEMO_DATABASE)
        console.line(f"Using a fresh SQLite database for the demo: {var_dir / DEMO_DATABASE}")
    upgrade(database_url)
    if "database_url" in settings.model_fields_set:
        busy = asyncio.run(busy_campaigns(database_url))
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
