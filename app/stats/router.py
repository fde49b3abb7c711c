import asyncio
import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request, Response
from fastapi.responses import StreamingResponse

from app.core.deps import EditorDep, SessionDep, SignerDep, ViewerDep
from app.core.errors import InvalidInput, NotFound
from app.core.pagination import (
    DEFAULT_LIMIT,
    CursorQuery,
    LimitQuery,
    decode_cursor,
    encode_cursor,
)
from app.core.schemas import NETWORKS
from app.stats import cpc, service
from app.stats.answers import cached, campaign_stats_body, get_answers
from app.stats.caching import conditional, etag_of
from app.stats.query import (
    CACHED,
    MomentQuery,
    ensure_ordered,
    json_answer,
    parse_moment,
    period_end,
    period_start,
)
from app.stats.schemas import (
    AmplifierStats,
    CampaignAmplifierPage,
    CampaignAmplifierStats,
    CampaignStats,
    CpcIn,
    CpcRead,
    Interval,
    LeaderboardPage,
    MessageStats,
    Metric,
    Timeseries,
)

router = APIRouter(prefix="/api/v1", tags=["stats"])

KEEP_ALIVE_SECONDS = 15
STREAM_CHECK_SECONDS = 1.0
# Before OpenAPI 3.2 the `schema` of an event stream describes each event.
STATS_EVENT: dict[str, Any] = {
    "type": "object",
    "required": ["data"],
    "properties": {
        "event": {"type": "string", "enum": ["stats"]},
        "id": {"type": "string", "description": "The stats' ETag (send as `Last-Event-ID`)."},
        "data": {"type": "string", "description": "The campaign stats (JSON)."},
    },
}


# --- campaign -------------------------------------------------------------------------------


@router.get(
    "/campaigns/{campaign_id}/stats",
    operation_id="get_campaign_stats",
    response_model=CampaignStats,
    responses=CACHED,
)
async def campaign_stats(
    campaign_id: int, request: Request, session: SessionDep, principal: ViewerDep
) -> Response:
    """Totals, by network and by message, for dashboards: poll with `If-None-Match`."""
    body = await campaign_stats_body(
        get_answers(request), session, principal.organization_id, campaign_id
    )
    return conditional(request, body, "application/json")


@router.get(
    "/campaigns/{campaign_id}/stats/amplifiers",
    operation_id="list_campaign_amplifier_stats",
    response_model=CampaignAmplifierPage,
    responses=CACHED,
)
async def campaign_amplifier_stats(
    campaign_id: int,
    request: Request,
    session: SessionDep,
    principal: ViewerDep,
    signer: SignerDep,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
) -> Response:
    """Every amplifier of the campaign with their numbers and points, best first."""
    purpose = f"stats.amplifiers.{campaign_id}"
    offset = _offset(decode_cursor(signer, cursor, purpose))

    async def compute() -> bytes:
        items = await service.campaign_amplifiers(
            session,
            organization_id=principal.organization_id,
            campaign_id=campaign_id,
            offset=offset,
            limit=limit + 1,
        )
        more = len(items) > limit
        next_cursor = encode_cursor(signer, offset + limit, purpose) if more else None
        page = CampaignAmplifierPage(items=items[:limit], next_cursor=next_cursor)
        return page.model_dump_json().encode()

    question = ("amplifiers", offset, limit)
    body = await cached(
        get_answers(request), session, principal.organization_id, campaign_id, question, compute
    )
    return conditional(request, body, "application/json")


def _offset(value: Any) -> int:
    if value is None:
        return 0
    if not isinstance(value, int) or value < 0:
        raise InvalidInput("The cursor is not valid for this list.")
    return value


@router.get(
    "/campaigns/{campaign_id}/stats/timeseries",
    operation_id="get_campaign_timeseries",
    response_model=Timeseries,
    responses=CACHED,
)
async def campaign_timeseries(
    campaign_id: int,
    request: Request,
    session: SessionDep,
    principal: ViewerDep,
    interval: Interval = "hour",
    metric: Metric = "visits",
    tz: Annotated[str, Query(max_length=64, description="IANA time zone.")] = "UTC",
    since: MomentQuery = None,
    until: MomentQuery = None,
) -> Response:
    """One point per hour or local day, empty buckets included as 0."""
    zone = service.zone(tz)
    answer = await service.timeseries(
        session,
        organization_id=principal.organization_id,
        campaign_id=campaign_id,
        interval=interval,
        metric=metric,
        tz=zone,
        since=period_start(parse_moment(since, "since"), zone),
        until=period_end(parse_moment(until, "until"), zone),
    )
    return json_answer(request, answer)


