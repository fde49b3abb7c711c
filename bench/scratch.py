"""A throwaway PostgreSQL database beside the one a bench is given, dropped at the end."""

import os

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
