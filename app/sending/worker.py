"""The send engine: claim due deliveries under a lease, compose, send, mark.

The worker is given its parts (`parts.DeliveryStore`, `parts.Composer`, a factory of
`parts.Transport`) and owns only the rules between them. Leases: everything a worker holds —
queued, being sent, or sent and waiting to be marked — is renewed on a clock, whatever else the
worker is doing; right before a mail goes out the worker checks that its lease on it is still
fresh, so a delivery another worker may have taken over is never sent here. A worker claims no
more than it can send within a lease at its rate. A delivery is marked sent only after the
server's 250; marks are written in small batches, so a crash can resend at most the mails
accepted since the last batch was written.
"""

import asyncio
import contextlib
import dataclasses
import logging
import os
import random
import secrets
import socket
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Sequence
from datetime import timedelta

from app.core.config import Settings
from app.core.db import utcnow
from app.core.metrics import LEASES_LOST
from app.models import AmplifierStatus, CampaignStatus
from app.sending.mailer import RateLimiter, SendError
from app.sending.mime import HeaderInjection
from app.sending.parts import (
    CampaignState,
    Claim,
    Composer,
    DeliveryStore,
    Job,
    Outcome,
    OutcomeStatus,
    Transport,
)

logger = logging.getLogger("amplify.worker")

MARK_BATCH = 200  # mails
MIN_CLAIM_SHARE = 4  # claim again once a quarter of a batch is free
FIRST_CLAIM_PER_CONNECTION = 4  # mails: the first mail goes out before a whole batch is loaded
MARK_INTERVAL = 0.05
STATE_REFRESH_SECONDS = 0.5
THROUGHPUT_WINDOW = 10.0

Clock = Callable[[], float]


def backoff_seconds(attempts: int, settings: Settings) -> float:
    """Exponential backoff with full jitter in the upper half."""
    ceiling: float = min(
        settings.retry_max_seconds, settings.retry_base_seconds * 2 ** max(0, attempts - 1)
    )
    return ceiling / 2 + random.random() * ceiling / 2


def new_worker_id() -> str:
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(3)}"


class LeaseBook:
    """The deliveries a worker holds and until when its lease on each is known to last.

    Deadlines are local clock readings taken *before* the database wrote the lease, so they
    never run past the lease the other workers see."""

    def __init__(self, lease_seconds: float, clock: Clock = time.monotonic) -> None:
        self.lease_seconds = lease_seconds
        self.clock = clock
        self._deadlines: dict[int, float] = {}
        self.renewed_at = clock()

    def __len__(self) -> int:
        return len(self._deadlines)

    def __contains__(self, delivery_id: object) -> bool:
        return delivery_id in self._deadlines

    @property
    def ids(self) -> list[int]:
        return list(self._deadlines)

    def hold(self, delivery_ids: Iterable[int], *, leased_at: float) -> None:
        if not self._deadlines:
            self.renewed_at = leased_at
        deadline = leased_at + self.lease_seconds
        self._deadlines.update(dict.fromkeys(delivery_ids, deadline))

    def renewal_due(self) -> bool:
        return bool(self._deadlines) and self.clock() - self.renewed_at >= self.lease_seconds / 3

    def renewed(self, asked: Iterable[int], kept: set[int], *, started_at: float) -> list[int]:
        """Record a renewal that began at `started_at`; returns the ids it found lost."""
        self.renewed_at = started_at
        deadline = started_at + self.lease_seconds
        lost = []
        for delivery_id in asked:
            if delivery_id not in self._deadlines:
                continue  # finished while the renewal ran
            if delivery_id in kept:
                self._deadlines[delivery_id] = deadline
            else:
                self._deadlines[delivery_id] = 0.0
                lost.append(delivery_id)
        return lost

    def fresh(self, delivery_id: int) -> bool:
        """Still ours long enough to send: a quarter of a lease left covers the SMTP
        transaction and small clock differences between machines."""
        deadline = self._deadlines.get(delivery_id, 0.0)
        return self.clock() + self.lease_seconds / 4 < deadline

    def drop(self, delivery_ids: Iterable[int]) -> None:
        for delivery_id in delivery_ids:
            self._deadlines.pop(delivery_id, None)


