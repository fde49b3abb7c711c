"""Settings that belong to an organization rather than to one campaign."""

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import InvalidInput
from app.models import Organization
from app.organizations.schemas import SendingSettingsUpdate

NULLABLE = frozenset({"max_digests_per_week"})


async def get(session: AsyncSession, *, organization_id: int) -> Organization:
    organization = await session.get(Organization, organization_id)
    assert organization is not None  # the API key's organization exists
    return organization


async def update_sending(
    session: AsyncSession, *, organization_id: int, data: SendingSettingsUpdate
) -> Organization:
    organization = await get(session, organization_id=organization_id)
    for field in data.model_fields_set:
        value = getattr(data, field)
        if value is None and field not in NULLABLE:
            raise InvalidInput(
                f"{field} must not be null.",
                errors=[{"loc": ["body", field], "msg": "must not be null"}],
            )
        setattr(organization, field, value)
    await session.flush()
    return organization
