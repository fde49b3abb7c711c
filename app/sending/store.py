"""The delivery store of the send engine: claims, leases and outcomes as set-based SQL.

Claims are leases (`FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite serialises writers), so any
number of workers share the queue and a dead worker's deliveries are taken over when its lease
expires. A worker writes only outcomes of deliveries it still holds: once another worker has
taken one over, a late retry, failure or release from the first changes nothing. Rows are
locked in id order in every transaction that writes several, so two workers never deadlock
on each other's deliveries.
"""

import dataclasses
import logging
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple, TypeVar

from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    and_,
    bindparam,
    case,
    cast,
    exists,
    func,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from app.core.config import Settings
from app.core.db import chunks, in_ids, utcnow
from app.core.metrics import CLAIM_BATCH_SIZE, LEASES_LOST, MAILS
from app.core.public_links import redirect_url
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
from app.sending import holds
from app.sending.parts import CampaignState, Claim, Job, Outcome, OutcomeStatus
from app.sending.render import CampaignContent
from app.stats import impact
from app.stats.impact import Board
from app.webhooks.events import (
    EventType,
    FailedDelivery,
    report_campaigns,
    report_failed_deliveries,
)

logger = logging.getLogger("amplify.worker")

IDS_PER_STATEMENT = 5_000
LockedSelect = TypeVar("LockedSelect", bound=Select[*tuple[Any, ...]])


