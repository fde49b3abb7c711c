"""What several benches share: their database (a SQLite temp file, or a throwaway PostgreSQL
database beside the one given, dropped at the end), their settings, a generated roster and the
campaign they send."""

import asyncio
import shutil
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import insert

from app.core.config import Settings
from app.core.db import session_scope
from app.core.scratch_databases import create_scratch_database, drop_scratch_database
from app.keys import service as keys_service
from app.models import Amplifier, Role

SECRET = "bench-secret-key-bench-secret-key-bench"
NETWORKS = ["linkedin", "x", "facebook", "whatsapp"]


async def bench_database(base_url: str | None, tag: str, tmp: Path) -> tuple[str, bool]:
    """The URL the bench runs on, and whether it is a scratch database to drop afterwards."""
    if base_url and base_url.startswith("postgresql"):
        return await create_scratch_database(base_url, f"bench_{tag}"), True
    if base_url:
        return base_url, False
    return f"sqlite+aiosqlite:///{tmp / 'bench.db'}", False


async def discard_bench_files(
    base_url: str | None, url: str, scratch: bool, tmp: Path, *, keep_logs: bool
) -> None:
    """Drop the scratch database `bench_database` made, and the bench's files unless their logs
    are worth keeping (a failed run)."""
    if scratch and base_url:
        await drop_scratch_database(base_url, url)
    if keep_logs:
        print(f"logs kept in {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)


def run_bench(main: Callable[[], Coroutine[Any, Any, int]]) -> int:
    """A bench's `main()` on uvloop, what `amplify serve` and `amplify worker` run on."""
    import uvloop

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main())


def bench_settings(url: str, tmp: Path, **overrides: Any) -> Settings:
    """The service's settings for a bench: a fixed secret, no worker, its files in `tmp`."""
    values: dict[str, Any] = {
        "database_url": url,
        "secret_key": SECRET,
        "public_url": "http://127.0.0.1:8000",
        "var_dir": tmp / "var",
        "worker": "off",
        **overrides,
    }
    return Settings(_env_file=None, **values)


def sending_bench_settings(url: str, tmp: Path, *, smtp_port: int, connections: int) -> Settings:
    """Settings for a bench that sends digests into a local SMTP sink on `smtp_port`."""
    return bench_settings(
        url,
        tmp,
        public_url="https://amplify.example",
        var_dir=tmp,
        smtp_port=smtp_port,
        smtp_connections=connections,
        mail_from="Acme Advocacy <advocacy@acme.example>",
    )


def amplifier_rows(
    organization_id: int,
    count: int,
    networks: list[str],
    now: datetime,
    audience: Callable[[], dict[str, int]] = lambda: {"linkedin": 500},
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
            "audience": audience(),
            "locale": "en",
            "status": "active",
            "created_at": now,
            "updated_at": now,
        }
        for i in range(count)
    ]


@dataclass(frozen=True)
class BenchOrganization:
    id: int
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


async def seed_organization(
    app: FastAPI,
    *,
    name: str,
    role: Role,
    roster: Callable[[int], list[dict[str, Any]]] | None = None,
) -> BenchOrganization:
    """An organization with an API key of `role` and the amplifiers `roster(organization_id)`
    gives."""
    async for session in session_scope(app.state.sessionmaker):
        org = await keys_service.get_or_create_organization(session, name=name)
        _key, plain = await keys_service.create(
            session, organization_id=org.id, role=role, name="bench"
        )
        if roster is not None:
            await session.execute(insert(Amplifier), roster(org.id))
        seeded = BenchOrganization(id=org.id, key=plain)
    return seeded


async def create_campaign(
    http: httpx.AsyncClient,
    headers: dict[str, str],
    *,
    name: str = "Bench launch",
    intro: str = "Three things worth sharing this week.",
    messages: int = 3,
    variants: int = 0,
    attribution: bool = True,
) -> dict[str, Any]:
    """A draft campaign of `messages` messages on every bench network, through the API, each
    with `variants` copy variants beside its base text."""
    response = await http.post(
        "/api/v1/campaigns",
        headers=headers,
        json={
            "name": name,
            "subject": "Help us spread the word – bench",
            "intro": intro,
            "networks": NETWORKS,
            "attribution": attribution,
            "messages": [
                {
                    "text": f"Message {n}: we shipped something great",
                    "url": f"https://example.com/{n}",
                    "variants": [
                        {"text": f"Message {n}, wording {v + 1}: something great shipped"}
                        for v in range(variants)
                    ],
                }
                for n in range(messages)
            ],
        },
    )
    assert response.status_code == 201, response.text
    campaign: dict[str, Any] = response.json()
    return campaign
