"""What a bounce or complaint says: parsed from inbound mail (RFC 3464 DSNs, RFC 5965 ARF
reports, and the free-form bounces real servers still send) into one `BounceReport`.

Inbound mail is hostile input: nothing here raises on malformed mail, it returns None."""

import email
import hashlib
import logging
import re
from dataclasses import dataclass
from email.message import Message

from flufl.bounce import all_failures

from app.bounces.verp import ReturnPaths
from app.models import BounceKind

logger = logging.getLogger("amplify.bounces")

_MESSAGE_ID = re.compile(rb"^Message-ID:[ \t]*(<[^<>\s]{1,250}>)", re.IGNORECASE | re.MULTILINE)
_OURS_FIRST = re.compile(r"^<amplify\.")
_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_ADDRESS = re.compile(r"[^\s<>\"'(),;:]+@[^\s<>\"'(),;:]+")
DETAIL_CHARS = 480


@dataclass(frozen=True, slots=True)
class BounceReport:
    kind: BounceKind
    source: str  # smtp | ses | postmark | sendgrid | mailgun
    event_key: str
    delivery_id: int | None = None  # from the VERP return path
    message_id: str | None = None  # the Message-ID of our mail, angle brackets included
    recipient: str | None = None
    status: str | None = None  # enhanced status code, e.g. 5.1.1
    detail: str | None = None


def redact(text: str | None) -> str | None:
    """Diagnostics quote addresses; they are not kept (deleting an amplifier deletes its data)."""
    if not text:
        return None
    return _ADDRESS.sub("<address>", " ".join(text.split()))[:DETAIL_CHARS]


def bracketed(message_id: str | None) -> str | None:
    if not message_id:
        return None
    value = message_id.strip()
    if not value:
        return None
    return value if value.startswith("<") else f"<{value}>"


def parse_inbound(
    raw: bytes, *, recipients: list[str], return_paths: ReturnPaths | None
) -> BounceReport | None:
    """The report an inbound mail carries, or None when it is not a bounce we understand."""
    message = email.message_from_bytes(raw)
    delivery_id = _verp_delivery(recipients, return_paths)
    key = "smtp:" + hashlib.sha256(raw).hexdigest()[:40]
    report = _report_of(message)
    if report is None:
        return None
    kind, status, detail, recipient = report
    return BounceReport(
        kind=kind,
        source="smtp",
        event_key=key,
        delivery_id=delivery_id,
        message_id=_original_message_id(message, raw),
        recipient=recipient,
        status=status,
        detail=redact(detail),
    )


_Finding = tuple[BounceKind, str | None, str | None, str | None]


def _report_of(message: Message) -> _Finding | None:
    if message.get_content_type() == "multipart/report":
        param = message.get_param("report-type")
        report_type = param.lower() if isinstance(param, str) else ""
        if report_type == "feedback-report":
            return _feedback(message)
        if report_type == "delivery-status":
            found = _delivery_status(message)
            if found is not None:
                return found
    return _free_form(message)


def _parts(message: Message, content_type: str) -> list[Message]:
    return [part for part in message.walk() if part.get_content_type() == content_type]


def _feedback(message: Message) -> _Finding | None:
    """RFC 5965: a machine-readable part naming the feedback type and the complained-of mail."""
    fields: dict[str, str] = {}
    for part in _parts(message, "message/feedback-report"):
        payload = part.get_payload()
        blocks = payload if isinstance(payload, list) else [part]
        for block in blocks:
            if isinstance(block, Message):
                fields |= {k.lower(): str(v) for k, v in block.items()}
            if isinstance(payload, str):
                fields |= _header_fields(payload)
    feedback_type = fields.get("feedback-type", "abuse").strip().lower()
    if feedback_type == "not-spam":
        return None
    recipient = fields.get("original-rcpt-to")
    return (BounceKind.COMPLAINT, None, f"feedback-type {feedback_type}", recipient)


def _header_fields(text: str) -> dict[str, str]:
    parsed = email.message_from_string(text)
    return {k.lower(): str(v) for k, v in parsed.items()}


def _delivery_status(message: Message) -> _Finding | None:
    """RFC 3464: per-recipient blocks with Action and Status; the first failure decides."""
    for part in _parts(message, "message/delivery-status"):
        payload = part.get_payload()
        blocks = payload if isinstance(payload, list) else []
        if isinstance(payload, str):  # some servers send it as text: parse the blocks ourselves
            blocks = [email.message_from_string(b) for b in re.split(r"\r?\n\r?\n", payload)]
        for block in blocks[1:] if len(blocks) > 1 else blocks:
            if not isinstance(block, Message):
                continue
            action = str(block.get("Action", "")).strip().lower()
            if action != "failed":
                continue  # delayed, delivered, relayed, expanded: not a failure (yet)
            status = _status(str(block.get("Status", "")))
            diagnostic = str(block.get("Diagnostic-Code", "")) or None
            if status is None:
                status = _status(diagnostic or "") or "5.0.0"
            kind = BounceKind.SOFT if status.startswith("4") else BounceKind.HARD
            recipient = _address(str(block.get("Final-Recipient", "")))
            return (kind, status, diagnostic, recipient)
    return None


def _status(text: str) -> str | None:
    match = _STATUS.search(text)
    return ".".join(match.groups()) if match else None


def _address(field: str) -> str | None:
    # "rfc822; bob@example.com"
    value = field.partition(";")[2] or field
    match = _ADDRESS.search(value)
    return match.group(0) if match else None


def _free_form(message: Message) -> _Finding | None:
    """Bounces without a DSN part (Exim, qmail, old Exchange, …): flufl.bounce's detectors."""
    try:
        temporary, permanent = all_failures(message)
    except Exception:  # a detector tripping over hostile mail is a non-bounce, not a crash
        logger.warning("bounce detectors failed on an inbound message", exc_info=True)
        return None
    if not (temporary or permanent):
        return None
    kind = BounceKind.HARD if permanent else BounceKind.SOFT
    found = next(iter(permanent or temporary))
    recipient = found.decode(errors="replace") if isinstance(found, bytes) else str(found)
    text = _text_of(message)
    status = _status(text)
    if status is not None and status.startswith("2"):
        status = None
    return (kind, status, _diagnostic_line(text), recipient)


def _text_of(message: Message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                return payload.decode("utf-8", errors="replace")
    return ""


def _diagnostic_line(text: str) -> str | None:
    for line in text.splitlines():
        if re.search(r"\b[45]\d\d\b", line):
            return line.strip()
    return None


def _original_message_id(message: Message, raw: bytes) -> str | None:
    """The Message-ID of the mail that bounced, quoted in the report's attached message or
    headers (or its text); ours (`<amplify.…>`) are preferred over any other quoted id."""
    own = str(message.get("Message-ID", "")).strip()
    body = raw.split(b"\r\n\r\n", 1)[-1] if b"\r\n\r\n" in raw else raw.split(b"\n\n", 1)[-1]
    found: list[str] = [
        m.decode("ascii", errors="replace") for m in _MESSAGE_ID.findall(body) if m != own.encode()
    ]
    ours = [f for f in found if _OURS_FIRST.match(f)]
    return (ours or found)[0] if found else None


def _verp_delivery(recipients: list[str], return_paths: ReturnPaths | None) -> int | None:
    if return_paths is None:
        return None
    for recipient in recipients:
        delivery_id = return_paths.delivery_of(recipient)
        if delivery_id is not None:
            return delivery_id
    return None
