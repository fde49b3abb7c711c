from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import MAX_ID, utcnow
from app.core.errors import Conflict, NotFound
from app.core.security import hash_api_key, new_api_key
from app.models import ApiKey, Organization, Role


class KeyNotFound(NotFound):
    pass


class LastAdminKey(Conflict):
    pass


async def get_or_create_organization(session: AsyncSession, *, name: str) -> Organization:
    org = await session.scalar(select(Organization).where(Organization.name == name))
    if org is None:
        org = Organization(name=name)
        session.add(org)
        await session.flush()
    return org


async def create(
    session: AsyncSession, *, organization_id: int, role: Role, name: str | None
) -> tuple[ApiKey, str]:
    """A new key and its plain text, which is never stored."""
    plain = new_api_key()
    key = ApiKey(
        organization_id=organization_id,
        role=role,
        name=name,
        key_hash=hash_api_key(plain),
        key_prefix=plain[:10],
        created_at=utcnow(),
    )
    session.add(key)
    await session.flush()
    return key, plain


def active_keys(*, organization_id: int) -> Select[ApiKey]:
    return select(ApiKey).where(
        ApiKey.organization_id == organization_id, ApiKey.revoked_at.is_(None)
    )


async def revoke(session: AsyncSession, *, organization_id: int, key_id: int) -> None:
    if not 0 < key_id <= MAX_ID:
        raise KeyNotFound(f"API key {key_id} does not exist.")
    key = await session.scalar(
        select(ApiKey).where(
            ApiKey.id == key_id,
            ApiKey.organization_id == organization_id,
            ApiKey.revoked_at.is_(None),
        )
    )
    if key is None:
        raise KeyNotFound(f"API key {key_id} does not exist.")
    if key.role == Role.ADMIN:
        admins = await session.scalar(
            select(func.count()).select_from(
                active_keys(organization_id=organization_id)
                .where(ApiKey.role == Role.ADMIN)
                .subquery()
            )
        )
        if (admins or 0) <= 1:
            raise LastAdminKey(
                "This is the organization's last admin key; create another admin key first."
            )
    key.revoked_at = utcnow()
