"""The sending worker: claim due deliveries under a lease, render, send over SMTP, mark.

Claims are leases (`FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite serialises writers), so any
number of workers share the queue and a dead worker's deliveries are taken over when its lease
expires. A delivery is marked sent only after the server's 250; marks are written in small
batches, so a crash can resend at most the mails accepted since the last batch was written.
"""

import asyncio
import contextlib
import logging
import os
import random
import secrets
import socket
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import quote

from sqlalchemy import and_, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.config import Settings
from app.core.db import utcnow
from app.core.metrics import CLAIM_BATCH_SIZE, MAILS
from app.core.security import Signer
from app.models import (
    Amplifier,
    AmplifierStatus,
    Campaign,
    CampaignStatus,
    Delivery,
    DeliveryStatus,
    Link,
    LinkKind,
    Message,
    Organization,
)
from app.pages.tokens import unsubscribe_mailto_base, unsubscribe_token, web_version_url
from app.sending.mailer import RateLimiter, SendError, SmtpConfig, SmtpConnection
from app.sending.mime import (
    CampaignHeaders,
    HeaderInjection,
    build_digest,
    domain_of,
    envelope_address,
    message_id,
)
from app.sending.render import CampaignContent, DigestPrototype, MessageContent, Recipient
from app.tracking.retention import purge_old_clicks

logger = logging.getLogger("amplify.worker")

MARK_BATCH = 200
MARK_INTERVAL = 0.05
STATE_REFRESH_SECONDS = 0.5
PURGE_EVERY_SECONDS = 3600.0


@dataclass(frozen=True, slots=True)
class Job:
    delivery_id: int
    campaign_id: int
    amplifier_id: int | None
    attempts: int
    email: str | None
    name: str | None
    amplifier_status: str | None
    share_urls: dict[tuple[int, str], str]
    networks: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Outcome:
    job: Job
    status: str  # sent | retry | failed | cancelled | release (not sent: handed back)
    error: str | None = None
    message_id: str | None = None
    bounce: bool = False
    at: datetime = field(default_factory=utcnow)


@dataclass
class _CampaignCache:
    updated_at: datetime
    content: CampaignContent
    headers: CampaignHeaders
    prototypes: dict[tuple[str, ...], DigestPrototype] = field(default_factory=dict)


def backoff_seconds(attempts: int, settings: Settings) -> float:
    """Exponential backoff with full jitter in the upper half."""
    ceiling: float = min(
        settings.retry_max_seconds, settings.retry_base_seconds * 2 ** max(0, attempts - 1)
    )
    return ceiling / 2 + random.random() * ceiling / 2


