"""The webhook dispatcher: outbox → messages → signed posts, beside the sending worker.

Each loop is independent: fan-out (outbox events into per-endpoint messages; click batches at
most once a second so they coalesce), claiming (leased messages up to the free posting slots),
posting (httpx, a 10 s budget per post, response bodies read up to a bound and dropped), and
recording (outcomes written in small batches). A crash between a post and its record means
that message is posted again when its lease ends: delivery is at least once.
"""

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.config import Settings
from app.core.db import utcnow
from app.core.metrics import WEBHOOK_MESSAGES
from app.webhooks import signing
from app.webhooks.service import message_event_id
from app.webhooks.store import Claimed, PostResult, WebhookStore, purge_finished
from app.webhooks.targets import TargetRefused, parse_target, resolve_target

logger = logging.getLogger("amplify.webhooks")

MAX_RESPONSE_BYTES = 64 * 1024
RECORD_BATCH = 200
RECORD_INTERVAL = 0.05
CLICK_FAN_OUT_SECONDS = 1.0
CLAIM_BATCH = 500
ERROR_PAUSE_SECONDS = 2.0
LANE_CONNECTIONS = 4
REFILL_FRACTION = 4  # claim again once a quarter of the posting slots are free
PURGE_EVERY_SECONDS = 3600.0


@dataclass(slots=True)
class Lane:
    """An httpx client with a few connections, never asked for more posts at once than it
    has connections: httpx's pool slows down sharply (tenfold at 64) when requests queue in
    it, so concurrency comes from several small clients instead of one large one."""

    client: httpx.AsyncClient
    busy: int = 0


def lane_sizes(concurrency: int) -> list[int]:
    full, rest = divmod(concurrency, LANE_CONNECTIONS)
    return [LANE_CONNECTIONS] * full + ([rest] if rest else [])


def new_dispatcher_id() -> str:
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(3)}"


async def _drain(response: httpx.Response, limit: int) -> None:
    """Read (and drop) at most `limit` bytes of the answer: a huge or endless body costs
    nothing more than that."""
    seen = 0
    async for chunk in response.aiter_raw():
        seen += len(chunk)
        if seen >= limit:
            return


async def post_message(
    client: httpx.AsyncClient, claimed: Claimed, settings: Settings
) -> PostResult:
    """One signed post; never raises (every failure is a result)."""
    at = utcnow()
    allow_private = settings.webhook_allow_private
    try:
        async with asyncio.timeout(settings.webhook_timeout_seconds):
            target = parse_target(claimed.url, allow_private=allow_private)
            address = await resolve_target(target, allow_private=allow_private)
            url = httpx.URL(target.url)
            headers = signing.headers(
                signing.secret_key(claimed.secret),
                message_event_id(claimed.message_id),
                int(time.time()),
                claimed.body,
            )
            headers["host"] = url.netloc.decode("ascii")
            # Connect to the address that was checked, not to a second lookup of the name.
            request = client.build_request(
                "POST",
                url.copy_with(host=str(address)),
                content=claimed.body,
                headers=headers,
                extensions={"sni_hostname": target.host} if target.scheme == "https" else {},
            )
            response = await client.send(request, stream=True)
            try:
                await _drain(response, MAX_RESPONSE_BYTES)
            finally:
                await response.aclose()
    except TargetRefused as exc:
        return PostResult(claimed, None, f"refused: {exc}", at)
    except TimeoutError:
        return PostResult(
            claimed, None, f"timed out after {settings.webhook_timeout_seconds:g} s", at
        )
    except (httpx.HTTPError, OSError, ValueError) as exc:
        return PostResult(claimed, None, f"{type(exc).__name__}: {exc}"[:500], at)
    error = None if 200 <= response.status_code < 300 else f"HTTP {response.status_code}"
    return PostResult(claimed, response.status_code, error, at)