class ThroughputMeter:
    """Mails finished per second over the last window, measured only while the worker had
    work the whole window (an idle spell would read as a slow server)."""

    def __init__(self, window: float = THROUGHPUT_WINDOW, clock: Clock = time.monotonic) -> None:
        self.window = window
        self.clock = clock
        self._done: deque[float] = deque()
        self._busy_since: float | None = None

    def busy(self) -> None:
        if self._busy_since is None:
            self._busy_since = self.clock()

    def idle(self) -> None:
        self._busy_since = None
        self._done.clear()

    def finished(self) -> None:
        self._done.append(self.clock())

    def rate(self) -> float | None:
        now = self.clock()
        while self._done and self._done[0] < now - self.window:
            self._done.popleft()
        if self._busy_since is None or now - self._busy_since < self.window:
            return None
        return len(self._done) / self.window


def claim_capacity(settings: Settings, observed_rate: float | None) -> int:
    """How many deliveries a worker may hold at once: what it can send in half a lease at the
    configured cap and at the rate it has been achieving, within the queue's bounds."""
    capacity = settings.worker_batch * 2
    half_lease = settings.lease_seconds / 2
    if settings.send_rate > 0:
        capacity = min(capacity, max(1, int(settings.send_rate * half_lease)))
    if observed_rate is not None:
        floor = settings.smtp_connections * 2
        capacity = min(capacity, max(floor, int(observed_rate * half_lease)))
    return capacity


