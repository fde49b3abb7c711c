"""Statistics read from the rollups and counters the click flush maintains (app/models/stats.py,
app/tracking/counters.py): a campaign's answer reads O(messages × networks) counter rows, the
ranked lists read an index in points order, never every amplifier's rows."""

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, String, and_, cast, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.amplifiers import service as amplifiers
from app.campaigns import service as campaigns
from app.campaigns.service import MessageNotFound
from app.core.db import utcnow
from app.core.errors import InvalidInput
from app.models import (
    Amplifier,
    AmplifierDay,
    AmplifierTotal,
    BounceEvent,
    BounceKind,
    Campaign,
    CampaignAmplifier,
    CampaignCount,
    CampaignHour,
    CostPerClick,
    Delivery,
    DeliveryCount,
    DeliveryStatus,
    Engagement,
    Message,
    Organization,
    VariantCount,
)
from app.stats import cpc
from app.stats.schemas import (
    AmplifierCampaignCounts,
    AmplifierNetworkCounts,
    AmplifierStats,
    CampaignAmplifierStats,
    CampaignStats,
    Interval,
    LeaderboardEntry,
    MessageCounts,
    MessageNetworkCounts,
    MessageStats,
    Metric,
    NetworkCounts,
    TimePoint,
    Timeseries,
    VariantStats,
)
from app.tracking.counters import EVERY_MESSAGE, EVERY_NETWORK

MAX_BUCKETS = 10_000
MAX_ID = 2**31 - 1

E = Engagement
C = CampaignCount
_sums = (
    func.coalesce(func.sum(E.share_clicks), 0).label("share_clicks"),
    func.coalesce(func.sum(E.visits), 0).label("visits"),
    func.coalesce(func.sum(E.unique_visitors), 0).label("unique_visitors"),
    func.coalesce(func.sum(E.bot_clicks), 0).label("bot_clicks"),
    func.coalesce(func.sum(E.conversions), 0).label("conversions"),
    func.coalesce(func.sum(E.conversion_value), 0).label("conversion_value"),
)
_counter_columns = (
    C.message_id,
    C.network,
    C.share_clicks,
    C.visits,
    C.unique_visitors,
    C.bot_clicks,
    C.sharers,
    C.potential_reach,
    C.conversions,
    C.conversion_value,
)


@dataclass(frozen=True, slots=True)
class Counts:
    share_clicks: int = 0
    visits: int = 0
    unique_visitors: int = 0
    bot_clicks: int = 0
    conversions: int = 0
    conversion_value: Decimal = Decimal(0)

    @classmethod
    def of(cls, row: Any) -> "Counts":
        """From a row with labelled share_clicks, visits, unique_visitors, bot_clicks,
        conversions, conversion_value."""
        return cls(
            int(row.share_clicks or 0),
            int(row.visits or 0),
            int(row.unique_visitors or 0),
            int(row.bot_clicks or 0),
            int(row.conversions or 0),
            Decimal(row.conversion_value or 0),
        )


def amount(value: Any) -> float:
    """A sum of conversion values as answered (SQLite's sums come back as floats)."""
    return float(_exact(value).quantize(Decimal("0.0001")))


def _emv(visits: int, rate: cpc.Cpc) -> Decimal:
    return visits * rate.amount


def _money(value: Decimal) -> float:
    return float(value.quantize(Decimal("0.01")))


# --- campaign ------------------------------------------------------------------------------


