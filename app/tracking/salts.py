"""Daily random salts for visitor keys, shared by every process through the database."""

import secrets
from datetime import date

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncEngine

from app.models import VisitorSalt


class VisitorSalts:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._salts: dict[date, bytes] = {}

    def cached(self, day: date) -> bytes | None:
        return self._salts.get(day)

    async def salt(self, day: date) -> bytes:
        """The day's salt; the first process to need it creates it, the others read it."""
        salt = self._salts.get(day)
        if salt is not None:
            return salt
        insert = pg_insert if self.engine.dialect.name == "postgresql" else sqlite_insert
        async with self.engine.begin() as connection:
            await connection.execute(
                insert(VisitorSalt)
                .values(day=day, salt=secrets.token_bytes(32))
                .on_conflict_do_nothing(index_elements=["day"])
            )
            stored = await connection.scalar(select(VisitorSalt.salt).where(VisitorSalt.day == day))
        assert stored is not None
        self._salts = {d: s for d, s in self._salts.items() if d >= day}  # keep today only
        self._salts[day] = stored
        return stored
