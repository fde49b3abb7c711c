"""Plain async factories for test data."""

import re
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.db import session_scope
from app.keys import service as keys_service
from app.models import Role


@dataclass
class RoleClient:
    """An httpx client bound to one API key."""

    http: httpx.AsyncClient
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return await self.http.request(method, url, headers=headers, **kwargs)

    async def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("GET", url, **kwargs)

    async def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("POST", url, **kwargs)

    async def patch(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("PATCH", url, **kwargs)

    async def put(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("PUT", url, **kwargs)

    async def delete(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("DELETE", url, **kwargs)


@dataclass
class OrgClients:
    organization_id: int
    admin: RoleClient
    editor: RoleClient
    viewer: RoleClient


async def make_org_clients(
    sessionmaker: async_sessionmaker[AsyncSession], http: httpx.AsyncClient, name: str
) -> OrgClients:
    keys: dict[Role, str] = {}
    async for session in session_scope(sessionmaker):
        org = await keys_service.get_or_create_organization(session, name=name)
        for role in Role:
            _key, plain = await keys_service.create(
                session, organization_id=org.id, role=role, name=f"{role} key"
            )
            keys[role] = plain
        org_id = org.id
    return OrgClients(
        organization_id=org_id,
        admin=RoleClient(http, keys[Role.ADMIN]),
        editor=RoleClient(http, keys[Role.EDITOR]),
        viewer=RoleClient(http, keys[Role.VIEWER]),
    )


def amplifier_payload(email: str, **fields: Any) -> dict[str, Any]:
    return {"email": email, **fields}


def campaign_payload(**fields: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "name": "Spring launch",
        "subject": "Help us spread the word",
        "networks": ["linkedin", "x"],
        "messages": [{"text": "We are launching!", "url": "https://example.com/launch"}],
    }
    payload.update(fields)
    return payload


def metric_sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in a Prometheus text exposition (0 when absent)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    pattern = re.escape(name) + (r"\{" + re.escape(wanted) + r"\}" if labels else "") + r" (\S+)"
    match = re.search("^" + pattern + "$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


async def scrape_metrics(client: httpx.AsyncClient) -> str:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return response.text
