"""Random link codes: unguessable, never sequential, without look-alike characters."""

import secrets

# base62 without 0/O/o, 1/l/I: a code read aloud or retyped from print stays right.
ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz"
CODE_LENGTH = 10  # 56**10 ≈ 3e17 codes: collisions are rare, and retried when they happen
MAX_CODE_LENGTH = 32
_CODE_CHARS = frozenset(ALPHABET)

# Random bytes map onto the alphabet without modulo bias: the 224 lowest byte values map
# 4-to-1 onto the 56 characters and the rest are dropped (bytes.translate runs in C).
_USABLE = 256 // len(ALPHABET) * len(ALPHABET)
_TABLE = bytes(ord(ALPHABET[b % len(ALPHABET)]) if b < _USABLE else 0 for b in range(256))
_REJECTED = bytes(range(_USABLE, 256))


def new_codes(count: int, length: int = CODE_LENGTH) -> list[str]:
    """`count` random codes, generated in bulk (a campaign snapshot needs hundreds of thousands)."""
    need = count * length
    chars = b""
    while len(chars) < need:
        chars += secrets.token_bytes(need - len(chars) + 64).translate(_TABLE, _REJECTED)
    text = chars[:need].decode("ascii")
    return [text[i : i + length] for i in range(0, need, length)]


def looks_like_code(value: str) -> bool:
    """A cheap filter before any lookup: wrong length or characters cannot be a code."""
    return 8 <= len(value) <= MAX_CODE_LENGTH and _CODE_CHARS.issuperset(value)
