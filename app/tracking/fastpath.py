"""`GET|HEAD /r/{code}` answered in front of the framework (see `AmplifyApp`): the hottest
route does no routing, middleware, dependency injection or per-request session, only a cached
lookup and an in-memory append."""

import logging
import time
from collections.abc import Callable
from datetime import datetime

from starlette.types import Scope, Send

from app.core.config import Settings
from app.core.db import utcnow
from app.core.metrics import (
    CLICKS_FAILED,
    REDIRECT_FOUND,
    REDIRECT_HEAD,
    REDIRECT_MISSING,
    REDIRECT_SECONDS,
)
from app.models import LinkKind
from app.tracking.bots import classify_user_agent, user_agent_class
from app.tracking.clickids import ClickIds
from app.tracking.clients import client_ip, referrer_host, visitor_key
from app.tracking.codes import looks_like_code
from app.tracking.recorder import ClickEvent, ClickRecorder
from app.tracking.resolver import CachedLink, LinkResolver
from app.tracking.salts import VisitorSalts

logger = logging.getLogger("amplify.redirect")

NOT_FOUND_PAGE = (
    b"<!doctype html><html lang=en><meta charset=utf-8><title>Link not found</title>"
    b"<body style='font-family:system-ui,sans-serif;margin:3em'><h1>Link not found</h1>"
    b"<p>This link does not exist or has been removed.</p></body></html>"
)
_NOT_FOUND_HEADERS = [
    (b"content-type", b"text/html; charset=utf-8"),
    (b"content-length", str(len(NOT_FOUND_PAGE)).encode()),
    (b"cache-control", b"no-store"),
]
_REDIRECT_HEADERS = [
    (b"cache-control", b"no-store"),
    (b"referrer-policy", b"no-referrer"),
    (b"content-length", b"0"),
]


class Tracking:
    """What the redirect needs, built by the app's lifespan once the engine exists."""

    def __init__(
        self,
        *,
        settings: Settings,
        resolver: LinkResolver,
        salts: VisitorSalts,
        recorder: ClickRecorder,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.settings = settings
        self.resolver = resolver
        self.salts = salts
        self.recorder = recorder
        self.clock = clock
        self.trusted = settings.trusted_proxies
        self.click_ids = ClickIds(settings.signing_key())


def is_redirect(scope: Scope) -> bool:
    return (
        scope["type"] == "http"
        and scope["path"].startswith("/r/")
        and scope["method"] in ("GET", "HEAD")
    )


async def redirect(tracking: Tracking, scope: Scope, send: Send) -> None:
    """Answer `GET|HEAD /r/{code}`: 302 to the stored target (recording a GET), else 404."""
    started = time.perf_counter()
    code = scope["path"][3:]
    link = None
    if looks_like_code(code):
        try:
            link = await tracking.resolver.link(code)
        except Exception:
            logger.exception("looking up link %s failed", code)
            await _send(send, 503, [(b"retry-after", b"1")], b"")
            return
    if link is None:
        body = NOT_FOUND_PAGE if scope["method"] == "GET" else b""
        await _send(send, 404, _NOT_FOUND_HEADERS, body)
        REDIRECT_MISSING.inc()
        return
    location = link.location
    if scope["method"] == "GET":
        try:
            click_id = await _record(tracking, scope, link)
        except Exception:  # recording must never cost the visitor the redirect
            tracking.recorder.failed_records += 1
            CLICKS_FAILED.labels("record").inc()
            logger.exception("recording a click on link %s failed", link.id)
        else:
            if click_id is not None and link.attributed is not None:
                prefix, suffix = link.attributed
                location = prefix + click_id.encode() + suffix
    await _send(send, 302, [(b"location", location), *_REDIRECT_HEADERS], b"")
    if scope["method"] == "GET":
        REDIRECT_FOUND.inc()
        REDIRECT_SECONDS.observe(time.perf_counter() - started)
    else:
        REDIRECT_HEAD.inc()


async def _record(tracking: Tracking, scope: Scope, link: CachedLink) -> str | None:
    """Record the click; returns the click id it was given (human visits with attribution)."""
    user_agent = referer = None
    forwarded: list[str] = []
    prefetch = False
    for name, value in scope["headers"]:
        if name == b"user-agent":
            user_agent = value.decode("latin-1")
        elif name == b"x-forwarded-for":  # several headers make one list, in order
            forwarded.append(value.decode("latin-1"))
        elif name == b"referer":
            referer = value.decode("latin-1")
        elif name in (b"sec-purpose", b"purpose", b"x-purpose", b"x-moz"):
            prefetch = prefetch or value.lower().startswith((b"prefetch", b"preview"))
    user_agent = user_agent or ""
    now = tracking.clock()
    peer = scope.get("client")
    ip = client_ip(peer[0] if peer else None, ", ".join(forwarded) or None, tracking.trusted)
    salt = tracking.salts.cached(now.date()) or await tracking.salts.salt(now.date())
    # A browser prefetching a link (e.g. an in-app browser) is no visit yet.
    reason = "prefetch" if prefetch else classify_user_agent(user_agent)
    if reason is None and link.kind == LinkKind.SHARE and link.delivery_id is not None:
        reason = await _scanner_reason(tracking, link, now)
    click_id = stored_key = None
    if reason is None and link.attributed is not None:
        click_id, stored_key = tracking.click_ids.mint()
    tracking.recorder.record(
        ClickEvent(
            link_id=link.id,
            delivery_id=link.delivery_id,
            kind=link.kind,
            at=now,
            is_bot=reason is not None,
            bot_reason=reason,
            visitor_key=visitor_key(salt, ip, user_agent),
            ua_class=user_agent_class(user_agent),
            referrer_host=referrer_host(referer),
            facts=link.facts,
            click_key=stored_key,
        )
    )
    await tracking.recorder.room()
    return click_id


async def _scanner_reason(tracking: Tracking, link: CachedLink, now: datetime) -> str | None:
    """A digest link fetched within seconds of the mail's acceptance is a mail scanner."""
    window = tracking.settings.scanner_window
    if window <= 0:
        return None
    sent_at = await tracking.resolver.delivery_sent_at(link)
    if sent_at is None:  # accepted moments ago and not yet marked
        return "scanner-window"
    return "scanner-window" if (now - sent_at).total_seconds() < window else None


async def _send(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _operation(operation_id: str, summary: str, description: str) -> dict[str, object]:
    return {
        "tags": ["tracking"],
        "summary": summary,
        "description": description,
        "operationId": operation_id,
        "parameters": [
            {"name": "code", "in": "path", "required": True, "schema": {"type": "string"}}
        ],
        "responses": {
            "302": {
                "description": "Redirect to the stored target (`Location`); "
                "`Cache-Control: no-store`, `Referrer-Policy: no-referrer`."
            },
            "404": {
                "description": "Unknown code (a small HTML page).",
                "content": {"text/html": {"schema": {"type": "string"}}},
            },
            "503": {"description": "The link could not be looked up; try again (`Retry-After`)."},
        },
    }


# The middleware answers these before routing, so they are described here for /openapi.json.
OPENAPI_PATHS = {
    "/r/{code}": {
        "get": _operation(
            "follow_link",
            "Follow a tracked link",
            "Records the click (bot-flagged when it looks automated) and redirects: a share "
            "link to the network's share intent, a visit link to the message URL (+ UTM).",
        ),
        "head": _operation(
            "head_link", "Head a tracked link", "Answers like GET and records nothing."
        ),
    }
}
