"""API keys, signed page cursors and signed per-purpose tokens."""

import base64
import hashlib
import hmac
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
        self._id_keys: dict[str, tuple[bytes, str]] = {}  # purpose → (derived key, digest name)

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
        """`<id>.<signature>`: no JSON or compression, so cheap enough for every mail. The
        same token as itsdangerous' `Signer.sign` (which checks it), with the purpose's key
        derived once instead of on every call: mails carry several of these each."""
        found = self._id_keys.get(purpose)
        if found is None:
            signer = self._id_signer(purpose)
            found = self._id_keys[purpose] = (signer.derive_key(), signer.digest_method().name)
        key, digest = found
        signature = base64.urlsafe_b64encode(hmac.digest(key, str(value).encode(), digest))
        return f"{value}.{signature.rstrip(b'=').decode()}"

    def unsign_id(self, purpose: str, token: str) -> int | None:
        """The id, or None for a tampered, foreign or malformed token (constant-time check)."""
        try:
            value = self._id_signer(purpose).unsign(token.encode()).decode()
        except (BadSignature, ValueError, UnicodeError):
            return None
        return int(value) if value.isdigit() and len(value) <= 18 else None
