"""The statistics rollups and counters (app/models/stats.py), kept by the click flush in the
transaction that stores the clicks, so a dashboard read costs the same at any roster size.

A batch's per-link hourly deltas are added up per amplifier × message × network (engagement),
campaign × hour, and amplifier × day. The engagement upsert returns each row's new share
count, which tells whether this batch made the (message, network) shared or took its last
share back (a burst re-flagged it): only such transitions touch the sharer counters, through
membership rows whose own upserts say when an amplifier became, or stopped being, a sharer of a
message, of a network, of the campaign. Every counter row is changed by `x = x + delta` in one
statement, so concurrent flushes (several API processes on PostgreSQL) add up exactly.

Potential reach follows the sharers' current audience: `audience_changed` moves it when a
roster change edits or removes an audience. On PostgreSQL a flush locks (FOR SHARE) the
amplifier rows of new sharers before reading their audience, and a roster change holds its
amplifier rows while it adjusts the counters, so neither misses the other's change.
"""

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, NamedTuple, Protocol

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.models import Amplifier, Engagement, LinkKind, NetworkSharer
from app.models.stats import CampaignCount
from app.tracking.clickstore import BulkUpsert, LinkFacts, facts_of_links

SHARE_POINTS = 10
EVERY_MESSAGE = 0  # campaign_counts.message_id of a row about all of a campaign's messages
EVERY_NETWORK = ""  # campaign_counts.network of a row about all of its networks
IDS_PER_QUERY = 5_000


class HourDelta(Protocol):
    """A link's change in one hour (recorder._Delta)."""

    clicks: int
    bot_clicks: int
    unique_visitors: int


class FlushedClick(Protocol):
    link_id: int
    facts: LinkFacts | None


class PairKey(NamedTuple):
    campaign_id: int
    amplifier_id: int
    message_id: int
    network: str


@dataclass(slots=True)
class Counts:
    share_clicks: int = 0
    visits: int = 0
    unique_visitors: int = 0
    bot_clicks: int = 0

    def add(self, other: "Counts") -> None:
        self.share_clicks += other.share_clicks
        self.visits += other.visits
        self.unique_visitors += other.unique_visitors
        self.bot_clicks += other.bot_clicks


@dataclass(slots=True)
class PairDelta:
    """One engagement row's change: an amplifier's numbers for a message on a network."""

    organization_id: int
    counts: Counts = field(default_factory=Counts)
    first_shared_at: datetime | None = None  # the batch's first hour with human shares


@dataclass(slots=True)
class DayDelta:
    counts: Counts = field(default_factory=Counts)
    first_shares: int = 0

    @property
    def points(self) -> int:
        return self.first_shares * SHARE_POINTS + self.counts.unique_visitors


@dataclass(slots=True)
class Batch:
    """A flush's deltas added up per statistics row."""

    pairs: dict[PairKey, PairDelta] = field(default_factory=dict)
    hours: dict[tuple[int, datetime], Counts] = field(default_factory=lambda: defaultdict(Counts))
    days: dict[tuple[int, date, int], DayDelta] = field(
        default_factory=lambda: defaultdict(DayDelta)
    )
    # (campaign, message, variant) → counts; (campaign, message, amplifier) → its variant
    variants: dict[tuple[int, int, int], Counts] = field(
        default_factory=lambda: defaultdict(Counts)
    )
    variant_of: dict[tuple[int, int, int], int] = field(default_factory=dict)

    @classmethod
    def of(
        cls, deltas: Mapping[tuple[int, datetime], HourDelta], facts: Mapping[int, LinkFacts]
    ) -> "Batch":
        batch = cls()
        for (link_id, hour), delta in deltas.items():
            link = facts.get(link_id)
            if link is None:  # deleted meanwhile: its rollups went with it
                continue
            share = delta.clicks if link.kind == LinkKind.SHARE else 0
            counts = Counts(
                share_clicks=share,
                visits=delta.clicks - share,
                unique_visitors=delta.unique_visitors if link.kind == LinkKind.VISIT else 0,
                bot_clicks=delta.bot_clicks,
            )
            key = PairKey(link.campaign_id, link.amplifier_id, link.message_id, link.network)
            pair = batch.pairs.setdefault(key, PairDelta(link.organization_id))
            pair.counts.add(counts)
            if share > 0 and (pair.first_shared_at is None or hour < pair.first_shared_at):
                pair.first_shared_at = hour
            batch.hours[(link.campaign_id, hour)].add(counts)
            batch.days[(link.organization_id, hour.date(), link.amplifier_id)].counts.add(counts)
            batch.variants[(link.campaign_id, link.message_id, link.variant)].add(counts)
            batch.variant_of[(link.campaign_id, link.message_id, link.amplifier_id)] = link.variant
        return batch


