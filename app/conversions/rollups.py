"""A conversion added to the statistics rollups and counters that the click flush keeps
(app/models/stats.py), in the transaction that stores it: the stats answers read conversions
and their value from the same rows as clicks, never from the conversions table.

One upsert per table, each adding to the row of the conversion's amplifier × message ×
network (engagement, campaign counts), campaign × amplifier, organization × amplifier (all
time and per day of the conversion) and campaign × hour (time series, and what moves the
campaign's answer cache)."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncConnection

from app.tracking.clickstore import BulkUpsert
from app.tracking.recorder import hour_of

_ADDED = ("conversions", "conversion_value")
_ADDED_TYPES = (("conversions", "int"), ("conversion_value", "numeric"))
_CLICK_COUNTS = ("share_clicks", "visits", "unique_visitors", "bot_clicks")


@dataclass(frozen=True, slots=True)
class _Rollup:
    """Adds to a rollup row's conversions; a new row gets zero in each of `zeros`."""

    upsert: BulkUpsert
    zeros: int

    async def add(
        self, connection: AsyncConnection, identity: tuple[object, ...], value: object
    ) -> None:
        await self.upsert.run(connection, [(*identity, *(0,) * self.zeros, 1, value)])


def _rollup(
    table: str,
    identity: tuple[tuple[str, str], ...],
    zeros: tuple[str, ...],
    *,
    key: int | None = None,
    stamped: str | None = None,
) -> _Rollup:
    """`identity`: the row's columns that say whose numbers they are; its first `key` (all
    by default) are the table's key."""
    upsert = BulkUpsert(
        table=table,
        columns=(*identity, *((name, "int") for name in zeros), *_ADDED_TYPES),
        key=tuple(name for name, _ in identity[:key]),
        added=_ADDED,
        stamped=stamped,
    )
    return _Rollup(upsert, len(zeros))


ENGAGEMENT = _rollup(
    "engagement",
    (
        ("campaign_id", "int"),
        ("amplifier_id", "int"),
        ("message_id", "int"),
        ("network", "text"),
        ("organization_id", "int"),
    ),
    _CLICK_COUNTS,
    key=4,
    stamped="updated_at",
)
CAMPAIGN_COUNTS = _rollup(
    "campaign_counts",
    (("campaign_id", "int"), ("message_id", "int"), ("network", "text")),
    (*_CLICK_COUNTS, "sharers", "potential_reach"),
)
CAMPAIGN_AMPLIFIERS = _rollup(
    "campaign_amplifiers",
    (("campaign_id", "int"), ("amplifier_id", "int")),
    (*_CLICK_COUNTS, "shared_pairs", "points"),
)
AMPLIFIER_TOTALS = _rollup(
    "amplifier_totals",
    (("organization_id", "int"), ("amplifier_id", "int")),
    ("share_clicks", "visits", "unique_visitors", "points"),
)
AMPLIFIER_DAYS = _rollup(
    "amplifier_days",
    (("organization_id", "int"), ("day", "date"), ("amplifier_id", "int")),
    ("share_clicks", "visits", "unique_visitors", "first_shares", "points"),
)
CAMPAIGN_HOURS = _rollup(
    "campaign_hours",
    (("campaign_id", "int"), ("hour", "timestamptz")),
    _CLICK_COUNTS,
    stamped="updated_at",
)


@dataclass(frozen=True, slots=True)
class Attributed:
    """Where a conversion counts."""

    organization_id: int
    campaign_id: int
    message_id: int
    amplifier_id: int  # 0 once the amplifier is deleted, like the click rollups
    network: str
    occurred_at: datetime
    value: Decimal


async def add_conversion(connection: AsyncConnection, conversion: Attributed) -> None:
    c = conversion
    # SQLite takes its rows as one JSON document: a float there, the exact decimal elsewhere.
    value = c.value if connection.dialect.name == "postgresql" else float(c.value)
    org, campaign, amplifier = c.organization_id, c.campaign_id, c.amplifier_id
    await ENGAGEMENT.add(connection, (campaign, amplifier, c.message_id, c.network, org), value)
    await CAMPAIGN_COUNTS.add(connection, (campaign, c.message_id, c.network), value)
    await CAMPAIGN_AMPLIFIERS.add(connection, (campaign, amplifier), value)
    await AMPLIFIER_TOTALS.add(connection, (org, amplifier), value)
    await AMPLIFIER_DAYS.add(connection, (org, c.occurred_at.date(), amplifier), value)
    await CAMPAIGN_HOURS.add(connection, (campaign, hour_of(c.occurred_at)), value)
