"""Redirect throughput (`GET /r/{code}`) against a bare framework-free ASGI app, with every
answered redirect checked against the clicks stored.

    python bench/redirect.py [--seconds 10] [--connections 64] [--database-url URL] [--skip-bare]
                             [--attribution on|off]

Seeds a real campaign (200 amplifiers x 3 messages x 4 networks: 4,800 share and visit codes) in
a fresh database (a SQLite temp file, or a scratch database created beside --database-url on
PostgreSQL and dropped at the end), starts `amplify serve` as a real process and loads it with
`wrk` (installed from Debian packages when missing) through bench/redirect_codes.lua. Then it
holds 1,000 req/s for 10 s with its own open-loop generator (latency counted from each request's
scheduled start, so queueing shows), stops the service with SIGTERM and compares stored clicks
with answered redirects. Finally it loads bench/bare_asgi.py, run by `amplify serve`'s own code
with only the app swapped (identical uvicorn settings), with the identical wrk command and the
same fixed-rate load (the generator's floor on this machine); when those settings log every
request (uvicorn's access log), a second bare run without it shows what that logging costs.

Each wrk run sends redirects for --seconds, then parks every connection on an unfinished request
for one more second (see the Lua script), so no redirect is in flight when wrk stops and
"stored == answered" is exact. Requests/s is responses / --seconds.

The campaign has conversion attribution on (the default; `--attribution off` for the run
without): every human visit redirect then mints a click id and the flush stores it, which the
check compares too (click ids stored == human visit clicks stored).

Exits non-zero when stored != answered, on any 5xx, or when a redirect was left unanswered.
"""

import argparse
import asyncio
import os
import random
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
from sqlalchemy import text
from sqlalchemy.engine import make_url

from app.core.config import Settings
from app.core.db import make_engine, session_scope, utcnow
from app.core.migrate import upgrade
from app.main import create_app
from app.models import Role, WebhookEndpoint
from app.webhooks.signing import new_secret
from bench.common import (
    NETWORKS,
    SECRET,
    amplifier_rows,
    bench_database,
    bench_settings,
    create_campaign,
    discard_bench_files,
    run_bench,
    seed_organization,
)
from bench.load import (
    REQUEST_TIMEOUT,
    RateResult,
    Server,
    WrkResult,
    ensure_wrk,
    fixed_rate,
    free_port,
    run_wrk,
)

ROOT = Path(__file__).resolve().parents[1]
LUA = ROOT / "bench" / "redirect_codes.lua"
WARMUP_SECONDS = 2
PARK_SECONDS = 1  # wrk runs this much longer than the redirect window (see the Lua script)
SETTLE_SECONDS = 10
ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


def user_agent(index: int) -> str:
    """The browser User-Agent of code number `index` (the same mapping as the Lua script)."""
    return (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        f"Chrome/124.0.6367.{index} Safari/537.36"
    )


# --- service and load ---------------------------------------------------------------------------