class DeliveryStore:
    """Everything the worker reads and writes, as set-based SQL."""

    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, worker_id: str
    ) -> None:
        self.sessionmaker = sessionmaker
        self.settings = settings
        self.worker_id = worker_id

    async def promote_scheduled(self) -> int:
        async with self.sessionmaker.begin() as session:
            result = await session.execute(
                update(Campaign)
                .where(
                    Campaign.status == CampaignStatus.SCHEDULED, Campaign.scheduled_at <= utcnow()
                )
                .values(status=CampaignStatus.SENDING, updated_at=utcnow())
                .execution_options(synchronize_session=False)
            )
            return int(result.rowcount)  # type: ignore[attr-defined]

    async def claim(self, limit: int) -> list[tuple[int, int, int | None, int]]:
        now = utcnow()
        async with self.sessionmaker.begin() as session:
            due = (
                select(Delivery.id)
                .join(Campaign, Campaign.id == Delivery.campaign_id)
                .where(
                    Delivery.status == DeliveryStatus.PENDING,
                    Delivery.next_attempt_at <= now,
                    or_(Delivery.lease_expires_at.is_(None), Delivery.lease_expires_at < now),
                    Campaign.status == CampaignStatus.SENDING,
                )
                .order_by(Delivery.next_attempt_at, Delivery.id)
                .limit(limit)
            )
            if session.get_bind().dialect.name == "postgresql":
                due = due.with_for_update(skip_locked=True, of=Delivery)
            rows = await session.execute(
                update(Delivery)
                .where(Delivery.id.in_(due.scalar_subquery()))
                .values(
                    lease_owner=self.worker_id,
                    lease_expires_at=now + timedelta(seconds=self.settings.lease_seconds),
                    attempts=Delivery.attempts + 1,
                )
                .returning(
                    Delivery.id, Delivery.campaign_id, Delivery.amplifier_id, Delivery.attempts
                )
                .execution_options(synchronize_session=False)
            )
            claimed = [tuple(row) for row in rows.all()]
            if claimed:
                CLAIM_BATCH_SIZE.observe(len(claimed))
            return claimed  # type: ignore[return-value]

    async def load_jobs(self, claimed: Sequence[tuple[int, int, int | None, int]]) -> list[Job]:
        ids = [row[0] for row in claimed]
        async with self.sessionmaker() as session:
            people = {
                row.id: row
                for row in (
                    await session.execute(
                        select(Delivery.id, Amplifier.email, Amplifier.name, Amplifier.status)
                        .outerjoin(Amplifier, Amplifier.id == Delivery.amplifier_id)
                        .where(Delivery.id.in_(ids))
                    )
                ).all()
            }
            shares: dict[int, dict[tuple[int, str], str]] = {i: {} for i in ids}
            links = await session.execute(
                select(Link.delivery_id, Link.message_id, Link.network, Link.code).where(
                    Link.delivery_id.in_(ids), Link.kind == LinkKind.SHARE
                )
            )
            for link_delivery, message_id_, network, code in links.all():
                assert link_delivery is not None
                shares[link_delivery][(message_id_, network)] = (
                    f"{self.settings.public_url}/r/{code}"
                )
        jobs = []
        for delivery_id, campaign_id, amplifier_id, attempts in claimed:
            person = people.get(delivery_id)
            share_urls = shares[delivery_id]
            jobs.append(
                Job(
                    delivery_id=delivery_id,
                    campaign_id=campaign_id,
                    amplifier_id=amplifier_id,
                    attempts=attempts,
                    email=person.email if person else None,
                    name=person.name if person else None,
                    amplifier_status=person.status if person else None,
                    share_urls=share_urls,
                    networks=tuple(dict.fromkeys(network for _, network in share_urls)),
                )
            )
        return jobs

    async def campaign_content(self, campaign_id: int) -> tuple[datetime, CampaignContent, str]:
        async with self.sessionmaker() as session:
            campaign, org_name = (
                await session.execute(
                    select(Campaign, Organization.name)
                    .join(Organization, Organization.id == Campaign.organization_id)
                    .where(Campaign.id == campaign_id)
                )
            ).one()
            messages = (
                await session.scalars(
                    select(Message)
                    .where(Message.campaign_id == campaign_id)
                    .order_by(Message.position)
                )
            ).all()
        content = CampaignContent(
            organization_name=org_name,
            name=campaign.name,
            subject=campaign.subject,
            intro=campaign.intro or "",
            messages=[
                MessageContent(
                    id=m.id, position=m.position, text=m.text, url=m.url, image_url=m.image_url
                )
                for m in messages
            ],
        )
        return campaign.updated_at, content, campaign.subject

    async def campaign_states(self, campaign_ids: Iterable[int]) -> dict[int, tuple[str, datetime]]:
        ids = list(campaign_ids)
        if not ids:
            return {}
        async with self.sessionmaker() as session:
            rows = await session.execute(
                select(Campaign.id, Campaign.status, Campaign.updated_at).where(
                    Campaign.id.in_(ids)
                )
            )
            return {campaign_id: (status, updated) for campaign_id, status, updated in rows.all()}

    async def renew_leases(self) -> int:
        """Extend this worker's leases: claimed work waiting behind a rate cap stays ours."""
        async with self.sessionmaker.begin() as session:
            result = await session.execute(
                update(Delivery)
                .where(
                    Delivery.lease_owner == self.worker_id,
                    Delivery.status == DeliveryStatus.PENDING,
                )
                .values(lease_expires_at=utcnow() + timedelta(seconds=self.settings.lease_seconds))
                .execution_options(synchronize_session=False)
            )
            return int(result.rowcount)  # type: ignore[attr-defined]

    async def release(self, delivery_ids: Sequence[int]) -> None:
        """Give back leases of claimed deliveries this worker will not send (shutdown)."""
        if delivery_ids:
            async with self.sessionmaker.begin() as session:
                await self._release(session, delivery_ids)

    @staticmethod
    async def _release(session: AsyncSession, delivery_ids: Sequence[int]) -> None:
        await session.execute(
            update(Delivery)
            .where(Delivery.id.in_(delivery_ids), Delivery.status == DeliveryStatus.PENDING)
            .values(lease_owner=None, lease_expires_at=None, attempts=Delivery.attempts - 1)
            .execution_options(synchronize_session=False)
        )

    async def apply(self, outcomes: Sequence[Outcome]) -> None:
        """Write a batch of outcomes, bounce addresses, pause failing and finish done campaigns."""
        if not outcomes:
            return
        sent = [o for o in outcomes if o.status == "sent"]
        retry = [o for o in outcomes if o.status == "retry"]
        failed = [o for o in outcomes if o.status == "failed"]
        cancelled = [o for o in outcomes if o.status == "cancelled"]
        released = [o.job.delivery_id for o in outcomes if o.status == "release"]
        for outcome, group in (("sent", sent), ("failed", failed), ("retried", retry)):
            if group:
                MAILS.labels(outcome).inc(len(group))
        async with self.sessionmaker.begin() as session:
            if released:
                await self._release(session, released)
            if sent:
                await session.execute(
                    update(Delivery),
                    [
                        {
                            "id": o.job.delivery_id,
                            "status": DeliveryStatus.SENT,
                            "sent_at": o.at,
                            "message_id": o.message_id,
                            "last_error": None,
                            "lease_owner": None,
                            "lease_expires_at": None,
                            "updated_at": o.at,
                        }
                        for o in sent
                    ],
                )
            if retry:
                await session.execute(
                    update(Delivery),
                    [
                        {
                            "id": o.job.delivery_id,
                            "status": DeliveryStatus.PENDING,
                            "next_attempt_at": o.at
                            + timedelta(seconds=backoff_seconds(o.job.attempts, self.settings)),
                            "last_error": o.error,
                            "lease_owner": None,
                            "lease_expires_at": None,
                            "updated_at": o.at,
                        }
                        for o in retry
                    ],
                )
            for status, group in (
                (DeliveryStatus.FAILED, failed),
                (DeliveryStatus.CANCELLED, cancelled),
            ):
                if group:
                    await session.execute(
                        update(Delivery),
                        [
                            {
                                "id": o.job.delivery_id,
                                "status": status,
                                "last_error": o.error,
                                "lease_owner": None,
                                "lease_expires_at": None,
                                "updated_at": o.at,
                            }
                            for o in group
                        ],
                    )
            bounced = [o.job.amplifier_id for o in failed if o.bounce and o.job.amplifier_id]
            if bounced:
                await session.execute(
                    update(Amplifier)
                    .where(Amplifier.id.in_(bounced), Amplifier.status == AmplifierStatus.ACTIVE)
                    .values(status=AmplifierStatus.BOUNCED, updated_at=utcnow())
                    .execution_options(synchronize_session=False)
                )
            campaign_ids = {o.job.campaign_id for o in outcomes}
            if failed:
                await self._pause_failing(session, {o.job.campaign_id for o in failed})
            await self._finish_done(session, campaign_ids)

    async def _pause_failing(self, session: AsyncSession, campaign_ids: set[int]) -> None:
        """Pause a campaign whose outcomes since its last resume are mostly failures."""
        for campaign_id in campaign_ids:
            resumed_at = await session.scalar(
                select(Campaign.resumed_at).where(Campaign.id == campaign_id)
            )
            recent = select(Delivery.status, func.count()).where(
                Delivery.campaign_id == campaign_id,
                Delivery.status.in_((DeliveryStatus.SENT, DeliveryStatus.FAILED)),
            )
            if resumed_at is not None:
                recent = recent.where(Delivery.updated_at >= resumed_at)
            counts = dict((await session.execute(recent.group_by(Delivery.status))).all())
            failures = counts.get(DeliveryStatus.FAILED, 0)
            finished = failures + counts.get(DeliveryStatus.SENT, 0)
            if (
                failures >= self.settings.pause_min_errors
                and failures / finished >= self.settings.pause_error_rate
            ):
                result = await session.execute(
                    update(Campaign)
                    .where(Campaign.id == campaign_id, Campaign.status == CampaignStatus.SENDING)
                    .values(status=CampaignStatus.PAUSED, updated_at=utcnow())
                    .execution_options(synchronize_session=False)
                )
                if result.rowcount:  # type: ignore[attr-defined]
                    logger.warning(
                        "campaign %s paused: %s of %s deliveries failed",
                        campaign_id,
                        failures,
                        finished,
                    )

    async def finish_done(self) -> None:
        """Sweep for campaigns with nothing left pending. Two workers marking the last
        deliveries of a campaign at the same moment each still see the other's as pending."""
        async with self.sessionmaker.begin() as session:
            await self._finish_done(session, None)

    async def _finish_done(self, session: AsyncSession, campaign_ids: set[int] | None) -> None:
        still_pending = exists().where(
            and_(Delivery.campaign_id == Campaign.id, Delivery.status == DeliveryStatus.PENDING)
        )
        stmt = update(Campaign).where(Campaign.status == CampaignStatus.SENDING, ~still_pending)
        if campaign_ids is not None:
            stmt = stmt.where(Campaign.id.in_(campaign_ids))
        await session.execute(
            stmt.values(
                status=CampaignStatus.SENT, sent_at=utcnow(), updated_at=utcnow()
            ).execution_options(synchronize_session=False)
        )


