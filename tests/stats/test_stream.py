"""GET /campaigns/{id}/stats/stream: server-sent events of the campaign stats."""

import asyncio
import json
from typing import Any

import httpx

from tests.stats.conftest import API, LAUNCH, at

NEW_READER = "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0"


async def first_event(response: httpx.Response) -> dict[str, str]:
    """The fields of the first event in the stream (comments skipped)."""
    fields: dict[str, str] = {}
    async for line in response.aiter_lines():
        if line == "":
            if fields:
                return fields
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        fields[name] = f"{fields[name]}\n{value}" if name in fields else value
    raise AssertionError(f"the stream ended before an event: {fields}")


class TestStatsStream:
    async def test_first_event_is_the_current_stats(self, scenario, streaming_client) -> None:
        url = f"{API}/campaigns/{scenario.campaign[LAUNCH]}/stats"
        stats = await scenario.org.viewer.get(url)
        headers = scenario.org.viewer.headers
        async with asyncio.timeout(10):
            async with streaming_client.stream("GET", f"{url}/stream", headers=headers) as events:
                assert events.status_code == 200
                assert events.headers["content-type"].startswith("text/event-stream")
                event = await first_event(events)
        assert event["event"] == "stats"
        assert event["id"] == stats.headers["etag"]
        data: Any = json.loads(event["data"])
        assert data == stats.json()
        assert data["share_clicks"] == 8

    async def test_last_event_id_skips_to_the_next_change(self, scenario, streaming_client) -> None:
        url = f"{API}/campaigns/{scenario.campaign[LAUNCH]}/stats"
        etag = (await scenario.org.viewer.get(url)).headers["etag"]
        headers = {**scenario.org.viewer.headers, "last-event-id": etag}
        async with asyncio.timeout(10):
            async with streaming_client.stream("GET", f"{url}/stream", headers=headers) as events:
                assert events.status_code == 200
                await scenario.click(
                    "ada", LAUNCH, 0, "linkedin", "visit", at(21, 12, 0), NEW_READER
                )
                await scenario.flush()
                event = await first_event(events)
        assert event["event"] == "stats"
        assert event["id"] != etag
        data = json.loads(event["data"])
        assert data["visits"] == 11  # v1-v10 and this one
        fresh = await scenario.org.viewer.get(url)
        assert (event["id"], data) == (fresh.headers["etag"], fresh.json())