# --- statements ------------------------------------------------------------------------------

_COUNTS = ("share_clicks", "visits", "unique_visitors")
_COUNT_TYPES = tuple((name, "int") for name in (*_COUNTS, "bot_clicks"))

# A (message, network) earns its share points at its first human share click; a burst
# re-flagging every share of it takes them back.
ENGAGEMENT = BulkUpsert(
    table="engagement",
    columns=(
        ("campaign_id", "int"),
        ("amplifier_id", "int"),
        ("message_id", "int"),
        ("network", "text"),
        ("organization_id", "int"),
        *_COUNT_TYPES,
        ("first_shared_at", "timestamptz"),
    ),
    key=("campaign_id", "amplifier_id", "message_id", "network"),
    added=(*_COUNTS, "bot_clicks"),
    extra_set="first_shared_at = CASE "
    "WHEN engagement.share_clicks + excluded.share_clicks <= 0 THEN NULL "
    "WHEN engagement.share_clicks <= 0 THEN excluded.first_shared_at "
    "ELSE engagement.first_shared_at END",
    returning=("campaign_id", "amplifier_id", "message_id", "network", "share_clicks"),
    stamped="updated_at",
)
CAMPAIGN_HOURS = BulkUpsert(
    table="campaign_hours",
    columns=(("campaign_id", "int"), ("hour", "timestamptz"), *_COUNT_TYPES),
    key=("campaign_id", "hour"),
    added=(*_COUNTS, "bot_clicks"),
    stamped="updated_at",
)
AMPLIFIER_DAYS = BulkUpsert(
    table="amplifier_days",
    columns=(
        ("organization_id", "int"),
        ("day", "date"),
        ("amplifier_id", "int"),
        *((name, "int") for name in (*_COUNTS, "first_shares", "points")),
    ),
    key=("organization_id", "day", "amplifier_id"),
    added=(*_COUNTS, "first_shares", "points"),
)
CAMPAIGN_COUNTS = BulkUpsert(
    table="campaign_counts",
    columns=(
        ("campaign_id", "int"),
        ("message_id", "int"),
        ("network", "text"),
        *_COUNT_TYPES,
        ("sharers", "int"),
        ("potential_reach", "bigint"),
    ),
    key=("campaign_id", "message_id", "network"),
    added=(*_COUNTS, "bot_clicks", "sharers", "potential_reach"),
)
CAMPAIGN_AMPLIFIERS = BulkUpsert(
    table="campaign_amplifiers",
    columns=(
        ("campaign_id", "int"),
        ("amplifier_id", "int"),
        *_COUNT_TYPES,
        ("shared_pairs", "int"),
        ("points", "int"),
    ),
    key=("campaign_id", "amplifier_id"),
    added=(*_COUNTS, "bot_clicks", "shared_pairs", "points"),
    returning=("campaign_id", "amplifier_id", "shared_pairs"),
)
AMPLIFIER_TOTALS = BulkUpsert(
    table="amplifier_totals",
    columns=(
        ("organization_id", "int"),
        ("amplifier_id", "int"),
        *((name, "int") for name in (*_COUNTS, "points")),
    ),
    key=("organization_id", "amplifier_id"),
    added=(*_COUNTS, "points"),
)
MESSAGE_SHARERS = BulkUpsert(
    table="message_sharers",
    columns=(
        ("campaign_id", "int"),
        ("message_id", "int"),
        ("amplifier_id", "int"),
        ("shared", "int"),
    ),
    key=("campaign_id", "message_id", "amplifier_id"),
    added=("shared",),
    returning=("campaign_id", "message_id", "amplifier_id", "shared"),
)
VARIANT_COUNTS = BulkUpsert(
    table="variant_counts",
    columns=(
        ("campaign_id", "int"),
        ("message_id", "int"),
        ("variant", "int"),
        *_COUNT_TYPES,
        ("sharers", "int"),
    ),
    key=("campaign_id", "message_id", "variant"),
    added=(*_COUNTS, "bot_clicks", "sharers"),
)
# `audience` is the amplifier's audience on the network when the row is made; roster changes
# keep it current afterwards (`audience_changed`), so an existing row keeps its own.
NETWORK_SHARERS = BulkUpsert(
    table="network_sharers",
    columns=(
        ("campaign_id", "int"),
        ("network", "text"),
        ("amplifier_id", "int"),
        ("shared", "int"),
        ("audience", "bigint"),
    ),
    key=("campaign_id", "network", "amplifier_id"),
    added=("shared",),
    returning=("campaign_id", "network", "amplifier_id", "shared", "audience"),
)


