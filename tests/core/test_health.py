from app.core.migrate import head_revision


class TestProbes:
    async def test_healthz(self, client) -> None:
        response = await client.get("/healthz")
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}

    async def test_readyz_reports_migration_head(self, client) -> None:
        response = await client.get("/readyz")
        assert response.status_code == 200
        assert response.json()["migration"] == head_revision()

    async def test_unknown_route_is_problem_json(self, client) -> None:
        response = await client.get("/api/v1/nothing-here")
        assert response.status_code == 404
        assert response.headers["content-type"].startswith("application/problem+json")

    async def test_oversized_body_is_413(self, client, org_a) -> None:
        body = b"x" * (11 * 1024 * 1024)
        response = await org_a.admin.post(
            "/api/v1/keys", content=body, headers={"content-type": "application/json"}
        )
        assert response.status_code == 413
        assert response.json()["status"] == 413
