"""Link and delivery lookups for the redirect, cached in process.

Links never change once created, so a code resolves from memory after its first request. A
delivery's `sent_at` is cached once set (it is set once)."""

import time
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.models import Campaign, Delivery, Link
from app.tracking.clickstore import FACT_COLUMNS, LinkFacts, link_facts

LINK_CACHE_SIZE = 500_000
MISS_CACHE_SIZE = 50_000
MISS_TTL_SECONDS = 5.0


_LOCATION_SAFE = ":/?#[]@!$&'()*+,;=%~"


def location_header(target: str) -> bytes:
    """Stored targets are validated URLs; non-ASCII characters are percent-encoded for HTTP."""
    if target.isascii():
        return target.encode()
    return quote(target, safe=_LOCATION_SAFE).encode()


@dataclass(frozen=True, slots=True)
class CachedLink:
    code: str
    id: int
    target: str
    delivery_id: int | None
    facts: LinkFacts
    location: bytes  # the `Location` header value, built once with the cached link

    @property
    def kind(self) -> str:
        return self.facts.kind


class LinkResolver:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._links: dict[str, CachedLink] = {}
        self._misses: dict[str, float] = {}
        # By link code, not delivery id: SQLite may reuse the id of a deleted delivery.
        self._sent_at: dict[str, datetime] = {}

    async def link(self, code: str) -> CachedLink | None:
        cached = self._links.get(code)
        if cached is not None:
            return cached
        missed = self._misses.get(code)
        if missed is not None and time.monotonic() - missed < MISS_TTL_SECONDS:
            return None
        async with self.engine.connect() as connection:
            row = (
                await connection.execute(
                    select(Link.id, Link.target, Link.delivery_id, *FACT_COLUMNS)
                    .join(Campaign, Campaign.id == Link.campaign_id)
                    .where(Link.code == code)
                )
            ).first()
        if row is None:
            if len(self._misses) >= MISS_CACHE_SIZE:
                self._misses.clear()
            self._misses[code] = time.monotonic()
            return None
        link = CachedLink(
            code=code,
            id=row.id,
            target=row.target,
            delivery_id=row.delivery_id,
            facts=link_facts(row),
            location=location_header(row.target),
        )
        if len(self._links) >= LINK_CACHE_SIZE:
            del self._links[next(iter(self._links))]
        self._links[code] = link
        return link

    async def delivery_sent_at(self, link: CachedLink) -> datetime | None:
        """When the SMTP server accepted the digest holding this link (None: not yet)."""
        sent_at = self._sent_at.get(link.code)
        if sent_at is not None or link.delivery_id is None:
            return sent_at
        async with self.engine.connect() as connection:
            value = await connection.scalar(
                select(Delivery.sent_at).where(Delivery.id == link.delivery_id)
            )
        if value is not None:
            if len(self._sent_at) >= LINK_CACHE_SIZE:
                del self._sent_at[next(iter(self._sent_at))]
            self._sent_at[link.code] = value
        return value
