"""Statistics read from the rollups the click flush maintains (app/models/stats.py): every
answer is a handful of small indexed aggregates, never a scan of raw clicks."""

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    Numeric,
    Select,
    case,
    cast,
    func,
    literal,
    select,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession

from app.amplifiers import service as amplifiers
from app.campaigns import service as campaigns
from app.campaigns.service import MessageNotFound
from app.core.db import utcnow
from app.core.errors import InvalidInput
from app.models import (
    Amplifier,
    AmplifierDay,
    Campaign,
    CampaignHour,
    CostPerClick,
    Delivery,
    DeliveryStatus,
    Engagement,
    Message,
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
)

SHARE_POINTS = 10
MAX_BUCKETS = 10_000
MAX_ID = 2**31 - 1

E = Engagement
_sums = (
    func.coalesce(func.sum(E.share_clicks), 0),
    func.coalesce(func.sum(E.visits), 0),
    func.coalesce(func.sum(E.unique_visitors), 0),
    func.coalesce(func.sum(E.bot_clicks), 0),
)
# Distinct (message, network) pairs shared: one engagement row each.
_shared_pairs = func.coalesce(func.sum(case((E.share_clicks > 0, 1), else_=0)), 0)
_sharers = func.count(func.distinct(case((E.share_clicks > 0, E.amplifier_id))))


@dataclass(frozen=True, slots=True)
class Counts:
    share_clicks: int = 0
    visits: int = 0
    unique_visitors: int = 0
    bot_clicks: int = 0

    @classmethod
    def of(cls, row: Sequence[Any]) -> "Counts":
        return cls(*(int(value or 0) for value in row[:4]))


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
    click and its roster (names, audiences, deletions). Raises CampaignNotFound."""
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
                scalar(select(func.count()).where(Delivery.campaign_id == campaign.id)),
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
                scalar(select(func.count()).where(Amplifier.organization_id == organization_id)),
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
    where = E.campaign_id == campaign.id
    deliveries = {
        status: (int(count), changed)
        for status, count, changed in (
            await session.execute(
                select(Delivery.status, func.count(), func.max(Delivery.updated_at))
                .where(Delivery.campaign_id == campaign.id)
                .group_by(Delivery.status)
            )
        ).all()
    }
    by_pair = (
        await session.execute(
            select(E.message_id, E.network, *_sums).where(where).group_by(E.message_id, E.network)
        )
    ).all()
    sharers_by_network = dict(
        (await session.execute(select(E.network, _sharers).where(where).group_by(E.network))).all()
    )
    sharers_by_message = dict(
        (
            await session.execute(
                select(E.message_id, _sharers).where(where).group_by(E.message_id)
            )
        ).all()
    )
    sharers = int(await session.scalar(select(_sharers).where(where)) or 0)
    reach = await _potential_reach(session, campaign.id)
    rates = await cpc.rates(session, organization_id=organization_id)
    stats_changed = await session.scalar(
        select(func.max(CampaignHour.updated_at)).where(CampaignHour.campaign_id == campaign.id)
    )

    network_counts = {n: NetworkCounts() for n in campaign.networks}
    message_counts = {
        m.id: MessageCounts(message_id=m.id, position=m.position) for m in campaign.messages
    }
    total = Counts()
    for message_id, network, *values in by_pair:
        counts = Counts.of(values)
        total = _add(total, counts)
        _accumulate(network_counts.setdefault(network, NetworkCounts()), counts)
        if message_id in message_counts:
            _accumulate(message_counts[message_id], counts)
    emv = Decimal(0)
    for network, net in network_counts.items():  # rounded once, from the network's visits
        value = _emv(net.visits, rates[network]) if network in rates else Decimal(0)
        net.emv = _money(value)
        emv += value
    for network, count in sharers_by_network.items():
        network_counts.setdefault(network, NetworkCounts()).sharers = int(count)
    for message_id, count in sharers_by_message.items():
        if message_id in message_counts:
            message_counts[message_id].sharers = int(count)

    sent = deliveries.get(DeliveryStatus.SENT, (0, None))[0]
    changes = [campaign.updated_at, stats_changed, *(c for _, c in deliveries.values())]
    currency = next(iter(rates.values())).currency
    return CampaignStats(
        campaign_id=campaign.id,
        recipients=sum(count for count, _ in deliveries.values()),
        sent=sent,
        failed=deliveries.get(DeliveryStatus.FAILED, (0, None))[0],
        share_clicks=total.share_clicks,
        sharers=sharers,
        share_rate=sharers / sent if sent else 0.0,
        visits=total.visits,
        unique_visitors=total.unique_visitors,
        bot_clicks=total.bot_clicks,
        potential_reach=reach,
        emv=_money(emv),
        currency=currency,
        by_network=network_counts,
        by_message=sorted(message_counts.values(), key=lambda m: m.position),
        updated_at=max(_aware(c) for c in changes if c is not None),
    )


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _add(a: Counts, b: Counts) -> Counts:
    return Counts(
        a.share_clicks + b.share_clicks,
        a.visits + b.visits,
        a.unique_visitors + b.unique_visitors,
        a.bot_clicks + b.bot_clicks,
    )


def _accumulate(target: Any, counts: Counts) -> None:
    target.share_clicks += counts.share_clicks
    target.visits += counts.visits
    target.unique_visitors += counts.unique_visitors
    if hasattr(target, "bot_clicks"):
        target.bot_clicks += counts.bot_clicks


async def _potential_reach(session: AsyncSession, campaign_id: int) -> int:
    """Σ of each sharer's current audience on every network they shared to."""
    shared = (
        select(E.amplifier_id, E.network)
        .where(E.campaign_id == campaign_id, E.share_clicks > 0)
        .distinct()
        .subquery()
    )
    value: Any
    if session.get_bind().dialect.name == "postgresql":
        value = Amplifier.audience.op("->")(shared.c.network)
        number = cast(Amplifier.audience.op("->>")(shared.c.network), Numeric)
        followers = case(
            (func.jsonb_typeof(value) == "number", number),
            else_=0,
        )
    else:
        value = func.json_extract(Amplifier.audience, literal("$.") + shared.c.network)
        followers = case((func.typeof(value).in_(("integer", "real")), value), else_=0)
    total = await session.scalar(
        select(func.coalesce(func.sum(followers), 0)).select_from(
            shared.join(Amplifier, Amplifier.id == shared.c.amplifier_id)
        )
    )
    return int(total or 0)