class SqlDeliveryStore:
    """The `parts.DeliveryStore` of one worker, on SQLite or PostgreSQL. `now` is the wall
    clock that decides which held deliveries are due and which campaigns expired (tests set
    it); leases always run on the real clock."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
        worker_id: str,
        *,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.settings = settings
        self.worker_id = worker_id
        self.now = now

    def _locked(self, session: AsyncSession, query: LockedSelect) -> LockedSelect:
        """Row locks in id order on PostgreSQL (SQLite has one writer at a time anyway)."""
        query = query.order_by(Delivery.id)
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(of=Delivery)
        return query

    async def promote_scheduled(self) -> int:
        """Start the scheduled campaigns whose time has come; cancel held deliveries of
        campaigns past their expiry (held→cancelled) and finish those campaigns."""
        async with self.sessionmaker.begin() as session:
            expired = await holds.expire_held(session, now=self.now())
            if expired:
                await self._finish_done(session, expired)
            result = await session.execute(
                update(Campaign)
                .where(
                    Campaign.status == CampaignStatus.SCHEDULED, Campaign.scheduled_at <= utcnow()
                )
                .values(status=CampaignStatus.SENDING, updated_at=utcnow())
                .returning(Campaign.id, Campaign.organization_id, Campaign.name)
                .execution_options(synchronize_session=False)
            )
            started = result.all()
            await report_campaigns(session, EventType.CAMPAIGN_SENDING, started)
            return len(started)

    async def claim(self, limit: int) -> list[Claim]:
        """Due combined digests first (all the deliveries of each), then plain deliveries:
        up to `limit` mails."""
        combined = await self._claim_combined(limit)
        mails = len({claim.amplifier_id for claim in combined})
        plain = await self._claim_plain(limit - mails) if mails < limit else []
        claimed = combined + plain
        if claimed:
            CLAIM_BATCH_SIZE.observe(len(claimed))
        return claimed

    async def _claim_combined(self, limit: int) -> list[Claim]:
        """Lease every due held delivery of the amplifiers of the `limit` earliest due ones.
        They stay `held` while in flight (plain claims never see them) and go straight to
        `sent`.

        On PostgreSQL the amplifier rows are locked (`SKIP LOCKED`) in the same statement, so
        two workers never split one amplifier's due deliveries into two mails for one slot."""
        now, clock = utcnow(), self.now()
        releasable = and_(
            Delivery.status == DeliveryStatus.HELD,
            Delivery.next_attempt_at <= clock,
            or_(Delivery.lease_expires_at.is_(None), Delivery.lease_expires_at < now),
        )
        live = select(Campaign.id).where(
            Campaign.status == CampaignStatus.SENDING,
            or_(Campaign.expires_at.is_(None), Campaign.expires_at > clock),
        )
        async with self.sessionmaker.begin() as session:
            # The earliest due rows through the claim index (no scan of every held row): their
            # amplifiers, each with all of its due deliveries below.
            due = (
                select(Delivery.amplifier_id)
                .where(releasable, Delivery.campaign_id.in_(live))
                .order_by(Delivery.next_attempt_at)
                .limit(limit)
            )
            chosen = select(Amplifier.id).where(Amplifier.id.in_(due.scalar_subquery()))
            if session.get_bind().dialect.name == "postgresql":
                chosen = chosen.with_for_update(skip_locked=True, of=Amplifier)
            return await self._lease(
                session,
                now,
                Delivery.amplifier_id.in_(chosen.scalar_subquery()),
                releasable,
                Delivery.campaign_id.in_(live),
                combined=True,
            )

    async def _claim_plain(self, limit: int) -> list[Claim]:
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
            return await self._lease(
                session, now, Delivery.id.in_(due.scalar_subquery()), combined=False
            )

    async def _lease(
        self, session: AsyncSession, now: datetime, *where: Any, combined: bool
    ) -> list[Claim]:
        """Lease the deliveries `where` selects to this worker, as claims in id order."""
        rows = await session.execute(
            update(Delivery)
            .where(*where)
            .values(
                lease_owner=self.worker_id,
                lease_expires_at=now + timedelta(seconds=self.settings.lease_seconds),
                attempts=Delivery.attempts + 1,
            )
            .returning(Delivery.id, Delivery.campaign_id, Delivery.amplifier_id, Delivery.attempts)
            .execution_options(synchronize_session=False)
        )
        claimed = [Claim(*row, combined=combined) for row in rows.all()]
        return sorted(claimed, key=lambda claim: claim.delivery_id)

    async def load_jobs(self, claims: Sequence[Claim]) -> list[Job]:
        ids = [claim.delivery_id for claim in claims]
        async with self.sessionmaker() as session:
            # Column rows through the connection: no ORM loading machinery for plain tuples.
            connection = await session.connection()
            people = {
                row.id: row
                for row in (
                    await connection.execute(
                        select(
                            Delivery.id,
                            Amplifier.email,
                            Amplifier.name,
                            Amplifier.status,
                            Amplifier.locale,
                        )
                        .outerjoin(Amplifier, Amplifier.id == Delivery.amplifier_id)
                        .where(in_ids(Delivery.id, ids, connection.dialect.name))
                    )
                ).all()
            }
            links = {
                delivery_id: (shares, variants)
                for delivery_id, shares, variants in (
                    await connection.execute(_share_links_of(connection, ids))
                ).all()
            }
        url_prefix = redirect_url(self.settings.public_url, "")
        jobs = [
            _job(
                claim,
                people.get(claim.delivery_id),
                _parse_share_links(url_prefix, *links.get(claim.delivery_id, (None, None))),
            )
            for claim in claims
        ]
        return _combine(claims, jobs)

    async def campaign_content(self, campaign_id: int) -> tuple[datetime, CampaignContent]:
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
        return campaign.updated_at, CampaignContent.of(campaign, messages, org_name)

    async def impact_board(self, campaign_id: int) -> Board | None:
        """The campaign's organization's last 30 days, or None when it hides the impact block."""
        async with self.sessionmaker() as session:
            organization_id, show = (
                await session.execute(
                    select(Campaign.organization_id, Organization.show_impact)
                    .join(Organization, Organization.id == Campaign.organization_id)
                    .where(Campaign.id == campaign_id)
                )
            ).one()
            if not show:
                return None
            return await impact.recent_board(
                session, organization_id=organization_id, today=utcnow().date()
            )

    async def campaign_states(self, campaign_ids: Iterable[int]) -> dict[int, CampaignState]:
        ids = list(campaign_ids)
        if not ids:
            return {}
        async with self.sessionmaker() as session:
            rows = await session.execute(
                select(Campaign.id, Campaign.status, Campaign.updated_at).where(
                    Campaign.id.in_(ids)
                )
            )
            return {row.id: CampaignState(row.status, row.updated_at) for row in rows.all()}

    async def renew_leases(self, delivery_ids: Sequence[int]) -> set[int]:
        renewed: set[int] = set()
        async with self.sessionmaker.begin() as session:
            expires = utcnow() + timedelta(seconds=self.settings.lease_seconds)
            for chunk in chunks(sorted(delivery_ids), IDS_PER_STATEMENT):
                mine = self._locked(session, self._held_by_me(session, chunk))
                result = await session.execute(
                    update(Delivery)
                    .where(Delivery.id.in_(mine.scalar_subquery()))
                    .values(lease_expires_at=expires)
                    .returning(Delivery.id)
                    .execution_options(synchronize_session=False)
                )
                renewed.update(result.scalars().all())
        return renewed

    def _held_by_me(self, session: AsyncSession, ids: Sequence[int]) -> Select[Any]:
        return select(Delivery.id).where(
            in_ids(Delivery.id, ids, session.get_bind().dialect.name),
            Delivery.lease_owner == self.worker_id,
            Delivery.status.in_(holds.UNFINISHED),
        )

    async def release(self, delivery_ids: Sequence[int]) -> None:
        if delivery_ids:
            async with self.sessionmaker.begin() as session:
                await self._release(session, sorted(delivery_ids))

    async def _release(self, session: AsyncSession, delivery_ids: Sequence[int]) -> None:
        for chunk in chunks(delivery_ids, IDS_PER_STATEMENT):
            mine = self._locked(session, self._held_by_me(session, chunk))
            await session.execute(
                update(Delivery)
                .where(Delivery.id.in_(mine.scalar_subquery()))
                .values(lease_owner=None, lease_expires_at=None, attempts=Delivery.attempts - 1)
                .execution_options(synchronize_session=False)
            )

    async def apply(self, outcomes: Sequence[Outcome]) -> int:
        """Write a batch of outcomes, bounce addresses, pause failing and finish done campaigns.

        A sent mail is recorded whoever holds the delivery now (it did go out, and the holder's
        next renewal then finds it gone and does not send it again); every other outcome only
        while this worker still holds the delivery."""
        if not outcomes:
            return 0
        async with self.sessionmaker.begin() as session:
            owners = await self._lock_pending(session, [o.job.delivery_id for o in outcomes])
            kept = [
                o
                for o in outcomes
                if o.job.delivery_id in owners
                and (o.status == OutcomeStatus.SENT or owners[o.job.delivery_id] == self.worker_id)
            ]
            await self._write(session, kept)
        for status, label in (
            (OutcomeStatus.SENT, "sent"),
            (OutcomeStatus.FAILED, "failed"),
            (OutcomeStatus.RETRY, "retried"),
        ):
            count = sum(1 for o in kept if o.status == status)
            if count:
                MAILS.labels(label).inc(count)
        ignored = len(outcomes) - len(kept)
        if ignored:
            LEASES_LOST.labels("outcome_ignored").inc(ignored)
            logger.warning(
                "%s outcomes ignored: their deliveries were taken over or finished elsewhere",
                ignored,
            )
        return ignored

    async def _lock_pending(
        self, session: AsyncSession, ids: Sequence[int]
    ) -> dict[int, str | None]:
        owners: dict[int, str | None] = {}
        connection = await session.connection()  # plain tuples: no ORM machinery
        for chunk in chunks(sorted(set(ids)), IDS_PER_STATEMENT):
            query = self._locked(
                session,
                select(Delivery.id, Delivery.lease_owner).where(
                    in_ids(Delivery.id, chunk, connection.dialect.name),
                    Delivery.status.in_(holds.UNFINISHED),
                ),
            )
            rows = (await connection.execute(query)).all()
            owners.update({row.id: row.lease_owner for row in rows})
        return owners

    async def _write(self, session: AsyncSession, outcomes: Sequence[Outcome]) -> None:
        by_status: dict[OutcomeStatus, list[Outcome]] = {status: [] for status in OutcomeStatus}
        for outcome in sorted(outcomes, key=lambda o: o.job.delivery_id):
            by_status[outcome.status].append(outcome)
        released = [o.job.delivery_id for o in by_status[OutcomeStatus.RELEASE]]
        if released:
            await self._release(session, released)
        await _mark(
            session,
            [
                o
                for status, group in by_status.items()
                if status != OutcomeStatus.RELEASE
                for o in group
            ],
        )
        failed = by_status[OutcomeStatus.FAILED]
        bounced = sorted({o.job.amplifier_id for o in failed if o.bounce and o.job.amplifier_id})
        if bounced:
            await session.execute(
                update(Amplifier)
                .where(Amplifier.id.in_(bounced), Amplifier.status == AmplifierStatus.ACTIVE)
                .values(
                    status=AmplifierStatus.BOUNCED, status_reason="hard_bounce", updated_at=utcnow()
                )
                .execution_options(synchronize_session=False)
            )
        if failed:
            await report_failed_deliveries(session, [_failure(o) for o in failed])
            await self._pause_failing(session, sorted({o.job.campaign_id for o in failed}))
        if outcomes:
            await self._finish_done(session, sorted({o.job.campaign_id for o in outcomes}))

    async def _pause_failing(self, session: AsyncSession, campaign_ids: Sequence[int]) -> None:
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
                    .returning(Campaign.id, Campaign.organization_id, Campaign.name)
                    .execution_options(synchronize_session=False)
                )
                paused = result.all()
                await report_campaigns(
                    session, EventType.CAMPAIGN_PAUSED, paused, failed=failures, finished=finished
                )
                if paused:
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

    async def _finish_done(self, session: AsyncSession, campaign_ids: Sequence[int] | None) -> None:
        still_pending = exists().where(
            and_(
                Delivery.campaign_id == Campaign.id,
                Delivery.status.in_(holds.UNFINISHED),
            )
        )
        stmt = update(Campaign).where(Campaign.status == CampaignStatus.SENDING, ~still_pending)
        if campaign_ids is not None:
            stmt = stmt.where(Campaign.id.in_(campaign_ids))
        sent = await session.execute(
            stmt.values(status=CampaignStatus.SENT, sent_at=utcnow(), updated_at=utcnow())
            .returning(Campaign.id, Campaign.organization_id, Campaign.name)
            .execution_options(synchronize_session=False)
        )
        await report_campaigns(session, EventType.CAMPAIGN_SENT, sent.all())


