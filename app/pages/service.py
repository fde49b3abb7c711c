"""What the amplifier pages show and do, reached by a signed token instead of an API key."""

from datetime import date, timedelta
from types import SimpleNamespace
from typing import Any, TypedDict

from markupsafe import Markup
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from app import i18n
from app.amplifiers import service as amplifiers
from app.core.errors import NotFound
from app.core.public_links import (
    DIGEST,
    IMPACT,
    UNSUBSCRIBE,
    PublicPage,
    impact_url,
    preferences_url,
    read_page_token,
    unsubscribe_url,
)
from app.core.security import Signer
from app.dashboard import charts
from app.models import (
    Amplifier,
    AmplifierDay,
    AmplifierStatus,
    Campaign,
    Delivery,
    Organization,
)
from app.sending.preview import campaign_content, delivery_links
from app.sending.render import digest_context, greeting
from app.stats import impact as scoreboard
from app.stats import service as stats


class PageNotFound(NotFound):
    """A bad or foreign token, or what it names is gone: the same answer for both."""


class Subscriber(TypedDict):
    """Who an unsubscribe token names, as its pages show them."""

    amplifier_id: int
    email_masked: str
    organization_name: str
    locale: str


def mask_email(email: str) -> str:
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}"


async def web_version(
    session: AsyncSession, *, signer: Signer, public_url: str, token: str
) -> dict[str, Any]:
    """The template context of a digest's web version, with the delivery's own tracked links."""
    delivery_id = read_page_token(signer, DIGEST, token)
    delivery = await session.get(Delivery, delivery_id) if delivery_id is not None else None
    if delivery is None or delivery.amplifier_id is None:
        raise PageNotFound("No such digest.")
    campaign = await session.scalar(
        select(Campaign)
        .where(Campaign.id == delivery.campaign_id)
        .options(selectinload(Campaign.messages))
    )
    amplifier = await session.get(Amplifier, delivery.amplifier_id)
    if campaign is None or amplifier is None:
        raise PageNotFound("No such digest.")
    links = await delivery_links(session, delivery_id=delivery.id, public_url=public_url)
    shares = links.share_urls
    content = (await campaign_content(session, campaign)).localized(
        amplifier.locale, links.variants
    )
    with i18n.translating(amplifier.locale):
        hello = greeting(amplifier.name or "")
    return {
        **digest_context(
            content,
            list(dict.fromkeys(n for _, n in shares)),
            greeting=hello,
            email=amplifier.email,
            share_url=lambda message_id, network: shares[(message_id, network)],
            web_version_url="",
            unsubscribe_url=unsubscribe_url(public_url, signer, amplifier.id),
            preview=False,
            impact_url=impact_url(public_url, signer, amplifier.id),
            preferences_url=preferences_url(public_url, signer, amplifier.id),
        ),
        "locale": amplifier.locale,
    }


async def subscriber(session: AsyncSession, *, signer: Signer, token: str) -> Subscriber:
    amplifier_id = read_page_token(signer, UNSUBSCRIBE, token)
    if amplifier_id is None:
        raise PageNotFound("No such subscriber.")
    row = (
        await session.execute(
            select(Amplifier.email, Amplifier.locale, Organization.name)
            .join(Organization, Organization.id == Amplifier.organization_id)
            .where(Amplifier.id == amplifier_id)
        )
    ).first()
    if row is None:
        raise PageNotFound("No such subscriber.")
    return Subscriber(
        amplifier_id=amplifier_id,
        email_masked=mask_email(row.email),
        organization_name=row.name,
        locale=row.locale,
    )


async def unsubscribe_page(
    session: AsyncSession, *, signer: Signer, public_url: str, token: str
) -> dict[str, Any]:
    """The unsubscribe confirmation, which offers fewer mails first."""
    found = await subscriber(session, signer=signer, token=token)
    return {
        **found,
        "preferences_url": preferences_url(public_url, signer, found["amplifier_id"]),
    }


async def unsubscribe(session: AsyncSession, *, signer: Signer, token: str) -> Subscriber:
    """Unsubscribe whom the token names; unsubscribing again changes nothing."""
    found = await subscriber(session, signer=signer, token=token)
    await amplifiers.set_status(
        session, amplifier_id=found["amplifier_id"], status=AmplifierStatus.UNSUBSCRIBED
    )
    return found


