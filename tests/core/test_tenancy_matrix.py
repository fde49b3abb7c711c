"""Every /api/v1 route with an id answers 404 to another organization's key, and 401 without one.

The matrix is built from the app's own routes: a new route with an id parameter this test does
not know fails it until the route is added here.
"""

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import select

from app.models import Link, LinkKind
from tests.factories import OrgClients
from tests.tracking.conftest import CHROME

BODIES: dict[tuple[str, str], Any] = {
    ("POST", "/api/v1/campaigns/{campaign_id}/messages"): {
        "text": "Hello",
        "url": "https://example.com/x",
    },
    ("PATCH", "/api/v1/campaigns/{campaign_id}/messages/{message_id}"): {"text": "Changed"},
    ("PATCH", "/api/v1/campaigns/{campaign_id}"): {"name": "Changed"},
    ("PATCH", "/api/v1/amplifiers/{amplifier_id}"): {"name": "Changed"},
    ("PATCH", "/api/v1/webhooks/{webhook_id}"): {"description": "Changed"},
}


def _api_routes(app) -> list[tuple[str, str]]:
    """Every (method, path) under /api/v1, from the OpenAPI document the app serves."""
    return [
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        if path.startswith("/api/v1")
        for method in operations
    ]


async def _org_b_ids(org_b: OrgClients) -> dict[str, int]:
    amplifier = await org_b.editor.post("/api/v1/amplifiers", json={"email": "b@example.com"})
    campaign = await org_b.editor.post(
        "/api/v1/campaigns",
        json={
            "name": "B",
            "subject": "B",
            "networks": ["linkedin"],
            "messages": [{"text": "B", "url": "https://example.com/b"}],
        },
    )
    keys = await org_b.admin.get("/api/v1/keys")
    webhook = await org_b.admin.post(
        "/api/v1/webhooks", json={"url": "https://hooks.example.com/b", "events": ["campaign.sent"]}
    )
    assert amplifier.status_code == 201 and campaign.status_code == 201
    assert webhook.status_code == 201
    return {
        "amplifier_id": amplifier.json()["id"],
        "campaign_id": campaign.json()["id"],
        "message_id": campaign.json()["messages"][0]["id"],
        "key_id": keys.json()["items"][0]["id"],
        "webhook_id": webhook.json()["id"],
    }


class TestTenancyMatrix:
    async def test_foreign_ids_are_404_on_every_route(
        self, app, org_a: OrgClients, org_b: OrgClients
    ) -> None:
        ids = await _org_b_ids(org_b)
        checked = 0
        for method, path in _api_routes(app):
            params = re.findall(r"{(\w+)}", path)
            if not params:
                continue
            unknown = set(params) - ids.keys()
            assert not unknown, f"add {unknown} of {method} {path} to the tenancy matrix"
            url = path.format(**ids)
            body = BODIES.get((method, path))
            response = await org_a.admin.request(method, url, json=body)
            assert response.status_code == 404, (method, url, response.status_code, response.text)
            assert response.headers["content-type"].startswith("application/problem+json")
            checked += 1
        assert checked >= 15
        # Nothing of org B changed.
        campaign = await org_b.viewer.get(f"/api/v1/campaigns/{ids['campaign_id']}")
        assert campaign.json()["name"] == "B" and campaign.json()["status"] == "draft"
        amplifier = await org_b.viewer.get(f"/api/v1/amplifiers/{ids['amplifier_id']}")
        assert amplifier.json()["name"] is None

    async def test_every_api_route_needs_a_key(self, app, client, org_a: OrgClients) -> None:
        for method, path in _api_routes(app):
            url = re.sub(r"{\w+}", "1", path)
            response = await client.request(method, url)
            assert response.status_code == 401, (method, url)

    async def test_viewer_cannot_write_anywhere(self, app, org_a: OrgClients) -> None:
        for method, path in _api_routes(app):
            if method == "GET":
                continue
            url = re.sub(r"{\w+}", "1", path)
            response = await org_a.viewer.request(method, url, json=BODIES.get((method, path)))
            assert response.status_code == 403, (method, url, response.status_code)

    async def test_huge_and_negative_ids_are_404(self, app, org_a: OrgClients) -> None:
        for method, path in _api_routes(app):
            if "{" not in path:
                continue
            for bad in ("99999999999999", "0", "-1"):
                url = re.sub(r"{\w+}", bad, path)
                response = await org_a.admin.request(method, url, json=BODIES.get((method, path)))
                assert response.status_code in (404, 422), (method, url, response.status_code)


async def _click_id(client, sessionmaker, org: OrgClients, email: str) -> str:
    """A click id of a human visit on a new campaign of `org`."""
    amplifier = await org.editor.post("/api/v1/amplifiers", json={"email": email})
    campaign = await org.editor.post(
        "/api/v1/campaigns",
        json={
            "name": "Shop",
            "subject": "Shop",
            "networks": ["x"],
            "messages": [{"text": "Buy", "url": "https://shop.example/"}],
        },
    )
    assert amplifier.status_code == 201 and campaign.status_code == 201
    assert (await org.editor.post(f"/api/v1/campaigns/{campaign.json()['id']}/send")).is_success
    async with sessionmaker() as session:
        code = await session.scalar(
            select(Link.code).where(
                Link.campaign_id == campaign.json()["id"], Link.kind == LinkKind.VISIT
            )
        )
    response = await client.get(f"/r/{code}", headers={"user-agent": CHROME})
    return parse_qs(urlsplit(response.headers["location"]).query)["amp_cid"][0]


class TestConversionTenancy:
    async def test_another_organizations_click_ids_and_external_ids(
        self, client, sessionmaker, org_a: OrgClients, org_b: OrgClients
    ) -> None:
        theirs = await _click_id(client, sessionmaker, org_b, "b@example.com")
        ours = await _click_id(client, sessionmaker, org_a, "a@example.com")
        body = {"click_id": theirs, "event": "purchase", "external_id": "order-1"}
        foreign = await org_a.editor.post("/api/v1/conversions", json=body)
        assert foreign.status_code == 404, foreign.text
        assert (await org_b.editor.post("/api/v1/conversions", json=body)).status_code == 201
        # An external id is the organization's own: another's is no duplicate, and never
        # answers with their conversion (not even when our click id is unknown).
        assert (await org_a.editor.post("/api/v1/conversions", json=body)).status_code == 404
        mine = await org_a.editor.post("/api/v1/conversions", json={**body, "click_id": ours})
        assert mine.status_code == 201, mine.text
        imported = await org_a.editor.post(
            "/api/v1/conversions/import",
            content=f"click_id,event,external_id\n{theirs},purchase,order-2\n",
            headers={"content-type": "text/csv"},
        )
        assert imported.json()["created"] == 0 and imported.json()["skipped"] == 1
        campaigns = (await org_b.viewer.get("/api/v1/campaigns")).json()["items"]
        stats = await org_b.viewer.get(f"/api/v1/campaigns/{campaigns[0]['id']}/stats")
        assert stats.json()["conversions"] == 1