def _share_links_of(connection: AsyncConnection, delivery_ids: Sequence[int]) -> Select[Any]:
    """Per delivery, its share links in creation order as one string of `message network code`
    words, and its messages' copy variants other than the base as `message variant` words: a
    combined digest carries dozens of links, and a row per delivery instead of one per link
    keeps loading a claim cheap."""
    link = " " + Link.network + " " + Link.code
    dealt = " " + cast(Link.variant, String)
    message = cast(Link.message_id, String)
    dealt_variant = case((Link.variant != 0, message + dealt))
    shares_of_deliveries = (
        in_ids(Link.delivery_id, delivery_ids, connection.dialect.name),
        Link.kind == LinkKind.SHARE,
    )
    if connection.dialect.name == "postgresql":
        in_order: ColumnElement[str] = aggregate_order_by(literal_column("' '"), Link.id)
        return (
            select(
                Link.delivery_id,
                func.string_agg(message + link, in_order),
                func.string_agg(dealt_variant, in_order),
            )
            .where(*shares_of_deliveries)
            .group_by(Link.delivery_id)
        )
    # SQLite's group_concat takes its rows in the order the subquery gives them.
    ordered = (
        select(
            Link.delivery_id.label("delivery_id"),
            (message + link).label("link"),
            dealt_variant.label("variant"),
        )
        .where(*shares_of_deliveries)
        .order_by(Link.delivery_id, Link.id)
        .subquery()
    )
    return select(
        ordered.c.delivery_id,
        func.group_concat(ordered.c.link, " "),
        func.group_concat(ordered.c.variant, " "),
    ).group_by(ordered.c.delivery_id)


