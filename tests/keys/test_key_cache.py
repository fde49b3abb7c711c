import asyncio
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.db import utcnow
from app.core.errors import Unauthorized
from app.core.security import hash_api_key
from app.keys.cache import ApiKeyCache, Principal
from app.models import ApiKey, Organization, Role
from tests.factories import OrgClients

TTL = 5.0
PRINCIPAL = Principal(organization_id=1, key_id=1, role=Role.EDITOR)


async def settle() -> None:
    """Let the tasks just created run up to their first real wait."""
    for _ in range(5):
        await asyncio.sleep(0)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(app: FastAPI) -> Iterator[FakeClock]:
    """The app's key cache on a clock the test moves (the app is shared: restored after)."""
    fake = FakeClock()
    kept = app.state.api_keys
    app.state.api_keys = ApiKeyCache(ttl_seconds=TTL, clock=fake)
    yield fake
    app.state.api_keys = kept


async def change_key(
    sessionmaker: async_sessionmaker[AsyncSession], hashed: str, **values: object
) -> None:
    """What another API process or an operator does to a key, bypassing this process."""
    async with sessionmaker() as session:
        await session.execute(update(ApiKey).where(ApiKey.key_hash == hashed).values(**values))
        await session.commit()


class TestKeyCacheInTheApp:
    async def test_revocation_through_the_api_stops_a_cached_key_at_once(
        self, org_a: OrgClients, clock: FakeClock
    ) -> None:
        created = (await org_a.admin.post("/api/v1/keys", json={"role": "admin"})).json()
        headers = {"Authorization": f"Bearer {created['key']}"}
        assert (await org_a.admin.http.get("/api/v1/keys", headers=headers)).status_code == 200
        assert (await org_a.admin.delete(f"/api/v1/keys/{created['id']}")).status_code == 204
        # The clock has not moved: only the revocation can have removed the cached key.
        response = await org_a.admin.http.get("/api/v1/keys", headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"

    async def test_revoking_with_a_key_it_revokes_itself_at_once(
        self, org_a: OrgClients, clock: FakeClock
    ) -> None:
        created = (await org_a.admin.post("/api/v1/keys", json={"role": "admin"})).json()
        headers = {"Authorization": f"Bearer {created['key']}"}
        revoked = await org_a.admin.http.delete(f"/api/v1/keys/{created['id']}", headers=headers)
        assert revoked.status_code == 204
        assert (await org_a.admin.http.get("/api/v1/keys", headers=headers)).status_code == 401

    async def test_revocation_elsewhere_takes_effect_within_the_ttl(
        self, org_a: OrgClients, clock: FakeClock, sessionmaker
    ) -> None:
        assert (await org_a.editor.get("/api/v1/campaigns")).status_code == 200
        await change_key(sessionmaker, hash_api_key(org_a.editor.key), revoked_at=utcnow())
        clock.now += TTL - 0.5
        assert (await org_a.editor.get("/api/v1/campaigns")).status_code == 200
        clock.now += 0.5
        assert (await org_a.editor.get("/api/v1/campaigns")).status_code == 401

    async def test_a_role_change_elsewhere_applies_after_the_ttl(
        self, org_a: OrgClients, clock: FakeClock, sessionmaker
    ) -> None:
        assert (await org_a.admin.get("/api/v1/keys")).status_code == 200
        await change_key(sessionmaker, hash_api_key(org_a.admin.key), role=Role.VIEWER.value)
        assert (await org_a.admin.get("/api/v1/keys")).status_code == 200  # cached, bounded
        clock.now += TTL
        response = await org_a.admin.get("/api/v1/keys")
        assert response.status_code == 403
        assert (await org_a.admin.get("/api/v1/campaigns")).status_code == 200  # still a viewer

    async def test_a_deleted_key_stops_after_the_ttl(
        self, org_a: OrgClients, clock: FakeClock, sessionmaker
    ) -> None:
        assert (await org_a.viewer.get("/api/v1/campaigns")).status_code == 200
        async with sessionmaker() as session:
            await session.execute(
                delete(ApiKey).where(ApiKey.key_hash == hash_api_key(org_a.viewer.key))
            )
            await session.commit()
        clock.now += TTL
        assert (await org_a.viewer.get("/api/v1/campaigns")).status_code == 401
        assert (await org_a.editor.get("/api/v1/campaigns")).status_code == 200

    async def test_a_deleted_organization_stops_its_keys_after_the_ttl(
        self, org_a: OrgClients, org_b: OrgClients, clock: FakeClock, sessionmaker
    ) -> None:
        for role_client in (org_a.admin, org_a.viewer, org_b.viewer):
            assert (await role_client.get("/api/v1/campaigns")).status_code == 200
        async with sessionmaker() as session:  # its keys go with it (ON DELETE CASCADE)
            await session.execute(
                delete(Organization).where(Organization.id == org_a.organization_id)
            )
            await session.commit()
        clock.now += TTL
        for role_client in (org_a.admin, org_a.viewer):
            assert (await role_client.get("/api/v1/campaigns")).status_code == 401
        assert (await org_b.viewer.get("/api/v1/campaigns")).status_code == 200

    async def test_a_refused_key_is_not_remembered(
        self, org_a: OrgClients, clock: FakeClock, sessionmaker
    ) -> None:
        real_hash = hash_api_key(org_a.viewer.key)
        await change_key(sessionmaker, real_hash, key_hash="0" * 64)
        assert (await org_a.viewer.get("/api/v1/campaigns")).status_code == 401
        await change_key(sessionmaker, "0" * 64, key_hash=real_hash)
        assert (await org_a.viewer.get("/api/v1/campaigns")).status_code == 200


class KeyTable:
    """Stands in for the database read: records what was asked, may hold it until released."""

    def __init__(self, answer: Principal | Exception = PRINCIPAL, *, held: bool = False) -> None:
        self.answer = answer
        self.asked: list[str] = []
        self.release = asyncio.Event()
        if not held:
            self.release.set()

    async def look_up(self, key_hash: str) -> Principal:
        self.asked.append(key_hash)
        await self.release.wait()
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


class TestKeyCache:
    async def test_hits_within_the_ttl_and_asks_again_after(self) -> None:
        clock = FakeClock()
        cache = ApiKeyCache(ttl_seconds=TTL, clock=clock)
        table = KeyTable()
        assert await cache.verify("h", table.look_up) == PRINCIPAL
        clock.now += TTL - 0.1
        assert await cache.verify("h", table.look_up) == PRINCIPAL
        assert table.asked == ["h"]
        clock.now += 0.1
        await cache.verify("h", table.look_up)
        assert table.asked == ["h", "h"]

    async def test_ttl_zero_asks_every_time(self) -> None:
        cache = ApiKeyCache(ttl_seconds=0)
        table = KeyTable()
        for _ in range(3):
            await cache.verify("h", table.look_up)
        assert len(table.asked) == 3

    async def test_concurrent_misses_share_one_lookup_and_its_refusal(self) -> None:
        cache = ApiKeyCache(ttl_seconds=TTL)
        table = KeyTable(Unauthorized("unknown"), held=True)
        waiting = [asyncio.create_task(cache.verify("h", table.look_up)) for _ in range(20)]
        await settle()
        table.release.set()
        results = await asyncio.gather(*waiting, return_exceptions=True)
        assert len(table.asked) == 1
        assert all(isinstance(r, Unauthorized) for r in results)
        assert await cache.verify("h", KeyTable().look_up) == PRINCIPAL  # the refusal not kept

    async def test_a_lookup_in_flight_at_forget_all_is_neither_kept_nor_shared(self) -> None:
        cache = ApiKeyCache(ttl_seconds=TTL)
        table = KeyTable(held=True)
        before = asyncio.create_task(cache.verify("h", table.look_up))
        await settle()
        assert len(table.asked) == 1
        cache.forget_all()  # a revocation committed while the lookup was reading
        after = asyncio.create_task(cache.verify("h", table.look_up))
        await settle()
        assert len(table.asked) == 2  # the request after the revocation reads it itself
        table.release.set()
        await asyncio.gather(before, after)
        await cache.verify("h", table.look_up)
        assert len(table.asked) == 2  # the second lookup's answer is cached, the first one's not

    async def test_is_bounded(self) -> None:
        cache = ApiKeyCache(ttl_seconds=TTL, max_entries=3)
        table = KeyTable()
        for key_hash in ("a", "b", "c", "d", "d", "a"):
            await cache.verify(key_hash, table.look_up)
        assert table.asked == ["a", "b", "c", "d", "a"]  # "a", the oldest, went first
