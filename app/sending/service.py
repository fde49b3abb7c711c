"""Send, cancel and resume campaigns: the audience snapshot and its links, in one transaction."""

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, Select, and_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.campaigns import service as campaigns
from app.core.db import analyze, bulk_insert, json_array_contains_any, utcnow
from app.core.errors import Conflict, InvalidInput
from app.core.pagination import paginate_rows_by_id
from app.core.security import Signer
from app.models import (
    Amplifier,
    AmplifierStatus,
    Campaign,
    CampaignStatus,
    Delivery,
    DeliveryStatus,
)
from app.sending import holds
from app.sending.links import LINK_COLUMNS, LinkRow, MessageLinkSource, link_rows, visit_targets
from app.sending.variants import recipients_per_variant, variants_of_rank
from app.tracking.codes import new_codes
from app.webhooks.events import EventType, campaign_event, emit_events

LINK_CHUNK_DELIVERIES = 500
CODE_COLLISION_RETRIES = 5


class CampaignNotDraft(Conflict):
    pass


class CampaignStateConflict(Conflict):
    pass


class NothingToSend(InvalidInput):
    pass


def effective_networks(
    campaign_networks: Sequence[str], amplifier_networks: Sequence[str]
) -> list[str]:
    """The campaign's networks this amplifier uses (all of them if the amplifier names none)."""
    if not amplifier_networks:
        return list(campaign_networks)
    return [n for n in campaign_networks if n in amplifier_networks]


def audience_query(session: AsyncSession, campaign: Campaign) -> Select[*tuple[Any, ...]]:
    stmt = select(
        Amplifier.id,
        Amplifier.networks,
        Amplifier.locale,
        Amplifier.frequency,
        Amplifier.paused_until,
        Amplifier.timezone,
    ).where(
        Amplifier.organization_id == campaign.organization_id,
        Amplifier.status == AmplifierStatus.ACTIVE,
    )
    tags = list((campaign.audience or {}).get("tags") or [])
    if tags:
        dialect = session.get_bind().dialect.name
        stmt = stmt.where(json_array_contains_any(Amplifier.tags, tags, dialect))
    return stmt.order_by(Amplifier.id)


