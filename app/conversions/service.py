"""Conversions: a click id checked (MAC, then the stored click, then the organization), the
attribution rules applied, the conversion stored once per `external_id`, added to the
statistics rollups and announced (`conversion.created`), all in the caller's transaction."""

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from app.amplifiers.importer import RowError
from app.amplifiers.schemas import ImportRowError
from app.amplifiers.service import MAX_REPORTED_ERRORS
from app.conversions.importer import ParsedConversions
from app.conversions.rollups import Attributed, add_conversion
from app.conversions.schemas import ConversionCreate, ConversionImportResult, ConversionRead
from app.core.errors import InvalidInput, NotFound
from app.models import Campaign, ClickId, Conversion, CostPerClick, Link
from app.stats.cpc import DEFAULT_CURRENCY
from app.tracking.clickids import ClickIds
from app.webhooks.events import EventType, emit

# Clocks differ between this service and the one reporting: a conversion a little "before"
# its click, or a little in the future, is skew, not a mistake.
CLOCK_SKEW = timedelta(minutes=5)


class ClickNotFound(NotFound):
    pass


class ConversionRefused(InvalidInput):
    pass


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


async def _stored_click(session: AsyncSession, key: str) -> Any:
    return (
        await session.execute(
            select(
                ClickId.link_id,
                ClickId.at,
                Link.campaign_id,
                Link.message_id,
                Link.amplifier_id,
                Link.network,
                Campaign.organization_id,
                _organization_currency(Campaign.organization_id).label("currency"),
            )
            .join(Link, Link.id == ClickId.link_id)
            .join(Campaign, Campaign.id == Link.campaign_id)
            .where(ClickId.key == key)
        )
    ).first()


async def _existing(
    session: AsyncSession, organization_id: int, external_id: str | None
) -> Conversion | None:
    if external_id is None:
        return None
    found: Conversion | None = await session.scalar(
        select(Conversion).where(
            Conversion.organization_id == organization_id, Conversion.external_id == external_id
        )
    )
    return found


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


async def create(
    session: AsyncSession,
    *,
    organization_id: int,
    data: ConversionCreate,
    click_ids: ClickIds,
    window_days: int,
    now: datetime,
    pending_clicks: Callable[[], Awaitable[None]] | None = None,
) -> tuple[Conversion, bool]:
    """The conversion and whether it is new (False: its `external_id` was recorded before).
    `pending_clicks` commits the clicks this process answered but has not stored yet: a
    conversion may come in right behind its click."""
    key = click_ids.stored_key(data.click_id)
    click = None
    if key is not None:
        click = await _stored_click(session, key)
        if click is None and pending_clicks is not None:
            await pending_clicks()
            click = await _stored_click(session, key)
    if click is None or click.organization_id != organization_id:
        existing = await _existing(session, organization_id, data.external_id)
        if existing is not None:
            return existing, False
        raise ClickNotFound(
            "Unknown click id: it is not one this organization's links handed out, it was "
            "changed, or its attribution window is long over.",
            errors=[{"loc": ["body", "click_id"], "msg": "unknown click id"}],
        )
    occurred = (data.occurred_at or now).astimezone(UTC)
    refusal = _refusal(data, click, occurred=occurred, now=now, window=timedelta(days=window_days))
    if refusal is not None:
        existing = await _existing(session, organization_id, data.external_id)
        if existing is not None:
            return existing, False
        raise refusal
    value = Decimal(str(data.value)).quantize(Decimal("0.0001")) if data.value is not None else None
    values = {
        "organization_id": organization_id,
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
        "created_at": now,
    }
    new_id = await _insert(session, values)
    if new_id is None:  # another request recorded this external_id meanwhile
        existing = await _existing(session, organization_id, data.external_id)
        assert existing is not None
        return existing, False
    conversion = Conversion(id=new_id, **values)
    connection = await session.connection()
    await add_conversion(
        connection,
        Attributed(
            organization_id=organization_id,
            campaign_id=click.campaign_id,
            message_id=click.message_id,
            amplifier_id=click.amplifier_id or 0,
            network=click.network,
            occurred_at=occurred,
            value=value or Decimal(0),
        ),
    )
    await emit(
        session,
        organization_id=organization_id,
        type=EventType.CONVERSION_CREATED,
        data=ConversionRead.model_validate(conversion).model_dump(mode="json"),
    )
    return conversion, True


async def _insert(session: AsyncSession, values: dict[str, Any]) -> int | None:
    """The new conversion's id; None when its external_id is taken."""
    if values["external_id"] is None:
        stmt: Any = insert(Conversion)
    elif session.get_bind().dialect.name == "postgresql":
        stmt = postgresql.insert(Conversion).on_conflict_do_nothing(
            index_elements=["organization_id", "external_id"]
        )
    else:
        stmt = sqlite.insert(Conversion).on_conflict_do_nothing(
            index_elements=["organization_id", "external_id"]
        )
    new_id: int | None = await session.scalar(stmt.values(values).returning(Conversion.id))
    return new_id


async def import_rows(
    session: AsyncSession,
    *,
    organization_id: int,
    parsed: ParsedConversions,
    click_ids: ClickIds,
    window_days: int,
    now: datetime,
    pending_clicks: Callable[[], Awaitable[None]] | None = None,
) -> ConversionImportResult:
    """Each good row as `create` would take it; a row it refuses is reported and skipped (its
    checks come before any write, so a refused row leaves nothing behind)."""
    created = duplicates = 0
    errors = list(parsed.errors)
    if pending_clicks is not None and parsed.rows:
        await pending_clicks()  # once for the whole file
    for item in parsed.rows:
        try:
            _, new = await create(
                session,
                organization_id=organization_id,
                data=item.data,
                click_ids=click_ids,
                window_days=window_days,
                now=now,
            )
        except (ClickNotFound, ConversionRefused) as exc:
            errors.append(RowError(item.row, _row_error(exc)))
            continue
        created += new
        duplicates += not new
    errors.sort(key=lambda error: error.row)
    return ConversionImportResult(
        created=created,
        duplicates=duplicates,
        skipped=len(errors),
        errors=[ImportRowError(row=e.row, error=e.error) for e in errors[:MAX_REPORTED_ERRORS]],
        errors_truncated=len(errors) > MAX_REPORTED_ERRORS,
    )


def _row_error(exc: ClickNotFound | ConversionRefused) -> str:
    """'<field>: <reason>', like the roster import's row errors."""
    field = exc.errors[0]["loc"][-1] if exc.errors else "row"
    return f"{field}: {exc.detail}"
