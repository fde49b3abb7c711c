"""Request dependencies: the session that commits, and the caller's organization and role."""

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.config import Settings
from app.core.db import session_scope, utcnow
from app.core.errors import Forbidden, Unauthorized
from app.core.security import Signer, hash_api_key
from app.keys.cache import ApiKeyCache, Principal
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


def get_api_keys(request: Request) -> ApiKeyCache:
    keys: ApiKeyCache = request.app.state.api_keys
    return keys


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
ApiKeysDep = Annotated[ApiKeyCache, Depends(get_api_keys)]


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


async def get_principal(request: Request) -> Principal:
    """The caller, from the key cache or else the database: no session of the request's own, so
    a route whose work needs none (a conversion handed to its batch) holds no connection."""
    key_hash = hash_api_key(_bearer_token(request))
    look_up = partial(_look_up_key, request.app.state.sessionmaker)
    return await get_api_keys(request).verify(key_hash, look_up)


async def _look_up_key(sessionmaker: async_sessionmaker[AsyncSession], key_hash: str) -> Principal:
    """The key's principal, its last use stamped. The cache asks at least once per TTL (at most
    a minute) for a key in use, so `last_used_at` stays within about a minute of the truth."""
    async with sessionmaker() as session:
        key = await session.scalar(select(ApiKey).where(ApiKey.key_hash == key_hash))
        if key is None or key.revoked_at is not None:
            raise Unauthorized("The API key is unknown or revoked.")
        principal = Principal(
            organization_id=key.organization_id, key_id=key.id, role=Role(key.role)
        )
        now = utcnow()
        if key.last_used_at is None or now - key.last_used_at > LAST_USED_GRANULARITY:
            key.last_used_at = now
            await session.commit()
    return principal


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