def _transition(before: int, after: int) -> int:
    """+1 when a count became positive, -1 when it fell back to zero, else 0."""
    return int(after > 0) - int(before > 0)


def _changes(returned: Iterable[tuple[Any, ...]], deltas: Mapping[Any, int]) -> dict[Any, int]:
    """The rows whose positive-or-not state the upsert changed: (key…, new count) rows and
    the deltas added to them, by key."""
    changes: dict[Any, int] = {}
    for *key, count in returned:
        delta = deltas[tuple(key)]
        change = _transition(count - delta, count)
        if change:
            changes[tuple(key)] = change
    return changes


# --- the flush -------------------------------------------------------------------------------


async def add_stats(
    connection: AsyncConnection,
    clicks: Sequence[FlushedClick],
    deltas: Mapping[tuple[int, datetime], HourDelta],
) -> None:
    """Add a batch's per-link hourly deltas to the statistics rollups and counters."""
    facts = {c.link_id: c.facts for c in clicks if c.facts is not None}
    missing = sorted({link_id for link_id, _ in deltas} - facts.keys())
    if missing:
        facts.update(await facts_of_links(connection, missing))
    batch = Batch.of(deltas, facts)
    if not batch.pairs:
        return
    taken_back = await _first_shares_at_risk(connection, batch.pairs)
    shared = await _add_engagement(connection, batch.pairs)
    for key, change in shared.items():
        pair = batch.pairs[key]
        first = pair.first_shared_at if change > 0 else taken_back.get(key)
        if first is not None:
            batch.days[
                (pair.organization_id, first.date(), key.amplifier_id)
            ].first_shares += change
    await CAMPAIGN_HOURS.run(
        connection,
        [(c, hour, *_values(counts)) for (c, hour), counts in sorted(batch.hours.items())],
    )
    await AMPLIFIER_DAYS.run(
        connection,
        [
            (org, day, amp, *_values(d.counts)[:3], d.first_shares, d.points)
            for (org, day, amp), d in sorted(batch.days.items())
        ],
    )
    await _add_pair_counts(connection, batch.pairs, shared)
    campaign_sharers = await _add_campaign_amplifiers(connection, batch.pairs, shared)
    await _add_amplifier_totals(connection, batch.pairs, shared)
    message_sharers = await _add_sharers(connection, shared, campaign_sharers) if shared else {}
    await _add_variant_counts(connection, batch, message_sharers)


def _values(counts: Counts) -> tuple[int, int, int, int]:
    return counts.share_clicks, counts.visits, counts.unique_visitors, counts.bot_clicks


async def _first_shares_at_risk(
    connection: AsyncConnection, pairs: Mapping[PairKey, PairDelta]
) -> dict[PairKey, datetime]:
    """The stored first-share hour of every row this batch takes shares from (a burst): if
    it takes the last one, that day's share points go back. Locked until the commit."""
    keys = [key for key, pair in pairs.items() if pair.counts.share_clicks < 0]
    if not keys:
        return {}
    E = Engagement
    stmt = select(E.campaign_id, E.amplifier_id, E.message_id, E.network, E.first_shared_at)
    found: dict[PairKey, datetime] = {}
    for key in sorted(keys):
        row = (
            await connection.execute(
                stmt.where(
                    E.campaign_id == key.campaign_id,
                    E.amplifier_id == key.amplifier_id,
                    E.message_id == key.message_id,
                    E.network == key.network,
                ).with_for_update()
            )
        ).first()
        if row is not None and row.first_shared_at is not None:
            found[key] = row.first_shared_at
    return found