async def campaign_version(
    session: AsyncSession, *, organization_id: int, campaign_id: int
) -> tuple[Any, ...]:
    """Cheap markers that move whenever any input of a campaign's statistics moves: its clicks
    (every flush touching it updates an hourly row), deliveries, the organization's cost per
    click and its roster (names, audiences, deletions). Each is an index probe or a few counter
    rows, never a count over the roster or the campaign's deliveries. Raises CampaignNotFound."""
    campaign = await campaigns.get(
        session, organization_id=organization_id, campaign_id=campaign_id, with_messages=False
    )

    def scalar(stmt: Select[Any]) -> Any:
        return stmt.scalar_subquery()

    row = (
        await session.execute(
            select(
                scalar(
                    select(func.max(CampaignHour.updated_at)).where(
                        CampaignHour.campaign_id == campaign.id
                    )
                ),
                scalar(
                    select(
                        func.aggregate_strings(
                            DeliveryCount.status + ":" + cast(DeliveryCount.deliveries, String),
                            ",",
                        )
                    ).where(DeliveryCount.campaign_id == campaign.id)
                ),
                scalar(
                    select(func.max(Delivery.updated_at)).where(Delivery.campaign_id == campaign.id)
                ),
                scalar(
                    select(func.max(CostPerClick.updated_at)).where(
                        CostPerClick.organization_id == organization_id
                    )
                ),
                scalar(select(func.count()).where(CostPerClick.organization_id == organization_id)),
                scalar(
                    select(func.max(Amplifier.updated_at)).where(
                        Amplifier.organization_id == organization_id
                    )
                ),
                scalar(
                    select(Organization.roster_deletions).where(Organization.id == organization_id)
                ),
            )
        )
    ).one()
    return (campaign.updated_at, *row)


async def campaign_stats(
    session: AsyncSession, *, organization_id: int, campaign_id: int
) -> CampaignStats:
    campaign = await campaigns.get(
        session, organization_id=organization_id, campaign_id=campaign_id
    )
    deliveries = {
        row.status: int(row.deliveries)
        for row in (
            await session.execute(
                select(DeliveryCount.status, DeliveryCount.deliveries).where(
                    DeliveryCount.campaign_id == campaign.id
                )
            )
        ).all()
    }
    deliveries_changed = await session.scalar(
        select(func.max(Delivery.updated_at)).where(Delivery.campaign_id == campaign.id)
    )
    counters = (
        await session.execute(select(*_counter_columns).where(C.campaign_id == campaign.id))
    ).all()
    rates = await cpc.rates(session, organization_id=organization_id)
    stats_changed = await session.scalar(
        select(func.max(CampaignHour.updated_at)).where(CampaignHour.campaign_id == campaign.id)
    )

    network_counts = {n: NetworkCounts() for n in campaign.networks}
    message_counts = {
        m.id: MessageCounts(message_id=m.id, position=m.position) for m in campaign.messages
    }
    total = Counts()
    sharers = reach = 0
    for row in counters:
        if row.message_id == EVERY_MESSAGE and row.network == EVERY_NETWORK:
            sharers = int(row.sharers)
        elif row.message_id == EVERY_MESSAGE:  # one network, every message
            network_counts.setdefault(row.network, NetworkCounts()).sharers = int(row.sharers)
            reach += int(row.potential_reach)
        elif row.network == EVERY_NETWORK:  # one message, every network
            if row.message_id in message_counts:
                message_counts[row.message_id].sharers = int(row.sharers)
        else:
            counts = Counts.of(row)
            total = _add(total, counts)
            _accumulate(network_counts.setdefault(row.network, NetworkCounts()), counts)
            if row.message_id in message_counts:
                _accumulate(message_counts[row.message_id], counts)
    emv = Decimal(0)
    for network, net in network_counts.items():  # rounded once, from the network's visits
        value = _emv(net.visits, rates[network]) if network in rates else Decimal(0)
        net.emv = _money(value)
        emv += value

    sent = deliveries.get(DeliveryStatus.SENT, 0)
    changes = [campaign.updated_at, stats_changed, deliveries_changed]
    currency = next(iter(rates.values())).currency
    return CampaignStats(
        campaign_id=campaign.id,
        recipients=sum(deliveries.values()),
        sent=sent,
        failed=deliveries.get(DeliveryStatus.FAILED, 0),
        bounced=deliveries.get(DeliveryStatus.BOUNCED, 0),
        held=deliveries.get(DeliveryStatus.HELD, 0),
        complaints=await _complaints(session, campaign.id),
        share_clicks=total.share_clicks,
        sharers=sharers,
        share_rate=sharers / sent if sent else 0.0,
        visits=total.visits,
        unique_visitors=total.unique_visitors,
        bot_clicks=total.bot_clicks,
        potential_reach=reach,
        emv=_money(emv),
        conversions=total.conversions,
        conversion_value=amount(total.conversion_value),
        currency=currency,
        by_network=network_counts,
        by_message=sorted(message_counts.values(), key=lambda m: m.position),
        updated_at=max(_aware(c) for c in changes if c is not None),
    )


