"""Bounce and complaint callbacks from sending providers: `POST /hooks/bounces/{provider}`."""

import base64
import binascii
import hmac
import json
import logging
from enum import StrEnum
from typing import Any

import httpx
from fastapi import APIRouter, Request
from pydantic import BaseModel

from app.bounces import service
from app.bounces.providers import READERS, PayloadError, read_ses, sns_subscribe_url
from app.bounces.verp import ReturnPaths
from app.core.config import Settings
from app.core.db import utcnow
from app.core.deps import SessionDep, SettingsDep
from app.core.errors import AppError, InvalidInput, NotFound, Unauthorized
from app.core.metrics import BOUNCES

logger = logging.getLogger("amplify.bounces")

router = APIRouter(prefix="/hooks/bounces", tags=["bounces"])


class Provider(StrEnum):
    SES = "ses"
    POSTMARK = "postmark"
    SENDGRID = "sendgrid"
    MAILGUN = "mailgun"


class CallbackResult(BaseModel):
    recorded: int = 0
    duplicates: int = 0
    unmapped: int = 0
    subscription_confirmed: bool = False


class UnreadableBody(AppError):
    status = 400
    title = "Unreadable body"


class SubscriptionNotConfirmed(AppError):
    status = 502
    title = "Subscription not confirmed"


def _authenticate(request: Request, settings: Settings) -> None:
    secret = settings.bounce_webhook_secret
    if secret is None:
        raise NotFound("Bounce callbacks are off: set AMPLIFY_BOUNCE_WEBHOOK_SECRET.")
    expected = secret.get_secret_value().encode()
    given = request.query_params.get("secret", "").encode()
    authorization = request.headers.get("authorization", "")
    if authorization[:6].lower() == "basic ":
        try:
            decoded = base64.b64decode(authorization[6:], validate=True)
        except (binascii.Error, ValueError):
            decoded = b""
        given = decoded.partition(b":")[2]
    if not given or not hmac.compare_digest(given, expected):
        raise Unauthorized(
            "Send AMPLIFY_BOUNCE_WEBHOOK_SECRET as the HTTP Basic password or as ?secret=."
        )


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise UnreadableBody("The body is not JSON.") from None


@router.post(
    "/{provider}",
    response_model=CallbackResult,
    responses={
        400: {"description": "The body is not JSON."},
        401: {"description": "Missing or wrong secret."},
        404: {"description": "Bounce callbacks are off."},
        413: {"description": "The body is too large."},
        422: {"description": "Not a payload of this provider."},
        502: {"description": "The SNS subscription could not be confirmed."},
    },
)
async def create_bounce_events(
    provider: Provider, request: Request, session: SessionDep, settings: SettingsDep
) -> CallbackResult:
    """Record a provider's bounce and complaint events (SES via SNS, Postmark, SendGrid,
    Mailgun); a repeated event changes nothing."""
    _authenticate(request, settings)
    payload = _json(await request.body())
    return_paths = ReturnPaths.from_settings(settings)
    try:
        if provider == Provider.SES and isinstance(payload, dict):
            message_type = payload.get("Type")
            if message_type == "SubscriptionConfirmation":
                await _confirm_subscription(request, sns_subscribe_url(payload))
                return CallbackResult(subscription_confirmed=True)
            if message_type == "UnsubscribeConfirmation":
                return CallbackResult()
            reports = read_ses(payload, return_paths)
        else:
            reports = READERS[provider.value](payload, return_paths)
    except PayloadError as exc:
        raise InvalidInput(f"Not a {provider.value} bounce payload: {exc}") from None
    result = CallbackResult()
    for report in reports:
        outcome = await service.record(session, report, now=utcnow())
        if outcome == service.Recorded.RECORDED:
            result.recorded += 1
            BOUNCES.labels(report.kind.value).inc()
        elif outcome == service.Recorded.DUPLICATE:
            result.duplicates += 1
            BOUNCES.labels("duplicate").inc()
        else:
            result.unmapped += 1
            BOUNCES.labels("unmapped").inc()
            logger.warning("a %s %s names no delivery we know", provider.value, report.kind)
    return result


async def _confirm_subscription(request: Request, url: str) -> None:
    """SNS subscribes an endpoint only once it fetches the confirmation URL it was sent."""
    client: httpx.AsyncClient = request.app.state.outbound_http
    try:
        response = await client.get(url)
    except httpx.HTTPError as exc:
        raise SubscriptionNotConfirmed(f"Fetching the SubscribeURL failed: {exc}") from None
    if response.status_code != 200:
        raise SubscriptionNotConfirmed(f"SNS answered {response.status_code} to the SubscribeURL.")
    logger.info("SNS subscription confirmed")
