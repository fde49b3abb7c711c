"""Signed per-amplifier tokens and the page URLs built from them."""

from urllib.parse import quote

from app.core.config import Settings
from app.core.security import Signer
from app.sending.mime import envelope_address

DIGEST = "digest"
UNSUBSCRIBE = "unsubscribe"


def digest_token(signer: Signer, delivery_id: int) -> str:
    return signer.sign_id(DIGEST, delivery_id)


def unsubscribe_token(signer: Signer, amplifier_id: int) -> str:
    return signer.sign_id(UNSUBSCRIBE, amplifier_id)


def read_token(signer: Signer, purpose: str, token: str) -> int | None:
    return signer.unsign_id(purpose, token)


def web_version_url(public_url: str, signer: Signer, delivery_id: int) -> str:
    return f"{public_url}/a/{digest_token(signer, delivery_id)}"


def unsubscribe_url(public_url: str, signer: Signer, amplifier_id: int) -> str:
    return f"{public_url}/u/{unsubscribe_token(signer, amplifier_id)}"


def unsubscribe_mailto_base(settings: Settings) -> str:
    """`mailto:` URL up to the subject; the subject is `unsubscribe <token>`, URL-encoded."""
    address = settings.unsubscribe_mailto or envelope_address(settings.mail_from)
    return f"mailto:{address}?subject="


def unsubscribe_mailto(settings: Settings, signer: Signer, amplifier_id: int) -> str:
    subject = quote(f"unsubscribe {unsubscribe_token(signer, amplifier_id)}", safe="")
    return unsubscribe_mailto_base(settings) + subject
