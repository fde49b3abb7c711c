"""GET|PUT /settings/cpc and the campaign EMV that follows it.

Launch's human visits (conftest.py CLICKS): linkedin 6 (v1 v2 v3 v5 v8 v9), x 3 (v4 v6 v10),
facebook 1 (v7)."""

from typing import Any

import pytest

from tests.stats.conftest import API, LAUNCH, get_json

CPC = f"{API}/settings/cpc"

DEFAULTS = {
    "linkedin": {"amount": 5.58, "currency": "USD"},
    "x": {"amount": 0.38, "currency": "USD"},
    "facebook": {"amount": 0.97, "currency": "USD"},
    "email": {"amount": 0.50, "currency": "USD"},
    "whatsapp": {"amount": 0.50, "currency": "USD"},
    "telegram": {"amount": 0.30, "currency": "USD"},
    "reddit": {"amount": 0.75, "currency": "USD"},
    "xing": {"amount": 2.00, "currency": "USD"},
    "bluesky": {"amount": 0.40, "currency": "USD"},
    "threads": {"amount": 0.60, "currency": "USD"},
}


async def emv(scenario) -> tuple[Any, str, dict[str, Any]]:
    body = await get_json(scenario.org.viewer, f"{API}/campaigns/{scenario.campaign[LAUNCH]}/stats")
    return (
        body["emv"],
        body["currency"],
        {n: pytest.approx(v["emv"]) for n, v in body["by_network"].items()},
    )


async def put(client: Any, body: dict[str, Any], status: int = 200) -> Any:
    response = await client.put(CPC, json=body)
    assert response.status_code == status, response.text
    if status != 200:
        assert response.headers["content-type"].startswith("application/problem+json")
    return response.json()


class TestCostPerClick:
    async def test_defaults(self, org_a) -> None:
        assert await get_json(org_a.viewer, CPC) == DEFAULTS

    async def test_changes_drive_the_emv(self, scenario) -> None:
        editor = scenario.org.editor
        # Defaults: 6 × 5.58 + 3 × 0.38 + 1 × 0.97 = 33.48 + 1.14 + 0.97
        assert await emv(scenario) == (
            35.59,
            "USD",
            {"linkedin": 33.48, "x": 1.14, "facebook": 0.97},
        )

        answer = await put(editor, {"linkedin": {"amount": 2.5, "currency": "USD"}})
        assert answer == {**DEFAULTS, "linkedin": {"amount": 2.5, "currency": "USD"}}
        assert await get_json(scenario.org.viewer, CPC) == answer
        # 6 × 2.5 + 1.14 + 0.97 = 15 + 2.11
        assert await emv(scenario) == (
            17.11,
            "USD",
            {"linkedin": 15.0, "x": 1.14, "facebook": 0.97},
        )

        # Networks not given are unchanged.
        answer = await put(editor, {"x": {"amount": 1, "currency": "USD"}})
        assert answer == {
            **DEFAULTS,
            "linkedin": {"amount": 2.5, "currency": "USD"},
            "x": {"amount": 1, "currency": "USD"},
        }
        # 15 + 3 × 1 + 0.97
        assert await emv(scenario) == (18.97, "USD", {"linkedin": 15.0, "x": 3.0, "facebook": 0.97})

        # null puts one network back to its default.
        answer = await put(editor, {"linkedin": None})
        assert answer == {**DEFAULTS, "x": {"amount": 1, "currency": "USD"}}
        # 33.48 + 3 + 0.97
        assert await emv(scenario) == (
            37.45,
            "USD",
            {"linkedin": 33.48, "x": 3.0, "facebook": 0.97},
        )
        assert await put(editor, {"x": None}) == DEFAULTS
        assert (await emv(scenario))[0] == 35.59

    async def test_one_currency(self, scenario) -> None:
        editor = scenario.org.editor
        await put(editor, {"x": {"amount": 1, "currency": "EUR"}}, status=422)
        assert await get_json(scenario.org.viewer, CPC) == DEFAULTS  # nothing half-applied
        everything_in_euros = {n: {"amount": 1, "currency": "EUR"} for n in DEFAULTS}
        assert await put(editor, everything_in_euros) == everything_in_euros
        # 6 + 3 + 1 visits × 1 EUR
        assert await emv(scenario) == (10.0, "EUR", {"linkedin": 6.0, "x": 3.0, "facebook": 1.0})
        # Back to the USD default for one network would mix currencies.
        await put(editor, {"linkedin": None}, status=422)
        assert await get_json(scenario.org.viewer, CPC) == everything_in_euros

    async def test_invalid_bodies(self, org_a) -> None:
        for body in (
            {"myspace": {"amount": 1, "currency": "USD"}},  # unknown network
            {"linkedin": {"amount": -0.01, "currency": "USD"}},
            {"linkedin": {"amount": 1_000_000.01, "currency": "USD"}},
            {"linkedin": {"amount": "lots", "currency": "USD"}},
        ):
            await put(org_a.editor, body, status=422)
        assert await get_json(org_a.viewer, CPC) == DEFAULTS
        # The bounds themselves are fine.
        answer = await put(
            org_a.admin,
            {
                "linkedin": {"amount": 1_000_000, "currency": "USD"},
                "x": {"amount": 0, "currency": "USD"},
            },
        )
        assert answer["linkedin"] == {"amount": 1_000_000, "currency": "USD"}
        assert answer["x"] == {"amount": 0, "currency": "USD"}

    async def test_settings_are_per_organization(self, org_a, org_b) -> None:
        await put(org_a.editor, {"reddit": {"amount": 9, "currency": "USD"}})
        assert (await get_json(org_a.viewer, CPC))["reddit"] == {"amount": 9, "currency": "USD"}
        assert await get_json(org_b.viewer, CPC) == DEFAULTS

    async def test_viewer_cannot_change_them(self, org_a) -> None:
        response = await org_a.viewer.put(CPC, json={"x": {"amount": 1, "currency": "USD"}})
        assert response.status_code == 403
        assert response.headers["content-type"].startswith("application/problem+json")
        assert await get_json(org_a.viewer, CPC) == DEFAULTS