async def _complaints(session: AsyncSession, campaign_id: int) -> int:
    count = await session.scalar(
        select(func.count(func.distinct(BounceEvent.delivery_id))).where(
            BounceEvent.campaign_id == campaign_id, BounceEvent.kind == BounceKind.COMPLAINT
        )
    )
    return int(count or 0)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _add(a: Counts, b: Counts) -> Counts:
    return Counts(
        a.share_clicks + b.share_clicks,
        a.visits + b.visits,
        a.unique_visitors + b.unique_visitors,
        a.bot_clicks + b.bot_clicks,
        a.conversions + b.conversions,
        a.conversion_value + b.conversion_value,
    )


def _accumulate(target: Any, counts: Counts) -> None:
    target.share_clicks += counts.share_clicks
    target.visits += counts.visits
    target.unique_visitors += counts.unique_visitors
    target.conversions += counts.conversions
    target.conversion_value = amount(_exact(target.conversion_value) + counts.conversion_value)
    if hasattr(target, "bot_clicks"):
        target.bot_clicks += counts.bot_clicks


def _amplifier_network(counts: Counts) -> AmplifierNetworkCounts:
    return AmplifierNetworkCounts(
        share_clicks=counts.share_clicks,
        visits=counts.visits,
        unique_visitors=counts.unique_visitors,
        conversions=counts.conversions,
        conversion_value=amount(counts.conversion_value),
    )


# --- per amplifier of a campaign --------------------------------------------------------------


CA = CampaignAmplifier
_amplifier_columns: tuple[Any, ...] = (
    Amplifier.id.label("amplifier_id"),
    Amplifier.email,
    Amplifier.name,
    func.coalesce(CA.share_clicks, 0).label("share_clicks"),
    func.coalesce(CA.visits, 0).label("visits"),
    func.coalesce(CA.unique_visitors, 0).label("unique_visitors"),
    func.coalesce(CA.bot_clicks, 0).label("bot_clicks"),
    func.coalesce(CA.points, 0).label("points"),
    func.coalesce(CA.conversions, 0).label("conversions"),
    func.coalesce(CA.conversion_value, 0).label("conversion_value"),
)


def _scoring(campaign_id: int) -> Select[Any]:
    """The campaign's amplifiers with points, best first, read in the points index's order."""
    return (
        select(*_amplifier_columns)
        .select_from(CA)
        .join(Amplifier, Amplifier.id == CA.amplifier_id)
        .join(
            Delivery,
            and_(Delivery.campaign_id == campaign_id, Delivery.amplifier_id == CA.amplifier_id),
        )
        .where(CA.campaign_id == campaign_id, CA.points > 0)
        .order_by(CA.points.desc(), CA.amplifier_id)
    )


def _scoreless(campaign_id: int) -> Select[Any]:
    """The campaign's other amplifiers (0 points, counts or not), by id: every delivery."""
    return (
        select(*_amplifier_columns)
        .select_from(Delivery)
        .join(Amplifier, Amplifier.id == Delivery.amplifier_id)
        .outerjoin(
            CA, and_(CA.campaign_id == campaign_id, CA.amplifier_id == Delivery.amplifier_id)
        )
        .where(Delivery.campaign_id == campaign_id, or_(CA.points.is_(None), CA.points <= 0))
        .order_by(Delivery.amplifier_id)
    )


