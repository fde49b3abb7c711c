from fastapi import APIRouter, status

from app.core.deps import AdminDep, ApiKeysDep, SessionDep, SignerDep
from app.core.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery, Page, paginate_by_id
from app.keys import service
from app.keys.schemas import KeyCreate, KeyCreated, KeyRead
from app.models import ApiKey

router = APIRouter(prefix="/api/v1/keys", tags=["keys"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=KeyCreated)
async def create_key(data: KeyCreate, session: SessionDep, principal: AdminDep) -> KeyCreated:
    """Create an API key for this organization; the plain key is in this answer only."""
    key, plain = await service.create(
        session, organization_id=principal.organization_id, role=data.role, name=data.name
    )
    return KeyCreated.model_validate({**KeyRead.model_validate(key).model_dump(), "key": plain})


@router.get("", response_model=Page[KeyRead])
async def list_keys(
    session: SessionDep,
    principal: AdminDep,
    signer: SignerDep,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
) -> Page[KeyRead]:
    """List the organization's active keys (never their secret)."""
    keys, next_cursor = await paginate_by_id(
        session,
        service.active_keys(organization_id=principal.organization_id),
        ApiKey.id,
        signer=signer,
        purpose="keys",
        limit=limit,
        cursor=cursor,
    )
    return Page[KeyRead](items=[KeyRead.model_validate(k) for k in keys], next_cursor=next_cursor)


@router.delete("/{key_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_key(
    key_id: int, session: SessionDep, principal: AdminDep, api_keys: ApiKeysDep
) -> None:
    """Revoke a key; it stops working at once."""
    await service.revoke(session, organization_id=principal.organization_id, key_id=key_id)
    # Committed here, not after the answer: the cache must forget the key once the revocation
    # is visible, or a lookup in between could cache the key as still valid.
    await session.commit()
    api_keys.forget_all()
