"""Cost per click by network: what a visit would have cost as a paid ad (earned media value)."""

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import utcnow
from app.core.errors import InvalidInput
from app.core.schemas import NETWORKS
from app.models import CostPerClick

# Rough averages of paid social and messaging ads, in USD: a starting point to replace with
# your own figures (PUT /api/v1/settings/cpc).
DEFAULT_CURRENCY = "USD"
DEFAULT_CPC: dict[str, Decimal] = {
    "linkedin": Decimal("5.58"),
    "x": Decimal("0.38"),
    "facebook": Decimal("0.97"),
    "email": Decimal("0.50"),
    "whatsapp": Decimal("0.50"),
    "telegram": Decimal("0.30"),
    "reddit": Decimal("0.75"),
    "xing": Decimal("2.00"),
    "bluesky": Decimal("0.40"),
    "threads": Decimal("0.60"),
}
assert set(DEFAULT_CPC) == set(NETWORKS)


@dataclass(frozen=True, slots=True)
class Cpc:
    amount: Decimal
    currency: str


class MixedCurrencies(InvalidInput):
    pass


async def rates(session: AsyncSession, *, organization_id: int) -> dict[str, Cpc]:
    """Every network's cost per click: the organization's own where set, else the default."""
    table = {n: Cpc(DEFAULT_CPC[n], DEFAULT_CURRENCY) for n in NETWORKS}
    rows = await session.scalars(
        select(CostPerClick).where(CostPerClick.organization_id == organization_id)
    )
    for row in rows:
        if row.network in table:
            table[row.network] = Cpc(Decimal(row.amount), row.currency)
    return table


async def update(
    session: AsyncSession, *, organization_id: int, changes: dict[str, Cpc | None]
) -> dict[str, Cpc]:
    """Set the networks given (None: back to the default); all networks keep one currency."""
    current = await rates(session, organization_id=organization_id)
    merged = {
        network: (
            current[network]
            if network not in changes
            else changes[network] or Cpc(DEFAULT_CPC[network], DEFAULT_CURRENCY)
        )
        for network in NETWORKS
    }
    currencies = sorted({rate.currency for rate in merged.values()})
    if len(currencies) > 1:
        raise MixedCurrencies(
            f"Every network must use one currency (found {', '.join(currencies)}): "
            "EMV adds visits from all networks. Set all networks in the same request.",
            errors=[{"loc": ["body"], "msg": "mixed currencies"}],
        )
    await session.execute(
        delete(CostPerClick).where(
            CostPerClick.organization_id == organization_id,
            CostPerClick.network.in_(list(changes)),
        )
    )
    now = utcnow()
    for network, rate in changes.items():
        if rate is not None:
            session.add(
                CostPerClick(
                    organization_id=organization_id,
                    network=network,
                    amount=rate.amount,
                    currency=rate.currency,
                    updated_at=now,
                )
            )
    await session.flush()
    return merged
