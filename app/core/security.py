"""API keys, signed page cursors and signed per-purpose tokens."""

import hashlib
import secrets
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer
from itsdangerous import Signer as ItsdangerousSigner

API_KEY_PREFIX = "amp_"


def new_api_key() -> str:
    """A key carrying 256 random bits; only its hash is stored."""
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def hash_api_key(key: str) -> str:
    # A fast hash is right here: the key is 256 random bits, so there is nothing to brute-force.
    return hashlib.sha256(key.encode()).hexdigest()


class Signer:
    """Signs small JSON payloads, salted per purpose: a token of one kind is no token of another."""

    def __init__(self, secret: str) -> None:
        self._secret = secret
        self._serializers: dict[str, URLSafeSerializer] = {}
        self._id_signers: dict[str, ItsdangerousSigner] = {}

    def _serializer(self, purpose: str) -> URLSafeSerializer:
        if purpose not in self._serializers:
            self._serializers[purpose] = URLSafeSerializer(self._secret, salt=f"amplify.{purpose}")
        return self._serializers[purpose]

    def dumps(self, purpose: str, payload: Any) -> str:
        return str(self._serializer(purpose).dumps(payload))

    def loads(self, purpose: str, token: str) -> Any | None:
        """The payload, or None for a tampered, foreign or malformed token."""
        try:
            return self._serializer(purpose).loads(token)
        except (BadSignature, ValueError, TypeError, UnicodeError):
            return None

    def _id_signer(self, purpose: str) -> ItsdangerousSigner:
        if purpose not in self._id_signers:
            self._id_signers[purpose] = ItsdangerousSigner(self._secret, salt=f"amplify.{purpose}")
        return self._id_signers[purpose]

    def sign_id(self, purpose: str, value: int) -> str:
        """`<id>.<signature>`: no JSON or compression, so cheap enough for every mail."""
        return self._id_signer(purpose).sign(str(value).encode()).decode()

    def unsign_id(self, purpose: str, token: str) -> int | None:
        """The id, or None for a tampered, foreign or malformed token (constant-time check)."""
        try:
            value = self._id_signer(purpose).unsign(token.encode()).decode()
        except (BadSignature, ValueError, UnicodeError):
            return None
        return int(value) if value.isdigit() and len(value) <= 18 else None
