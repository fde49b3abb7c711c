"""Hostile input answers a clear 4xx problem, never a 500; a 500 keeps the connection."""

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.core.config import Settings
from app.core.errors import PROBLEM_TYPES
from app.main import create_app
from tests.core.live import serve
from tests.factories import OrgClients

CAMPAIGNS = "/api/v1/campaigns"
OUT_OF_RANGE = [
    "0001-01-01T00:00:00+05:00",
    "9999-12-31T23:59:59-05:00",
    "0001-01-01",
    "9999-12-31",
]


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["type"] == PROBLEM_TYPES[status].uri
    return body


async def make_campaign(org: OrgClients) -> int:
    payload = {
        "name": "Launch",
        "subject": "Share it",
        "networks": ["x"],
        "messages": [{"text": "Out now", "url": "https://example.com/"}],
    }
    response = await org.editor.post(CAMPAIGNS, json=payload)
    assert response.status_code == 201, response.text
    campaign_id: int = response.json()["id"]
    return campaign_id


class TestControlCharacters:
    @pytest.mark.parametrize("query", ["q=%00", "tag=%00", "tag=ok&tag=a%00b", "q=%1b%5b0m"])
    async def test_in_roster_filters_is_422(self, org_a: OrgClients, query: str) -> None:
        body = assert_problem(await org_a.viewer.get(f"/api/v1/amplifiers?{query}"), 422)
        assert body["errors"][0]["loc"][0] == "query"

    async def test_in_a_time_zone_is_422(self, org_a: OrgClients) -> None:
        campaign_id = await make_campaign(org_a)
        url = f"{CAMPAIGNS}/{campaign_id}/stats/timeseries?tz=Europe%2FBerlin%00"
        assert_problem(await org_a.viewer.get(url), 422)

    async def test_in_a_path_segment_is_422(self, client: httpx.AsyncClient) -> None:
        assert_problem(await client.get("/u/abc%00def"), 422)
        assert_problem(await client.get("/problems/not%00found"), 422)

    async def test_in_a_json_string_is_422(self, org_a: OrgClients) -> None:
        response = await org_a.admin.post(
            "/api/v1/keys", json={"role": "viewer", "name": "wall\x00board"}
        )
        body = assert_problem(response, 422)
        assert body["errors"][0]["loc"] == ["body", "name"]

    async def test_unknown_parameters_are_not_judged(self, org_a: OrgClients) -> None:
        assert (await org_a.viewer.get("/api/v1/amplifiers?unknown=%00")).status_code == 200


class TestExtremeTimes:
    @pytest.mark.parametrize("moment", OUT_OF_RANGE)
    async def test_leaderboard_bounds_are_422(self, org_a: OrgClients, moment: str) -> None:
        for name in ("since", "until"):
            response = await org_a.viewer.get("/api/v1/leaderboard", params={name: moment})
            assert_problem(response, 422)

    @pytest.mark.parametrize("moment", OUT_OF_RANGE)
    async def test_timeseries_bounds_are_422(self, org_a: OrgClients, moment: str) -> None:
        campaign_id = await make_campaign(org_a)
        url = f"{CAMPAIGNS}/{campaign_id}/stats/timeseries"
        for interval in ("hour", "day"):
            for name in ("since", "until"):
                params = {name: moment, "interval": interval}
                assert_problem(await org_a.viewer.get(url, params=params), 422)

    async def test_dates_inside_the_range_still_work(self, org_a: OrgClients) -> None:
        params = {"since": "1970-01-01", "until": "9998-12-31"}
        assert (await org_a.viewer.get("/api/v1/leaderboard", params=params)).status_code == 200

    @pytest.mark.parametrize(
        "scheduled_at", ["0001-01-01T00:00:00Z", "0001-01-01T00:00:00+05:00", "2026-12-01T09:00:00"]
    )
    async def test_send_refuses_a_time_out_of_range_or_without_zone(
        self, org_a: OrgClients, scheduled_at: str
    ) -> None:
        campaign_id = await make_campaign(org_a)
        await org_a.editor.post("/api/v1/amplifiers", json={"email": "ada@example.com"})
        response = await org_a.editor.post(
            f"{CAMPAIGNS}/{campaign_id}/send", json={"scheduled_at": scheduled_at}
        )
        body = assert_problem(response, 422)
        assert body["errors"][0]["loc"] == ["body", "scheduled_at"]
        campaign = (await org_a.viewer.get(f"{CAMPAIGNS}/{campaign_id}")).json()
        assert campaign["status"] == "draft"


