"""Click ids: what a human visit carries to the landing page (`amp_cid`) so that a later
conversion can be attributed to the amplifier, message and network that brought the visitor.

A click id is minted in process, with no database work: 16 random bytes (the key stored with
the click in the recorder's batch) and a keyed 8-byte MAC of them, base64url, 32 characters.
Unguessable (128 random bits), tamper-proof (a changed character fails the MAC before any
lookup) and opaque (nothing in it but randomness and its MAC).
"""

import base64
import binascii
import hashlib
import hmac
from urllib.parse import unquote_plus

from app.core import entropy

RANDOM_BYTES = 16
MAC_BYTES = 8
CLICK_ID_LENGTH = 32  # base64url of 24 bytes, no padding


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


class ClickIds:
    """Mints and checks click ids under a key derived from the service's secret."""

    def __init__(self, secret: str) -> None:
        self._key = hashlib.blake2b(secret.encode(), person=b"amplify.cid", digest_size=32).digest()

    def _mac(self, raw: bytes) -> bytes:
        return hashlib.blake2b(raw, key=self._key, digest_size=MAC_BYTES).digest()

    def mint(self) -> tuple[str, str]:
        """A new (click id, stored key) pair."""
        raw = entropy.POOL.take(RANDOM_BYTES)
        return _b64(raw + self._mac(raw)), _b64(raw)

    def stored_key(self, click_id: str) -> str | None:
        """The stored key of a well-formed, untampered click id; None otherwise."""
        if len(click_id) != CLICK_ID_LENGTH or not click_id.isascii():
            return None
        try:
            decoded = base64.urlsafe_b64decode(click_id)
        except (binascii.Error, ValueError):
            return None
        raw, mac = decoded[:RANDOM_BYTES], decoded[RANDOM_BYTES:]
        if len(mac) != MAC_BYTES or not hmac.compare_digest(mac, self._mac(raw)):
            return None
        return _b64(raw)


def attribution_parts(target: str, param: str) -> tuple[str, str]:
    """The target split around the place a click id goes: `prefix + click_id + suffix` is the
    target with `<param>=<click id>` as its last query parameter, before any fragment. A
    `<param>` already in the target (a copied tracking URL) is dropped: the click's own wins."""
    base, hash_mark, fragment = target.partition("#")
    path, _, query = base.partition("?")
    kept = [
        piece
        for piece in query.split("&")
        if piece and unquote_plus(piece.partition("=")[0]) != param
    ]
    kept.append(f"{param}=")
    return f"{path}?{'&'.join(kept)}", f"{hash_mark}{fragment}"
