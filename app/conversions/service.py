"""Conversions, a batch at a time: click ids checked (MAC, then the stored click, then the
organization), the attribution rules applied, each conversion stored once per `external_id`,
added to the statistics rollups and announced (`conversion.created`), all in the caller's
transaction and with one statement per table for the whole batch (see writer.py)."""

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, insert, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from app.amplifiers.importer import RowError
from app.amplifiers.schemas import ImportRowError
from app.amplifiers.service import MAX_REPORTED_ERRORS
from app.conversions.importer import ParsedConversions
from app.conversions.rollups import Attributed, add_conversions
from app.conversions.schemas import ConversionCreate, ConversionImportResult, ConversionRead
from app.core.db import chunks
from app.core.errors import AppError, InvalidInput, NotFound
from app.models import Campaign, ClickId, Conversion, CostPerClick, Link
from app.stats.cpc import DEFAULT_CURRENCY
from app.tracking.clickids import ClickIds
from app.webhooks.events import Event, EventType, emit_events

# Clocks differ between this service and the one reporting: a conversion a little "before"
# its click, or a little in the future, is skew, not a mistake.
CLOCK_SKEW = timedelta(minutes=5)
KEYS_PER_QUERY = 500


class ClickNotFound(NotFound):
    pass


class ConversionRefused(InvalidInput):
    pass


@dataclass(frozen=True, slots=True)
class Reported:
    """One conversion as a request (or an import row) reports it."""

    organization_id: int
    data: ConversionCreate
    now: datetime


@dataclass(frozen=True, slots=True)
class Recorded:
    conversion: ConversionRead
    created: bool  # False: its external_id was recorded before, this is that conversion


Outcome = Recorded | ClickNotFound | ConversionRefused


def _organization_currency(organization_id: Any) -> Any:
    """The organization's currency: the one its costs per click are in (stats/cpc.py), the
    default until it sets them."""
    own = (
        select(CostPerClick.currency)
        .where(CostPerClick.organization_id == organization_id)
        .limit(1)
        .scalar_subquery()
    )
    return func.coalesce(own, DEFAULT_CURRENCY)


