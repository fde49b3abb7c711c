"""A conversion added to the statistics rollups and counters that the click flush keeps
(app/models/stats.py), in the transaction that stores it: the stats answers read conversions
and their value from the same rows as clicks, never from the conversions table.

One upsert per table and batch, each adding to the row of the conversion's amplifier × message ×
network (engagement, campaign counts), message × copy variant, campaign × amplifier,
organization × amplifier (all time and per day of the conversion) and campaign × hour (time
series, and what moves the campaign's answer cache)."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from app.tracking.clickstore import BulkUpsert
from app.tracking.recorder import hour_of

_ADDED = ("conversions", "conversion_value")
_ADDED_TYPES = (("conversions", "int"), ("conversion_value", "numeric"))
_CLICK_COUNTS = ("share_clicks", "visits", "unique_visitors", "bot_clicks")


@dataclass(frozen=True, slots=True)
class _Rollup:
    """Adds to rollup rows' conversions; a new row gets zero in each of `zeros`."""

    upsert: BulkUpsert
    zeros: int

    async def add(
        self,
        connection: AsyncConnection,
        totals: dict[tuple[Any, ...], tuple[int, Decimal]],
    ) -> None:
        """`totals`: per row identity, the conversions and value to add."""
        await self.upsert.run(
            connection,
            [
                (*identity, *(0,) * self.zeros, count, value)
                for identity, (count, value) in sorted(totals.items())
            ],
        )


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
VARIANT_COUNTS = _rollup(
    "variant_counts",
    (("campaign_id", "int"), ("message_id", "int"), ("variant", "int")),
    ("recipients", *_CLICK_COUNTS, "sharers"),
)
CAMPAIGN_HOURS = _rollup(
    "campaign_hours",
    (("campaign_id", "int"), ("hour", "timestamptz")),
    _CLICK_COUNTS,
    stamped="updated_at",
)


_ROLLUPS = (
    ENGAGEMENT,
    CAMPAIGN_COUNTS,
    CAMPAIGN_AMPLIFIERS,
    AMPLIFIER_TOTALS,
    AMPLIFIER_DAYS,
    VARIANT_COUNTS,
    CAMPAIGN_HOURS,
)


@dataclass(frozen=True, slots=True)
class Attributed:
    """Where a conversion counts."""

    organization_id: int
    campaign_id: int
    message_id: int
    variant: int  # the copy variant of the link clicked
    amplifier_id: int  # 0 once the amplifier is deleted, like the click rollups
    network: str
    occurred_at: datetime
    value: Decimal


async def add_conversions(connection: AsyncConnection, conversions: Sequence[Attributed]) -> None:
    """Add a batch of conversions, one statement per table."""
    if not conversions:
        return
    per: dict[_Rollup, dict[tuple[Any, ...], tuple[int, Decimal]]] = {
        rollup: {} for rollup in _ROLLUPS
    }
    for c in conversions:
        org, campaign, amplifier = c.organization_id, c.campaign_id, c.amplifier_id
        for rollup, identity in (
            (ENGAGEMENT, (campaign, amplifier, c.message_id, c.network, org)),
            (CAMPAIGN_COUNTS, (campaign, c.message_id, c.network)),
            (CAMPAIGN_AMPLIFIERS, (campaign, amplifier)),
            (AMPLIFIER_TOTALS, (org, amplifier)),
            (AMPLIFIER_DAYS, (org, c.occurred_at.date(), amplifier)),
            (VARIANT_COUNTS, (campaign, c.message_id, c.variant)),
            (CAMPAIGN_HOURS, (campaign, hour_of(c.occurred_at))),
        ):
            count, value = per[rollup].get(identity, (0, Decimal(0)))
            per[rollup][identity] = (count + 1, value + c.value)
    for rollup in _ROLLUPS:
        await rollup.add(connection, per[rollup])