class Worker:
    """Claims → composes → sends → marks, with one transport per sender task."""

    def __init__(
        self,
        *,
        settings: Settings,
        store: DeliveryStore,
        composer: Composer,
        transports: Callable[[], Transport],
        worker_id: str,
        clock: Clock = time.monotonic,
    ) -> None:
        self.settings = settings
        self.store = store
        self.composer = composer
        self.transports = transports
        self.worker_id = worker_id
        self.clock = clock
        self.rate = RateLimiter(settings.send_rate)
        self.leases = LeaseBook(settings.lease_seconds, clock)
        self.throughput = ThroughputMeter(clock=clock)
        self._queue: asyncio.Queue[Job] = asyncio.Queue()
        self._outcomes: list[Outcome] = []
        self._mails_unmarked = 0
        self._mails_held = 0  # claimed and not yet marked
        self._outcome_added = asyncio.Event()
        self._stop = asyncio.Event()
        self._room = asyncio.Event()  # set when outcomes written or jobs handed back free room
        self._campaigns_held: Counter[int] = Counter()
        self._states: dict[int, CampaignState] = {}
        self._states_checked = 0.0
        self._promoted = -float("inf")
        # Set whenever nothing is claimed, queued, being sent or waiting to be marked.
        self.idle = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()
        self._room.set()

    async def run(self) -> None:
        logger.info(
            "worker %s started (%s SMTP connections)",
            self.worker_id,
            self.settings.smtp_connections,
        )
        senders = [
            asyncio.create_task(self._sender(self.transports()), name=f"amplify-sender-{i}")
            for i in range(self.settings.smtp_connections)
        ]
        helpers = [
            asyncio.create_task(self._marker(), name="amplify-marker"),
            asyncio.create_task(self._lease_keeper(), name="amplify-lease-keeper"),
        ]
        try:
            await self._claimer()
        finally:
            await self._shut_down(senders, helpers)

    async def _shut_down(
        self, senders: list[asyncio.Task[None]], helpers: list[asyncio.Task[None]]
    ) -> None:
        """Queued jobs go back at once; jobs being sent finish; then outcomes are written."""
        leftover: list[int] = []
        while not self._queue.empty():
            leftover.extend(part.delivery_id for part in self._queue.get_nowait().deliveries)
            self._queue.task_done()
        await self._queue.join()
        for task in senders:
            task.cancel()
        await asyncio.gather(*senders, return_exceptions=True)
        await self._flush()
        for task in helpers:
            task.cancel()
        await asyncio.gather(*helpers, return_exceptions=True)
        try:
            await self.store.release(leftover)
        except Exception:
            logger.exception(
                "handing back %s deliveries failed; their leases expire", len(leftover)
            )
        self.leases.drop(leftover)
        logger.info("worker %s stopped", self.worker_id)

    def claim_limit(self) -> int:
        """How many mails to claim now (a combined digest is one mail, whatever number of
        deliveries it carries): none while the room freed since the last claim is below a
        quarter batch and mails are still in hand, so each claim's fixed round trips (claim,
        states, load) are spread over many mails. With nothing in hand, a few mails per
        connection: sending starts at once, and the next claim fills the batch meanwhile."""
        capacity = claim_capacity(self.settings, self.throughput.rate())
        room = max(0, min(capacity - self._mails_held, self.settings.worker_batch))
        if not self._mails_held:
            return min(room, self.settings.smtp_connections * FIRST_CLAIM_PER_CONNECTION)
        if room < min(capacity, self.settings.worker_batch) // MIN_CLAIM_SHARE:
            return 0
        return room

    async def _claimer(self) -> None:
        while not self._stop.is_set():
            if not self.claim_limit():
                await self._wait_for_room()
                continue
            claimed = await self._claim_once()
            if claimed:
                continue
            await self._refresh_states()
            if not self.leases:
                await self._sweep()
                self.throughput.idle()
                self.idle.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=self.settings.worker_poll_seconds)

    async def _wait_for_room(self) -> None:
        """Holding all it may: claim again as soon as written outcomes free room."""
        self._room.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._room.wait(), timeout=self.settings.worker_poll_seconds)

    async def _claim_once(self) -> int:
        try:
            await self._promote_scheduled()
            limit = self.claim_limit()
            if not limit:
                return 0
            leased_at = self.clock()
            claims = await self.store.claim(limit)
        except Exception:
            logger.exception("claiming deliveries failed; retrying")
            return 0
        if not claims:
            return 0
        self.idle.clear()
        self.throughput.busy()
        self.leases.hold((c.delivery_id for c in claims), leased_at=leased_at)
        self._campaigns_held.update(c.campaign_id for c in claims)
        try:
            await self._refresh_states(force=True)
            jobs = await self.store.load_jobs(claims)
        except Exception:
            logger.exception("loading %s claimed deliveries failed; handing them back", len(claims))
            await self._give_back(claims)
            return 0
        self._mails_held += len(jobs)
        for job in jobs:
            self._queue.put_nowait(job)
        return len(jobs)

    async def _give_back(self, claims: Sequence[Claim]) -> None:
        ids = [c.delivery_id for c in claims]
        try:
            await self.store.release(ids)
        except Exception:
            logger.exception("handing back %s deliveries failed; their leases expire", len(ids))
        self.leases.drop(ids)
        self._campaigns_held.subtract(c.campaign_id for c in claims)
        self._room.set()

    async def _promote_scheduled(self) -> None:
        now = self.clock()
        if now - self._promoted < self.settings.worker_poll_seconds:
            return
        self._promoted = now
        await self.store.promote_scheduled()

    async def _lease_keeper(self) -> None:
        tick = min(1.0, self.settings.lease_seconds / 12)
        while True:
            await asyncio.sleep(tick)
            if self.leases.renewal_due():
                await self.renew_leases()

    async def renew_leases(self) -> None:
        asked = self.leases.ids
        started_at = self.clock()
        try:
            kept = await self.store.renew_leases(asked)
        except Exception:
            logger.exception("renewing %s leases failed", len(asked))
            return
        lost = self.leases.renewed(asked, kept, started_at=started_at)
        if lost:
            logger.warning("%s deliveries were taken over by another worker", len(lost))

    async def _sweep(self) -> None:
        try:
            await self.store.finish_done()
        except Exception:
            logger.exception("finishing campaigns failed")

    async def _refresh_states(self, *, force: bool = False) -> None:
        """Campaign status and version for jobs in hand: a pause or cancel stops their sending,
        an edited subject or intro rebuilds the mail."""
        now = self.clock()
        if not force and now - self._states_checked < STATE_REFRESH_SECONDS:
            return
        self._states_checked = now
        active = [c for c, n in self._campaigns_held.items() if n > 0]
        try:
            self._states = await self.store.campaign_states(active)
        except Exception:
            logger.exception("reading campaign states failed")

    async def _sender(self, transport: Transport) -> None:
        try:
            while True:
                job = await self._queue.get()
                try:
                    outcome = await self._deliver(job, transport)
                except Exception as exc:  # a bug must not kill the sender or lose the job
                    logger.exception("delivery %s failed unexpectedly", job.delivery_id)
                    outcome = self._retry(job, f"internal: {type(exc).__name__}")
                finally:
                    self._queue.task_done()
                self.throughput.finished()
                if job.parts:  # a combined digest's outcome (and Message-ID) is every part's
                    self._outcomes.extend(_for_each_part(outcome, job.parts))
                else:
                    self._outcomes.append(outcome)
                self._mails_unmarked += 1
                if self._mails_unmarked >= MARK_BATCH:
                    self._outcome_added.set()
        finally:
            await transport.close()

    async def _deliver(self, job: Job, transport: Transport) -> Outcome:
        """Send one mail: a plain digest, or a combined one carrying several deliveries (the
        outcome is then every part's)."""
        parts = job.deliveries
        if not all(self._sending(part.campaign_id) for part in parts):
            return Outcome(job, OutcomeStatus.RELEASE)
        email = job.email
        if email is None or job.amplifier_status != AmplifierStatus.ACTIVE:
            error = f"amplifier is {job.amplifier_status or 'deleted'}"
            return Outcome(job, OutcomeStatus.CANCELLED, error=error)
        if not all(part.share_urls for part in parts):
            return Outcome(job, OutcomeStatus.FAILED, error="no share links for this delivery")
        try:
            await transport.open()
            mail = await self.composer.compose(
                job, states=self._states, eight_bit=transport.eight_bit
            )
            await self.rate.acquire()
            if not all(self.leases.fresh(part.delivery_id) for part in parts):
                LEASES_LOST.labels("before_send").inc()
                return Outcome(job, OutcomeStatus.RELEASE)
            await transport.send(mail.envelope_from, email, mail.raw, eight_bit=transport.eight_bit)
        except HeaderInjection as exc:
            return Outcome(job, OutcomeStatus.FAILED, error=f"cannot build the mail: {exc}")
        except SendError as exc:
            if exc.transient and job.attempts < self.settings.max_attempts:
                return self._retry(job, str(exc))
            reason = (
                str(exc) if not exc.transient else f"gave up after {job.attempts} attempts: {exc}"
            )
            return Outcome(job, OutcomeStatus.FAILED, error=reason, bounce=exc.bounce)
        return Outcome(job, OutcomeStatus.SENT, message_id=mail.message_id)

    def _sending(self, campaign_id: int) -> bool:
        state = self._states.get(campaign_id)
        return state is not None and state.status == CampaignStatus.SENDING

    def _retry(self, job: Job, error: str) -> Outcome:
        delay = timedelta(seconds=backoff_seconds(job.attempts, self.settings))
        now = utcnow()
        return Outcome(job, OutcomeStatus.RETRY, error=error, retry_at=now + delay, at=now)

    async def _marker(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._outcome_added.wait(), timeout=MARK_INTERVAL)
            self._outcome_added.clear()
            await self._flush()

    async def _flush(self) -> None:
        if not self._outcomes:
            return
        batch, mails = self._outcomes, self._mails_unmarked
        self._outcomes, self._mails_unmarked = [], 0
        for attempt in range(5):
            try:
                await self.store.apply(batch)
                break
            except Exception:  # deadlocks and lost connections: the transaction rolled back
                logger.exception(
                    "writing %s delivery outcomes failed (try %s)", len(batch), attempt + 1
                )
                await asyncio.sleep(0.2 * 2**attempt)
        else:
            # Leases expire and the deliveries are retried: at worst these mails are sent again.
            logger.error("gave up writing %s outcomes; their leases will expire", len(batch))
        self._campaigns_held.subtract(o.job.campaign_id for o in batch)
        self.leases.drop(o.job.delivery_id for o in batch)
        self._mails_held -= mails
        self._room.set()


def _for_each_part(outcome: Outcome, parts: Sequence[Job]) -> list[Outcome]:
    return [dataclasses.replace(outcome, job=part) for part in parts]
