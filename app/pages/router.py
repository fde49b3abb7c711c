"""Amplifier pages without an API key: the web version of a digest and one-click unsubscribe."""

from pathlib import Path
from typing import Any

import jinja2
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from jinja2.sandbox import SandboxedEnvironment
from sqlalchemy import select, update
from sqlalchemy.orm import selectinload

from app.core.db import utcnow
from app.core.deps import SessionDep, SettingsDep, SignerDep
from app.models import Amplifier, AmplifierStatus, Campaign, Delivery, Organization
from app.pages.tokens import DIGEST, UNSUBSCRIBE, read_token, unsubscribe_url
from app.sending.preview import campaign_content, share_urls_of_delivery
from app.sending.render import digest_context

router = APIRouter(tags=["amplifier pages"], include_in_schema=True)

_ENV = SandboxedEnvironment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
# Pages carry capability tokens in their URL: never cache, never leak them as a referrer.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; img-src https: http: data:; "
    "style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
}


def page(template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    return HTMLResponse(
        _ENV.get_template(template).render(context), status_code=status_code, headers=PAGE_HEADERS
    )


def not_found() -> HTMLResponse:
    return page("not_found.html", status_code=404)


def mask_email(email: str) -> str:
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}"


@router.get("/a/{token}", response_class=HTMLResponse)
async def web_version(
    token: str, session: SessionDep, settings: SettingsDep, signer: SignerDep
) -> HTMLResponse:
    """The web version of an amplifier's digest, with the same tracked share links."""
    delivery_id = read_token(signer, DIGEST, token)
    delivery = await session.get(Delivery, delivery_id) if delivery_id is not None else None
    if delivery is None or delivery.amplifier_id is None:
        return not_found()
    campaign = await session.scalar(
        select(Campaign)
        .where(Campaign.id == delivery.campaign_id)
        .options(selectinload(Campaign.messages))
    )
    amplifier = await session.get(Amplifier, delivery.amplifier_id)
    if campaign is None or amplifier is None:
        return not_found()
    shares = await share_urls_of_delivery(
        session, delivery_id=delivery.id, public_url=settings.public_url
    )
    context = digest_context(
        await campaign_content(session, campaign),
        list(dict.fromkeys(n for _, n in shares)),
        name=amplifier.name or "",
        email=amplifier.email,
        share_url=lambda message_id, network: shares[(message_id, network)],
        web_version_url="",
        unsubscribe_url=unsubscribe_url(settings.public_url, signer, amplifier.id),
        preview=False,
    )
    return page("digest.html", **context)


async def _amplifier_for(
    session: SessionDep, signer: SignerDep, token: str
) -> tuple[Amplifier, str] | None:
    amplifier_id = read_token(signer, UNSUBSCRIBE, token)
    if amplifier_id is None:
        return None
    row = (
        await session.execute(
            select(Amplifier, Organization.name)
            .join(Organization, Organization.id == Amplifier.organization_id)
            .where(Amplifier.id == amplifier_id)
        )
    ).first()
    return (row[0], row[1]) if row else None


@router.get("/u/{token}", response_class=HTMLResponse)
async def unsubscribe_page(
    token: str, request: Request, session: SessionDep, signer: SignerDep
) -> HTMLResponse:
    """Confirmation page; a GET never unsubscribes (mail scanners follow links)."""
    found = await _amplifier_for(session, signer, token)
    if found is None:
        return not_found()
    amplifier, org_name = found
    return page(
        "unsubscribe_confirm.html",
        organization_name=org_name,
        email_masked=mask_email(amplifier.email),
        action_url=str(request.url.path),
    )


@router.post("/u/{token}", response_class=HTMLResponse)
async def unsubscribe(token: str, session: SessionDep, signer: SignerDep) -> HTMLResponse:
    """One-click unsubscribe (RFC 8058): idempotent, no cookies, answers 200."""
    found = await _amplifier_for(session, signer, token)
    if found is None:
        return not_found()
    amplifier, org_name = found
    if amplifier.status != AmplifierStatus.UNSUBSCRIBED:
        await session.execute(
            update(Amplifier)
            .where(Amplifier.id == amplifier.id)
            .values(status=AmplifierStatus.UNSUBSCRIBED, updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )
    return page(
        "unsubscribed.html", organization_name=org_name, email_masked=mask_email(amplifier.email)
    )
