"""A second app on the same database with tiny import caps, to test 413 without big files."""

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from app.main import create_app
from tests.conftest import make_settings

SMALL_MAX_ROWS = 5
SMALL_MAX_BYTES = 2048


@pytest.fixture
async def small_app(database_url: str, tmp_root: Path) -> AsyncIterator[FastAPI]:
    settings = make_settings(
        database_url, tmp_root, import_max_rows=SMALL_MAX_ROWS, max_body_bytes=SMALL_MAX_BYTES
    )
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def small_client(small_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=small_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http
