"""Random link codes: unguessable, never sequential, without look-alike characters."""

import secrets

# base62 without 0/O/o, 1/l/I: a code read aloud or retyped from print stays right.
ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz"
CODE_LENGTH = 10  # 56**10 ≈ 3e17 codes: collisions are rare, and retried when they happen
MAX_CODE_LENGTH = 32


def new_code(length: int = CODE_LENGTH) -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(length))


def looks_like_code(value: str) -> bool:
    """A cheap filter before any lookup: wrong length or characters cannot be a code."""
    return 8 <= len(value) <= MAX_CODE_LENGTH and all(ch in ALPHABET for ch in value)