class Dispatcher:
    def __init__(
        self,
        settings: Settings,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        owner: str | None = None,
    ) -> None:
        self.settings = settings
        self.store = WebhookStore(sessionmaker, settings, owner or new_dispatcher_id())
        self._stopping = asyncio.Event()
        self._slot_freed = asyncio.Event()
        self._in_flight: set[asyncio.Task[None]] = set()
        self._results: list[PostResult] = []
        self.concurrency = settings.webhook_concurrency
        self._refill_at = max(1, self.concurrency // REFILL_FRACTION)
        self._lanes: list[Lane] = []
        self._clicks_fanned_at = float("-inf")
        self.delivered = 0
        self.failed = 0

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        self._lanes = [Lane(self._client_for(size)) for size in lane_sizes(self.concurrency)]
        try:
            loops = [
                asyncio.create_task(self._forever(self._fan_out), name="webhooks-fan-out"),
                asyncio.create_task(self._forever(self._claim), name="webhooks-claim"),
                asyncio.create_task(self._forever(self._record), name="webhooks-record"),
                asyncio.create_task(self._forever(self._purge), name="webhooks-purge"),
            ]
            # Each loop ends by itself at its next pause: cancelling one inside a transaction
            # could leave its connection holding SQLite's write lock.
            await asyncio.gather(*loops, return_exceptions=True)
            if self._in_flight:
                await asyncio.wait(self._in_flight)
            with contextlib.suppress(Exception):
                await self._write_results()
        finally:
            for lane in self._lanes:
                await lane.client.aclose()

    def _client_for(self, connections: int) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            timeout=self.settings.webhook_timeout_seconds,
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
            follow_redirects=False,
            trust_env=False,  # no proxy from the environment: the address check must hold
        )

    async def _forever(self, step: Callable[[], Awaitable[float]]) -> None:
        """Run `step` until stopped; it returns how long to wait before the next round."""
        while not self._stopping.is_set():
            try:
                pause = await step()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("webhook dispatcher step %s failed", step.__name__)
                pause = ERROR_PAUSE_SECONDS
            if pause > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), pause)

    async def _fan_out(self) -> float:
        now = time.monotonic()
        clicks = now - self._clicks_fanned_at >= CLICK_FAN_OUT_SECONDS
        if clicks:
            self._clicks_fanned_at = now
        taken = await self.store.fan_out(clicks=clicks)
        return 0.0 if taken >= 1000 else self.settings.webhook_poll_seconds

    async def _claim(self) -> float:
        free = self.concurrency - len(self._in_flight)
        # Refill in batches: a claim for every freed slot would cost a transaction per post.
        if free < self._refill_at and self._in_flight:
            self._slot_freed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._slot_freed.wait(), 1.0)
            return 0.0
        claimed = await self.store.claim(min(free, CLAIM_BATCH))
        for message in claimed:
            task = asyncio.create_task(self._post(message))
            self._in_flight.add(task)
            task.add_done_callback(self._done)
        return 0.0 if len(claimed) == free else self.settings.webhook_poll_seconds

    def _done(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        self._slot_freed.set()

    async def _post(self, claimed: Claimed) -> None:
        lane = min(self._lanes, key=lambda candidate: candidate.busy)
        lane.busy += 1
        try:
            result = await post_message(lane.client, claimed, self.settings)
        finally:
            lane.busy -= 1
        # Appended after the await: `_write_results` swaps the list while posts are running.
        self._results.append(result)

    async def _purge(self) -> float:
        """Message bodies and attempts are kept as long as raw clicks, then deleted."""
        await purge_finished(
            self.store.sessionmaker,
            older_than=timedelta(days=self.settings.click_retention_days),
        )
        return PURGE_EVERY_SECONDS

    async def _record(self) -> float:
        await self._write_results()
        return RECORD_INTERVAL

    async def _write_results(self) -> None:
        while self._results:
            batch, self._results = self._results[:RECORD_BATCH], self._results[RECORD_BATCH:]
            try:
                await self.store.record(batch)
            except Exception:
                self._results = batch + self._results  # kept, retried on the next round
                raise
            self._count(batch)

    def _count(self, batch: list[PostResult]) -> None:
        for result in batch:
            if result.ok:
                outcome = "delivered"
                self.delivered += 1
            elif self.store.next_attempt_at(result) is None:
                outcome = "failed"
                self.failed += 1
            else:
                outcome = "retried"
            WEBHOOK_MESSAGES.labels(outcome).inc()


def start_dispatcher(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]
) -> tuple[Dispatcher, asyncio.Task[None]]:
    """The dispatcher runs beside every sending worker; stop it with `stop()`, then await."""
    dispatcher = Dispatcher(settings, sessionmaker)
    return dispatcher, asyncio.create_task(dispatcher.run(), name="amplify-webhooks")
