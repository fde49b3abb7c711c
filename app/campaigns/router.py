from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status

from app.campaigns import service
from app.campaigns.schemas import (
    CampaignCreate,
    CampaignRead,
    CampaignUpdate,
    MessageCreate,
    MessageRead,
    MessageUpdate,
)
from app.core.deps import EditorDep, SessionDep, SignerDep, ViewerDep
from app.core.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery, Page, paginate_by_id
from app.models import Campaign, CampaignStatus

router = APIRouter(prefix="/api/v1/campaigns", tags=["campaigns"])

StatusQuery = Annotated[
    CampaignStatus | None, Query(alias="status", description="Only campaigns in this status.")
]

# 401, 403, 404 and 422 are derived from each route's signature (app/core/openapi.py).
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"description": "The campaign's status does not allow this."}
}


def _created_at(response: Response, location: str) -> None:
    response.headers["Location"] = location


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=CampaignRead,
)
async def create_campaign(
    data: CampaignCreate, session: SessionDep, principal: EditorDep, response: Response
) -> CampaignRead:
    """Create a draft campaign with its messages."""
    campaign = await service.create(session, organization_id=principal.organization_id, data=data)
    _created_at(response, f"{router.prefix}/{campaign.id}")
    return CampaignRead.model_validate(campaign)


@router.get("", response_model=Page[CampaignRead])
async def list_campaigns(
    session: SessionDep,
    principal: ViewerDep,
    signer: SignerDep,
    status_filter: StatusQuery = None,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
) -> Page[CampaignRead]:
    """List the organization's campaigns, oldest first, with their messages."""
    campaigns, next_cursor = await paginate_by_id(
        session,
        service.list_query(organization_id=principal.organization_id, status=status_filter),
        Campaign.id,
        signer=signer,
        purpose="campaigns",
        limit=limit,
        cursor=cursor,
    )
    return Page[CampaignRead](
        items=[CampaignRead.model_validate(c) for c in campaigns], next_cursor=next_cursor
    )


@router.get("/{campaign_id}", response_model=CampaignRead)
async def get_campaign(campaign_id: int, session: SessionDep, principal: ViewerDep) -> CampaignRead:
    """Get a campaign with its messages."""
    campaign = await service.get(
        session, organization_id=principal.organization_id, campaign_id=campaign_id
    )
    return CampaignRead.model_validate(campaign)


@router.patch("/{campaign_id}", response_model=CampaignRead, responses=CONFLICT)
async def update_campaign(
    campaign_id: int, data: CampaignUpdate, session: SessionDep, principal: EditorDep
) -> CampaignRead:
    """Change a campaign; outside `draft` only name, subject and intro (never once sending)."""
    campaign = await service.update(
        session, organization_id=principal.organization_id, campaign_id=campaign_id, data=data
    )
    return CampaignRead.model_validate(campaign)


@router.delete(
    "/{campaign_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=CONFLICT,
)
async def delete_campaign(campaign_id: int, session: SessionDep, principal: EditorDep) -> None:
    """Delete a campaign and its messages, unless it is sending, paused or sent."""
    await service.delete(
        session, organization_id=principal.organization_id, campaign_id=campaign_id
    )


@router.get("/{campaign_id}/messages", response_model=Page[MessageRead])
async def list_messages(
    campaign_id: int,
    session: SessionDep,
    principal: ViewerDep,
    signer: SignerDep,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
) -> Page[MessageRead]:
    """List a campaign's messages in position order."""
    messages, next_cursor = await service.list_messages(
        session,
        organization_id=principal.organization_id,
        campaign_id=campaign_id,
        signer=signer,
        limit=limit,
        cursor=cursor,
    )
    return Page[MessageRead](
        items=[MessageRead.model_validate(m) for m in messages], next_cursor=next_cursor
    )


@router.post(
    "/{campaign_id}/messages",
    status_code=status.HTTP_201_CREATED,
    response_model=MessageRead,
    responses=CONFLICT,
)
async def add_message(
    campaign_id: int,
    data: MessageCreate,
    session: SessionDep,
    principal: EditorDep,
    response: Response,
) -> MessageRead:
    """Add a message to a draft campaign: appended, or inserted at `position`."""
    message = await service.add_message(
        session, organization_id=principal.organization_id, campaign_id=campaign_id, data=data
    )
    _created_at(response, f"{router.prefix}/{campaign_id}/messages/{message.id}")
    return MessageRead.model_validate(message)


@router.get(
    "/{campaign_id}/messages/{message_id}",
    response_model=MessageRead,
)
async def get_message(
    campaign_id: int, message_id: int, session: SessionDep, principal: ViewerDep
) -> MessageRead:
    """Get one message of a campaign."""
    message = await service.get_message(
        session,
        organization_id=principal.organization_id,
        campaign_id=campaign_id,
        message_id=message_id,
    )
    return MessageRead.model_validate(message)


@router.patch(
    "/{campaign_id}/messages/{message_id}",
    response_model=MessageRead,
    responses=CONFLICT,
)
async def update_message(
    campaign_id: int,
    message_id: int,
    data: MessageUpdate,
    session: SessionDep,
    principal: EditorDep,
) -> MessageRead:
    """Change a draft's message; `position` moves it and renumbers the others."""
    message = await service.update_message(
        session,
        organization_id=principal.organization_id,
        campaign_id=campaign_id,
        message_id=message_id,
        data=data,
    )
    return MessageRead.model_validate(message)


@router.delete(
    "/{campaign_id}/messages/{message_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=CONFLICT,
)
async def delete_message(
    campaign_id: int, message_id: int, session: SessionDep, principal: EditorDep
) -> None:
    """Delete a draft's message; the ones after it move up."""
    await service.delete_message(
        session,
        organization_id=principal.organization_id,
        campaign_id=campaign_id,
        message_id=message_id,
    )
