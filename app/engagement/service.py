"""The Employee Engagement Index over time and by team (tag), from rollups.

Everything is bucketed from hourly or exact timestamps, so periods start at local midnight of
the requested time zone exactly: human share clicks and visits from the per-link hourly
rollups (their link says whose, which kind and which network), "reached" from the moments
digests were accepted by the SMTP server, "amplifiers" from the roster, conversions from the
moments they occurred (one row each, far fewer than clicks, read through their organization ×
time index).
"""

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import InvalidInput
from app.engagement.schemas import (
    Engagement,
    EngagementPoint,
    Interval,
    TagEngagement,
)
from app.models import (
    Amplifier,
    AmplifierStatus,
    Campaign,
    ClickRollup,
    Conversion,
    Delivery,
    DeliveryStatus,
    Link,
    LinkKind,
)
from app.stats import cpc

MAX_PERIODS = 520


@dataclass
class _Tally:
    amplifiers: int = 0
    reached: set[int] = field(default_factory=set)
    sharers: set[int] = field(default_factory=set)
    share_clicks: int = 0
    visits: int = 0
    emv: Decimal = Decimal(0)
    conversions: int = 0

    def counts(self) -> dict[str, Any]:
        reached = len(self.reached)
        sharers = len(self.sharers)
        return {
            "amplifiers": self.amplifiers,
            "reached": reached,
            "sharers": sharers,
            "engagement_index": min(1.0, sharers / reached) if reached else 0.0,
            "share_clicks": self.share_clicks,
            "visits": self.visits,
            "emv": float(self.emv.quantize(Decimal("0.01"))),
            "conversions": self.conversions,
        }


@dataclass(frozen=True, slots=True)
class _Person:
    created_at: datetime
    active_until: datetime | None  # None: still active
    tags: tuple[str, ...]


def period_start(moment: datetime, interval: Interval, tz: ZoneInfo) -> date:
    local = moment.astimezone(tz).date()
    if interval == "month":
        return local.replace(day=1)
    return local - timedelta(days=local.weekday())


def next_period(start: date, interval: Interval) -> date:
    if interval == "week":
        return start + timedelta(days=7)
    return date(start.year + start.month // 12, start.month % 12 + 1, 1)


def _midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(), tzinfo=tz)


def _periods(since: datetime, until: datetime, interval: Interval, tz: ZoneInfo) -> list[date]:
    if until < since:
        raise InvalidInput(
            "`until` is before `since`.", errors=[{"loc": ["query", "until"], "msg": "too early"}]
        )
    starts = [period_start(since, interval, tz)]
    last = period_start(until, interval, tz)
    while starts[-1] < last:
        starts.append(next_period(starts[-1], interval))
        if len(starts) > MAX_PERIODS:
            raise InvalidInput(
                f"That range holds more than {MAX_PERIODS} periods; narrow since/until.",
                errors=[{"loc": ["query", "since"], "msg": "range too long"}],
            )
    return starts


async def _people(session: AsyncSession, organization_id: int) -> dict[int, _Person]:
    rows = await session.execute(
        select(
            Amplifier.id,
            Amplifier.created_at,
            Amplifier.status,
            Amplifier.updated_at,
            Amplifier.tags,
        ).where(Amplifier.organization_id == organization_id)
    )
    return {
        row.id: _Person(
            created_at=row.created_at,
            # The roster keeps no status history: one that left counts as active until its
            # last change.
            active_until=None if row.status == AmplifierStatus.ACTIVE else row.updated_at,
            tags=tuple(row.tags or ()),
        )
        for row in rows
    }


async def _deliveries(
    session: AsyncSession, organization_id: int, start: datetime, end: datetime
) -> Sequence[Any]:
    rows = await session.execute(
        select(Delivery.amplifier_id, Delivery.sent_at)
        .join(Campaign, Campaign.id == Delivery.campaign_id)
        .where(
            Campaign.organization_id == organization_id,
            Delivery.status == DeliveryStatus.SENT,
            Delivery.sent_at >= start,
            Delivery.sent_at < end,
            Delivery.amplifier_id.isnot(None),
        )
    )
    return rows.all()


async def _clicks(
    session: AsyncSession, organization_id: int, start: datetime, end: datetime
) -> Sequence[Any]:
    """Human clicks per hour, kind, network and amplifier."""
    rows = await session.execute(
        select(ClickRollup.hour, Link.kind, Link.network, Link.amplifier_id, ClickRollup.clicks)
        .join(Link, Link.id == ClickRollup.link_id)
        .join(Campaign, Campaign.id == Link.campaign_id)
        .where(
            Campaign.organization_id == organization_id,
            ClickRollup.hour >= start.astimezone(UTC),
            ClickRollup.hour < end.astimezone(UTC),
            ClickRollup.clicks > 0,
            Link.amplifier_id.isnot(None),
        )
    )
    return rows.all()