async def _amplifier_rows(
    session: AsyncSession, campaign_id: int, offset: int, limit: int | None
) -> list[Any]:
    """Every amplifier with a delivery in the campaign, with totals and points, best first
    (then by id): those with points from their index, then the rest by delivery."""
    head = _scoring(campaign_id).offset(offset)
    rows = list((await session.execute(head if limit is None else head.limit(limit))).all())
    if limit is not None and len(rows) >= limit:
        return rows
    if rows or offset == 0:
        skip = 0
    else:  # the page starts past the amplifiers with points
        scoring = await session.scalar(
            select(func.count()).select_from(_scoring(campaign_id).order_by(None).subquery())
        )
        skip = offset - int(scoring or 0)
    tail = _scoreless(campaign_id).offset(skip)
    if limit is not None:
        tail = tail.limit(limit - len(rows))
    return rows + list((await session.execute(tail)).all())


async def campaign_amplifiers(
    session: AsyncSession,
    *,
    organization_id: int,
    campaign_id: int,
    offset: int,
    limit: int | None,
) -> list[CampaignAmplifierStats]:
    campaign = await campaigns.get(
        session, organization_id=organization_id, campaign_id=campaign_id, with_messages=False
    )
    rows = await _amplifier_rows(session, campaign.id, offset, limit)
    per_network: dict[int, dict[str, AmplifierNetworkCounts]] = defaultdict(dict)
    ids = [row.amplifier_id for row in rows]
    for start in range(0, len(ids), 5_000):
        chunk = ids[start : start + 5_000]
        network_rows = await session.execute(
            select(E.amplifier_id, E.network, *_sums)
            .where(E.campaign_id == campaign.id, E.amplifier_id.in_(chunk))
            .group_by(E.amplifier_id, E.network)
        )
        for row in network_rows.all():
            counts = Counts.of(row)
            per_network[row.amplifier_id][row.network] = _amplifier_network(counts)
    return [
        CampaignAmplifierStats(
            amplifier_id=row.amplifier_id,
            email=row.email,
            name=row.name,
            share_clicks=int(row.share_clicks),
            visits=int(row.visits),
            unique_visitors=int(row.unique_visitors),
            bot_clicks=int(row.bot_clicks),
            points=int(row.points),
            conversions=int(row.conversions),
            conversion_value=amount(row.conversion_value),
            by_network={
                n: per_network[row.amplifier_id].get(n, AmplifierNetworkCounts())
                for n in campaign.networks
            },
        )
        for row in rows
    ]


# --- message ---------------------------------------------------------------------------------


async def message_stats(
    session: AsyncSession, *, organization_id: int, message_id: int
) -> MessageStats:
    found = (
        await session.execute(
            select(
                Message.id, Message.campaign_id, Message.text, Message.variants, Campaign.networks
            )
            .join(Campaign, Campaign.id == Message.campaign_id)
            .where(Message.id == message_id, Campaign.organization_id == organization_id)
        )
        if 0 < message_id <= MAX_ID
        else None
    )
    row = found.first() if found is not None else None
    if row is None:
        raise MessageNotFound(f"Message {message_id} does not exist.")
    by_network = {n: MessageNetworkCounts() for n in row.networks}
    total = Counts()
    sharers = 0
    for counter in (
        await session.execute(
            select(*_counter_columns).where(
                C.campaign_id == row.campaign_id, C.message_id == message_id
            )
        )
    ).all():
        if counter.network == EVERY_NETWORK:
            sharers = int(counter.sharers)
            continue
        counts = Counts.of(counter)
        total = _add(total, counts)
        target = by_network.setdefault(counter.network, MessageNetworkCounts())
        _accumulate(target, counts)
        target.sharers = int(counter.sharers)
    return MessageStats(
        message_id=message_id,
        campaign_id=row.campaign_id,
        share_clicks=total.share_clicks,
        sharers=sharers,
        visits=total.visits,
        unique_visitors=total.unique_visitors,
        bot_clicks=total.bot_clicks,
        conversions=total.conversions,
        conversion_value=amount(total.conversion_value),
        by_network=by_network,
        by_variant=await variant_stats(
            session,
            campaign_id=row.campaign_id,
            message_id=message_id,
            texts=[row.text, *(variant["text"] for variant in row.variants or [])],
        ),
    )


