"""Metrics, request ids and request logs, through the real app."""

import io
import json
import logging
import re

import httpx
import pytest

from app.core.logging import log_handler
from app.main import create_app
from tests.factories import metric_sample, scrape_metrics
from tests.tracking.conftest import (
    CHROME,
    sent_campaign,  # noqa: F401  (a fixture)
)


class TestMetrics:
    async def test_redirects_clicks_and_api_requests_are_counted(
        self,
        client,
        app,
        org_a,
        sent_campaign,  # noqa: F811  (the fixture imported above)
    ) -> None:
        sent = await sent_campaign()
        code = sent.code("ada@example.com", 0, "x", "visit")
        before = await scrape_metrics(client)
        for _ in range(3):
            assert (
                await client.get(f"/r/{code}", headers={"user-agent": CHROME})
            ).status_code == 302
        assert (await client.get("/r/nope-nope")).status_code == 404
        await app.state.tracking.recorder.flush()
        await org_a.viewer.get(f"/api/v1/campaigns/{sent.campaign_id}/stats")
        after = await scrape_metrics(client)

        def grew(name: str, **labels: str) -> float:
            return metric_sample(after, name, **labels) - metric_sample(before, name, **labels)

        redirect = {"route": "/r/{code}", "method": "GET"}
        assert grew("amplify_http_requests_total", **redirect, status="302") == 3
        assert grew("amplify_http_requests_total", **redirect, status="404") == 1
        assert grew("amplify_redirect_duration_seconds_count") == 3
        assert grew("amplify_clicks_recorded_total") == 3
        stats = {"route": "/api/v1/campaigns/{campaign_id}/stats", "method": "GET"}
        assert grew("amplify_http_requests_total", **stats, status="200") == 1
        assert "amplify_deliveries_pending " in after
        assert "amplify_click_batch_size_bucket" in after

    async def test_a_metrics_token_is_required_once_set(self, settings) -> None:
        guarded = create_app(settings.model_copy(update={"metrics_token": "s3cret-metrics-token"}))
        async with guarded.router.lifespan_context(guarded):
            transport = httpx.ASGITransport(app=guarded)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                assert (await http.get("/metrics")).status_code == 401
                wrong = {"authorization": "Bearer nope-nope-nope-nope"}
                assert (await http.get("/metrics", headers=wrong)).status_code == 401
                right = {"authorization": "Bearer s3cret-metrics-token"}
                assert (await http.get("/metrics", headers=right)).status_code == 200


class TestRequestIds:
    async def test_generated_echoed_and_sanitized(self, client) -> None:
        generated = (await client.get("/healthz")).headers["x-request-id"]
        assert re.fullmatch(r"[0-9a-f]{32}", generated)
        given = await client.get("/healthz", headers={"x-request-id": "lb-42.abc"})
        assert given.headers["x-request-id"] == "lb-42.abc"
        hostile = await client.get("/healthz", headers={"x-request-id": "a b\\<script>"})
        assert re.fullmatch(r"[0-9a-f]{32}", hostile.headers["x-request-id"])


class TestRequestLogs:
    @pytest.fixture
    def lines(self):
        stream = io.StringIO()
        handler = log_handler(stream, json_lines=True)
        logger = logging.getLogger("amplify")
        logger.addHandler(handler)
        old_level = logger.level
        logger.setLevel(logging.INFO)
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
        logger.removeHandler(handler)
        logger.setLevel(old_level)

    async def test_json_lines_with_request_id_and_no_address_or_key(self, org_a, lines) -> None:
        response = await org_a.viewer.get("/api/v1/amplifiers", headers={"x-request-id": "req-1"})
        assert response.status_code == 200
        logged = [line for line in lines() if line["logger"] == "amplify.http"]
        assert logged and logged[-1]["request_id"] == "req-1"
        assert logged[-1]["message"].startswith("GET /api/v1/amplifiers 200")
        text = json.dumps(lines())
        assert "127.0.0.1" not in text
        assert org_a.viewer.key not in text

    def test_keys_that_reach_a_message_are_masked(self, lines) -> None:
        logging.getLogger("amplify.test").warning("key %s", "amp_abcdefghijklmnopqrstuvwxyz")
        assert lines()[-1]["message"] == "key amp_***"


def test_uvicorn_access_log_stays_off_after_configuring(monkeypatch) -> None:
    # uvicorn logs each request with the client's address whenever "uvicorn.access" has a
    # handler anywhere up the tree; configuring the root logger must not give it one.
    from app.core.logging import configure_logging

    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        configure_logging(json_lines=True)
        assert not logging.getLogger("uvicorn.access").hasHandlers()
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved[0]:
            root.addHandler(handler)
        root.setLevel(saved[1])
