from sqlalchemy import select

from app.models import ApiKey
from tests.factories import OrgClients


class TestAuthentication:
    async def test_missing_key_is_401_problem(self, client, org_a: OrgClients) -> None:
        response = await client.get("/api/v1/keys")
        assert response.status_code == 401
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json()["status"] == 401

    async def test_unknown_key_is_401(self, client, org_a: OrgClients) -> None:
        response = await client.get(
            "/api/v1/keys", headers={"Authorization": "Bearer amp_not-a-real-key"}
        )
        assert response.status_code == 401

    async def test_key_is_stored_hashed_and_last_used_recorded(
        self, org_a: OrgClients, sessionmaker
    ) -> None:
        assert (await org_a.admin.get("/api/v1/keys")).status_code == 200
        async with sessionmaker() as session:
            keys = (await session.scalars(select(ApiKey))).all()
        assert all(org_a.admin.key not in (k.key_hash, k.key_prefix) for k in keys)
        used = [k for k in keys if k.last_used_at is not None]
        assert len(used) == 1


class TestCreateKey:
    async def test_admin_creates_viewer_key_shown_once(self, org_a: OrgClients) -> None:
        response = await org_a.admin.post(
            "/api/v1/keys", json={"role": "viewer", "name": "wallboard"}
        )
        assert response.status_code == 201
        body = response.json()
        assert {"id", "key", "role", "name"} <= body.keys()
        assert body["role"] == "viewer" and body["name"] == "wallboard"
        assert body["key"].startswith("amp_") and len(body["key"]) >= 40
        listed = (await org_a.admin.get("/api/v1/keys")).json()
        assert all("key" not in item for item in listed["items"])
        assert body["id"] in [item["id"] for item in listed["items"]]
        viewer_call = await org_a.admin.http.get(
            "/api/v1/keys", headers={"Authorization": f"Bearer {body['key']}"}
        )
        assert viewer_call.status_code == 403

    async def test_editor_and_viewer_cannot_manage_keys(self, org_a: OrgClients) -> None:
        for role_client in (org_a.editor, org_a.viewer):
            assert (await role_client.get("/api/v1/keys")).status_code == 403
            response = await role_client.post("/api/v1/keys", json={"role": "admin"})
            assert response.status_code == 403

    async def test_unknown_role_is_422(self, org_a: OrgClients) -> None:
        response = await org_a.admin.post("/api/v1/keys", json={"role": "owner"})
        assert response.status_code == 422
        assert response.json()["errors"][0]["loc"] == ["body", "role"]

    async def test_name_with_newline_is_422(self, org_a: OrgClients) -> None:
        response = await org_a.admin.post("/api/v1/keys", json={"role": "viewer", "name": "a\nb"})
        assert response.status_code == 422


class TestRevokeKey:
    async def test_revoked_key_stops_working(self, org_a: OrgClients) -> None:
        created = (await org_a.admin.post("/api/v1/keys", json={"role": "editor"})).json()
        response = await org_a.admin.delete(f"/api/v1/keys/{created['id']}")
        assert response.status_code == 204
        call = await org_a.admin.http.get(
            "/api/v1/keys", headers={"Authorization": f"Bearer {created['key']}"}
        )
        assert call.status_code == 401
        assert (await org_a.admin.delete(f"/api/v1/keys/{created['id']}")).status_code == 404

    async def test_last_admin_key_cannot_be_revoked(self, org_a: OrgClients) -> None:
        keys = (await org_a.admin.get("/api/v1/keys")).json()["items"]
        admin = next(k for k in keys if k["role"] == "admin")
        response = await org_a.admin.delete(f"/api/v1/keys/{admin['id']}")
        assert response.status_code == 409

    async def test_foreign_key_id_is_404(self, org_a: OrgClients, org_b: OrgClients) -> None:
        keys = (await org_b.admin.get("/api/v1/keys")).json()["items"]
        response = await org_a.admin.delete(f"/api/v1/keys/{keys[0]['id']}")
        assert response.status_code == 404
