"""Amplifier pages without an API key: the web version of a digest and one-click unsubscribe."""

from collections.abc import Awaitable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import jinja2
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from jinja2.sandbox import SandboxedEnvironment

from app import i18n
from app.core.db import utcnow
from app.core.deps import ClockDep, SessionDep, SettingsDep, SignerDep
from app.core.errors import PROBLEM_JSON
from app.core.openapi import PROBLEM_REF
from app.pages import preferences, service

router = APIRouter(tags=["amplifier pages"], include_in_schema=True)

_ENV = SandboxedEnvironment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    extensions=["jinja2.ext.i18n"],
)
i18n.install(_ENV)
# Pages carry capability tokens in their URL: never cache, never leak them as a referrer.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; img-src https: http: data:; "
    "style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
}


HTML_404: dict[int | str, dict[str, Any]] = {
    404: {
        "description": "The token is not valid (tampered, or its amplifier is gone): an HTML page.",
        "content": {"text/html": {"schema": {"type": "string"}}},
    }
}


def page(
    template: str, status_code: int = 200, *, locale: str | None = None, **context: Any
) -> HTMLResponse:
    """The page in the amplifier's language (English when the token names no one)."""
    with i18n.translating(locale or i18n.DEFAULT_LOCALE) as language:
        body = _ENV.get_template(template).render(context)
    headers = {**PAGE_HEADERS, "Content-Language": language}
    return HTMLResponse(body, status_code=status_code, headers=headers)


def not_found() -> HTMLResponse:
    return page("not_found.html", status_code=404)


async def render(
    template: str, context: Awaitable[Mapping[str, Any]], **extra: Any
) -> HTMLResponse:
    """The page, or the not-found page whatever is wrong with its token."""
    try:
        values = await context
    except service.PageNotFound:
        return not_found()
    return page(template, **values, **extra)


@router.get(
    "/a/{token}", operation_id="get_web_digest", response_class=HTMLResponse, responses=HTML_404
)
async def web_version(
    token: str, session: SessionDep, settings: SettingsDep, signer: SignerDep
) -> HTMLResponse:
    """The web version of an amplifier's digest, with the same tracked share links."""
    context = service.web_version(
        session, signer=signer, public_url=settings.public_url, token=token
    )
    return await render("digest.html", context)


@router.get(
    "/u/{token}",
    operation_id="get_unsubscribe_page",
    response_class=HTMLResponse,
    responses=HTML_404,
)
async def unsubscribe_page(
    token: str, request: Request, session: SessionDep, settings: SettingsDep, signer: SignerDep
) -> HTMLResponse:
    """Confirmation page, offering fewer mails first; a GET never unsubscribes (mail scanners
    follow links)."""
    subscriber = service.unsubscribe_page(
        session, signer=signer, public_url=settings.public_url, token=token
    )
    return await render("unsubscribe_confirm.html", subscriber, action_url=str(request.url.path))


@router.post(
    "/u/{token}",
    operation_id="unsubscribe_amplifier",
    response_class=HTMLResponse,
    responses=HTML_404,
)
async def unsubscribe(token: str, session: SessionDep, signer: SignerDep) -> HTMLResponse:
    """One-click unsubscribe (RFC 8058): idempotent, no cookies, answers 200."""
    return await render(
        "unsubscribed.html", service.unsubscribe(session, signer=signer, token=token)
    )


@router.get(
    "/m/{token}", operation_id="get_impact_page", response_class=HTMLResponse, responses=HTML_404
)
async def my_impact(token: str, session: SessionDep, signer: SignerDep) -> HTMLResponse:
    """The amplifier's own impact: points and rank, per campaign, visits over time."""
    context = service.impact(session, signer=signer, token=token, today=utcnow().date())
    return await render("impact.html", context)


PREFERENCE_FORM = {
    "required": True,
    "content": {
        "application/x-www-form-urlencoded": {
            "schema": {
                "type": "object",
                "properties": {
                    "form_token": {"type": "string", "description": "From the page's form."},
                    "frequency": {"type": "string", "enum": ["each", "daily", "weekly"]},
                    "pause": {"type": "string", "enum": ["keep", "resume", "2w", "1m", "date"]},
                    "pause_until": {"type": "string", "format": "date"},
                    "networks": {"type": "array", "items": {"type": "string"}},
                    "locale": {"type": "string"},
                },
                "required": ["form_token"],
            }
        }
    },
}
PREFERENCE_ANSWERS: dict[int | str, dict[str, Any]] = {
    **HTML_404,
    400: {
        "description": "The form did not come from this page (its form token is missing or "
        "another's): an HTML page, nothing changed.",
        "content": {"text/html": {"schema": {"type": "string"}}},
    },
    422: {
        "description": "A choice the form does not offer: the page again, saying what to fix "
        "(a token with control characters: a problem).",
        "content": {
            "text/html": {"schema": {"type": "string"}},
            PROBLEM_JSON: {"schema": PROBLEM_REF},
        },
    },
}


@router.get(
    "/p/{token}",
    operation_id="get_preferences_page",
    response_class=HTMLResponse,
    responses=HTML_404,
)
async def preferences_page(
    token: str, session: SessionDep, settings: SettingsDep, signer: SignerDep, clock: ClockDep
) -> HTMLResponse:
    """How often the amplifier hears from us, pauses, networks, language (a form)."""
    context = preferences.page(
        session, signer=signer, public_url=settings.public_url, token=token, now=clock()
    )
    return await render("preferences.html", context)


@router.post(
    "/p/{token}",
    operation_id="update_preferences",
    response_class=HTMLResponse,
    responses=PREFERENCE_ANSWERS,
    openapi_extra={"requestBody": PREFERENCE_FORM},
)
async def save_preferences(
    token: str,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    signer: SignerDep,
    clock: ClockDep,
) -> HTMLResponse:
    """Save the preference form (works without JavaScript) and show the result."""
    try:
        form = parse_qs((await request.body()).decode(), keep_blank_values=True)
    except UnicodeDecodeError:
        form = {}
    saving = preferences.save(
        session,
        signer=signer,
        public_url=settings.public_url,
        token=token,
        form=form,
        now=clock(),
    )
    try:
        context = await saving
    except service.PageNotFound:
        return not_found()
    except preferences.FormRefused:
        return page("form_refused.html", status_code=400)
    status = 422 if context.get("error") else 200
    return page("preferences.html", status_code=status, **context)