async def variant_stats(
    session: AsyncSession, *, campaign_id: int, message_id: int, texts: Sequence[str]
) -> list[VariantStats]:
    """A message's numbers per copy variant (`texts[v]` is variant v's text), read from its
    variant counters: one row per variant whatever the roster size."""
    V = VariantCount
    rows = await session.execute(
        select(
            V.variant,
            V.recipients,
            V.sharers,
            V.share_clicks,
            V.visits,
            V.unique_visitors,
            V.conversions,
            V.conversion_value,
        ).where(V.campaign_id == campaign_id, V.message_id == message_id)
    )
    counted = {row.variant: row for row in rows.all()}
    return [
        _variant_answer(variant, text, counted.get(variant)) for variant, text in enumerate(texts)
    ]


# A variant's counters before its campaign is sent.
_UNSENT = SimpleNamespace(
    recipients=0,
    sharers=0,
    share_clicks=0,
    visits=0,
    unique_visitors=0,
    conversions=0,
    conversion_value=0,
)


def _variant_answer(variant: int, text: str, row: Any) -> VariantStats:
    """One variant's answer from its counter row (None before the campaign is sent)."""
    row = row or _UNSENT
    return VariantStats(
        variant=variant,
        text=text,
        recipients=row.recipients,
        sharers=row.sharers,
        share_rate=row.sharers / row.recipients if row.recipients else 0.0,
        share_clicks=row.share_clicks,
        visits=row.visits,
        unique_visitors=row.unique_visitors,
        visits_per_share=row.visits / row.share_clicks if row.share_clicks else 0.0,
        conversions=row.conversions,
        conversion_value=amount(row.conversion_value),
    )


# --- amplifier across campaigns ------------------------------------------------------------


async def amplifier_stats(
    session: AsyncSession, *, organization_id: int, amplifier_id: int
) -> AmplifierStats:
    amplifier = await amplifiers.get(
        session, organization_id=organization_id, amplifier_id=amplifier_id
    )
    # The amplifier is the organization's, and so are all its rows: filtering on the
    # organization too would tempt SQLite into scanning the organization's index instead.
    where = E.amplifier_id == amplifier.id
    by_network: dict[str, AmplifierNetworkCounts] = {}
    bots = 0
    for row in (
        await session.execute(select(E.network, *_sums).where(where).group_by(E.network))
    ).all():
        counts = Counts.of(row)
        bots += counts.bot_clicks
        by_network[row.network] = _amplifier_network(counts)
    CA = CampaignAmplifier
    by_campaign = [
        AmplifierCampaignCounts(
            campaign_id=row.campaign_id,
            name=row.name,
            share_clicks=int(row.share_clicks),
            visits=int(row.visits),
            unique_visitors=int(row.unique_visitors),
            points=int(row.points),
            conversions=int(row.conversions),
            conversion_value=amount(row.conversion_value),
        )
        for row in (
            await session.execute(
                select(
                    CA.campaign_id,
                    Campaign.name,
                    CA.share_clicks,
                    CA.visits,
                    CA.unique_visitors,
                    CA.points,
                    CA.conversions,
                    CA.conversion_value,
                )
                .join(Campaign, Campaign.id == CA.campaign_id)
                .where(CA.amplifier_id == amplifier.id)
                .order_by(Campaign.created_at.desc(), CA.campaign_id.desc())
            )
        ).all()
    ]
    unique = sum(n.unique_visitors for n in by_network.values())
    return AmplifierStats(
        amplifier_id=amplifier.id,
        share_clicks=sum(n.share_clicks for n in by_network.values()),
        visits=sum(n.visits for n in by_network.values()),
        unique_visitors=unique,
        bot_clicks=bots,
        points=sum(c.points for c in by_campaign),
        conversions=sum(n.conversions for n in by_network.values()),
        conversion_value=amount(sum(_exact(n.conversion_value) for n in by_network.values())),
        by_network=by_network,
        by_campaign=by_campaign,
    )


