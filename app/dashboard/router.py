"""The built-in dashboard: `/dashboard` (one static page), its script and style, and the charts
it shows as server-rendered SVG.

The page holds no data and no secret: it asks for an API key, keeps it in the tab's
sessionStorage and sends it as `Authorization: Bearer` on every fetch, to the API and to the
chart routes here, which read through the same viewer guard and statistics services as the API
(another organization's campaign is a 404) and answer with an ETag like the stats do.
"""

import hashlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import jinja2
from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse

from app.campaigns import service as campaigns
from app.core.db import utcnow
from app.core.deps import SessionDep, ViewerDep
from app.core.errors import NotFound
from app.dashboard import charts
from app.engagement import service as engagement
from app.engagement.schemas import EngagementPoint
from app.models import Campaign
from app.stats import answers
from app.stats import service as stats
from app.stats.caching import conditional
from app.stats.schemas import CampaignStats, Interval, Metric, Timeseries

router = APIRouter(tags=["dashboard"])

HERE = Path(__file__).parent
SVG = "image/svg+xml"
# Up to this many local days the time series is drawn per hour, beyond it per day.
AUTO_HOURLY_DAYS = 7

# The page runs only its own script and style; the key never leaves in a URL or a referrer.
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": PAGE_CSP,
    "Cross-Origin-Opener-Policy": "same-origin",
}
PAGE_HEADERS = {"Cache-Control": "no-store", **SECURITY_HEADERS}
# A chart opened on its own must not run anything either.
SVG_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'self'",
}

NETWORK_NAMES = {
    "linkedin": "LinkedIn",
    "x": "X",
    "facebook": "Facebook",
    "email": "Email",
    "whatsapp": "WhatsApp",
    "telegram": "Telegram",
    "reddit": "Reddit",
    "xing": "XING",
    "bluesky": "Bluesky",
    "threads": "Threads",
}
METRIC_NAMES = {
    "visits": "Visits",
    "share_clicks": "Share clicks",
    "unique_visitors": "Unique visitors",
    "bot_clicks": "Bot clicks",
    "conversions": "Conversions",
    "conversion_value": "Conversion value",
}
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(frozen=True, slots=True)
class StaticFile:
    body: bytes
    media_type: str


_MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": SVG,
}
# Read once: a fixed set of files, so no request path ever reaches the file system.
STATIC = {
    path.name: StaticFile(path.read_bytes(), _MEDIA_TYPES[path.suffix])
    for path in sorted((HERE / "static").iterdir())
    if path.suffix in _MEDIA_TYPES
}
_VERSION = hashlib.sha256(b"".join(f.body for f in STATIC.values())).hexdigest()[:12]
_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
PAGE = _ENV.get_template("dashboard.html").render(version=_VERSION, poll_seconds=5)

_SVG_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The chart (SVG with a `<title>` and a `<desc>`), with an `ETag`.",
        "content": {SVG: {"schema": {"type": "string"}}},
    },
    304: {"description": "Not modified: `If-None-Match` holds the current `ETag`."},
}

TzQuery = Annotated[
    str, Query(max_length=64, description="IANA time zone for the time axis (the browser's).")
]
AutoInterval = Literal["auto", "hour", "day"]


# --- page and static files ----------------------------------------------------------------------


@router.get("/dashboard", operation_id="get_dashboard", response_class=HTMLResponse)
async def dashboard() -> HTMLResponse:
    """The built-in dashboard (sign in with a viewer API key)."""
    return HTMLResponse(PAGE, headers=PAGE_HEADERS)


@router.get(
    "/dashboard/static/{name}",
    operation_id="get_dashboard_file",
    response_class=Response,
    responses={
        200: {"description": "The dashboard's script, style sheet or icon."},
        304: {"description": "Not modified."},
        404: {"description": "No such file."},
    },
)
async def static_file(name: str, request: Request) -> Response:
    """A static file of the dashboard page."""
    found = STATIC.get(name)
    if found is None:
        raise NotFound(f"The dashboard has no file {name!r}.")
    response = conditional(request, found.body, found.media_type, **SECURITY_HEADERS)
    response.headers["Cache-Control"] = "no-cache"
    return response


# --- charts ---------------------------------------------------------------------------------------


def _svg(request: Request, markup: str) -> Response:
    return conditional(request, markup.encode(), SVG, **SVG_HEADERS)


async def _campaign(
    session: SessionDep, principal: ViewerDep, campaign_id: int, *, messages: bool = False
) -> Campaign:
    """The caller's campaign, or a 404 like the API's (also for another organization's)."""
    return await campaigns.get(
        session,
        organization_id=principal.organization_id,
        campaign_id=campaign_id,
        with_messages=messages,
    )


async def _stats(
    request: Request, session: SessionDep, principal: ViewerDep, campaign_id: int
) -> CampaignStats:
    """The API's own answer, from its cache while the campaign's numbers are unchanged."""
    return await answers.campaign_stats(
        answers.get_answers(request),
        session,
        organization_id=principal.organization_id,
        campaign_id=campaign_id,
    )


def moment_label(iso: str, interval: Interval) -> str:
    """`20 Nov 09:00` (hour) or `Fri 20 Nov` (day), in the zone the moment is written in."""
    moment = datetime.fromisoformat(iso)
    day = f"{moment.day} {MONTHS[moment.month - 1]}"
    if interval == "day":
        return f"{moment:%a} {day}"
    return f"{day} {moment:%H:%M}"


def month_label(iso: str) -> str:
    """`Nov 2026`."""
    moment = datetime.fromisoformat(iso)
    return f"{MONTHS[moment.month - 1]} {moment.year}"