@router.get(
    "/campaigns/{campaign_id}/stats.csv",
    operation_id="export_campaign_stats_csv",
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}, **CACHED},
    response_class=Response,
)
async def campaign_stats_csv(
    campaign_id: int, request: Request, session: SessionDep, principal: ViewerDep
) -> Response:
    """Per-amplifier rows as CSV (spreadsheet-safe), in the order of the amplifier stats."""

    async def compute() -> bytes:
        rows = await service.campaign_amplifiers(
            session,
            organization_id=principal.organization_id,
            campaign_id=campaign_id,
            offset=0,
            limit=None,
        )
        return _csv(rows).encode()

    body = await cached(
        get_answers(request), session, principal.organization_id, campaign_id, ("csv",), compute
    )
    return conditional(
        request,
        body,
        "text/csv; charset=utf-8",
        **{"Content-Disposition": f'attachment; filename="campaign-{campaign_id}-amplifiers.csv"'},
    )


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: object) -> object:
    """Text a spreadsheet would run as a formula is quoted with a leading apostrophe."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def _csv(rows: list[CampaignAmplifierStats]) -> str:
    networks = list(rows[0].by_network) if rows else []
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    header = ["amplifier_id", "email", "name", "points", "share_clicks", "visits"]
    header += ["unique_visitors", "bot_clicks"]
    for network in networks:
        header += [f"{network}_share_clicks", f"{network}_visits", f"{network}_unique_visitors"]
    # Added after the click columns, so that spreadsheets reading those by position still work.
    header += ["conversions", "conversion_value", *(f"{n}_conversions" for n in networks)]
    writer.writerow(header)
    for row in rows:
        values: list[object] = [row.amplifier_id, row.email, row.name or "", row.points]
        values += [row.share_clicks, row.visits, row.unique_visitors, row.bot_clicks]
        for network in networks:
            counts = row.by_network[network]
            values += [counts.share_clicks, counts.visits, counts.unique_visitors]
        values += [row.conversions, row.conversion_value]
        values += [row.by_network[network].conversions for network in networks]
        writer.writerow([_cell(v) for v in values])
    return out.getvalue()


@router.get(
    "/campaigns/{campaign_id}/stats/stream",
    operation_id="stream_campaign_stats",
    responses={200: {"content": {"text/event-stream": {"schema": STATS_EVENT}}}},
    response_class=StreamingResponse,
)
async def campaign_stats_stream(
    campaign_id: int,
    request: Request,
    session: SessionDep,
    principal: ViewerDep,
    max_seconds: Annotated[
        int, Query(ge=1, le=86_400, description="Close the stream after this long.")
    ] = 3600,
) -> StreamingResponse:
    """Server-Sent Events: the campaign stats now and whenever they change (at most 1/s)."""
    answers = get_answers(request)
    first = await campaign_stats_body(answers, session, principal.organization_id, campaign_id)
    maker = request.app.state.sessionmaker
    seen = request.headers.get("last-event-id")

    async def latest() -> bytes:
        async with maker() as fresh:
            return await campaign_stats_body(answers, fresh, principal.organization_id, campaign_id)

    async def events() -> AsyncIterator[bytes]:
        body = first
        etag = etag_of(body)
        if seen != etag:
            yield _event(etag, body)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max_seconds
        quiet = 0.0
        while loop.time() < deadline and not await request.is_disconnected():
            await asyncio.sleep(STREAM_CHECK_SECONDS)
            try:
                body = await latest()
            except NotFound:  # the campaign was deleted
                return
            if etag_of(body) != etag:
                etag = etag_of(body)
                quiet = 0.0
                yield _event(etag, body)
            else:
                quiet += STREAM_CHECK_SECONDS
                if quiet >= KEEP_ALIVE_SECONDS:
                    quiet = 0.0
                    yield b": keep-alive\n\n"

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _event(etag: str, body: bytes) -> bytes:
    return b"event: stats\nid: " + etag.encode() + b"\ndata: " + body + b"\n\n"


# --- message, amplifier, leaderboard --------------------------------------------------------


@router.get(
    "/messages/{message_id}/stats",
    operation_id="get_message_stats",
    response_model=MessageStats,
    responses=CACHED,
)
async def message_stats(
    message_id: int, request: Request, session: SessionDep, principal: ViewerDep
) -> Response:
    """One message's numbers, by network."""
    answer = await service.message_stats(
        session, organization_id=principal.organization_id, message_id=message_id
    )
    return json_answer(request, answer)


