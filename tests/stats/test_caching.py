"""ETag / If-None-Match on every cached stats answer (routes 1-6 and 8 of the stats contract)."""

from datetime import datetime

from tests.stats.conftest import API, FOLLOW, LAUNCH, at

NEW_READER = "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0"


def parse(timestamp: str) -> datetime:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00"))


def stats_urls(scenario) -> list[str]:
    launch = scenario.campaign[LAUNCH]
    window = "since=2026-11-20T08:00:00Z&until=2026-11-20T12:00:00Z"
    return [
        f"{API}/campaigns/{launch}/stats",
        f"{API}/campaigns/{launch}/stats/amplifiers",
        f"{API}/messages/{scenario.messages[(LAUNCH, 0)]}/stats",
        f"{API}/amplifiers/{scenario.amplifier['ada']}/stats",
        f"{API}/campaigns/{launch}/stats/timeseries?{window}",
        f"{API}/leaderboard",
        f"{API}/campaigns/{launch}/stats.csv",
    ]


class TestEtags:
    async def test_every_answer_has_a_strong_stable_tag(self, scenario) -> None:
        for url in stats_urls(scenario):
            first = await scenario.org.viewer.get(url)
            assert first.status_code == 200, (url, first.text)
            etag = first.headers.get("etag")
            assert etag, url
            assert not etag.startswith("W/"), url
            assert etag.startswith('"') and etag.endswith('"'), (url, etag)
            assert first.headers["cache-control"] == "private, no-cache", url
            again = await scenario.org.viewer.get(url)
            assert (again.headers["etag"], again.content) == (etag, first.content), url

    async def test_if_none_match(self, scenario) -> None:
        for url in stats_urls(scenario):
            etag = (await scenario.org.viewer.get(url)).headers["etag"]
            for header in (
                etag,
                "*",
                f'"not-it", {etag}',
                f"W/{etag}",
                f'W/"not-it",W/{etag}',
            ):
                response = await scenario.org.viewer.get(url, headers={"if-none-match": header})
                assert response.status_code == 304, (url, header, response.status_code)
                assert response.content == b"", (url, header)
                assert response.headers["etag"] == etag, (url, header)
            for header in ('"not-it"', 'W/"not-it", "nor-this"'):
                response = await scenario.org.viewer.get(url, headers={"if-none-match": header})
                assert response.status_code == 200, (url, header)
                assert response.content

    async def test_a_new_click_changes_every_tag(self, scenario) -> None:
        urls = stats_urls(scenario)
        before = {url: await scenario.org.viewer.get(url) for url in urls}
        updated_before = before[urls[0]].json()["updated_at"]
        # A new reader of ada's M1 linkedin visit link, inside the time series window: every
        # route above changes (visits, unique visitors, points).
        await scenario.click("ada", LAUNCH, 0, "linkedin", "visit", at(20, 11, 30), NEW_READER)
        await scenario.flush()
        for url in urls:
            old = before[url].headers["etag"]
            response = await scenario.org.viewer.get(url, headers={"if-none-match": old})
            assert response.status_code == 200, url
            assert response.headers["etag"] != old, url
            assert response.content != before[url].content, url
        stats = (await scenario.org.viewer.get(urls[0])).json()
        assert (stats["visits"], stats["unique_visitors"]) == (11, 10)  # was 10, 9
        assert parse(stats["updated_at"]) >= parse(updated_before)

    async def test_other_campaigns_clicks_leave_a_campaign_tag_alone(self, scenario) -> None:
        url = f"{API}/campaigns/{scenario.campaign[LAUNCH]}/stats"
        etag = (await scenario.org.viewer.get(url)).headers["etag"]
        await scenario.click("ada", FOLLOW, 0, "linkedin", "visit", at(21, 12, 0), NEW_READER)
        await scenario.flush()
        response = await scenario.org.viewer.get(url, headers={"if-none-match": etag})
        assert response.status_code == 304
