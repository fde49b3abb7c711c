"""What several benches share: their database (a SQLite temp file, or a throwaway PostgreSQL
database beside the one given, dropped at the end) and a generated roster."""

import os
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url

from app.core.db import make_engine


async def create_scratch_database(url: str, tag: str) -> str:
    base = make_url(url)
    name = f"{base.database}_bench_{tag}_{os.getpid()}"
    engine = make_engine(url, isolation_level="AUTOCOMMIT")
    async with engine.connect() as connection:
        await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await connection.execute(text(f'CREATE DATABASE "{name}"'))
    await engine.dispose()
    return base.set(database=name).render_as_string(hide_password=False)


async def drop_scratch_database(url: str, scratch_url: str) -> None:
    name = make_url(scratch_url).database
    engine = make_engine(url, isolation_level="AUTOCOMMIT")
    async with engine.connect() as connection:
        await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    await engine.dispose()


async def bench_database(base_url: str | None, tag: str, tmp: Path) -> tuple[str, bool]:
    """The URL the bench runs on, and whether it is a scratch database to drop afterwards."""
    if base_url and base_url.startswith("postgresql"):
        return await create_scratch_database(base_url, tag), True
    if base_url:
        return base_url, False
    return f"sqlite+aiosqlite:///{tmp / 'bench.db'}", False


def amplifier_rows(
    organization_id: int, count: int, networks: list[str], now: datetime
) -> list[dict[str, Any]]:
    """`count` active amplifiers amp0@example.com … on `networks`, for a bulk insert."""
    return [
        {
            "organization_id": organization_id,
            "email": f"amp{i}@example.com",
            "email_key": f"amp{i}@example.com",
            "name": f"Amplifier {i}",
            "tags": ["bench"],
            "networks": networks,
            "audience": {"linkedin": 500},
            "locale": "en",
            "status": "active",
            "created_at": now,
            "updated_at": now,
        }
        for i in range(count)
    ]