@router.get(
    "/amplifiers/{amplifier_id}/stats",
    operation_id="get_amplifier_stats",
    response_model=AmplifierStats,
    responses=CACHED,
)
async def amplifier_stats(
    amplifier_id: int, request: Request, session: SessionDep, principal: ViewerDep
) -> Response:
    """One amplifier's totals across campaigns, by network and by campaign."""
    answer = await service.amplifier_stats(
        session, organization_id=principal.organization_id, amplifier_id=amplifier_id
    )
    return json_answer(request, answer)


@router.get(
    "/leaderboard", operation_id="get_leaderboard", response_model=LeaderboardPage, responses=CACHED
)
async def leaderboard(
    request: Request,
    session: SessionDep,
    principal: ViewerDep,
    signer: SignerDep,
    since: MomentQuery = None,
    until: MomentQuery = None,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
) -> Response:
    """Amplifiers ranked by points earned on the UTC days from `since` to `until` (inclusive)."""
    first, last = _utc_day(parse_moment(since, "since")), _utc_day(parse_moment(until, "until"))
    if first is not None and last is not None:
        ensure_ordered(first, last)
    purpose = f"leaderboard.{first}.{last}"
    offset = _offset(decode_cursor(signer, cursor, purpose))
    items = await service.leaderboard(
        session,
        organization_id=principal.organization_id,
        since=first,
        until=last,
        offset=offset,
        limit=limit + 1,
    )
    next_cursor = encode_cursor(signer, offset + limit, purpose) if len(items) > limit else None
    return json_answer(request, LeaderboardPage(items=items[:limit], next_cursor=next_cursor))


def _utc_day(value: datetime | date | None) -> date | None:
    if isinstance(value, datetime):
        return value.astimezone(UTC).date()
    return value


# --- cost per click ---------------------------------------------------------------------------


def _rates(table: dict[str, cpc.Cpc]) -> dict[str, CpcRead]:
    return {n: CpcRead(amount=float(r.amount), currency=r.currency) for n, r in table.items()}


@router.get("/settings/cpc", response_model=dict[str, CpcRead])
async def get_cpc(session: SessionDep, principal: ViewerDep) -> dict[str, CpcRead]:
    """Cost per click by network (the organization's, else the documented defaults)."""
    return _rates(await cpc.rates(session, organization_id=principal.organization_id))


@router.put("/settings/cpc", operation_id="set_cpc", response_model=dict[str, CpcRead])
async def put_cpc(
    session: SessionDep,
    principal: EditorDep,
    data: Annotated[
        dict[str, CpcIn | None], Body(json_schema_extra={"propertyNames": {"enum": list(NETWORKS)}})
    ],
) -> dict[str, CpcRead]:
    """Set the networks given (`null` resets one to its default); one currency for all."""
    unknown = sorted(set(data) - set(NETWORKS))
    if unknown:
        raise InvalidInput(
            f"Unknown network(s): {', '.join(unknown)}.",
            errors=[{"loc": ["body", n], "msg": "unknown network"} for n in unknown],
        )
    changes = {
        network: None
        if rate is None
        else cpc.Cpc(Decimal(str(rate.amount)).quantize(Decimal("0.0001")), rate.currency)
        for network, rate in data.items()
    }
    table = await cpc.update(session, organization_id=principal.organization_id, changes=changes)
    return _rates(table)