class _ShareLinks(NamedTuple):
    urls: dict[tuple[int, str], str]  # (message id, network) → redirect URL
    networks: tuple[str, ...]  # in the order of the links
    variants: dict[int, int]  # message id → the variant dealt, when not the base text


_NO_LINKS = _ShareLinks({}, (), {})


def _parse_share_links(url_prefix: str, links: str | None, variants: str | None) -> _ShareLinks:
    """A delivery's share links from the words `_share_links_of` aggregates, built without a
    Python loop per link."""
    if not links:
        return _NO_LINKS
    words = links.split(" ")
    networks = words[1::3]
    keys = zip(map(int, words[0::3]), networks, strict=True)
    urls = dict(zip(keys, map(url_prefix.__add__, words[2::3]), strict=True))
    dealt = variants.split(" ") if variants else []
    return _ShareLinks(
        urls,
        tuple(dict.fromkeys(networks)),
        dict(zip(map(int, dealt[0::2]), map(int, dealt[1::2]), strict=True)),
    )


def _combine(claims: Sequence[Claim], jobs: Sequence[Job]) -> list[Job]:
    """One job per combined digest (an amplifier's combined claims, by campaign), the plain
    jobs as they are."""
    out: list[Job] = []
    by_amplifier: dict[int | None, list[Job]] = {}
    for claim, job in zip(claims, jobs, strict=True):
        if claim.combined:
            by_amplifier.setdefault(job.amplifier_id, []).append(job)
        else:
            out.append(job)
    for parts in by_amplifier.values():
        parts.sort(key=lambda part: (part.campaign_id, part.delivery_id))
        out.append(dataclasses.replace(parts[0], parts=tuple(parts)))
    return out


