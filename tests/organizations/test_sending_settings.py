"""GET|PUT /api/v1/settings/sending: per organization, admins write, viewers read."""

import pytest

from tests.campaigns.conftest import assert_invalid, assert_problem
from tests.factories import OrgClients

SETTINGS = "/api/v1/settings/sending"
DEFAULTS = {
    "max_digests_per_week": None,
    "daily_at": "09:00",
    "weekly_on": "monday",
    "default_timezone": "UTC",
    "show_impact": True,
    "public_leaderboard": False,
}


class TestSendingSettings:
    async def test_defaults(self, org_a: OrgClients) -> None:
        response = await org_a.viewer.get(SETTINGS)
        assert response.status_code == 200
        assert response.json() == DEFAULTS

    async def test_admin_changes_the_fields_given_for_its_organization_only(
        self, org_a: OrgClients, org_b: OrgClients
    ) -> None:
        response = await org_a.admin.put(SETTINGS, json={"public_leaderboard": True})
        assert response.json() == {**DEFAULTS, "public_leaderboard": True}
        response = await org_a.admin.put(SETTINGS, json={"show_impact": False})
        assert response.json() == {**DEFAULTS, "show_impact": False, "public_leaderboard": True}
        assert (await org_a.viewer.get(SETTINGS)).json()["show_impact"] is False
        assert (await org_b.viewer.get(SETTINGS)).json() == DEFAULTS

    async def test_slots_cap_and_time_zone(self, org_a: OrgClients) -> None:
        wanted = {
            "max_digests_per_week": 3,
            "daily_at": "07:45",
            "weekly_on": "friday",
            "default_timezone": "Europe/Copenhagen",
        }
        response = await org_a.admin.put(SETTINGS, json=wanted)
        assert response.status_code == 200, response.text
        assert response.json() == {**DEFAULTS, **wanted}
        response = await org_a.admin.put(SETTINGS, json={"max_digests_per_week": None})
        assert response.json()["max_digests_per_week"] is None  # null removes the cap
        assert (await org_a.viewer.get(SETTINGS)).json()["daily_at"] == "07:45"

    @pytest.mark.parametrize("role", ["editor", "viewer"])
    async def test_only_admins_write(self, org_a: OrgClients, role: str) -> None:
        response = await getattr(org_a, role).put(SETTINGS, json={"show_impact": False})
        assert_problem(response, 403)

    @pytest.mark.parametrize(
        "body",
        [
            {"show_impact": None},
            {"show_impact": "yes"},
            {"unknown": 3},
            {"max_digests_per_week": 0},
            {"max_digests_per_week": "3"},
            {"daily_at": "9:00"},
            {"daily_at": "24:00"},
            {"daily_at": None},
            {"weekly_on": "mon"},
            {"default_timezone": "Mars/Olympus"},
            {"default_timezone": "CET\u0000"},
            {"default_timezone": None},
        ],
    )
    async def test_bad_values_are_422(self, org_a: OrgClients, body: dict[str, object]) -> None:
        assert_invalid(await org_a.admin.put(SETTINGS, json=body), "body")