# --- time series -----------------------------------------------------------------------------


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ValueError, KeyError, OSError):  # ZoneInfoNotFoundError is a KeyError
        raise InvalidInput(
            f"Unknown time zone {name!r}: use an IANA name such as Europe/Berlin.",
            errors=[{"loc": ["query", "tz"], "msg": "unknown time zone"}],
        ) from None


def _hour(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _iso(moment: datetime, tz: ZoneInfo) -> str:
    text = moment.astimezone(tz).isoformat(timespec="seconds")
    return text.replace("+00:00", "Z") if tz.key == "UTC" else text


async def timeseries(
    session: AsyncSession,
    *,
    organization_id: int,
    campaign_id: int,
    interval: Interval,
    metric: Metric,
    tz: ZoneInfo,
    since: datetime | None,
    until: datetime | None,
) -> Timeseries:
    campaign = await campaigns.get(
        session, organization_id=organization_id, campaign_id=campaign_id, with_messages=False
    )
    if since is None:
        first = await session.scalar(
            select(func.min(CampaignHour.hour)).where(CampaignHour.campaign_id == campaign.id)
        )
        candidates = [m for m in (campaign.sent_at, first) if m is not None]
        since = min(candidates) if candidates else campaign.created_at
    until = until or utcnow()
    start, end = _hour(since), _hour(until)
    if end < start:
        raise InvalidInput(
            "`until` is before `since`.", errors=[{"loc": ["query", "until"], "msg": "too early"}]
        )
    column = getattr(CampaignHour, metric)
    number: Callable[[Any], int | Decimal] = _exact if metric == "conversion_value" else int
    values = {
        _aware(hour): number(value)
        for hour, value in (
            await session.execute(
                select(CampaignHour.hour, column).where(
                    CampaignHour.campaign_id == campaign.id,
                    CampaignHour.hour >= start,
                    CampaignHour.hour <= end,
                )
            )
        ).all()
    }
    if interval == "hour":
        count = int((end - start).total_seconds() // 3600) + 1
        _check_buckets(count)
        hours = (start + timedelta(hours=i) for i in range(count))
        points = [TimePoint(t=_iso(h, tz), value=_answered(values.get(h, 0))) for h in hours]
    else:
        points = _days(values, since.astimezone(tz).date(), until.astimezone(tz).date(), tz)
    return Timeseries(interval=interval, metric=metric, tz=tz.key, points=points)


def _exact(value: Any) -> Decimal:
    return Decimal(str(value or 0))


def _answered(value: int | Decimal) -> int | float:
    return amount(value) if isinstance(value, Decimal) else value


def _days(
    values: dict[datetime, int | Decimal], first: date, last: date, tz: ZoneInfo
) -> list[TimePoint]:
    count = (last - first).days + 1
    _check_buckets(count)
    totals: dict[date, int | Decimal] = defaultdict(int)
    for hour, value in values.items():
        totals[hour.astimezone(tz).date()] += value
    days = (first + timedelta(days=i) for i in range(count))
    return [
        TimePoint(
            t=_iso(datetime.combine(d, time(), tzinfo=tz), tz), value=_answered(totals.get(d, 0))
        )
        for d in days
    ]


def _check_buckets(count: int) -> None:
    if count > MAX_BUCKETS:
        raise InvalidInput(
            f"That range holds {count} buckets; at most {MAX_BUCKETS} are answered. "
            "Narrow since/until or use interval=day.",
            errors=[{"loc": ["query", "since"], "msg": "range too long"}],
        )


# --- leaderboard -----------------------------------------------------------------------------


async def leaderboard(
    session: AsyncSession,
    *,
    organization_id: int,
    since: date | None,
    until: date | None,
    offset: int,
    limit: int,
) -> list[LeaderboardEntry]:
    """Points, share clicks and visits earned on the UTC days from `since` to `until`: all
    time and a single day read an index in points order; other periods add up their days."""
    if since is None and until is None:
        ranked = _all_time(organization_id)
    elif since is not None and since == until:
        ranked = _one_day(organization_id, since)
    else:
        ranked = _days_between(organization_id, since, until)
    ranked = ranked.offset(offset).limit(limit)
    return [
        LeaderboardEntry(
            amplifier_id=row.amplifier_id,
            name=row.name,
            email=row.email,
            points=int(row.points or 0),
            share_clicks=int(row.share_clicks or 0),
            visits=int(row.visits or 0),
            unique_visitors=int(row.unique_visitors or 0),
            conversions=int(row.conversions or 0),
            conversion_value=amount(row.conversion_value),
        )
        for row in (await session.execute(ranked)).all()
    ]


def _ranked(table: Any, where: Any, columns: Sequence[Any] | None = None) -> Select[Any]:
    """Amplifiers with anything to show (deleted ones left out), best first, then by id."""
    share, visits, unique, points, conversions, value = columns or (
        table.share_clicks,
        table.visits,
        table.unique_visitors,
        table.points,
        table.conversions,
        table.conversion_value,
    )
    return (
        select(
            table.amplifier_id,
            Amplifier.name,
            Amplifier.email,
            points.label("points"),
            share.label("share_clicks"),
            visits.label("visits"),
            unique.label("unique_visitors"),
            conversions.label("conversions"),
            value.label("conversion_value"),
        )
        .join(Amplifier, Amplifier.id == table.amplifier_id)
        .where(where)
        .order_by(points.desc(), table.amplifier_id)
    )


def _all_time(organization_id: int) -> Select[Any]:
    T = AmplifierTotal
    anything = or_(T.points > 0, T.share_clicks > 0, T.visits > 0, T.conversions > 0)
    return _ranked(T, and_(T.organization_id == organization_id, anything))


def _one_day(organization_id: int, day: date) -> Select[Any]:
    D = AmplifierDay
    anything = or_(
        D.points > 0, D.share_clicks > 0, D.visits > 0, D.first_shares > 0, D.conversions > 0
    )
    return _ranked(D, and_(D.organization_id == organization_id, D.day == day, anything))


def _days_between(organization_id: int, since: date | None, until: date | None) -> Select[Any]:
    D = AmplifierDay
    days = select(
        D.amplifier_id,
        func.sum(D.share_clicks).label("share_clicks"),
        func.sum(D.visits).label("visits"),
        func.sum(D.unique_visitors).label("unique_visitors"),
        func.sum(D.points).label("points"),
        func.sum(D.first_shares).label("first_shares"),
        func.sum(D.conversions).label("conversions"),
        func.sum(D.conversion_value).label("conversion_value"),
    ).where(D.organization_id == organization_id)
    if since is not None:
        days = days.where(D.day >= since)
    if until is not None:
        days = days.where(D.day <= until)
    summed = days.group_by(D.amplifier_id).subquery()
    anything = or_(
        summed.c.points > 0,
        summed.c.share_clicks > 0,
        summed.c.visits > 0,
        summed.c.first_shares > 0,
        summed.c.conversions > 0,
    )
    return _ranked(summed.c, anything)
