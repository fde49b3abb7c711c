"""Helpers shared by the campaign tests."""

from typing import Any

import httpx
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.db import utcnow
from app.models import Campaign, CampaignStatus
from tests.factories import RoleClient, campaign_payload

CAMPAIGNS = "/api/v1/campaigns"


def message_payload(text: str = "Read our launch post", **fields: Any) -> dict[str, Any]:
    return {"text": text, "url": "https://example.com/launch", **fields}


async def create_campaign(client: RoleClient, **fields: Any) -> dict[str, Any]:
    response = await client.post(CAMPAIGNS, json=campaign_payload(**fields))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def set_status(
    sessionmaker: async_sessionmaker[AsyncSession], campaign_id: int, status: CampaignStatus
) -> None:
    """Move a campaign to a status directly, as the sending code would."""
    now = utcnow()
    values: dict[str, Any] = {"status": status}
    if status == CampaignStatus.SCHEDULED:
        values["scheduled_at"] = now
    if status == CampaignStatus.SENT:
        values["sent_at"] = now
    async with sessionmaker() as session:
        await session.execute(update(Campaign).where(Campaign.id == campaign_id).values(**values))
        await session.commit()


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert {"type", "title", "detail"} <= body.keys()
    return body


def assert_invalid(response: httpx.Response, *loc: str) -> list[dict[str, Any]]:
    """A 422 problem whose `errors` include one at `loc` (or below it)."""
    body = assert_problem(response, 422)
    errors: list[dict[str, Any]] = body["errors"]
    assert errors and all({"loc", "msg"} <= e.keys() for e in errors)
    if loc:
        assert any(e["loc"][: len(loc)] == list(loc) for e in errors), errors
    return errors
