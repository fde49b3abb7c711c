"""Throwaway PostgreSQL databases beside a given one, for the test suite and the benches: each
run gets its own, so parallel runs never collide."""

import os
import secrets

from sqlalchemy import text
from sqlalchemy.engine import make_url

from app.core.db import make_engine


async def create_scratch_database(url: str, tag: str) -> str:
    """The URL of a new, empty database on the server of `url`, named after it and `tag`."""
    base = make_url(url)
    name = f"{base.database}_{tag}_{os.getpid()}_{secrets.token_hex(3)}"
    await _execute_autocommit(url, f'CREATE DATABASE "{name}"')
    return base.set(database=name).render_as_string(hide_password=False)


async def drop_scratch_database(url: str, scratch_url: str) -> None:
    """Drop the database of `scratch_url`, connected through `url` (its sessions are ended)."""
    name = make_url(scratch_url).database
    await _execute_autocommit(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _execute_autocommit(url: str, statement: str) -> None:
    engine = make_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(text(statement))
    finally:
        await engine.dispose()