async def _claim_draft(
    session: AsyncSession, campaign: Campaign, status: CampaignStatus, scheduled_at: datetime | None
) -> None:
    # A conditional UPDATE: of two concurrent sends exactly one moves the campaign out of draft.
    result = await session.execute(
        update(Campaign)
        .where(Campaign.id == campaign.id, Campaign.status == CampaignStatus.DRAFT)
        .values(status=status, scheduled_at=scheduled_at, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise CampaignNotDraft("The campaign has already been sent or scheduled.")


async def _insert_links(
    session: AsyncSession, rows_for: Callable[[Any], list[LinkRow]], deliveries: Sequence[Any]
) -> None:
    """Insert every delivery's links in chunks; a chunk that hits a code collision (a UNIQUE
    violation, astronomically rare) is rolled back to its savepoint and regenerated."""
    for start in range(0, len(deliveries), LINK_CHUNK_DELIVERIES):
        chunk = deliveries[start : start + LINK_CHUNK_DELIVERIES]
        for attempt in range(CODE_COLLISION_RETRIES):
            rows = [row for delivery in chunk for row in rows_for(delivery)]
            try:
                async with session.begin_nested():
                    await bulk_insert(await session.connection(), "links", LINK_COLUMNS, rows)
                break
            except IntegrityError:
                if attempt == CODE_COLLISION_RETRIES - 1:
                    raise


async def send(
    session: AsyncSession,
    *,
    organization_id: int,
    campaign_id: int,
    scheduled_at: datetime | None,
    public_url: str,
    now: datetime | None = None,
) -> Campaign:
    """Snapshot the audience into deliveries with their links and start (or schedule) sending.
    Deliveries of amplifiers who get daily or weekly digests, are paused or over the weekly cap
    are `held` until their slot."""
    # Locked: no message edit can slip in between reading the messages and the snapshot.
    campaign = await campaigns.get_for_update(
        session, organization_id=organization_id, campaign_id=campaign_id
    )
    if campaign.status != CampaignStatus.DRAFT:
        raise CampaignNotDraft(f"The campaign is {campaign.status}; only a draft can be sent.")
    if not campaign.messages:
        raise NothingToSend("The campaign has no messages.")
    now = now or utcnow()
    scheduled = scheduled_at is not None and scheduled_at > now
    rows = (await session.execute(audience_query(session, campaign))).all()
    audience = [
        (row.id, networks, row.locale)
        for row in rows
        if (networks := effective_networks(campaign.networks, row.networks or []))
    ]
    if not audience:
        raise NothingToSend(
            "The audience is empty: no active amplifier matches the campaign's tags and networks."
        )
    status = CampaignStatus.SCHEDULED if scheduled else CampaignStatus.SENDING
    await _claim_draft(session, campaign, status, scheduled_at if scheduled else None)

    start_at = scheduled_at if scheduled and scheduled_at else now
    recipients = {amplifier_id for amplifier_id, _, _ in audience}
    due = await holds.due_times(
        session,
        organization_id=campaign.organization_id,
        amplifiers=[row for row in rows if row.id in recipients],
        start_at=start_at,
    )
    await bulk_insert(
        await session.connection(),
        "deliveries",
        (
            "campaign_id",
            "amplifier_id",
            "status",
            "attempts",
            "next_attempt_at",
            "due_at",
            "created_at",
            "updated_at",
        ),
        [
            _delivery_row(campaign.id, amplifier_id, due.get(amplifier_id), start_at, now)
            for amplifier_id, _, _ in audience
        ],
    )
    created = (
        await session.execute(
            select(Delivery.id, Delivery.amplifier_id)
            .where(Delivery.campaign_id == campaign.id)
            .order_by(Delivery.id)
        )
    ).all()
    networks_of = {amplifier_id: networks for amplifier_id, networks, _ in audience}
    locale_of = {amplifier_id: locale for amplifier_id, _, locale in audience}
    messages = [MessageLinkSource.of(m) for m in campaign.messages]
    variant_counts = [m.variant_count for m in messages]
    # The share intents carry the text in the amplifier's variant and language: one list of
    # messages per (variants, translations) combination.
    chosen: dict[tuple[tuple[int, ...], tuple[str | None, ...]], list[MessageLinkSource]] = {}

    def messages_for(rank: int, locale: str) -> list[MessageLinkSource]:
        variants = variants_of_rank(rank, variant_counts)
        key = (variants, tuple(m.translation_key(locale) for m in messages))
        if key not in chosen:
            chosen[key] = [
                m.with_variant(v).localized(locale) for m, v in zip(messages, variants, strict=True)
            ]
        return chosen[key]

    targets = visit_targets(
        messages, campaign.networks, utm=campaign.utm, campaign_name=campaign.name
    )

    def rows_for(ranked: tuple[int, Any]) -> list[LinkRow]:
        rank, (delivery_id, amplifier_id) = ranked
        networks = networks_of[amplifier_id]
        codes = iter(new_codes(2 * len(messages) * len(networks)))
        return link_rows(
            codes=codes,
            public_url=public_url,
            campaign_id=campaign.id,
            targets=targets,
            delivery_id=delivery_id,
            amplifier_id=amplifier_id,
            networks=networks,
            messages=messages_for(rank, locale_of[amplifier_id]),
            created_at=now,
        )

    await _insert_links(session, rows_for, list(enumerate(created)))
    await _count_recipients(session, campaign.id, messages, recipients=len(created))
    if status == CampaignStatus.SENDING:
        await _report_sending(session, campaign, recipients=len(audience))
    await analyze(await session.connection(), ("deliveries", "links"), rows=len(created))
    await session.refresh(campaign)
    return campaign


async def _count_recipients(
    session: AsyncSession,
    campaign_id: int,
    messages: Sequence[MessageLinkSource],
    *,
    recipients: int,
) -> None:
    """Each message's recipients per variant, as the snapshot dealt them: the denominators of
    the per-variant share rates, written once instead of counted over the links per read."""
    await bulk_insert(
        await session.connection(),
        "variant_counts",
        ("campaign_id", "message_id", "variant", "recipients"),
        [
            (campaign_id, message.id, variant, count)
            for message in messages
            for variant, count in enumerate(
                recipients_per_variant(recipients, message.variant_count)
            )
        ],
    )


def _delivery_row(
    campaign_id: int, amplifier_id: int, due_at: datetime | None, start_at: datetime, now: datetime
) -> tuple[object, ...]:
    """A pending delivery, or a held one (pending→held at send) due at the amplifier's slot."""
    status = DeliveryStatus.PENDING if due_at is None else DeliveryStatus.HELD
    return (campaign_id, amplifier_id, status.value, 0, due_at or start_at, due_at, now, now)


async def _report_sending(session: AsyncSession, campaign: Campaign, **extra: Any) -> None:
    event = campaign_event(
        EventType.CAMPAIGN_SENDING,
        organization_id=campaign.organization_id,
        campaign_id=campaign.id,
        name=campaign.name,
        **extra,
    )
    await emit_events(session, [event])


async def cancel(session: AsyncSession, *, organization_id: int, campaign_id: int) -> Campaign:
    """Cancel a scheduled, sending or paused campaign; deliveries not yet sent are cancelled."""
    campaign = await campaigns.get_for_update(
        session, organization_id=organization_id, campaign_id=campaign_id
    )
    if campaign.status == CampaignStatus.CANCELLED:
        return campaign
    cancellable = (CampaignStatus.SCHEDULED, CampaignStatus.SENDING, CampaignStatus.PAUSED)
    if campaign.status not in cancellable:
        raise CampaignStateConflict(f"A {campaign.status} campaign cannot be cancelled.")
    result = await session.execute(
        update(Campaign)
        .where(Campaign.id == campaign.id, Campaign.status.in_(cancellable))
        .values(status=CampaignStatus.CANCELLED, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise CampaignStateConflict("The campaign changed state meanwhile; reload it.")
    await session.execute(
        update(Delivery)
        .where(
            Delivery.campaign_id == campaign.id,
            Delivery.status.in_(holds.UNFINISHED),
        )
        .values(status=DeliveryStatus.CANCELLED, last_error="campaign cancelled")
        .execution_options(synchronize_session=False)
    )
    await session.refresh(campaign)
    return campaign


async def resume(session: AsyncSession, *, organization_id: int, campaign_id: int) -> Campaign:
    """A paused campaign goes on with the deliveries not yet sent."""
    campaign = await campaigns.get_for_update(
        session, organization_id=organization_id, campaign_id=campaign_id
    )
    result = await session.execute(
        update(Campaign)
        .where(Campaign.id == campaign.id, Campaign.status == CampaignStatus.PAUSED)
        .values(status=CampaignStatus.SENDING, resumed_at=utcnow(), updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise CampaignStateConflict(
            f"Only a paused campaign can be resumed; this one is {campaign.status}."
        )
    await _report_sending(session, campaign, resumed=True)
    await session.execute(
        update(Delivery)
        .where(Delivery.campaign_id == campaign.id, Delivery.status == DeliveryStatus.PENDING)
        .values(next_attempt_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    await session.refresh(campaign)
    return campaign


async def list_deliveries(
    session: AsyncSession,
    *,
    organization_id: int,
    campaign_id: int,
    status: str | None,
    signer: Signer,
    limit: int,
    cursor: str | None,
) -> tuple[Sequence[Row[*tuple[Any, ...]]], str | None]:
    """The campaign's deliveries after the cursor, as rows of (Delivery, email), and the next
    page's cursor; raises CampaignNotFound for another organization's campaign."""
    await campaigns.get(session, organization_id=organization_id, campaign_id=campaign_id)
    stmt = (
        select(Delivery, Amplifier.email)
        .outerjoin(Amplifier, Amplifier.id == Delivery.amplifier_id)
        .where(Delivery.campaign_id == campaign_id)
    )
    if status is not None:
        stmt = stmt.where(Delivery.status == status)
    return await paginate_rows_by_id(
        session,
        stmt,
        Delivery.id,
        row_id=lambda row: int(row.Delivery.id),
        signer=signer,
        purpose=f"deliveries.{campaign_id}",
        limit=limit,
        cursor=cursor,
    )


async def delivery_for_amplifier(
    session: AsyncSession, *, campaign_id: int, amplifier_id: int
) -> Delivery | None:
    return await session.scalar(
        select(Delivery).where(
            and_(Delivery.campaign_id == campaign_id, Delivery.amplifier_id == amplifier_id)
        )
    )
