"""Bounce and complaint callbacks of sending providers, read into `BounceReport`s.

Each reader takes the provider's documented JSON and returns the reports in it; events that are
neither a bounce nor a complaint (deliveries, opens, delays) are skipped. A body of the wrong
shape raises `PayloadError`. The event key is the provider's own event id, so a retried callback
is recognised."""

import hashlib
import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from app.bounces.reports import BounceReport, bracketed, redact
from app.bounces.verp import ReturnPaths
from app.models import BounceKind

SNS_HOST = re.compile(r"sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?")


class PayloadError(ValueError):
    pass


def _dict(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise PayloadError(f"{what} must be a JSON object")
    return value


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _digest(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:32]


def _enhanced(text: str | None) -> str | None:
    match = re.search(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b", text or "")
    return ".".join(match.groups()) if match else None


# Amazon SES, through an SNS topic subscription


def sns_subscribe_url(envelope: dict[str, Any]) -> str:
    """The URL that confirms an SNS subscription; only Amazon's SNS endpoints are fetched."""
    url = _str(envelope.get("SubscribeURL"))
    if url is None:
        raise PayloadError("SubscriptionConfirmation without SubscribeURL")
    parts = urlsplit(url)
    if parts.scheme != "https" or not SNS_HOST.fullmatch(parts.hostname or ""):
        raise PayloadError("SubscribeURL is not an https URL of Amazon SNS")
    return url


def read_ses(payload: Any, return_paths: ReturnPaths | None) -> list[BounceReport]:
    envelope = _dict(payload, "the SNS message")
    if "notificationType" in envelope or "eventType" in envelope:
        event = envelope  # SNS "raw message delivery": the SES event without the SNS envelope
    else:
        raw = envelope.get("Message")
        if not isinstance(raw, str):
            raise PayloadError(
                "an SNS Notification carries its SES event as a JSON string in Message"
            )
        try:
            event = _dict(json.loads(raw), "Message")
        except ValueError:
            raise PayloadError("Message is not JSON") from None
    kind = event.get("notificationType") or event.get("eventType")
    mail = _dict(event.get("mail", {}), "mail")
    headers = _dict(mail.get("commonHeaders", {}), "mail.commonHeaders")
    message_id = bracketed(_str(headers.get("messageId")))
    delivery_id = return_paths.delivery_of(mail.get("source") or "") if return_paths else None
    notification = _str(envelope.get("MessageId")) or _digest(event)
    if kind == "Bounce":
        bounce = _dict(event.get("bounce"), "bounce")
        bounce_type = bounce.get("bounceType")
        if bounce_type not in ("Permanent", "Transient"):
            return []  # Undetermined: SES could not tell, so nothing is concluded
        found = BounceKind.HARD if bounce_type == "Permanent" else BounceKind.SOFT
        recipients = bounce.get("bouncedRecipients") or []
    elif kind == "Complaint":
        complaint = _dict(event.get("complaint"), "complaint")
        if complaint.get("complaintFeedbackType") == "not-spam":
            return []
        found = BounceKind.COMPLAINT
        recipients = complaint.get("complainedRecipients") or []
    else:
        return []
    reports = []
    for recipient in recipients if isinstance(recipients, list) else []:
        entry = _dict(recipient, "a recipient")
        address = _str(entry.get("emailAddress"))
        reports.append(
            BounceReport(
                kind=found,
                source="ses",
                event_key=f"ses:{notification}:{address}",
                delivery_id=delivery_id,
                message_id=message_id,
                recipient=address,
                status=_str(entry.get("status")),
                detail=redact(_str(entry.get("diagnosticCode"))),
            )
        )
    return reports


# Postmark: one bounce or spam complaint webhook per call

POSTMARK_HARD = {"HardBounce", "BadEmailAddress"}
POSTMARK_SOFT = {"SoftBounce", "DnsError"}


def read_postmark(payload: Any, return_paths: ReturnPaths | None) -> list[BounceReport]:
    event = _dict(payload, "the webhook body")
    record_type = event.get("RecordType")
    bounce_type = event.get("Type")
    if record_type == "SpamComplaint" or bounce_type == "SpamComplaint":
        kind = BounceKind.COMPLAINT
    elif record_type == "Bounce" and bounce_type in POSTMARK_HARD:
        kind = BounceKind.HARD
    elif record_type == "Bounce" and bounce_type in POSTMARK_SOFT:
        kind = BounceKind.SOFT
    else:
        return []
    details = _str(event.get("Details")) or _str(event.get("Description"))
    content = _str(event.get("Content")) or ""
    quoted = re.search(r"^Message-ID:\s*(<[^<>\s]+>)", content, re.IGNORECASE | re.MULTILINE)
    return [
        BounceReport(
            kind=kind,
            source="postmark",
            event_key=f"postmark:{event.get('ID') or _digest(event)}",
            message_id=quoted.group(1) if quoted else None,
            recipient=_str(event.get("Email")),
            status=_enhanced(details),
            detail=redact(details),
        )
    ]


# SendGrid Event Webhook: a JSON array of events


def read_sendgrid(payload: Any, return_paths: ReturnPaths | None) -> list[BounceReport]:
    if not isinstance(payload, list):
        raise PayloadError("the SendGrid Event Webhook posts a JSON array of events")
    reports = []
    for item in payload:
        event = _dict(item, "an event")
        name = event.get("event")
        status = _str(event.get("status"))
        if name == "spamreport":
            kind = BounceKind.COMPLAINT
        elif name == "bounce":
            permanent = event.get("type") != "blocked" and not (status or "").startswith("4")
            kind = BounceKind.HARD if permanent else BounceKind.SOFT
        else:
            continue  # delivered, deferred, dropped, open, click …
        reports.append(
            BounceReport(
                kind=kind,
                source="sendgrid",
                event_key=f"sendgrid:{event.get('sg_event_id') or _digest(event)}",
                message_id=bracketed(_str(event.get("smtp-id"))),
                recipient=_str(event.get("email")),
                status=status,
                detail=redact(_str(event.get("reason"))),
            )
        )
    return reports


# Mailgun webhooks: {"signature": …, "event-data": {…}}


def read_mailgun(payload: Any, return_paths: ReturnPaths | None) -> list[BounceReport]:
    body = _dict(payload, "the webhook body")
    event = _dict(body.get("event-data"), "event-data")
    name = event.get("event")
    if name == "complained":
        kind = BounceKind.COMPLAINT
    elif name == "failed":
        kind = BounceKind.HARD if event.get("severity") == "permanent" else BounceKind.SOFT
    else:
        return []
    message = _dict(event.get("message", {}), "message")
    headers = _dict(message.get("headers", {}), "message.headers")
    status = _dict(event.get("delivery-status", {}), "delivery-status")
    detail = _str(status.get("description")) or _str(status.get("message"))
    return [
        BounceReport(
            kind=kind,
            source="mailgun",
            event_key=f"mailgun:{event.get('id') or _digest(event)}",
            message_id=bracketed(_str(headers.get("message-id"))),
            recipient=_str(event.get("recipient")),
            status=_enhanced(detail) or _enhanced(_str(status.get("enhanced-code"))),
            detail=redact(detail),
        )
    ]


READERS: dict[str, Callable[[Any, ReturnPaths | None], list[BounceReport]]] = {
    "ses": read_ses,
    "postmark": read_postmark,
    "sendgrid": read_sendgrid,
    "mailgun": read_mailgun,
}