async def _add_engagement(
    connection: AsyncConnection, pairs: Mapping[PairKey, PairDelta]
) -> dict[PairKey, int]:
    """Upsert the engagement rows; returns the (message, network) rows this batch made shared
    (+1) or unshared (-1)."""
    rows = [
        (*key, pair.organization_id, *_values(pair.counts), pair.first_shared_at)
        for key, pair in sorted(pairs.items())
    ]
    returned = await ENGAGEMENT.run(connection, rows)
    shares = {key: pair.counts.share_clicks for key, pair in pairs.items()}
    return {PairKey(*key): change for key, change in _changes(returned, shares).items()}


async def _add_pair_counts(
    connection: AsyncConnection, pairs: Mapping[PairKey, PairDelta], shared: Mapping[PairKey, int]
) -> None:
    totals: dict[tuple[int, int, str], Counts] = defaultdict(Counts)
    sharers: dict[tuple[int, int, str], int] = defaultdict(int)
    for key, pair in pairs.items():
        group = (key.campaign_id, key.message_id, key.network)
        totals[group].add(pair.counts)
        sharers[group] += shared.get(key, 0)
    await CAMPAIGN_COUNTS.run(
        connection,
        [(*group, *_values(counts), sharers[group], 0) for group, counts in sorted(totals.items())],
    )


async def _add_campaign_amplifiers(
    connection: AsyncConnection, pairs: Mapping[PairKey, PairDelta], shared: Mapping[PairKey, int]
) -> dict[tuple[int, int], int]:
    """Upsert each amplifier's campaign totals; returns the (campaign, amplifier) this batch
    made a sharer of the campaign (+1) or took back (-1)."""
    totals: dict[tuple[int, int], Counts] = defaultdict(Counts)
    pairs_shared: dict[tuple[int, int], int] = defaultdict(int)
    for key, pair in pairs.items():
        group = (key.campaign_id, key.amplifier_id)
        totals[group].add(pair.counts)
        pairs_shared[group] += shared.get(key, 0)
    returned = await CAMPAIGN_AMPLIFIERS.run(
        connection,
        [
            (
                *group,
                *_values(counts),
                pairs_shared[group],
                pairs_shared[group] * SHARE_POINTS + counts.unique_visitors,
            )
            for group, counts in sorted(totals.items())
        ],
    )
    return _changes(returned, pairs_shared)


async def _add_amplifier_totals(
    connection: AsyncConnection, pairs: Mapping[PairKey, PairDelta], shared: Mapping[PairKey, int]
) -> None:
    totals: dict[tuple[int, int], Counts] = defaultdict(Counts)
    points: dict[tuple[int, int], int] = defaultdict(int)
    for key, pair in pairs.items():
        group = (pair.organization_id, key.amplifier_id)
        totals[group].add(pair.counts)
        points[group] += shared.get(key, 0) * SHARE_POINTS + pair.counts.unique_visitors
    await AMPLIFIER_TOTALS.run(
        connection,
        [(*group, *_values(counts)[:3], points[group]) for group, counts in sorted(totals.items())],
    )


async def _add_sharers(
    connection: AsyncConnection,
    shared: Mapping[PairKey, int],
    campaign_sharers: Mapping[tuple[int, int], int],
) -> dict[Any, int]:
    """Carry the batch's (message, network) transitions up to the sharers of each message,
    each network (with its potential reach) and the campaign; returns the (campaign, message,
    amplifier) made a sharer of the message (+1) or taken back (-1)."""
    audiences = await _lock_audiences(connection, {key.amplifier_id for key in shared})
    by_message: dict[tuple[int, int, int], int] = defaultdict(int)
    by_network: dict[tuple[int, str, int], int] = defaultdict(int)
    for key, change in shared.items():
        by_message[(key.campaign_id, key.message_id, key.amplifier_id)] += change
        by_network[(key.campaign_id, key.network, key.amplifier_id)] += change
    counters: dict[tuple[int, int, str], list[int]] = defaultdict(lambda: [0, 0])
    returned = await MESSAGE_SHARERS.run(
        connection, [(*group, change) for group, change in sorted(by_message.items()) if change]
    )
    message_sharers = _changes(returned, by_message)
    for (campaign, message, _), change in message_sharers.items():
        counters[(campaign, message, EVERY_NETWORK)][0] += change
    returned = await NETWORK_SHARERS.run(
        connection,
        [
            (campaign, network, amp, change, audiences.get(amp, {}).get(network, 0))
            for (campaign, network, amp), change in sorted(by_network.items())
            if change
        ],
    )
    for campaign, network, amp, count, audience in returned:
        change = _transition(count - by_network[(campaign, network, amp)], count)
        if change:
            row = counters[(campaign, EVERY_MESSAGE, network)]
            row[0] += change
            row[1] += change * audience
    for (campaign, _), change in campaign_sharers.items():
        counters[(campaign, EVERY_MESSAGE, EVERY_NETWORK)][0] += change
    await CAMPAIGN_COUNTS.run(
        connection,
        [
            (*group, 0, 0, 0, 0, sharers, reach)
            for group, (sharers, reach) in sorted(counters.items())
        ],
    )
    return message_sharers