class TestBodies:
    async def test_malformed_json_is_400(self, org_a: OrgClients) -> None:
        response = await org_a.editor.post(
            CAMPAIGNS, content=b"{not json", headers={"content-type": "application/json"}
        )
        assert_problem(response, 400)

    async def test_malformed_json_import_is_400(self, org_a: OrgClients) -> None:
        response = await org_a.editor.post(
            "/api/v1/amplifiers/import",
            content=b"[{", headers={"content-type": "application/json"},
        )  # fmt: skip
        assert_problem(response, 400)

    @pytest.mark.parametrize(
        "content_type", ["text/plain", "application/x-www-form-urlencoded", None]
    )
    async def test_json_operation_with_another_content_type_is_415(
        self, org_a: OrgClients, content_type: str | None
    ) -> None:
        headers = {"content-type": content_type} if content_type else {}
        response = await org_a.editor.post(CAMPAIGNS, content=b'{"name": "x"}', headers=headers)
        assert_problem(response, 415)

    async def test_send_without_a_body_sends_now(self, org_a: OrgClients) -> None:
        campaign_id = await make_campaign(org_a)
        await org_a.editor.post("/api/v1/amplifiers", json={"email": "ada@example.com"})
        response = await org_a.editor.post(f"{CAMPAIGNS}/{campaign_id}/send")
        assert response.status_code == 202, response.text
        assert response.json()["status"] == "sending"

    async def test_send_with_a_json_null_body_is_422(self, org_a: OrgClients) -> None:
        campaign_id = await make_campaign(org_a)
        response = await org_a.editor.post(
            f"{CAMPAIGNS}/{campaign_id}/send",
            content=b"null", headers={"content-type": "application/json"},
        )  # fmt: skip
        assert_problem(response, 422)


class TestProblemPages:
    async def test_every_problem_type_has_a_page(self, client: httpx.AsyncClient) -> None:
        for problem in PROBLEM_TYPES.values():
            response = await client.get(problem.uri)
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/html")
            assert problem.title in response.text
        index = await client.get("/problems")
        assert all(p.uri in index.text for p in PROBLEM_TYPES.values())

    async def test_an_answer_type_resolves_on_the_service(self, client: httpx.AsyncClient) -> None:
        body = assert_problem(await client.get("/api/v1/campaigns"), 401)
        assert (await client.get(body["type"])).status_code == 200

    async def test_unknown_problem_type_is_404(self, client: httpx.AsyncClient) -> None:
        assert_problem(await client.get("/problems/nothing"), 404)


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str) -> bytes:
    writer.write(f"GET {path} HTTP/1.1\r\nHost: test\r\n\r\n".encode())
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    await reader.readexactly(length)
    return head


class TestServerErrors:
    async def test_a_500_is_a_problem_and_keeps_the_connection(
        self, settings: Settings, tmp_path: Path
    ) -> None:
        app: FastAPI = create_app(settings)

        async def broken() -> None:
            raise RuntimeError("a bug")

        app.add_api_route("/broken", broken)
        with serve(app) as base_url:
            host, port = base_url.removeprefix("http://").split(":")
            reader, writer = await asyncio.open_connection(host, int(port))
            try:
                first = await _exchange(reader, writer, "/broken")
                assert first.startswith(b"HTTP/1.1 500")
                assert b"application/problem+json" in first
                assert b"connection: close" not in first.lower()
                second = await _exchange(reader, writer, "/healthz")  # same connection
                assert second.startswith(b"HTTP/1.1 200")
            finally:
                writer.close()


class TestMethodNotAllowed:
    async def test_allow_lists_every_method_of_the_path(self, client: httpx.AsyncClient) -> None:
        response = await client.request("OPTIONS", "/api/v1/campaigns/1/messages/2")
        body = assert_problem(response, 405)
        assert body["title"] == "Method not allowed"
        assert response.headers["allow"] == "DELETE, GET, PATCH"
        assert (await client.put("/api/v1/campaigns")).headers["allow"] == "GET, POST"
