"""VERP return paths: `bounces+<token>@mail.example.com`, the token naming the delivery.

The token is `<delivery id>-<keyed hash>` in lower-case hex: some mail servers lower-case the
local part of a return path, which a base64 signature would not survive.
"""

import hashlib
import hmac
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.core.config import Settings

_TAG_HEX = 20  # 80 bits: forging a token for a chosen delivery is out of reach
_TOKEN = re.compile(r"(\d{1,18})-([0-9a-f]{20})")


class ReturnPaths:
    """Envelope senders naming a delivery, and the delivery named by a bounce's recipient."""

    def __init__(self, bounce_address: str, secret: str) -> None:
        self.local, _, self.domain = bounce_address.partition("@")
        self.domain = self.domain.lower()
        self._key = hashlib.sha256(f"amplify.verp:{secret}".encode()).digest()

    @classmethod
    def from_settings(cls, settings: "Settings") -> "ReturnPaths | None":
        if settings.bounce_address is None:
            return None
        return cls(settings.bounce_address, settings.signing_key())

    def _tag(self, delivery_id: int) -> str:
        return hmac.new(self._key, str(delivery_id).encode(), hashlib.sha256).hexdigest()[:_TAG_HEX]

    def sender_for(self, delivery_id: int) -> str:
        return f"{self.local}+{delivery_id}-{self._tag(delivery_id)}@{self.domain}"

    def delivery_of(self, address: str) -> int | None:
        """The delivery a return path names; None for any other, tampered or foreign address."""
        address = address.strip().strip("<>").lower()
        local, at, domain = address.rpartition("@")
        prefix, plus, token = local.partition("+")
        if not at or not plus or domain != self.domain or prefix != self.local.lower():
            return None
        match = _TOKEN.fullmatch(token)
        if match is None:
            return None
        delivery_id = int(match.group(1))
        if not hmac.compare_digest(match.group(2), self._tag(delivery_id)):
            return None
        return delivery_id