def service_env(url: str, tmp: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AMPLIFY_")}
    env.update(
        {
            "AMPLIFY_DATABASE_URL": url,
            "AMPLIFY_SECRET_KEY": SECRET,
            "AMPLIFY_WORKER": "off",
            "AMPLIFY_PUBLIC_URL": f"http://127.0.0.1:{port}",
            "AMPLIFY_SCANNER_WINDOW": "0",
            "AMPLIFY_VAR_DIR": str(tmp / "var"),
            "PYTHONPATH": str(ROOT),
        }
    )
    return env


def redirect_requests(port: int, codes: list[str]) -> list[bytes]:
    """A browser-like `GET /r/{code}` per code (the same User-Agents as the Lua script)."""
    return [
        (
            f"GET /r/{code} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: {user_agent(i)}\r\n"
            f"Accept: {ACCEPT}\r\nAccept-Language: en-US,en;q=0.9\r\n\r\n"
        ).encode()
        for i, code in enumerate(codes)
    ]


async def fixed_rate_redirects(port: int, codes: list[str], args: argparse.Namespace) -> RateResult:
    return await fixed_rate(
        port, redirect_requests(port, codes), args.rate, args.rate_seconds, args.connections
    )


async def wrk_redirects(
    wrk: str, port: int, codes_file: Path, seconds: int, connections: int
) -> WrkResult:
    """Redirects for `seconds`, then every connection parked for PARK_SECONDS (see the Lua)."""
    return await run_wrk(
        wrk,
        port,
        script=LUA,
        script_args=[str(codes_file), str(seconds)],
        seconds=seconds + PARK_SECONDS,
        connections=connections,
    )


# --- database -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seeded:
    links: list[tuple[str, str]]  # (code, kind) of every link
    key: str  # the organization's editor key


async def seed(
    settings: Settings, amplifiers: int, *, webhook: bool = False, attribution: bool = True
) -> Seeded:
    """A real campaign through the app's own services, with every link it made.
    With `webhook`, a clicks.recorded endpoint listens (the flush then writes its outbox rows;
    the bench server runs no worker, so nothing is posted)."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        now = utcnow()
        org = await seed_organization(
            app,
            name="Bench redirect",
            role=Role.EDITOR,
            roster=lambda org_id: amplifier_rows(org_id, amplifiers, NETWORKS, now),
        )
        if webhook:
            async for session in session_scope(app.state.sessionmaker):
                session.add(
                    WebhookEndpoint(
                        organization_id=org.id,
                        url="https://hooks.example.com/clicks",
                        events=["clicks.recorded"],
                        secret=new_secret(),
                        enabled=True,
                        wants_clicks=True,
                    )
                )
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
            headers = org.headers
            campaign = await create_campaign(http, headers, attribution=attribution)
            response = await http.post(f"/api/v1/campaigns/{campaign['id']}/send", headers=headers)
            assert response.status_code == 202, response.text
        async with app.state.sessionmaker() as session:
            rows = await session.execute(text("SELECT code, kind FROM links ORDER BY id"))
            return Seeded([(code, kind) for code, kind in rows.all()], org.key)


class ClickCounter:
    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)

    async def count(self) -> int:
        async with self.engine.connect() as connection:
            return int((await connection.execute(text("SELECT count(*) FROM clicks"))).scalar_one())

    async def click_ids(self) -> tuple[int, int]:
        """(click ids stored, human visit clicks stored)."""
        async with self.engine.connect() as connection:
            ids = (await connection.execute(text("SELECT count(*) FROM click_ids"))).scalar_one()
            visits = (
                await connection.execute(
                    text("SELECT count(*) FROM clicks WHERE kind = 'visit' AND NOT is_bot")
                )
            ).scalar_one()
        return int(ids), int(visits)

    async def settle(self, expected: int) -> tuple[int, float | None]:
        """Poll until the count reaches `expected` (or passes it), at most SETTLE_SECONDS.
        Returns the count and how long it took (None: not reached)."""
        started = time.perf_counter()
        while True:
            count = await self.count()
            waited = time.perf_counter() - started
            if count >= expected:
                return count, waited
            if waited >= SETTLE_SECONDS:
                return count, None
            await asyncio.sleep(0.05)

    async def close(self) -> None:
        await self.engine.dispose()


# --- the run ------------------------------------------------------------------------------------


@dataclass
class AmplifyRun:
    warmup: WrkResult
    measured: WrkResult
    rate: RateResult
    initial: int
    before: int
    before_settle: float | None
    middle: int
    middle_settle: float | None
    after_rate: int
    after_rate_settle: float | None
    final: int
    stop_seconds: float | None
    returncode: int | None
    cpu_percent: float
    access_lines: int
    click_ids: int
    human_visits: int


def show_wrk(title: str, result: WrkResult) -> None:
    print(f"--- wrk: {title} ---")
    for line in result.output.rstrip().splitlines():
        print(f"    {line}")


async def bench_amplify(
    args: argparse.Namespace, wrk: str, url: str, tmp: Path, codes: list[str], codes_file: Path
) -> AmplifyRun:
    port = free_port()
    counter = ClickCounter(url)
    server = Server("app", port, service_env(url, tmp, port), tmp / "amplify.log", tmp)
    try:
        await server.wait_ready("/readyz", 200)
        initial = await counter.count()
        warmup = await wrk_redirects(wrk, port, codes_file, WARMUP_SECONDS, args.connections)
        before, before_settle = await counter.settle(initial + warmup.redirects)

        cpu_start, wall_start = server.cpu_seconds(), time.perf_counter()
        measured = await wrk_redirects(wrk, port, codes_file, args.seconds, args.connections)
        cpu_percent = 100 * (server.cpu_seconds() - cpu_start) / (time.perf_counter() - wall_start)
        show_wrk(f"amplify, {args.seconds} s + {PARK_SECONDS} s parked tail", measured)
        middle, middle_settle = await counter.settle(before + measured.redirects)

        rate = await fixed_rate_redirects(port, codes, args)
        after_rate, after_rate_settle = await counter.settle(middle + rate.redirects)
    finally:
        await server.stop()
    final = await counter.count()
    click_ids, human_visits = await counter.click_ids()
    await counter.close()
    log_text = server.log.read_text(errors="replace")
    return AmplifyRun(
        warmup=warmup,
        measured=measured,
        rate=rate,
        initial=initial,
        before=before,
        before_settle=before_settle,
        middle=middle,
        middle_settle=middle_settle,
        after_rate=after_rate,
        after_rate_settle=after_rate_settle,
        final=final,
        stop_seconds=server.stop_seconds,
        returncode=server.returncode,
        cpu_percent=cpu_percent,
        access_lines=log_text.count('"GET /r/'),
        click_ids=click_ids,
        human_visits=human_visits,
    )


@dataclass
class BareRun:
    label: str
    result: WrkResult
    uvicorn_line: str
    cpu_percent: float
    access_lines: int
    rate: RateResult | None


async def bench_bare(
    args: argparse.Namespace,
    wrk: str,
    url: str,
    tmp: Path,
    codes: list[str],
    codes_file: Path,
    *,
    access_log_off: bool = False,
    with_rate: bool = False,
) -> BareRun:
    port = free_port()
    env = service_env(url, tmp, port)
    label = "bare asgi"
    if access_log_off:
        env["BARE_ASGI_ACCESS_LOG"] = "0"
        label = "bare, no access log"
    log = tmp / ("bare-no-access-log.log" if access_log_off else "bare.log")
    server = Server("bench.bare_asgi", port, env, log, tmp)
    try:
        await server.wait_ready("/", 302)
        await wrk_redirects(wrk, port, codes_file, WARMUP_SECONDS, args.connections)
        cpu_start, wall_start = server.cpu_seconds(), time.perf_counter()
        result = await wrk_redirects(wrk, port, codes_file, args.seconds, args.connections)
        cpu_percent = 100 * (server.cpu_seconds() - cpu_start) / (time.perf_counter() - wall_start)
        show_wrk(f"{label}, {args.seconds} s + {PARK_SECONDS} s parked tail", result)
        rate = None
        if with_rate:  # the generator's own floor on this machine
            rate = await fixed_rate_redirects(port, codes, args)
    finally:
        await server.stop()
    log_text = log.read_text(errors="replace")
    line = next(
        (line for line in log_text.splitlines() if line.startswith("bare_asgi:")),
        "bare_asgi: (no uvicorn arguments line in the log)",
    )
    return BareRun(label, result, line, cpu_percent, log_text.count('"GET /r/'), rate)


def fmt_ms(value: float) -> str:
    return f"{value:.2f} ms"


def settle_text(seconds: float | None) -> str:
    return f"not reached within {SETTLE_SECONDS} s" if seconds is None else f"{seconds:.2f} s"


def print_report(
    args: argparse.Namespace, backend: str, run: AmplifyRun, bares: list[BareRun]
) -> bool:
    m, rate = run.measured, run.rate
    rows = [(f"amplify {backend}", m, run.cpu_percent)]
    rows += [(bare.label, bare.result, bare.cpu_percent) for bare in bares]
    print()
    print(f"{'target':<20} {'requests/s':>10} {'p50':>10} {'p99':>10} {'errors':>7} {'CPU':>5}")
    for label, result, cpu in rows:
        print(
            f"{label:<20} {result.rps:>10,.0f} {fmt_ms(result.p50_ms):>10} "
            f"{fmt_ms(result.p99_ms):>10} {result.errors:>7} {cpu:>4.0f}%"
        )
    for bare in bares:
        label = f"ratio amplify/{bare.label}"
        print(f"{label:<36} {m.rps / bare.result.rps:>6.3f}  (target >= 0.25)")
    print(
        f"(requests/s: responses / the {args.seconds} s redirect window; wrk's own Requests/sec "
        f"also divides by the {PARK_SECONDS} s parked tail: "
        + ", ".join(f"{label} {result.wrk_rps:,.0f}" for label, result, _ in rows)
        + "; errors: socket errors + non-3xx; CPU: server process, 100% = one core)"
    )
    for label, result, _ in rows:
        print(
            f"{label}: {result.complete} responses to {result.sent} requests sent, "
            f"{result.redirects} 3xx, non-3xx {result.non3xx} (statuses {result.lua['statuses']}), "
            f"5xx {result.server_errors}, wrk non-2xx/3xx {result.non_2xx_3xx}, "
            f"socket errors {result.socket_errors or 'none'}"
        )
    for bare in bares:
        print(bare.uvicorn_line)
        print(f"{bare.label}: uvicorn access-log lines {bare.access_lines}")

    # Every count is polled until it reaches the expected value (at most SETTLE_SECONDS); the
    # decisive one is taken after the service exited.
    measured_stored = run.middle - run.before
    rate_stored = run.after_rate - run.middle
    answered_total = run.warmup.redirects + m.redirects + rate.redirects
    stored_total = run.final - run.initial
    unanswered = (m.sent - m.answered) + (run.warmup.sent - run.warmup.answered) + rate.abandoned
    equal = stored_total == answered_total and unanswered == 0
    print()
    print(
        f"clicks, wrk measured run: answered {m.redirects}, stored {measured_stored} "
        f"(count reached after {settle_text(run.middle_settle)})"
        + ("" if measured_stored == m.redirects else "  MISMATCH before shutdown")
    )
    print(
        f"clicks, fixed-rate run: answered {rate.redirects}, stored {rate_stored} "
        f"(count reached after {settle_text(run.after_rate_settle)})"
        + ("" if rate_stored == rate.redirects else "  MISMATCH before shutdown")
    )
    print(
        f"stored vs answered after shutdown (warm-up {run.warmup.redirects} + wrk {m.redirects} "
        f"+ fixed-rate {rate.redirects}): answered {answered_total}, stored {stored_total}: "
        + ("EQUAL" if equal else "NOT EQUAL")
    )
    if unanswered:
        print(
            f"  {unanswered} requests were sent but never answered (wrk stopped, or the "
            "fixed-rate generator gave up): the server may or may not have stored them"
        )
    stop = "never stopped" if run.stop_seconds is None else f"{run.stop_seconds:.2f} s"
    print(
        f"service shutdown: SIGTERM to exit {stop}, exit status {run.returncode}"
        + (" (uvicorn re-raises SIGTERM after a clean shutdown)" if run.returncode == -15 else "")
        + f"; uvicorn access-log lines for /r/: {run.access_lines}"
    )
    print(
        f"p99 at {args.rate:,.0f} req/s: {fmt_ms(rate.percentile(99))} (target < 20 ms); "
        f"p50 {fmt_ms(rate.percentile(50))}, max {fmt_ms(max(rate.latencies_ms))}; "
        f"achieved {rate.responses / rate.elapsed:,.0f} req/s"
    )
    print(
        f"  latency from each request's due time; {rate.responses} of {rate.scheduled} answered "
        f"in {rate.elapsed:.2f} s over {rate.connections} connections, statuses "
        f"{dict(sorted(rate.statuses.items()))}; not sent within {REQUEST_TIMEOUT:.0f} s of "
        f"their due time {rate.unsent} (counted as {REQUEST_TIMEOUT:.0f} s); sent but unanswered "
        f"{rate.abandoned}"
    )
    print(
        f"  written -> answered (no client-side wait): "
        f"p50 {fmt_ms(rate.percentile(50, rate.service_ms))}, "
        f"p99 {fmt_ms(rate.percentile(99, rate.service_ms))}; the generator itself started "
        f"requests late by p99 {fmt_ms(rate.percentile(99, rate.lag_ms))}, max "
        f"{fmt_ms(max(rate.lag_ms, default=0.0))} (it shares this machine's CPUs with the server)"
    )
    for bare in bares:
        if bare.rate is not None:
            floor = bare.rate
            print(
                f"  same generator against {bare.label} (its floor here): p99 "
                f"{fmt_ms(floor.percentile(99))}, p50 {fmt_ms(floor.percentile(50))}, "
                f"max {fmt_ms(max(floor.latencies_ms))}; generator late by p99 "
                f"{fmt_ms(floor.percentile(99, floor.lag_ms))}"
            )
    server_errors = run.warmup.server_errors + m.server_errors + rate.server_errors
    if server_errors:
        print(f"5xx responses from amplify: {server_errors}")
    wanted_ids = run.human_visits if args.attribution == "on" else 0
    print(
        f"attribution {args.attribution}: click ids stored {run.click_ids}, human visit clicks "
        f"stored {run.human_visits}: " + ("OK" if run.click_ids == wanted_ids else "MISMATCH")
    )
    ok = equal and server_errors == 0 and run.click_ids == wanted_ids
    print("check: " + ("OK" if ok else "FAILED"))
    return ok


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10, help="measured wrk run")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--database-url", default=None, help="PostgreSQL: a scratch db beside it")
    parser.add_argument("--skip-bare", action="store_true")
    parser.add_argument(
        "--webhook", action="store_true", help="with a clicks.recorded webhook endpoint"
    )
    parser.add_argument(
        "--attribution",
        choices=("on", "off"),
        default="on",
        help="the campaign's conversion attribution (click ids on human visits)",
    )
    parser.add_argument("--amplifiers", type=int, default=200)
    parser.add_argument("--rate", type=float, default=1000, help="fixed-rate run, req/s")
    parser.add_argument("--rate-seconds", type=float, default=10)
    args = parser.parse_args()

    wrk = ensure_wrk()
    tmp = Path(tempfile.mkdtemp(prefix="amplify-bench-redirect-"))
    base_url = args.database_url
    url, scratch = await bench_database(base_url, "redirect", tmp)
    backend = make_url(url).get_backend_name()
    ok = False
    try:
        await asyncio.to_thread(upgrade, url)
        settings = bench_settings(url, tmp, scanner_window=0)
        started = time.perf_counter()
        links = (
            await seed(
                settings,
                args.amplifiers,
                webhook=args.webhook,
                attribution=args.attribution == "on",
            )
        ).links
        seed_seconds = time.perf_counter() - started
        kinds: dict[str, int] = {}
        for _, kind in links:
            kinds[kind] = kinds.get(kind, 0) + 1
        codes = [code for code, _ in links]
        random.Random(1).shuffle(codes)
        codes_file = tmp / "codes.txt"
        codes_file.write_text("".join(f"{code}\n" for code in codes))
        print(
            f"seeded {len(codes)} codes ("
            + ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items()))
            + f") for {args.amplifiers} amplifiers in {seed_seconds:.1f} s; database {backend}; "
            f"wrk -t2 -c{args.connections}, {args.seconds} s measured after a "
            f"{WARMUP_SECONDS} s warm-up; attribution {args.attribution}",
            flush=True,
        )

        run = await bench_amplify(args, wrk, url, tmp, codes, codes_file)
        bares: list[BareRun] = []
        if not args.skip_bare:
            bares.append(await bench_bare(args, wrk, url, tmp, codes, codes_file, with_rate=True))
            if bares[0].access_lines:
                # `amplify serve` logs every request; show the ceiling without that too.
                bares.append(
                    await bench_bare(args, wrk, url, tmp, codes, codes_file, access_log_off=True)
                )
        ok = print_report(args, backend, run, bares)
        return 0 if ok else 1
    finally:
        await discard_bench_files(base_url, url, scratch, tmp, keep_logs=not ok)


if __name__ == "__main__":
    sys.exit(run_bench(main))
