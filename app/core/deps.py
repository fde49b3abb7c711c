"""Request dependencies: the session that commits, and the caller's organization and role."""

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.db import session_scope, utcnow
from app.core.errors import Forbidden, Unauthorized
from app.core.security import Signer, hash_api_key
from app.models import ApiKey, Role

LAST_USED_GRANULARITY = timedelta(minutes=1)


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async for session in session_scope(request.app.state.sessionmaker):
        yield session


def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_signer(request: Request) -> Signer:
    signer: Signer = request.app.state.signer
    return signer


def get_clock(request: Request) -> Callable[[], datetime]:
    """The wall clock deciding slots and pauses (`app.state.clock`; tests move it)."""
    clock: Callable[[], datetime] = request.app.state.clock
    return clock


# scope="function": the transaction commits before the answer goes out, so a 2xx means the
# change is stored and visible to the next request, whichever process serves it.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
SignerDep = Annotated[Signer, Depends(get_signer)]
ClockDep = Annotated[Callable[[], datetime], Depends(get_clock)]


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the key's organization and role."""

    organization_id: int
    key_id: int
    role: Role


def bearer_token(request: Request) -> str | None:
    """The token of `Authorization: Bearer <token>` (the scheme in any case), if sent."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _bearer_token(request: Request) -> str:
    token = bearer_token(request)
    if token is None:
        raise Unauthorized("Send an API key as 'Authorization: Bearer <key>'.")
    return token


async def get_principal(request: Request, session: SessionDep) -> Principal:
    token = _bearer_token(request)
    key = await session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_api_key(token)))
    if key is None or key.revoked_at is not None:
        raise Unauthorized("The API key is unknown or revoked.")
    now = utcnow()
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_GRANULARITY:
        key.last_used_at = now
    return Principal(organization_id=key.organization_id, key_id=key.id, role=Role(key.role))


@dataclass(frozen=True, slots=True)
class RoleGuard:
    """The caller, if their key's role allows `needed` (the OpenAPI document reads `needed`)."""

    needed: Role

    async def __call__(self, principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
        if not principal.role.allows(self.needed):
            raise Forbidden(f"This needs a key with the '{self.needed}' role or higher.")
        return principal


def require_role(needed: Role) -> object:
    return Depends(RoleGuard(needed))


ViewerDep = Annotated[Principal, require_role(Role.VIEWER)]
EditorDep = Annotated[Principal, require_role(Role.EDITOR)]
AdminDep = Annotated[Principal, require_role(Role.ADMIN)]