def since_first_reached(points: list[EngagementPoint]) -> list[EngagementPoint]:
    """The periods from the first in which anyone was reached or shared: the months before the
    program started would only draw a row of zeros."""
    for i, point in enumerate(points):
        if point.reached or point.sharers:
            return points[i:]
    return []


@router.get(
    "/dashboard/charts/engagement.svg",
    operation_id="get_engagement_chart",
    response_class=Response,
    responses=_SVG_RESPONSES,
)
async def engagement_chart(
    request: Request, session: SessionDep, principal: ViewerDep, tz: TzQuery = "UTC"
) -> Response:
    """The engagement index (sharers / reached) per month over the last 12 months, as a line
    from the first month anyone was reached."""
    zone = stats.zone(tz)
    until = utcnow()
    answer = await engagement.over_time(
        session,
        organization_id=principal.organization_id,
        interval="month",
        since=engagement.default_since(until, "month", zone),
        until=until,
        tag=None,
        tz=zone,
    )
    points = [(month_label(p.t), p.engagement_index) for p in since_first_reached(answer.points)]
    title = f"Engagement index per month ({zone.key})"
    markup = charts.line_chart(points, title=title, series="Engagement index", percent_scale=True)
    return _svg(request, markup)


@router.get(
    "/dashboard/charts/campaigns/{campaign_id}/visits.svg",
    operation_id="get_visits_chart",
    response_class=Response,
    responses=_SVG_RESPONSES,
)
async def visits_chart(
    campaign_id: int,
    request: Request,
    session: SessionDep,
    principal: ViewerDep,
    tz: TzQuery = "UTC",
    interval: AutoInterval = "auto",
    metric: Metric = "visits",
) -> Response:
    """A campaign's time series as an area chart (`auto`: per hour up to a week, then per day)."""
    campaign = await _campaign(session, principal, campaign_id)
    zone = stats.zone(tz)

    async def series(every: Interval) -> Timeseries:
        return await stats.timeseries(
            session,
            organization_id=principal.organization_id,
            campaign_id=campaign.id,
            interval=every,
            metric=metric,
            tz=zone,
            since=None,
            until=None,
        )

    if interval == "auto":
        answer = await series("day")
        if len(answer.points) <= AUTO_HOURLY_DAYS:
            answer = await series("hour")
    else:
        answer = await series(interval)
    points = [(moment_label(p.t, answer.interval), p.value) for p in answer.points]
    name = METRIC_NAMES[metric]
    title = f"{campaign.name}: {name.lower()} per {answer.interval} ({zone.key})"
    return _svg(request, charts.line_chart(points, title=title, series=name))


@router.get(
    "/dashboard/charts/campaigns/{campaign_id}/networks.svg",
    operation_id="get_networks_chart",
    response_class=Response,
    responses=_SVG_RESPONSES,
)
async def networks_chart(
    campaign_id: int, request: Request, session: SessionDep, principal: ViewerDep
) -> Response:
    """Share clicks and visits per network, as horizontal bars."""
    campaign = await _campaign(session, principal, campaign_id)
    answer = await _stats(request, session, principal, campaign.id)
    rows = [
        (NETWORK_NAMES.get(network, network), (counts.share_clicks, counts.visits))
        for network, counts in answer.by_network.items()
    ]
    return _svg(
        request,
        charts.bar_chart(
            rows, title=f"{campaign.name}: by network", series=("Share clicks", "Visits")
        ),
    )


@router.get(
    "/dashboard/charts/campaigns/{campaign_id}/messages.svg",
    operation_id="get_messages_chart",
    response_class=Response,
    responses=_SVG_RESPONSES,
)
async def messages_chart(
    campaign_id: int, request: Request, session: SessionDep, principal: ViewerDep
) -> Response:
    """Share clicks and visits per message, as horizontal bars labelled with the text."""
    campaign = await _campaign(session, principal, campaign_id, messages=True)
    answer = await _stats(request, session, principal, campaign.id)
    texts = {message.id: message.text for message in campaign.messages}
    rows = [
        (f"#{m.position + 1} {texts.get(m.message_id, '')}", (m.share_clicks, m.visits))
        for m in answer.by_message
    ]
    return _svg(
        request,
        charts.bar_chart(
            rows, title=f"{campaign.name}: by message", series=("Share clicks", "Visits")
        ),
    )


def funnel_stages(answer: CampaignStats) -> list[tuple[str, float, str]]:
    """Sent → sharers → share clicks → visits, each with how it relates to the step before."""
    return [
        ("Sent", answer.sent, f"of {answer.recipients:,} recipients"),
        (
            "Sharers",
            answer.sharers,
            f"{answer.share_rate:.0%} of sent" if answer.sent else "",
        ),
        (
            "Share clicks",
            answer.share_clicks,
            f"{answer.share_clicks / answer.sharers:.1f} per sharer" if answer.sharers else "",
        ),
        (
            "Visits",
            answer.visits,
            f"{answer.visits / answer.share_clicks:.1f} per share click"
            if answer.share_clicks
            else "",
        ),
    ]


@router.get(
    "/dashboard/charts/campaigns/{campaign_id}/funnel.svg",
    operation_id="get_funnel_chart",
    response_class=Response,
    responses=_SVG_RESPONSES,
)
async def funnel_chart(
    campaign_id: int, request: Request, session: SessionDep, principal: ViewerDep
) -> Response:
    """The campaign's funnel: sent → sharers → share clicks → visits."""
    campaign = await _campaign(session, principal, campaign_id)
    answer = await _stats(request, session, principal, campaign.id)
    markup = charts.funnel_chart(funnel_stages(answer), title=f"{campaign.name}: funnel")
    return _svg(request, markup)
