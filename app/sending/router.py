from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse

from app import i18n
from app.campaigns.schemas import MAX_VARIANTS, CampaignRead
from app.core.deps import ClockDep, EditorDep, SessionDep, SettingsDep, SignerDep, ViewerDep
from app.core.errors import InvalidInput
from app.core.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery, Page
from app.sending import preview as preview_service
from app.sending import service
from app.sending.schemas import DeliveryRead, SendRequest

router = APIRouter(prefix="/api/v1/campaigns", tags=["sending"])

DeliveryStatusQuery = Annotated[
    Literal["pending", "held", "sent", "failed", "cancelled", "bounced"] | None,
    Query(description="Filter by status."),
]


@router.post(
    "/{campaign_id}/send",
    status_code=202,
    response_model=CampaignRead,
    responses={409: {"description": "The campaign is not a draft (sent, sending …)."}},
)
async def send_campaign(
    campaign_id: int,
    session: SessionDep,
    principal: EditorDep,
    settings: SettingsDep,
    clock: ClockDep,
    data: SendRequest = SendRequest(),
) -> CampaignRead:
    """Snapshot the audience and send now, or at `scheduled_at`; a second send is a 409."""
    scheduled_at = data.scheduled_at
    campaign = await service.send(
        session,
        organization_id=principal.organization_id,
        campaign_id=campaign_id,
        scheduled_at=scheduled_at,
        public_url=settings.public_url,
        now=clock(),
    )
    return CampaignRead.model_validate(campaign)


@router.post(
    "/{campaign_id}/cancel",
    response_model=CampaignRead,
    responses={409: {"description": "The campaign is a draft, sent or cancelled."}},
)
async def cancel_campaign(
    campaign_id: int, session: SessionDep, principal: EditorDep
) -> CampaignRead:
    """Cancel a scheduled, sending or paused campaign; mails not yet sent are not sent."""
    campaign = await service.cancel(
        session, organization_id=principal.organization_id, campaign_id=campaign_id
    )
    return CampaignRead.model_validate(campaign)


@router.post(
    "/{campaign_id}/resume",
    response_model=CampaignRead,
    responses={409: {"description": "The campaign is not paused."}},
)
async def resume_campaign(
    campaign_id: int, session: SessionDep, principal: EditorDep
) -> CampaignRead:
    """Resume a paused campaign with the deliveries not yet sent."""
    campaign = await service.resume(
        session, organization_id=principal.organization_id, campaign_id=campaign_id
    )
    return CampaignRead.model_validate(campaign)


@router.get("/{campaign_id}/deliveries", response_model=Page[DeliveryRead])
async def list_deliveries(
    campaign_id: int,
    session: SessionDep,
    principal: ViewerDep,
    signer: SignerDep,
    status: DeliveryStatusQuery = None,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
) -> Page[DeliveryRead]:
    """List the campaign's deliveries (one per amplifier in the snapshot)."""
    rows, next_cursor = await service.list_deliveries(
        session,
        organization_id=principal.organization_id,
        campaign_id=campaign_id,
        status=status,
        signer=signer,
        limit=limit,
        cursor=cursor,
    )
    items = [
        DeliveryRead.model_validate(
            {
                **{c: getattr(d, c) for c in DeliveryRead.model_fields if c != "email"},
                "email": email,
            }
        )
        for d, email in rows
    ]
    return Page[DeliveryRead](items=items, next_cursor=next_cursor)


@router.get("/{campaign_id}/preview", response_class=HTMLResponse)
async def preview_campaign(
    campaign_id: int,
    session: SessionDep,
    principal: ViewerDep,
    settings: SettingsDep,
    signer: SignerDep,
    amplifier_id: int | None = None,
    locale: Annotated[
        str | None,
        Query(
            min_length=2,
            max_length=i18n.MAX_TAG_LENGTH,
            description="Show it in this language (e.g. `de`, `pt-BR`) instead of the amplifier's.",
        ),
    ] = None,
    variant: Annotated[
        int | None,
        Query(
            ge=0,
            le=MAX_VARIANTS,
            description="Show this copy variant of every message that has it (0: the base "
            "text), with share buttons prefilled with it; by default the amplifier's own.",
        ),
    ] = None,
) -> HTMLResponse:
    """The digest as this amplifier gets it (a sample amplifier when none is given)."""
    if locale is not None:
        try:
            locale = i18n.normalize_tag(locale)
        except ValueError as error:
            raise InvalidInput(
                f"Unknown language tag {locale!r}.",
                errors=[{"loc": ["query", "locale"], "msg": str(error)}],
            ) from None
    html = await preview_service.preview_html(
        session,
        organization_id=principal.organization_id,
        campaign_id=campaign_id,
        amplifier_id=amplifier_id,
        public_url=settings.public_url,
        signer=signer,
        locale=locale,
        variant=variant,
    )
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})