def _failure(outcome: Outcome) -> FailedDelivery:
    job = outcome.job
    return FailedDelivery(
        job.delivery_id, job.campaign_id, job.amplifier_id, outcome.error, outcome.bounce
    )


def _job(claim: Claim, person: object | None, links: _ShareLinks) -> Job:
    return Job(
        delivery_id=claim.delivery_id,
        campaign_id=claim.campaign_id,
        amplifier_id=claim.amplifier_id,
        attempts=claim.attempts,
        email=getattr(person, "email", None),
        name=getattr(person, "name", None),
        amplifier_status=getattr(person, "status", None),
        share_urls=links.urls,
        networks=links.networks,
        locale=getattr(person, "locale", None) or "en",
        variants=links.variants,
        combined=claim.combined,
    )


async def _mark(session: AsyncSession, outcomes: Sequence[Outcome]) -> None:
    """Write the outcomes (no releases), one executemany per shape of row. Deliveries given
    the same values (the parts of a combined digest share their outcome) are one row of it:
    `WHERE id IN (…)` with a parameter per delivery."""
    same: dict[tuple[tuple[str, object], ...], list[int]] = {}
    for outcome in outcomes:
        same.setdefault(tuple(_row(outcome).items()), []).append(outcome.job.delivery_id)
    shapes: dict[tuple[tuple[str, ...], int], list[dict[str, object]]] = {}
    for values, ids in same.items():
        params = {f"v_{column}": value for column, value in values}
        params |= {f"id_{n}": delivery_id for n, delivery_id in enumerate(ids)}
        shapes.setdefault((tuple(column for column, _ in values), len(ids)), []).append(params)
    connection = await session.connection()  # Core executemany: no ORM bulk machinery
    for (columns, count), rows in shapes.items():
        statement = (
            update(Delivery)
            .where(Delivery.id.in_([bindparam(f"id_{n}") for n in range(count)]))
            .values({column: bindparam(f"v_{column}") for column in columns})
        )
        await connection.execute(statement, rows)


def _row(outcome: Outcome) -> dict[str, object]:
    """The delivery's new column values for one outcome (not a release)."""
    row: dict[str, object] = {
        "last_error": outcome.error,
        "lease_owner": None,
        "lease_expires_at": None,
        "updated_at": outcome.at,
    }
    if outcome.status == OutcomeStatus.SENT:
        row |= {
            "status": DeliveryStatus.SENT,
            "sent_at": outcome.at,
            "message_id": outcome.message_id,
        }
    elif outcome.status == OutcomeStatus.RETRY:
        # A combined digest's parts wait as `held` again: retried together, never as plain mail.
        status = DeliveryStatus.HELD if outcome.job.combined else DeliveryStatus.PENDING
        row |= {"status": status, "next_attempt_at": outcome.retry_at or outcome.at}
    elif outcome.status == OutcomeStatus.FAILED:
        row["status"] = DeliveryStatus.FAILED
    else:
        row["status"] = DeliveryStatus.CANCELLED
    return row
