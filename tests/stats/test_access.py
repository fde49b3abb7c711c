"""Who may read and change statistics: every role reads, editors and admins set CPCs, other
organizations see nothing (404), no key is 401."""

import asyncio

from tests.stats.conftest import API, LAUNCH

CPC_BODY = {"x": {"amount": 0.5, "currency": "USD"}}


def read_urls(scenario) -> list[str]:
    launch = scenario.campaign[LAUNCH]
    return [
        f"{API}/campaigns/{launch}/stats",
        f"{API}/campaigns/{launch}/stats/amplifiers",
        f"{API}/messages/{scenario.messages[(LAUNCH, 0)]}/stats",
        f"{API}/amplifiers/{scenario.amplifier['ada']}/stats",
        f"{API}/campaigns/{launch}/stats/timeseries?since=2026-11-20&until=2026-11-21",
        f"{API}/leaderboard?since=2026-11-20",
        f"{API}/settings/cpc",
        f"{API}/campaigns/{launch}/stats.csv",
    ]


def id_urls(scenario) -> list[str]:
    """The routes naming one of org A's ids (the stream included: its 404 comes first)."""
    launch = scenario.campaign[LAUNCH]
    return [
        f"{API}/campaigns/{launch}/stats",
        f"{API}/campaigns/{launch}/stats/amplifiers",
        f"{API}/messages/{scenario.messages[(LAUNCH, 0)]}/stats",
        f"{API}/amplifiers/{scenario.amplifier['ada']}/stats",
        f"{API}/campaigns/{launch}/stats/timeseries?since=2026-11-20&until=2026-11-21",
        f"{API}/campaigns/{launch}/stats.csv",
        f"{API}/campaigns/{launch}/stats/stream",
    ]


class TestRoles:
    async def test_every_role_reads_every_stats_route(self, scenario) -> None:
        for role in (scenario.org.viewer, scenario.org.editor, scenario.org.admin):
            for url in read_urls(scenario):
                response = await role.get(url)
                assert response.status_code == 200, (url, response.status_code, response.text)

    async def test_only_editors_and_admins_set_cpcs(self, org_a) -> None:
        response = await org_a.viewer.put(f"{API}/settings/cpc", json=CPC_BODY)
        assert response.status_code == 403
        assert response.headers["content-type"].startswith("application/problem+json")
        for role in (org_a.editor, org_a.admin):
            response = await role.put(f"{API}/settings/cpc", json=CPC_BODY)
            assert response.status_code == 200, response.text
            assert response.json()["x"] == {"amount": 0.5, "currency": "USD"}

    async def test_no_key_is_401(self, scenario, client) -> None:
        async with asyncio.timeout(20):  # a stream that opened would never end
            for url in [*read_urls(scenario), f"{API}/campaigns/1/stats/stream"]:
                response = await client.get(url)
                assert response.status_code == 401, url
        response = await client.put(f"{API}/settings/cpc", json=CPC_BODY)
        assert response.status_code == 401


class TestTenancy:
    async def test_foreign_and_unknown_ids_are_404(self, scenario, org_b) -> None:
        async with asyncio.timeout(20):  # a stream that opened would never end
            for url in id_urls(scenario):
                response = await org_b.viewer.get(url)
                assert response.status_code == 404, (url, response.status_code)
                assert response.headers["content-type"].startswith("application/problem+json")
        unknown = 999_999
        for url in (
            f"{API}/campaigns/{unknown}/stats",
            f"{API}/campaigns/{unknown}/stats.csv",
            f"{API}/messages/{unknown}/stats",
            f"{API}/amplifiers/{unknown}/stats",
        ):
            response = await scenario.org.viewer.get(url)
            assert response.status_code == 404, url

    async def test_another_organizations_numbers_stay_apart(self, scenario, org_b) -> None:
        board = await org_b.viewer.get(f"{API}/leaderboard")
        assert board.json() == {"items": [], "next_cursor": None}
        await scenario.org.editor.put(f"{API}/settings/cpc", json=CPC_BODY)
        theirs = await org_b.viewer.get(f"{API}/settings/cpc")
        assert theirs.json()["x"] == {"amount": 0.38, "currency": "USD"}
