from typing import Any

import pytest

from tests.factories import OrgClients
from tests.webhooks.conftest import create_endpoint

HOOK = {"url": "https://hooks.example.com/amplify", "events": ["campaign.sent", "clicks.recorded"]}


class TestCreateWebhook:
    async def test_secret_shown_once(self, org_a: OrgClients) -> None:
        response = await org_a.admin.post("/api/v1/webhooks", json={**HOOK, "description": "CRM"})
        assert response.status_code == 201
        body = response.json()
        assert body["secret"].startswith("whsec_")
        assert body["events"] == ["campaign.sent", "clicks.recorded"]
        assert (body["enabled"], body["description"]) == (True, "CRM")
        shown = await org_a.admin.get(f"/api/v1/webhooks/{body['id']}")
        assert shown.status_code == 200
        assert "secret" not in shown.json()
        listed = await org_a.admin.get("/api/v1/webhooks")
        assert [w["id"] for w in listed.json()["items"]] == [body["id"]]
        assert "secret" not in listed.json()["items"][0]

    async def test_each_endpoint_gets_its_own_secret(self, org_a: OrgClients) -> None:
        first = await org_a.admin.post("/api/v1/webhooks", json=HOOK)
        second = await org_a.admin.post("/api/v1/webhooks", json=HOOK)
        assert first.json()["secret"] != second.json()["secret"]

    @pytest.mark.parametrize(
        "url",
        [
            "http://127.0.0.1:8080/hook",
            "http://10.0.0.1/hook",
            "http://169.254.169.254/latest/meta-data/",
            "http://[::1]/hook",
            "http://224.0.0.1/hook",
            "http://localhost/hook",
            "ftp://hooks.example.com/",
            "https://user:pw@hooks.example.com/",
        ],
    )
    async def test_private_or_bad_urls_refused(self, org_a: OrgClients, url: str) -> None:
        response = await org_a.admin.post("/api/v1/webhooks", json={**HOOK, "url": url})
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"
        assert (await org_a.admin.get("/api/v1/webhooks")).json()["items"] == []

    @pytest.mark.parametrize(
        "payload",
        [
            {**HOOK, "events": []},
            {**HOOK, "events": ["campaign.exploded"]},
            {**HOOK, "extra": 1},
            {"events": ["campaign.sent"]},
        ],
    )
    async def test_invalid_body_refused(self, org_a: OrgClients, payload: dict[str, Any]) -> None:
        response = await org_a.admin.post("/api/v1/webhooks", json=payload)
        assert response.status_code == 422

    async def test_loopback_allowed_when_private_targets_are_on(
        self, private_org: OrgClients
    ) -> None:
        body = await create_endpoint(private_org, "http://127.0.0.1:9/hook", ["webhook.test"])
        assert body["url"] == "http://127.0.0.1:9/hook"


class TestWebhookAccess:
    @pytest.mark.parametrize("role", ["editor", "viewer"])
    async def test_admin_only(self, org_a: OrgClients, role: str) -> None:
        client = getattr(org_a, role)
        assert (await client.post("/api/v1/webhooks", json=HOOK)).status_code == 403
        assert (await client.get("/api/v1/webhooks")).status_code == 403

    async def test_foreign_ids_answer_404(self, org_a: OrgClients, org_b: OrgClients) -> None:
        hook_id = (await org_a.admin.post("/api/v1/webhooks", json=HOOK)).json()["id"]
        for method, path in [
            ("GET", f"/api/v1/webhooks/{hook_id}"),
            ("PATCH", f"/api/v1/webhooks/{hook_id}"),
            ("DELETE", f"/api/v1/webhooks/{hook_id}"),
            ("POST", f"/api/v1/webhooks/{hook_id}/test"),
            ("GET", f"/api/v1/webhooks/{hook_id}/attempts"),
        ]:
            kwargs = {"json": {"description": "x"}} if method == "PATCH" else {}
            response = await org_b.admin.request(method, path, **kwargs)
            assert response.status_code == 404, (method, path)
        assert (await org_b.admin.get("/api/v1/webhooks")).json()["items"] == []

    @pytest.mark.parametrize("hook_id", [0, -1, 2**31, 2**63])
    async def test_out_of_range_ids_answer_404(self, org_a: OrgClients, hook_id: int) -> None:
        assert (await org_a.admin.get(f"/api/v1/webhooks/{hook_id}")).status_code == 404


class TestUpdateWebhook:
    async def test_change_events_url_and_disable(self, org_a: OrgClients) -> None:
        hook_id = (await org_a.admin.post("/api/v1/webhooks", json=HOOK)).json()["id"]
        response = await org_a.admin.patch(
            f"/api/v1/webhooks/{hook_id}",
            json={
                "events": ["delivery.failed"],
                "url": "https://other.example.com/h",
                "enabled": False,
            },
        )
        assert response.status_code == 200
        body = response.json()
        assert body["events"] == ["delivery.failed"]
        assert body["url"] == "https://other.example.com/h"
        assert body["enabled"] is False
        again = await org_a.admin.patch(f"/api/v1/webhooks/{hook_id}", json={"enabled": True})
        assert (again.json()["enabled"], again.json()["disabled_reason"]) == (True, None)

    async def test_private_url_refused(self, org_a: OrgClients) -> None:
        hook_id = (await org_a.admin.post("/api/v1/webhooks", json=HOOK)).json()["id"]
        response = await org_a.admin.patch(
            f"/api/v1/webhooks/{hook_id}", json={"url": "http://192.168.0.10/"}
        )
        assert response.status_code == 422
        shown = await org_a.admin.get(f"/api/v1/webhooks/{hook_id}")
        assert shown.json()["url"] == HOOK["url"]


class TestDeleteWebhook:
    async def test_gone(self, org_a: OrgClients) -> None:
        hook_id = (await org_a.admin.post("/api/v1/webhooks", json=HOOK)).json()["id"]
        assert (await org_a.admin.delete(f"/api/v1/webhooks/{hook_id}")).status_code == 204
        assert (await org_a.admin.get(f"/api/v1/webhooks/{hook_id}")).status_code == 404
        assert (await org_a.admin.delete(f"/api/v1/webhooks/{hook_id}")).status_code == 404


class TestListWebhooks:
    async def test_paginated(self, org_a: OrgClients) -> None:
        ids = [
            (await org_a.admin.post("/api/v1/webhooks", json=HOOK)).json()["id"] for _ in range(3)
        ]
        first = (await org_a.admin.get("/api/v1/webhooks?limit=2")).json()
        assert [w["id"] for w in first["items"]] == ids[:2]
        rest = await org_a.admin.get(f"/api/v1/webhooks?limit=2&cursor={first['next_cursor']}")
        assert [w["id"] for w in rest.json()["items"]] == ids[2:]
        assert rest.json()["next_cursor"] is None
