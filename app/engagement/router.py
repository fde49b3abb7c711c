from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from app.core.db import utcnow
from app.core.deps import SessionDep, SignerDep, ViewerDep
from app.core.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery, decode_cursor, encode_cursor
from app.engagement import service
from app.engagement.schemas import Engagement, Interval, TagEngagementList
from app.stats.query import (
    CACHED,
    MomentQuery,
    ensure_ordered,
    json_answer,
    parse_moment,
    period_end,
    period_start,
)
from app.stats.service import zone

router = APIRouter(prefix="/api/v1/engagement", tags=["engagement"])

TagQuery = Annotated[
    str | None, Query(max_length=100, description="Only amplifiers with this tag.")
]
ZoneQuery = Annotated[str, Query(max_length=64, description="IANA time zone of the periods.")]


@router.get("", response_model=Engagement, responses=CACHED)
async def get_engagement(
    request: Request,
    session: SessionDep,
    principal: ViewerDep,
    interval: Interval = "month",
    since: MomentQuery = None,
    until: MomentQuery = None,
    tag: TagQuery = None,
    tz: ZoneQuery = "UTC",
) -> Response:
    """The engagement index (sharers / reached) and its parts per week or month."""
    local = zone(tz)
    end = period_end(parse_moment(until, "until"), local) or utcnow()
    start = period_start(parse_moment(since, "since"), local) or service.default_since(
        end, interval, local
    )
    answer = await service.over_time(
        session,
        organization_id=principal.organization_id,
        interval=interval,
        since=start,
        until=end,
        tag=tag,
        tz=local,
    )
    return json_answer(request, answer)


@router.get("/tags", response_model=TagEngagementList, responses=CACHED)
async def list_engagement_by_tag(
    request: Request,
    session: SessionDep,
    principal: ViewerDep,
    signer: SignerDep,
    since: MomentQuery = None,
    until: MomentQuery = None,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
) -> Response:
    """Each tag (team) with its engagement from `since` (default: 30 days ago) to `until`."""
    end = period_end(parse_moment(until, "until"), zone("UTC")) or utcnow()
    start = period_start(parse_moment(since, "since"), zone("UTC")) or end - timedelta(days=30)
    ensure_ordered(start, end)
    after = decode_cursor(signer, cursor, "engagement-tags")
    tags = await service.by_tag(
        session, organization_id=principal.organization_id, since=start, until=end
    )
    if isinstance(after, str):
        tags = [t for t in tags if t.tag > after]
    page, rest = tags[:limit], tags[limit:]
    next_cursor = encode_cursor(signer, page[-1].tag, "engagement-tags") if rest else None
    return json_answer(request, TagEngagementList(items=page, next_cursor=next_cursor))
