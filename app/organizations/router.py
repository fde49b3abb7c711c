from fastapi import APIRouter

from app.core.deps import AdminDep, SessionDep, ViewerDep
from app.organizations import service
from app.organizations.schemas import SendingSettingsRead, SendingSettingsUpdate

router = APIRouter(prefix="/api/v1/settings", tags=["settings"])


@router.get("/sending", response_model=SendingSettingsRead)
async def get_sending_settings(session: SessionDep, principal: ViewerDep) -> SendingSettingsRead:
    """How digests are sent: slots and weekly cap, the impact block, the my-impact top 10."""
    organization = await service.get(session, organization_id=principal.organization_id)
    return SendingSettingsRead.model_validate(organization)


@router.put("/sending", response_model=SendingSettingsRead)
async def set_sending_settings(
    data: SendingSettingsUpdate, session: SessionDep, principal: AdminDep
) -> SendingSettingsRead:
    """Change the fields given (admin only)."""
    organization = await service.update_sending(
        session, organization_id=principal.organization_id, data=data
    )
    return SendingSettingsRead.model_validate(organization)