async def _add_variant_counts(
    connection: AsyncConnection, batch: Batch, message_sharers: Mapping[tuple[int, int, int], int]
) -> None:
    """Each message's numbers per copy variant: the batch's counts, and the sharers of the
    message it made or took back, under the one variant each amplifier got of it."""
    sharers: dict[tuple[int, int, int], int] = defaultdict(int)
    for (campaign, message, amplifier), change in message_sharers.items():
        sharers[(campaign, message, batch.variant_of[(campaign, message, amplifier)])] += change
    await VARIANT_COUNTS.run(
        connection,
        [
            (*group, *_values(batch.variants.get(group, Counts())), sharers.get(group, 0))
            for group in sorted(batch.variants.keys() | sharers.keys())
        ],
    )


def audience_numbers(audience: Mapping[str, Any] | None) -> dict[str, int]:
    """The numeric entries of an amplifier's audience (followers per network)."""
    return {
        network: int(value)
        for network, value in (audience or {}).items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    }


async def _lock_audiences(
    connection: AsyncConnection, amplifier_ids: Iterable[int]
) -> dict[int, dict[str, int]]:
    ids = sorted(i for i in amplifier_ids if i)
    audiences: dict[int, dict[str, int]] = {}
    for start in range(0, len(ids), IDS_PER_QUERY):
        stmt = select(Amplifier.id, Amplifier.audience).where(
            Amplifier.id.in_(ids[start : start + IDS_PER_QUERY])
        )
        if connection.dialect.name == "postgresql":
            stmt = stmt.order_by(Amplifier.id).with_for_update(read=True)
        for row in (await connection.execute(stmt)).all():
            audiences[row.id] = audience_numbers(row.audience)
    return audiences


# --- roster changes ----------------------------------------------------------------------------


async def audience_changed(
    session: AsyncSession, audiences: Mapping[int, Mapping[str, Any]]
) -> None:
    """Move the potential reach of every campaign an amplifier shared in to its new audience
    (an empty one for a deleted amplifier). The caller's changes to those amplifier rows are
    written first: their row locks keep a concurrent flush from making new sharers of them."""
    if not audiences:
        return
    await session.flush()
    connection = await session.connection()
    S = NetworkSharer
    ids = sorted(audiences)
    rows: list[Any] = []
    for start in range(0, len(ids), IDS_PER_QUERY):
        rows += (
            await connection.execute(
                select(S.campaign_id, S.network, S.amplifier_id, S.shared, S.audience).where(
                    S.amplifier_id.in_(ids[start : start + IDS_PER_QUERY])
                )
            )
        ).all()
    moved: list[dict[str, Any]] = []
    reach: dict[tuple[int, str], int] = defaultdict(int)
    for row in rows:
        now = audience_numbers(audiences[row.amplifier_id]).get(row.network, 0)
        if now == row.audience:
            continue
        moved.append(
            {"c": row.campaign_id, "n": row.network, "a": row.amplifier_id, "audience": now}
        )
        if row.shared > 0:
            reach[(row.campaign_id, row.network)] += now - row.audience
    if moved:
        await connection.execute(
            update(S).where(
                S.campaign_id == bindparam("c"),
                S.network == bindparam("n"),
                S.amplifier_id == bindparam("a"),
            ),
            moved,
        )
    C = CampaignCount
    changes = [{"c": c, "n": n, "delta": delta} for (c, n), delta in sorted(reach.items()) if delta]
    if changes:
        await connection.execute(
            update(C)
            .where(
                C.campaign_id == bindparam("c"),
                C.message_id == EVERY_MESSAGE,
                C.network == bindparam("n"),
            )
            .values(potential_reach=C.potential_reach + bindparam("delta")),
            changes,
        )