# --- per amplifier of a campaign --------------------------------------------------------------


def _amplifier_rows(campaign_id: int) -> Select[Any]:
    """Every amplifier with a delivery in the campaign, with totals and points, best first."""
    totals = (
        select(E.amplifier_id, *_sums, _shared_pairs.label("pairs"))
        .where(E.campaign_id == campaign_id)
        .group_by(E.amplifier_id)
        .subquery()
    )
    columns = list(totals.c)[1:6]
    share, visits, unique, bots, pairs = (func.coalesce(c, 0) for c in columns)
    points = (pairs * SHARE_POINTS + unique).label("points")
    return (
        select(Amplifier.id, Amplifier.email, Amplifier.name, share, visits, unique, bots, points)
        .select_from(Delivery)
        .join(Amplifier, Amplifier.id == Delivery.amplifier_id)
        .outerjoin(totals, totals.c.amplifier_id == Delivery.amplifier_id)
        .where(Delivery.campaign_id == campaign_id)
        .order_by(points.desc(), Amplifier.id)
    )


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
    stmt = _amplifier_rows(campaign.id).offset(offset)
    if limit is not None:
        stmt = stmt.limit(limit)
    rows = (await session.execute(stmt)).all()
    per_network: dict[int, dict[str, AmplifierNetworkCounts]] = defaultdict(dict)
    ids = [row[0] for row in rows]
    for start in range(0, len(ids), 5_000):
        chunk = ids[start : start + 5_000]
        network_rows = await session.execute(
            select(E.amplifier_id, E.network, *_sums)
            .where(E.campaign_id == campaign.id, E.amplifier_id.in_(chunk))
            .group_by(E.amplifier_id, E.network)
        )
        for amplifier_id, network, *values in network_rows.all():
            counts = Counts.of(values)
            per_network[amplifier_id][network] = AmplifierNetworkCounts(
                share_clicks=counts.share_clicks,
                visits=counts.visits,
                unique_visitors=counts.unique_visitors,
            )
    return [
        CampaignAmplifierStats(
            amplifier_id=row[0],
            email=row[1],
            name=row[2],
            share_clicks=int(row[3]),
            visits=int(row[4]),
            unique_visitors=int(row[5]),
            bot_clicks=int(row[6]),
            points=int(row[7]),
            by_network={
                n: per_network[row[0]].get(n, AmplifierNetworkCounts()) for n in campaign.networks
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
            select(Message.id, Message.campaign_id, Campaign.networks)
            .join(Campaign, Campaign.id == Message.campaign_id)
            .where(Message.id == message_id, Campaign.organization_id == organization_id)
        )
        if 0 < message_id <= MAX_ID
        else None
    )
    row = found.first() if found is not None else None
    if row is None:
        raise MessageNotFound(f"Message {message_id} does not exist.")
    where = E.message_id == message_id
    by_network = {n: MessageNetworkCounts() for n in row.networks}
    for network, *values in (
        await session.execute(select(E.network, *_sums, _sharers).where(where).group_by(E.network))
    ).all():
        counts = Counts.of(values)
        target = by_network.setdefault(network, MessageNetworkCounts())
        _accumulate(target, counts)
        target.sharers = int(values[4])
    total = Counts.of(
        (
            sum(n.share_clicks for n in by_network.values()),
            sum(n.visits for n in by_network.values()),
            sum(n.unique_visitors for n in by_network.values()),
            sum(n.bot_clicks for n in by_network.values()),
        )
    )
    return MessageStats(
        message_id=message_id,
        campaign_id=row.campaign_id,
        share_clicks=total.share_clicks,
        sharers=int(await session.scalar(select(_sharers).where(where)) or 0),
        visits=total.visits,
        unique_visitors=total.unique_visitors,
        bot_clicks=total.bot_clicks,
        by_network=by_network,
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
    for network, *values in (
        await session.execute(select(E.network, *_sums).where(where).group_by(E.network))
    ).all():
        counts = Counts.of(values)
        bots += counts.bot_clicks
        by_network[network] = AmplifierNetworkCounts(
            share_clicks=counts.share_clicks,
            visits=counts.visits,
            unique_visitors=counts.unique_visitors,
        )
    by_campaign = [
        AmplifierCampaignCounts(
            campaign_id=campaign_id,
            name=name,
            share_clicks=int(share),
            visits=int(visits),
            unique_visitors=int(unique),
            points=int(pairs) * SHARE_POINTS + int(unique),
        )
        for campaign_id, name, share, visits, unique, _bots, pairs in (
            await session.execute(
                select(E.campaign_id, Campaign.name, *_sums, _shared_pairs)
                .join(Campaign, Campaign.id == E.campaign_id)
                .where(where)
                .group_by(E.campaign_id, Campaign.name, Campaign.created_at)
                .order_by(Campaign.created_at.desc(), E.campaign_id.desc())
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
    values = {
        _aware(hour): int(value)
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
        points = [TimePoint(t=_iso(h, tz), value=values.get(h, 0)) for h in hours]
    else:
        points = _days(values, since.astimezone(tz).date(), until.astimezone(tz).date(), tz)
    return Timeseries(interval=interval, metric=metric, tz=tz.key, points=points)


def _days(values: dict[datetime, int], first: date, last: date, tz: ZoneInfo) -> list[TimePoint]:
    count = (last - first).days + 1
    _check_buckets(count)
    totals: dict[date, int] = defaultdict(int)
    for hour, value in values.items():
        totals[hour.astimezone(tz).date()] += value
    days = (first + timedelta(days=i) for i in range(count))
    return [
        TimePoint(t=_iso(datetime.combine(d, time(), tzinfo=tz), tz), value=totals.get(d, 0))
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
    """Points, share clicks and visits earned on the UTC days from `since` to `until`."""
    D = AmplifierDay
    days = select(
        D.amplifier_id,
        D.share_clicks.label("share"),
        D.visits.label("visits"),
        D.unique_visitors.label("uniq"),
        literal(0).label("pairs"),
    ).where(D.organization_id == organization_id)
    firsts = select(
        E.amplifier_id,
        literal(0).label("share"),
        literal(0).label("visits"),
        literal(0).label("uniq"),
        literal(1).label("pairs"),
    ).where(E.organization_id == organization_id, E.first_shared_at.is_not(None))
    if since is not None:
        days = days.where(D.day >= since)
        firsts = firsts.where(E.first_shared_at >= datetime.combine(since, time(), tzinfo=UTC))
    if until is not None:
        days = days.where(D.day <= until)
        end = datetime.combine(until + timedelta(days=1), time(), tzinfo=UTC)
        firsts = firsts.where(E.first_shared_at < end)
    both = union_all(days, firsts).subquery()
    points = (func.sum(both.c.pairs) * SHARE_POINTS + func.sum(both.c.uniq)).label("points")
    ranked = (
        select(
            both.c.amplifier_id,
            points,
            func.sum(both.c.share),
            func.sum(both.c.visits),
            func.sum(both.c.uniq),
        )
        .group_by(both.c.amplifier_id)
        .having(func.sum(both.c.pairs + both.c.share + both.c.visits + both.c.uniq) > 0)
        .subquery()
    )
    rows = await session.execute(
        select(Amplifier.id, Amplifier.name, Amplifier.email, *list(ranked.c)[1:])
        .join(ranked, ranked.c.amplifier_id == Amplifier.id)
        .where(Amplifier.organization_id == organization_id)
        .order_by(ranked.c.points.desc(), Amplifier.id)
        .offset(offset)
        .limit(limit)
    )
    return [
        LeaderboardEntry(
            amplifier_id=row[0],
            name=row[1],
            email=row[2],
            points=int(row[3] or 0),
            share_clicks=int(row[4] or 0),
            visits=int(row[5] or 0),
            unique_visitors=int(row[6] or 0),
        )
        for row in rows.all()
    ]
