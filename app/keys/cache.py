"""API keys verified recently, kept in process memory so that a request does not query the
database for its key.

The bound: an entry is trusted for `ttl_seconds` after it was read from the database, then the
next request with that key reads it again. So a key revoked, given another role or deleted by
another process (or in the database directly) stops working as before at most `ttl_seconds`
later; a key revoked through this process stops at once (`forget_all` once the revocation is
committed). Unknown and revoked keys are never cached: every request with one asks the database.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from app.models import Role

MAX_ENTRIES = 10_000


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the key's organization and role."""

    organization_id: int
    key_id: int
    role: Role


class ApiKeyCache:
    """Principals by key hash (the hash, not the key: a memory dump shows no usable key)."""

    def __init__(
        self,
        *,
        ttl_seconds: float,
        max_entries: int = MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self.clock = clock
        self._entries: dict[str, tuple[float, Principal]] = {}
        # A lookup started before `forget_all` may have read what was just revoked: its answer
        # is neither cached nor shared with requests that arrive after.
        self._generation = 0
        self._lookups: dict[str, asyncio.Task[Principal]] = {}

    async def verify(
        self, key_hash: str, look_up: Callable[[str], Awaitable[Principal]]
    ) -> Principal:
        """The cached principal, else `look_up`'s (which raises for an unknown key); requests
        that miss together share one lookup, so an expiry under load is one query, not dozens."""
        entry = self._entries.get(key_hash)
        if entry is not None:
            if self.clock() < entry[0]:
                return entry[1]
            del self._entries[key_hash]
        lookup = self._lookups.get(key_hash)
        if lookup is None:
            lookup = asyncio.create_task(self._look_up(key_hash, look_up, self._generation))
            self._lookups[key_hash] = lookup
        # Shielded: a client that goes away must not fail the others sharing the lookup.
        return await asyncio.shield(lookup)

    def forget_all(self) -> None:
        """Call after a revocation commits: every key is read again from the database."""
        self._entries.clear()
        self._lookups.clear()
        self._generation += 1

    async def _look_up(
        self, key_hash: str, look_up: Callable[[str], Awaitable[Principal]], generation: int
    ) -> Principal:
        started = self.clock()
        try:
            principal = await look_up(key_hash)
        finally:
            if generation == self._generation:
                del self._lookups[key_hash]
        if generation == self._generation and self.ttl_seconds > 0:
            if len(self._entries) >= self.max_entries:
                del self._entries[next(iter(self._entries))]  # the oldest entry
            self._entries[key_hash] = (started + self.ttl_seconds, principal)
        return principal