async def amplifier_of_token(
    session: AsyncSession, signer: Signer, page: PublicPage, token: str
) -> tuple[Amplifier, Organization]:
    """The amplifier a token of `page` names, with its organization; PageNotFound otherwise."""
    amplifier_id = read_page_token(signer, page, token)
    row = (
        (
            await session.execute(
                select(Amplifier, Organization)
                .join(Organization, Organization.id == Amplifier.organization_id)
                .where(Amplifier.id == amplifier_id)
            )
        ).first()
        if amplifier_id is not None
        else None
    )
    if row is None:
        raise PageNotFound("No such amplifier.")
    return row.Amplifier, row.Organization


# --- my impact -------------------------------------------------------------------------------

VISITS_CHART_DAYS = 90
TOP = 10


async def impact(
    session: AsyncSession, *, signer: Signer, token: str, today: date
) -> dict[str, Any]:
    """The amplifier's own scoreboard: this month and all time, per campaign, visits by day."""
    amplifier, organization = await amplifier_of_token(session, signer, IMPACT, token)
    month = await scoreboard.board(
        session, organization_id=organization.id, since=today.replace(day=1)
    )
    ever = await scoreboard.board(session, organization_id=organization.id, since=None)
    totals = await stats.amplifier_stats(
        session, organization_id=organization.id, amplifier_id=amplifier.id
    )
    with i18n.translating(amplifier.locale):
        periods = (
            _period(i18n.gettext("This month"), month, amplifier.id),
            _period(i18n.gettext("All time"), ever, amplifier.id),
        )
        chart = await _visits_chart(session, amplifier=amplifier, today=today)
    return {
        "locale": amplifier.locale,
        "organization_name": organization.name,
        "month": periods[0],
        "all_time": periods[1],
        "campaigns": totals.by_campaign,
        "chart": chart,
        "leaderboard": (
            await _top(session, month, amplifier) if organization.public_leaderboard else None
        ),
        "updated": today,
    }


def _period(title: str, board: scoreboard.Board, amplifier_id: int) -> SimpleNamespace:
    score = board.of(amplifier_id)
    if score is None:
        return SimpleNamespace(
            title=title, points=0, rank=None, total=board.total, shares=0, visits=0
        )
    return SimpleNamespace(
        title=title,
        points=score.points,
        rank=score.rank,
        total=score.total,
        shares=score.shares,
        visits=score.visits,
    )


async def _top(
    session: AsyncSession, board: scoreboard.Board, amplifier: Amplifier
) -> list[SimpleNamespace]:
    leaders = board.entries[:TOP]
    known = await scoreboard.names(
        session,
        organization_id=amplifier.organization_id,
        amplifier_ids=[entry.amplifier_id for entry in leaders],
    )
    rows = []
    for entry in leaders:
        name, email = known.get(entry.amplifier_id, (None, ""))
        rows.append(
            SimpleNamespace(
                rank=board.scores[entry.amplifier_id].rank,
                name=name or mask_email(email),
                points=entry.points,
                me=entry.amplifier_id == amplifier.id,
            )
        )
    return rows


async def _visits_chart(
    session: AsyncSession, *, amplifier: Amplifier, today: date
) -> Markup | None:
    """Visits per UTC day over the last days, as SVG; None before the first visit."""
    first = today - timedelta(days=VISITS_CHART_DAYS - 1)
    rows = await session.execute(
        select(AmplifierDay.day, func.sum(AmplifierDay.visits))
        .where(
            AmplifierDay.organization_id == amplifier.organization_id,
            AmplifierDay.amplifier_id == amplifier.id,
            AmplifierDay.day >= first,
        )
        .group_by(AmplifierDay.day)
    )
    by_day = {day: int(visits or 0) for day, visits in rows.all()}
    if not any(by_day.values()):
        return None
    start = min(by_day)
    days = [start + timedelta(days=n) for n in range((today - start).days + 1)]
    points = [(i18n.format_day(day), by_day.get(day, 0)) for day in days]
    title = i18n.gettext("Visits over time")
    # The chart escapes every text it draws (app/dashboard/charts.py).
    return Markup(charts.line_chart(points, title=title, series=title))