async def _conversions(
    session: AsyncSession, organization_id: int, start: datetime, end: datetime
) -> Sequence[Any]:
    """Per amplifier and moment, the conversions that occurred then."""
    rows = await session.execute(
        select(Conversion.amplifier_id, Conversion.occurred_at, func.count())
        .where(
            Conversion.organization_id == organization_id,
            Conversion.occurred_at >= start.astimezone(UTC),
            Conversion.occurred_at < end.astimezone(UTC),
            Conversion.amplifier_id.isnot(None),
        )
        .group_by(Conversion.amplifier_id, Conversion.occurred_at)
    )
    return rows.all()


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class _Facts:
    """The roster, digests and clicks of a time range, for tallies by period or by tag."""

    def __init__(
        self,
        people: dict[int, _Person],
        deliveries: Sequence[Any],
        clicks: Sequence[Any],
        conversions: Sequence[Any],
        rates: dict[str, cpc.Cpc],
    ) -> None:
        self.people = people
        self.deliveries = deliveries
        self.clicks = clicks
        self.conversions = conversions
        self.rates = rates

    def tally(
        self,
        key_of: Any,
        keys_of_person: Any,
        active_at: Any,
    ) -> dict[Any, _Tally]:
        tallies: dict[Any, _Tally] = defaultdict(_Tally)
        for amplifier_id, sent_at in self.deliveries:
            for key in keys_of_person(amplifier_id):
                if (k := key_of(key, _aware(sent_at))) is not None:
                    tallies[k].reached.add(amplifier_id)
        for hour, kind, network, amplifier_id, clicks in self.clicks:
            for key in keys_of_person(amplifier_id):
                k = key_of(key, _aware(hour))
                if k is None:
                    continue
                tally = tallies[k]
                if kind == LinkKind.SHARE:
                    tally.share_clicks += clicks
                    tally.sharers.add(amplifier_id)
                else:
                    tally.visits += clicks
                    rate = self.rates.get(network)
                    if rate is not None:
                        tally.emv += clicks * rate.amount
        for amplifier_id, occurred_at, conversions in self.conversions:
            for key in keys_of_person(amplifier_id):
                if (k := key_of(key, _aware(occurred_at))) is not None:
                    tallies[k].conversions += conversions
        for key, tally in tallies.items():
            tally.amplifiers = active_at(key)
        return tallies


def _active(person: _Person, moment: datetime) -> bool:
    created = _aware(person.created_at)
    left = person.active_until
    return created < moment and (left is None or _aware(left) >= moment)


async def _facts(
    session: AsyncSession, organization_id: int, start: datetime, end: datetime
) -> _Facts:
    return _Facts(
        await _people(session, organization_id),
        await _deliveries(session, organization_id, start, end),
        await _clicks(session, organization_id, start, end),
        await _conversions(session, organization_id, start, end),
        await cpc.rates(session, organization_id=organization_id),
    )


async def over_time(
    session: AsyncSession,
    *,
    organization_id: int,
    interval: Interval,
    since: datetime,
    until: datetime,
    tag: str | None,
    tz: ZoneInfo,
) -> Engagement:
    periods = _periods(since, until, interval, tz)
    start = _midnight(periods[0], tz)
    end = _midnight(next_period(periods[-1], interval), tz)
    facts = await _facts(session, organization_id, start, end)

    def in_team(amplifier_id: int) -> Iterable[None]:
        person = facts.people.get(amplifier_id)
        if person is not None and (tag is None or tag in person.tags):
            yield None

    def period_of(_key: None, moment: datetime) -> date | None:
        local = period_start(moment, interval, tz)
        return local if periods[0] <= local <= periods[-1] else None

    def active_at(period: date) -> int:
        moment = _midnight(next_period(period, interval), tz)
        return sum(
            1
            for person in facts.people.values()
            if (tag is None or tag in person.tags) and _active(person, moment)
        )

    tallies = facts.tally(period_of, in_team, active_at)
    points = []
    for period in periods:
        tally = tallies.get(period) or _Tally(amplifiers=active_at(period))
        moment = _midnight(period, tz).isoformat(timespec="seconds")
        points.append(
            EngagementPoint(
                t=moment.replace("+00:00", "Z") if tz.key == "UTC" else moment,
                **tally.counts(),
            )
        )
    return Engagement(interval=interval, tz=tz.key, points=points)


async def by_tag(
    session: AsyncSession, *, organization_id: int, since: datetime, until: datetime
) -> list[TagEngagement]:
    """Every tag of the roster (a team), its numbers from `since` to `until`; an amplifier with
    several tags counts in each."""
    facts = await _facts(session, organization_id, since, until)

    def tags_of(amplifier_id: int) -> Iterable[str]:
        person = facts.people.get(amplifier_id)
        return person.tags if person is not None else ()

    def tag_key(tag: str, _moment: datetime) -> str:
        return tag

    def active_at(tag: str) -> int:
        return sum(1 for p in facts.people.values() if tag in p.tags and _active(p, until))

    tallies = facts.tally(tag_key, tags_of, active_at)
    every_tag = sorted({t for p in facts.people.values() for t in p.tags})
    return [
        TagEngagement(
            tag=tag,
            **(tallies.get(tag) or _Tally(amplifiers=active_at(tag))).counts(),
        )
        for tag in every_tag
    ]


def default_since(until: datetime, interval: Interval, tz: ZoneInfo) -> datetime:
    start = period_start(until, interval, tz)
    back = 11 if interval == "month" else 0
    for _ in range(back):
        start = (start - timedelta(days=1)).replace(day=1)
    if interval == "week":
        start -= timedelta(weeks=11)
    return _midnight(start, tz)
