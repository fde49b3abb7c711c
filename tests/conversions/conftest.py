"""A sent campaign whose visit links hand out click ids, and helpers to follow them."""

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import select

from app.models import Link
from tests.factories import OrgClients
from tests.tracking import conftest as tracking
from tests.tracking.conftest import CHROME

clock = tracking.clock
sent_campaign = tracking.sent_campaign

API = "/api/v1"


def click_id_of(response: httpx.Response, param: str = "amp_cid") -> str | None:
    """The click id a redirect carried to the landing page, if any."""
    assert response.status_code == 302, response.text
    values = parse_qs(urlsplit(response.headers["location"]).query).get(param)
    return values[0] if values else None


async def visit(client: httpx.AsyncClient, code: str, agent: str = CHROME) -> str | None:
    return click_id_of(await client.get(f"/r/{code}", headers={"user-agent": agent}))


@pytest.fixture
def org_campaign(client: httpx.AsyncClient, sessionmaker) -> Callable[..., Any]:
    """Create and send a one-amplifier campaign in `org`; returns its visit code per network."""

    async def make(
        org: OrgClients, *, url: str = "https://shop.example/p", **fields: Any
    ) -> dict[str, str]:
        amplifier = await org.editor.post(
            f"{API}/amplifiers", json={"email": f"amp{org.organization_id}@example.com"}
        )
        assert amplifier.status_code == 201, amplifier.text
        created = await org.editor.post(
            f"{API}/campaigns",
            json={
                "name": "Shop",
                "subject": "Shop",
                "networks": ["linkedin", "x"],
                "messages": [{"text": "Buy", "url": url}],
                **fields,
            },
        )
        assert created.status_code == 201, created.text
        campaign = created.json()
        sent = await org.editor.post(f"{API}/campaigns/{campaign['id']}/send")
        assert sent.status_code == 202, sent.text
        async with sessionmaker() as session:
            links = (
                await session.scalars(
                    select(Link).where(Link.campaign_id == campaign["id"], Link.kind == "visit")
                )
            ).all()
        return {link.network: link.code for link in links}

    return make