async def _stored_clicks(connection: AsyncConnection, keys: Sequence[str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for chunk in chunks(keys, KEYS_PER_QUERY):
        rows = await connection.execute(
            select(
                ClickId.key,
                ClickId.link_id,
                ClickId.at,
                Link.campaign_id,
                Link.message_id,
                Link.amplifier_id,
                Link.network,
                Link.variant,
                Campaign.organization_id,
                _organization_currency(Campaign.organization_id).label("currency"),
            )
            .join(Link, Link.id == ClickId.link_id)
            .join(Campaign, Campaign.id == Link.campaign_id)
            .where(ClickId.key.in_(chunk))
        )
        found.update((row.key, row) for row in rows.all())
    return found


async def _existing(
    connection: AsyncConnection, pairs: Sequence[tuple[int, str]]
) -> dict[tuple[int, str], ConversionRead]:
    """The conversions already recorded under these (organization, external_id) pairs."""
    found: dict[tuple[int, str], ConversionRead] = {}
    for chunk in chunks(pairs, KEYS_PER_QUERY):
        rows = await connection.execute(
            select(*Conversion.__table__.c).where(
                tuple_(Conversion.organization_id, Conversion.external_id).in_(chunk)
            )
        )
        for row in rows.mappings().all():
            found[(row["organization_id"], row["external_id"])] = ConversionRead.model_validate(
                dict(row)
            )
    return found


def _not_found() -> ClickNotFound:
    return ClickNotFound(
        "Unknown click id: it is not one this organization's links handed out, it was "
        "changed, or its attribution window is long over.",
        errors=[{"loc": ["body", "click_id"], "msg": "unknown click id"}],
    )


def _refusal(
    data: ConversionCreate, click: Any, *, occurred: datetime, now: datetime, window: timedelta
) -> ConversionRefused | None:
    if data.currency is not None and data.currency != click.currency:
        return ConversionRefused(
            f"The organization's currency is {click.currency}, not {data.currency}.",
            errors=[{"loc": ["body", "currency"], "msg": f"must be {click.currency}"}],
        )
    if occurred > click.at + window:
        return ConversionRefused(
            f"The conversion occurred more than {window.days} days after its click: "
            "it is outside the attribution window.",
            errors=[{"loc": ["body", "occurred_at"], "msg": "outside the attribution window"}],
        )
    if occurred < click.at - CLOCK_SKEW:
        return ConversionRefused(
            "The conversion occurred before its click.",
            errors=[{"loc": ["body", "occurred_at"], "msg": "before the click"}],
        )
    if occurred > now + CLOCK_SKEW:
        return ConversionRefused(
            "The conversion's time is in the future.",
            errors=[{"loc": ["body", "occurred_at"], "msg": "in the future"}],
        )
    return None


def _values(item: Reported, click: Any, occurred: datetime) -> dict[str, Any]:
    data = item.data
    value = None if data.value is None else Decimal(str(data.value)).quantize(Decimal("0.0001"))
    return {
        "organization_id": item.organization_id,
        "click_id": data.click_id,
        "event": data.event,
        "value": value,
        "currency": click.currency,
        "external_id": data.external_id,
        "occurred_at": occurred,
        "campaign_id": click.campaign_id,
        "message_id": click.message_id,
        "amplifier_id": click.amplifier_id,
        "network": click.network,
        "link_id": click.link_id,
        "created_at": item.now,
    }


async def record(
    connection: AsyncConnection,
    items: Sequence[Reported],
    *,
    click_ids: ClickIds,
    window_days: int,
    pending_clicks: Callable[[], Awaitable[None]] | None = None,
) -> list[Outcome]:
    """Each item's outcome, in order: recorded (new, or the one its `external_id` names) or
    refused. `pending_clicks` commits the clicks this process answered but has not stored yet:
    a conversion may come in right behind its click."""
    keys = [click_ids.stored_key(item.data.click_id) for item in items]
    wanted = sorted({key for key in keys if key is not None})
    clicks = await _stored_clicks(connection, wanted)
    if pending_clicks is not None and len(clicks) < len(wanted):
        await pending_clicks()
        clicks.update(await _stored_clicks(connection, [k for k in wanted if k not in clicks]))
    pairs = sorted(
        {(i.organization_id, i.data.external_id) for i in items if i.data.external_id is not None}
    )
    existing = await _existing(connection, pairs)
    window = timedelta(days=window_days)

    # Per item: its outcome, or where its conversion will be: an index into `new`, or the
    # external id of an earlier item of this batch that it repeats.
    slots: list[Outcome | int | tuple[int, str]] = []
    new: list[dict[str, Any]] = []
    first_of: dict[tuple[int, str], int] = {}
    for item, key in zip(items, keys, strict=True):
        external = item.data.external_id
        pair = None if external is None else (item.organization_id, external)
        if pair is not None and pair in existing:
            slots.append(Recorded(existing[pair], created=False))
            continue
        click = clicks.get(key) if key is not None else None
        if click is None or click.organization_id != item.organization_id:
            slots.append(_not_found())
            continue
        occurred = (item.data.occurred_at or item.now).astimezone(UTC)
        refusal = _refusal(item.data, click, occurred=occurred, now=item.now, window=window)
        if refusal is not None:
            slots.append(refusal)
        elif pair is not None and pair in first_of:
            slots.append(pair)
        else:
            if pair is not None:
                first_of[pair] = len(new)
            slots.append(len(new))
            new.append(_values(item, click, occurred))

    ids = await _insert(connection, new)
    taken = [
        (v["organization_id"], v["external_id"]) for v, i in zip(new, ids, strict=True) if i is None
    ]
    if taken:  # another process recorded these external ids meanwhile
        existing.update(await _existing(connection, taken))
    made: list[Recorded] = []
    for values, new_id in zip(new, ids, strict=True):
        if new_id is None:
            made.append(
                Recorded(existing[(values["organization_id"], values["external_id"])], False)
            )
        else:
            made.append(Recorded(ConversionRead.model_validate({**values, "id": new_id}), True))
    fresh = [(values, r.conversion) for values, r in zip(new, made, strict=True) if r.created]
    variant_of_link = {click.link_id: click.variant for click in clicks.values()}
    await add_conversions(
        connection,
        [
            Attributed(
                organization_id=values["organization_id"],
                campaign_id=values["campaign_id"],
                message_id=values["message_id"],
                variant=variant_of_link[values["link_id"]],
                amplifier_id=values["amplifier_id"] or 0,
                network=values["network"],
                occurred_at=values["occurred_at"],
                value=values["value"] or Decimal(0),
            )
            for values, _ in fresh
        ],
    )
    await emit_events(
        connection,
        [
            Event(
                values["organization_id"],
                EventType.CONVERSION_CREATED,
                read.model_dump(mode="json"),
            )
            for values, read in fresh
        ],
    )
    return [_outcome(slot, made, first_of) for slot in slots]


def _outcome(
    slot: "Outcome | int | tuple[int, str]",
    made: Sequence[Recorded],
    first_of: dict[tuple[int, str], int],
) -> Outcome:
    if isinstance(slot, int):
        return made[slot]
    if isinstance(slot, tuple):  # a repeat, within the batch, of an earlier item's external id
        return Recorded(made[first_of[slot]].conversion, created=False)
    return slot


async def _insert(connection: AsyncConnection, rows: Sequence[dict[str, Any]]) -> list[int | None]:
    """The new conversions' ids, in order; None where the external id was taken meanwhile."""
    ids: dict[int, int | None] = {}
    keyed = [(i, row) for i, row in enumerate(rows) if row["external_id"] is not None]
    plain = [(i, row) for i, row in enumerate(rows) if row["external_id"] is None]
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    upsert = (
        dialect.insert(Conversion)
        .on_conflict_do_nothing(index_elements=["organization_id", "external_id"])
        .returning(Conversion.organization_id, Conversion.external_id, Conversion.id)
    )
    for chunk in chunks(keyed, KEYS_PER_QUERY):
        returned = await connection.execute(upsert, [row for _, row in chunk])
        made = {(r.organization_id, r.external_id): r.id for r in returned.all()}
        for i, row in chunk:
            ids[i] = made.get((row["organization_id"], row["external_id"]))
    # Without an external id nothing can conflict: ids come back in the rows' order.
    plain_insert = insert(Conversion).returning(Conversion.id, sort_by_parameter_order=True)
    for chunk in chunks(plain, KEYS_PER_QUERY):
        returned = await connection.execute(plain_insert, [row for _, row in chunk])
        for (i, _), new_id in zip(chunk, returned.scalars().all(), strict=True):
            ids[i] = new_id
    return [ids[i] for i in range(len(rows))]


async def import_rows(
    connection: AsyncConnection,
    *,
    organization_id: int,
    parsed: ParsedConversions,
    now: datetime,
    click_ids: ClickIds,
    window_days: int,
    pending_clicks: Callable[[], Awaitable[None]] | None = None,
) -> ConversionImportResult:
    """The good rows recorded as one batch; a row refused is reported and skipped."""
    outcomes = await record(
        connection,
        [Reported(organization_id, row.data, now) for row in parsed.rows],
        click_ids=click_ids,
        window_days=window_days,
        pending_clicks=pending_clicks,
    )
    errors = list(parsed.errors)
    created = duplicates = 0
    for row, outcome in zip(parsed.rows, outcomes, strict=True):
        if isinstance(outcome, Recorded):
            created += outcome.created
            duplicates += not outcome.created
        else:
            errors.append(RowError(row.row, _row_error(outcome)))
    errors.sort(key=lambda error: error.row)
    return ConversionImportResult(
        created=created,
        duplicates=duplicates,
        skipped=len(errors),
        errors=[ImportRowError(row=e.row, error=e.error) for e in errors[:MAX_REPORTED_ERRORS]],
        errors_truncated=len(errors) > MAX_REPORTED_ERRORS,
    )


def _row_error(exc: AppError) -> str:
    """'<field>: <reason>', like the roster import's row errors."""
    field = exc.errors[0]["loc"][-1] if exc.errors else "row"
    return f"{field}: {exc.detail}"