def new_worker_id() -> str:
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(3)}"


class Worker:
    """Claims → renders → sends → marks, with one SMTP connection per sender task."""

    def __init__(
        self,
        *,
        settings: Settings,
        sessionmaker: async_sessionmaker[AsyncSession],
        signer: Signer,
        smtp: SmtpConfig | None = None,
        worker_id: str | None = None,
    ) -> None:
        self.settings = settings
        self.signer = signer
        self.worker_id = worker_id or new_worker_id()
        self.store = DeliveryStore(sessionmaker, settings, self.worker_id)
        self.smtp = smtp or SmtpConfig.from_settings(settings)
        self.rate = RateLimiter(settings.send_rate)
        self.sender = envelope_address(settings.mail_from)
        self.domain = domain_of(settings.mail_from)
        self._mailto_base = unsubscribe_mailto_base(settings)
        self._queue: asyncio.Queue[Job] = asyncio.Queue(maxsize=settings.worker_batch * 2)
        self._outcomes: list[Outcome] = []
        self._outcome_added = asyncio.Event()
        self._campaigns: dict[int, _CampaignCache] = {}
        self._stop = asyncio.Event()
        self._inflight = 0
        self._inflight_campaigns: Counter[int] = Counter()
        self._states: dict[int, tuple[str, datetime]] = {}
        self._states_checked = 0.0
        self._leases_renewed = time.monotonic()
        self._promoted = 0.0
        self._purged = 0.0
        # Set whenever nothing is claimed, queued, being sent or waiting to be marked.
        self.idle = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        logger.info(
            "worker %s started (%s SMTP connections)",
            self.worker_id,
            self.settings.smtp_connections,
        )
        senders = [
            asyncio.create_task(self._sender(SmtpConnection(self.smtp)), name=f"amplify-sender-{i}")
            for i in range(self.settings.smtp_connections)
        ]
        marker = asyncio.create_task(self._marker(), name="amplify-marker")
        try:
            await self._claimer()
        finally:
            # Queued jobs go back at once; jobs being sent finish; then outcomes are written.
            leftover = []
            while not self._queue.empty():
                leftover.append(self._queue.get_nowait().delivery_id)
                self._queue.task_done()
            self._inflight -= len(leftover)
            await self._queue.join()
            for task in senders:
                task.cancel()
            await asyncio.gather(*senders, return_exceptions=True)
            marker.cancel()
            await asyncio.gather(marker, return_exceptions=True)
            await self._flush()
            await self.store.release(leftover)
            logger.info("worker %s stopped", self.worker_id)

    async def _claimer(self) -> None:
        while not self._stop.is_set():
            try:
                await self._promote_scheduled()
                room = self._queue.maxsize - self._queue.qsize()
                claimed = (
                    await self.store.claim(min(room, self.settings.worker_batch)) if room else []
                )
            except Exception:
                logger.exception("claiming deliveries failed; retrying")
                claimed = []
            if claimed:
                if self._inflight == 0:
                    self._leases_renewed = time.monotonic()
                self.idle.clear()
                self._inflight += len(claimed)
                self._inflight_campaigns.update(row[1] for row in claimed)
                await self._refresh_states(force=True)
                for job in await self.store.load_jobs(claimed):
                    await self._queue.put(job)
                continue
            await self._refresh_states()
            await self._renew_leases()
            if self._inflight == 0:
                await self._sweep()
                self.idle.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=self.settings.worker_poll_seconds)

    async def _promote_scheduled(self) -> None:
        now = time.monotonic()
        if now - self._promoted < self.settings.worker_poll_seconds:
            return
        self._promoted = now
        await self.store.promote_scheduled()

    async def _renew_leases(self) -> None:
        now = time.monotonic()
        if self._inflight == 0 or now - self._leases_renewed < self.settings.lease_seconds / 3:
            return
        self._leases_renewed = now
        try:
            await self.store.renew_leases()
        except Exception:
            logger.exception("renewing leases failed")

    async def _sweep(self) -> None:
        try:
            await self.store.finish_done()
        except Exception:
            logger.exception("finishing campaigns failed")
        now = time.monotonic()
        if now - self._purged < PURGE_EVERY_SECONDS:
            return
        self._purged = now
        try:
            async with self.store.sessionmaker.begin() as session:
                purged = await purge_old_clicks(
                    session, now=utcnow(), retention_days=self.settings.click_retention_days
                )
            if purged.clicks or purged.visitors:
                logger.info(
                    "retention: purged %s clicks, %s visitor entries",
                    purged.clicks,
                    purged.visitors,
                )
        except Exception:
            logger.exception("purging old clicks failed")

    async def _refresh_states(self, *, force: bool = False) -> None:
        """Campaign status and version for jobs in flight: a pause or cancel stops their sending,
        an edited subject or intro rebuilds the prototype."""
        now = time.monotonic()
        if not force and now - self._states_checked < STATE_REFRESH_SECONDS:
            return
        self._states_checked = now
        active = [c for c, n in self._inflight_campaigns.items() if n > 0]
        try:
            self._states = await self.store.campaign_states(active)
        except Exception:
            logger.exception("reading campaign states failed")

    async def _sender(self, connection: SmtpConnection) -> None:
        try:
            while True:
                job = await self._queue.get()
                try:
                    outcome = await self._deliver(job, connection)
                except Exception as exc:  # a bug must not kill the sender or lose the job
                    logger.exception("delivery %s failed unexpectedly", job.delivery_id)
                    outcome = Outcome(job, "retry", error=f"internal: {type(exc).__name__}")
                finally:
                    self._queue.task_done()
                self._outcomes.append(outcome)
                if len(self._outcomes) >= MARK_BATCH:
                    self._outcome_added.set()
        finally:
            await connection.close()

    async def _deliver(self, job: Job, connection: SmtpConnection) -> Outcome:
        state = self._states.get(job.campaign_id)
        if state is None or state[0] != CampaignStatus.SENDING:
            return Outcome(job, "release")
        if job.email is None or job.amplifier_status != AmplifierStatus.ACTIVE:
            return Outcome(
                job, "cancelled", error=f"amplifier is {job.amplifier_status or 'deleted'}"
            )
        if not job.share_urls:
            return Outcome(job, "failed", error="no share links for this delivery")
        try:
            await connection.open()
            raw, mid = await self._build(job, eight_bit=connection.eight_bit)
            await self.rate.acquire()
            await connection.send(self.sender, job.email, raw, eight_bit=connection.eight_bit)
        except HeaderInjection as exc:
            return Outcome(job, "failed", error=f"cannot build the mail: {exc}")
        except SendError as exc:
            if exc.transient and job.attempts < self.settings.max_attempts:
                return Outcome(job, "retry", error=str(exc))
            reason = (
                str(exc) if not exc.transient else f"gave up after {job.attempts} attempts: {exc}"
            )
            return Outcome(job, "failed", error=reason, bounce=exc.bounce)
        return Outcome(job, "sent", message_id=mid)

    async def _campaign(self, campaign_id: int) -> _CampaignCache:
        cached = self._campaigns.get(campaign_id)
        state = self._states.get(campaign_id)
        if cached is None or (state is not None and cached.updated_at != state[1]):
            updated_at, content, subject = await self.store.campaign_content(campaign_id)
            headers = CampaignHeaders.build(mail_from=self.settings.mail_from, subject=subject)
            cached = _CampaignCache(updated_at, content, headers)
            self._campaigns[campaign_id] = cached
        return cached

    async def _build(self, job: Job, *, eight_bit: bool) -> tuple[bytes, str]:
        campaign = await self._campaign(job.campaign_id)
        prototype = campaign.prototypes.get(job.networks)
        if prototype is None:
            prototype = DigestPrototype(campaign.content, job.networks)
            campaign.prototypes[job.networks] = prototype
        assert job.email is not None and job.amplifier_id is not None
        token = unsubscribe_token(self.signer, job.amplifier_id)
        unsubscribe = f"{self.settings.public_url}/u/{token}"
        text, html = prototype.render_parts(
            Recipient(
                name=job.name or "",
                email=job.email,
                share_urls=job.share_urls,
                web_version_url=web_version_url(
                    self.settings.public_url, self.signer, job.delivery_id
                ),
                unsubscribe_url=unsubscribe,
            ),
            eight_bit=eight_bit,
        )
        list_unsubscribe = f"<{unsubscribe}>"
        subject = quote(f"unsubscribe {token}", safe="")
        list_unsubscribe += f", <{self._mailto_base}{subject}>"
        mid = message_id(self.domain, job.campaign_id, job.delivery_id)
        raw = build_digest(
            campaign_headers=campaign.headers,
            to_name=job.name,
            to_addr=job.email,
            message_id_value=mid,
            date=utcnow(),
            list_unsubscribe=list_unsubscribe,
            text=text,
            html=html,
        )
        return raw, mid

    async def _marker(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._outcome_added.wait(), timeout=MARK_INTERVAL)
            self._outcome_added.clear()
            await self._flush()

    async def _flush(self) -> None:
        if not self._outcomes:
            return
        batch, self._outcomes = self._outcomes, []
        self._inflight_campaigns.subtract(o.job.campaign_id for o in batch)
        for attempt in range(5):
            try:
                await self.store.apply(batch)
                self._inflight -= len(batch)
                return
            except Exception:
                logger.exception(
                    "writing %s delivery outcomes failed (try %s)", len(batch), attempt + 1
                )
                await asyncio.sleep(0.2 * 2**attempt)
        # Leases expire and the deliveries are retried: at worst these mails are sent again.
        self._inflight -= len(batch)
        logger.error("gave up writing %s outcomes; their leases will expire", len(batch))
