"""The seeded scenario of conftest.py read back through every statistics route.

Every expected number is a literal worked out by hand from the ROSTER and CLICKS tables in
tests/stats/conftest.py; the comments show the working (S = human share click, v = human visit,
b = bot click, labels as in CLICKS).
"""

import csv
import io
from datetime import datetime
from typing import Any

import pytest

from tests.stats.conftest import (
    API,
    CAROL_NAME,
    CHROME,
    FIREFOX,
    FOLLOW,
    LAUNCH,
    SMALL,
    active,
    all_pages,
    at,
    get_json,
)


class TestCampaignStats:
    async def test_every_field(self, scenario) -> None:
        launch = scenario.campaign[LAUNCH]
        body = await get_json(scenario.org.viewer, f"{API}/campaigns/{launch}/stats")
        updated_at = body.pop("updated_at")
        assert updated_at.endswith("Z")
        datetime.fromisoformat(updated_at)
        by_network = body.pop("by_network")
        assert body == {
            "campaign_id": launch,
            "recipients": 6,  # six deliveries: ada bob carol dan eve finn
            "sent": 4,  # ada bob carol dan
            "failed": 1,  # eve (finn is pending)
            "bounced": 0,
            "complaints": 0,
            "held": 0,
            "share_clicks": 8,  # S1-S8 (S9 is the follow-up's; b3, b5 are bots)
            "sharers": 3,  # ada bob carol
            "share_rate": 0.75,  # 3 sharers / 4 sent
            "visits": 10,  # v1-v10
            # ada M1 linkedin: 20th {V1, V2} = 2, 21st {V1} = 1; ada M2 x: {V1} = 1;
            # bob M1 linkedin: 20th {V3} = 1, 21st {V3} = 1; bob M2 x: {V4} = 1;
            # carol M1 x: {V2} = 1; carol M1 facebook: {V4} = 1  → 9
            "unique_visitors": 9,
            "bot_clicks": 5,  # b1-b5
            # ada linkedin 500 + ada x 120 + bob linkedin 300 + bob x (none) 0
            # + carol x 1000 + carol facebook 70 (b5 on facebook is a bot anyway)
            "potential_reach": 1990,
            # linkedin 6 visits × 5.58 = 33.48; x 3 × 0.38 = 1.14; facebook 1 × 0.97 = 0.97
            "emv": 35.59,
            "conversions": 3,  # c1 c2 c3 (c4 is the follow-up's)
            "conversion_value": 70.0,  # c1 none + c2 49.90 + c3 20.10
            "currency": "USD",
            "by_message": [
                {
                    "message_id": scenario.messages[(LAUNCH, 0)],
                    "position": 0,
                    "share_clicks": 6,  # S1 S2 S4 S5 S6 S8
                    "sharers": 3,  # ada bob carol
                    "visits": 8,  # v1 v2 v3 v5 v6 v7 v8 v9
                    "unique_visitors": 7,  # ada li 2+1, bob li 1+1, carol x 1, carol fb 1
                    "bot_clicks": 4,  # b1 b2 b3 b4
                    "conversions": 3,  # c1 c2 c3
                    "conversion_value": 70.0,
                },
                {
                    "message_id": scenario.messages[(LAUNCH, 1)],
                    "position": 1,
                    "share_clicks": 2,  # S3 S7
                    "sharers": 2,  # ada bob
                    "visits": 2,  # v4 v10
                    "unique_visitors": 2,
                    "bot_clicks": 1,  # b5
                    "conversions": 0,
                    "conversion_value": 0.0,
                },
            ],
        }
        emv = {network: numbers.pop("emv") for network, numbers in by_network.items()}
        assert emv == {
            "linkedin": pytest.approx(33.48),  # 6 × 5.58
            "x": pytest.approx(1.14),  # 3 × 0.38
            "facebook": pytest.approx(0.97),  # 1 × 0.97
        }
        assert by_network == {
            "linkedin": {
                "share_clicks": 4,  # S1 S2 S4 S8
                "sharers": 2,  # ada bob
                "visits": 6,  # v1 v2 v3 v5 v8 v9
                "unique_visitors": 5,  # ada 2 + 1, bob 1 + 1
                "bot_clicks": 2,  # b1 b4
                "conversions": 2,  # c1 c2 (v1, v3)
                "conversion_value": 49.9,
            },
            "x": {
                "share_clicks": 3,  # S3 S5 S7
                "sharers": 3,  # ada carol bob
                "visits": 3,  # v4 v6 v10
                "unique_visitors": 3,
                "bot_clicks": 2,  # b2 b3
                "conversions": 1,  # c3 (v6)
                "conversion_value": 20.1,
            },
            "facebook": {
                "share_clicks": 1,  # S6
                "sharers": 1,  # carol
                "visits": 1,  # v7
                "unique_visitors": 1,
                "bot_clicks": 1,  # b5 (scanner window)
                "conversions": 0,
                "conversion_value": 0.0,
            },
        }

    async def test_potential_reach_follows_the_current_audience(self, scenario) -> None:
        viewer, launch = scenario.org.viewer, scenario.campaign[LAUNCH]
        before = await viewer.get(f"{API}/campaigns/{launch}/stats")
        assert before.json()["potential_reach"] == 1990
        patched = await scenario.org.editor.patch(
            f"{API}/amplifiers/{scenario.amplifier['bob']}",
            json={"audience": {"linkedin": 300, "x": 45, "reddit": 9}},
        )
        assert patched.status_code == 200, patched.text
        after = await viewer.get(f"{API}/campaigns/{launch}/stats")
        # bob shared on linkedin and x: 300 + 45 now (reddit: never shared there)
        assert after.json()["potential_reach"] == 2035
        assert after.headers["etag"] != before.headers["etag"]

    async def test_a_campaign_without_deliveries_answers_zeros(self, scenario) -> None:
        draft = await scenario.org.editor.post(
            f"{API}/campaigns",
            json={
                "name": "Draft",
                "subject": "Draft",
                "networks": ["x", "reddit"],
                "messages": [
                    {"text": "A", "url": "https://example.com/a"},
                    {"text": "B", "url": "https://example.com/b"},
                ],
            },
        )
        assert draft.status_code == 201
        campaign = draft.json()
        body = await get_json(scenario.org.viewer, f"{API}/campaigns/{campaign['id']}/stats")
        zero_network = {
            "share_clicks": 0,
            "sharers": 0,
            "visits": 0,
            "unique_visitors": 0,
            "bot_clicks": 0,
            "emv": 0,
            "conversions": 0,
            "conversion_value": 0,
        }
        assert body["by_network"] == {"x": zero_network, "reddit": zero_network}
        assert [m["message_id"] for m in body["by_message"]] == [
            m["id"] for m in campaign["messages"]
        ]
        assert all(
            m["share_clicks"] == m["sharers"] == m["visits"] == m["unique_visitors"] == 0
            for m in body["by_message"]
        )
        for name in (
            "recipients",
            "sent",
            "failed",
            "share_clicks",
            "sharers",
            "share_rate",  # 0 when nothing was sent
            "visits",
            "unique_visitors",
            "bot_clicks",
            "potential_reach",
            "emv",
            "conversions",
            "conversion_value",
        ):
            assert body[name] == 0, name
        assert body["currency"] == "USD"
        assert body["updated_at"].endswith("Z")

    async def test_bots_are_never_human(self, small_campaign) -> None:
        sent = await small_campaign(networks=["linkedin", "x"], messages=2, sent_at=at(20, 8, 0))
        for who, c, position, network, kind, moment, agent, headers in [
            # b1: a digest link within 10 s of the delivery: a mail scanner
            ("ada", SMALL, 0, "linkedin", "share", at(20, 8, 0, 3), CHROME, {}),
            # b2: a link-preview crawler
            ("ada", SMALL, 0, "linkedin", "visit", at(20, 9, 0), "LinkedInBot/1.0", {}),
            # b3: no User-Agent
            ("ada", SMALL, 0, "linkedin", "share", at(20, 9, 1), "", {}),
            # b4: a browser prefetch
            ("ada", SMALL, 0, "x", "visit", at(20, 9, 2), CHROME, {"sec-purpose": "prefetch"}),
            # b5-b7: three links of the delivery by one visitor within 5 s: a scanner burst
            ("ada", SMALL, 0, "linkedin", "share", at(20, 9, 10, 0), FIREFOX, {}),
            ("ada", SMALL, 0, "x", "share", at(20, 9, 10, 2), FIREFOX, {}),
            ("ada", SMALL, 1, "linkedin", "share", at(20, 9, 10, 4), FIREFOX, {}),
        ]:
            await sent.click(who, c, position, network, kind, moment, agent, **headers)
        await sent.flush()
        campaign = sent.campaign[SMALL]
        viewer = sent.org.viewer
        body = await get_json(viewer, f"{API}/campaigns/{campaign}/stats")
        totals = {k: v for k, v in body.items() if k not in ("by_network", "by_message")}
        assert totals.pop("updated_at").endswith("Z")
        assert totals == {
            "campaign_id": campaign,
            "recipients": 1,
            "sent": 1,
            "failed": 0,
            "bounced": 0,
            "complaints": 0,
            "held": 0,
            "share_clicks": 0,
            "sharers": 0,
            "share_rate": 0,
            "visits": 0,
            "unique_visitors": 0,
            "bot_clicks": 7,
            "potential_reach": 0,
            "emv": 0,
            "conversions": 0,
            "conversion_value": 0,
            "currency": "USD",
        }
        # linkedin: b1 b2 b3 b5 b7; x: b4 b6
        assert {n: v["bot_clicks"] for n, v in body["by_network"].items()} == {
            "linkedin": 5,
            "x": 2,
        }
        assert all(
            v["share_clicks"] == v["sharers"] == v["visits"] == v["unique_visitors"] == 0
            for v in body["by_network"].values()
        )
        # message 0: b1-b6; message 1: b7
        assert [m["bot_clicks"] for m in body["by_message"]] == [6, 1]
        (item,) = (await get_json(viewer, f"{API}/campaigns/{campaign}/stats/amplifiers"))["items"]
        assert (item["points"], item["share_clicks"], item["visits"], item["bot_clicks"]) == (
            0,
            0,
            0,
            7,
        )
        message = await get_json(viewer, f"{API}/messages/{sent.messages[(SMALL, 0)]}/stats")
        assert (message["share_clicks"], message["sharers"], message["bot_clicks"]) == (0, 0, 6)
        amplifier = await get_json(viewer, f"{API}/amplifiers/{sent.amplifier['ada']}/stats")
        assert (amplifier["points"], amplifier["share_clicks"], amplifier["bot_clicks"]) == (
            0,
            0,
            7,
        )
        series = await get_json(
            viewer,
            f"{API}/campaigns/{campaign}/stats/timeseries",
            metric="bot_clicks",
            since="2026-11-20T08:00:00Z",
            until="2026-11-20T09:00:00Z",
        )
        assert [p["value"] for p in series["points"]] == [1, 6]  # b1 | b2-b7
        shares = await get_json(
            viewer,
            f"{API}/campaigns/{campaign}/stats/timeseries",
            metric="share_clicks",
            since="2026-11-20T08:00:00Z",
            until="2026-11-20T09:00:00Z",
        )
        assert [p["value"] for p in shares["points"]] == [0, 0]
        board = await get_json(viewer, f"{API}/leaderboard")
        assert board == {"items": [], "next_cursor": None}


NO_CONVERSIONS = {"conversions": 0, "conversion_value": 0}


def zeros(**extra: Any) -> dict[str, Any]:
    return {
        "share_clicks": 0,
        "visits": 0,
        "unique_visitors": 0,
        "bot_clicks": 0,
        "points": 0,
        "conversions": 0,
        "conversion_value": 0,
        **extra,
    }


class TestCampaignAmplifiers:
    def expected(self, scenario) -> list[dict[str, Any]]:
        ids = scenario.amplifier
        return [
            {
                "amplifier_id": ids["ada"],
                "email": "ada@example.com",
                "name": "Ada",
                "share_clicks": 4,  # S1 S2 S3 S8
                "visits": 5,  # v1 v2 v3 v4 v8
                "unique_visitors": 4,  # M1 li: 20th {V1, V2}, 21st {V1}; M2 x: {V1}
                "bot_clicks": 2,  # b1 b4
                "points": 24,  # 10 × 2 pairs (M1 linkedin, M2 x) + 4
                "conversions": 2,  # c1 c2
                "conversion_value": 49.9,
                "by_network": {
                    "linkedin": {
                        "share_clicks": 3,
                        "visits": 4,
                        "unique_visitors": 3,
                        "conversions": 2,
                        "conversion_value": 49.9,
                    },
                    "x": {**NO_CONVERSIONS, "share_clicks": 1, "visits": 1, "unique_visitors": 1},
                },
            },
            {
                "amplifier_id": ids["bob"],
                "email": "bob@example.com",
                "name": "Bob",
                "share_clicks": 2,  # S4 S7
                "visits": 3,  # v5 v9 v10
                "unique_visitors": 3,  # M1 li: 20th {V3}, 21st {V3}; M2 x: {V4}
                "bot_clicks": 1,  # b3
                "points": 23,  # 10 × 2 pairs (M1 linkedin, M2 x) + 3
                **NO_CONVERSIONS,
                "by_network": {
                    "linkedin": {
                        **NO_CONVERSIONS,
                        "share_clicks": 1,
                        "visits": 2,
                        "unique_visitors": 2,
                    },
                    "x": {**NO_CONVERSIONS, "share_clicks": 1, "visits": 1, "unique_visitors": 1},
                },
            },
            {
                "amplifier_id": ids["carol"],
                "email": "carol@example.com",
                "name": CAROL_NAME,  # JSON carries the name as it is
                "share_clicks": 2,  # S5 S6
                "visits": 2,  # v6 v7
                "unique_visitors": 2,
                "bot_clicks": 2,  # b2 b5
                "points": 22,  # 10 × 2 pairs (M1 x, M1 facebook) + 2
                "conversions": 1,  # c3
                "conversion_value": 20.1,
                "by_network": {
                    "x": {
                        "share_clicks": 1,
                        "visits": 1,
                        "unique_visitors": 1,
                        "conversions": 1,
                        "conversion_value": 20.1,
                    },
                    "facebook": {
                        **NO_CONVERSIONS,
                        "share_clicks": 1,
                        "visits": 1,
                        "unique_visitors": 1,
                    },
                },
            },
            # No activity: points 0, by amplifier id.
            {"amplifier_id": ids["dan"], "email": "dan@example.com", "name": "-Dan", **zeros()},
            {"amplifier_id": ids["eve"], "email": "eve@example.com", "name": "@Eve", **zeros()},
            {"amplifier_id": ids["finn"], "email": "+finn@example.com", "name": None, **zeros()},
        ]

    @staticmethod
    def comparable(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{**item, "by_network": active(item.get("by_network", {}))} for item in items]

    async def test_ordered_by_points_with_zeros_included(self, scenario) -> None:
        launch = scenario.campaign[LAUNCH]
        body = await get_json(scenario.org.viewer, f"{API}/campaigns/{launch}/stats/amplifiers")
        assert body["next_cursor"] is None
        expected = [{**e, "by_network": e.get("by_network", {})} for e in self.expected(scenario)]
        assert self.comparable(body["items"]) == expected
        for item in body["items"]:
            assert set(item["by_network"]) <= {"linkedin", "x", "facebook"}

    async def test_pages_follow_the_same_order(self, scenario) -> None:
        launch = scenario.campaign[LAUNCH]
        pages = await all_pages(
            scenario.org.viewer, f"{API}/campaigns/{launch}/stats/amplifiers", limit=2
        )
        assert [len(p) for p in pages[:3]] == [2, 2, 2]
        assert [i["amplifier_id"] for page in pages for i in page] == [
            scenario.amplifier[w] for w in ("ada", "bob", "carol", "dan", "eve", "finn")
        ]

    async def test_limit_over_500_is_refused(self, scenario) -> None:
        launch = scenario.campaign[LAUNCH]
        response = await scenario.org.viewer.get(
            f"{API}/campaigns/{launch}/stats/amplifiers", params={"limit": 501}
        )
        assert response.status_code == 422


class TestMessageStats:
    async def test_first_message(self, scenario) -> None:
        message = scenario.messages[(LAUNCH, 0)]
        body = await get_json(scenario.org.viewer, f"{API}/messages/{message}/stats")
        by_network = active(body.pop("by_network"))
        by_variant = body.pop("by_variant")
        assert body == {
            "message_id": message,
            "campaign_id": scenario.campaign[LAUNCH],
            "share_clicks": 6,  # S1 S2 S4 S5 S6 S8
            "sharers": 3,  # ada bob carol
            "visits": 8,  # v1 v2 v3 v5 v6 v7 v8 v9
            "unique_visitors": 7,  # ada li 2 + 1, bob li 1 + 1, carol x 1, carol fb 1
            "bot_clicks": 4,  # b1 b2 b3 b4
            "conversions": 3,  # c1 c2 c3
            "conversion_value": 70.0,  # 49.90 + 20.10
        }
        assert by_network == {
            "linkedin": {
                "share_clicks": 4,  # S1 S2 S4 S8
                "sharers": 2,  # ada bob
                "visits": 6,  # v1 v2 v3 v5 v8 v9
                "unique_visitors": 5,
                "bot_clicks": 2,  # b1 b4
                "conversions": 2,  # c1 c2
                "conversion_value": 49.9,
            },
            "x": {
                "share_clicks": 1,  # S5
                "sharers": 1,  # carol
                "visits": 1,  # v6
                "unique_visitors": 1,
                "bot_clicks": 2,  # b2 (visit) b3 (share)
                "conversions": 1,  # c3
                "conversion_value": 20.1,
            },
            "facebook": {
                "share_clicks": 1,  # S6
                "sharers": 1,
                "visits": 1,  # v7
                "unique_visitors": 1,
                "bot_clicks": 0,
                **NO_CONVERSIONS,
            },
        }
        # Variants dealt in roster order: ada 0, bob 1, carol 2, dan 3, eve 0, finn 1.
        assert by_variant == [
            {
                "variant": 0,
                "text": "We launched",
                "recipients": 2,  # ada eve
                "sharers": 1,  # ada
                "share_rate": 0.5,
                "share_clicks": 3,  # S1 S2 S8
                "visits": 4,  # v1 v2 v3 v8
                "unique_visitors": 3,  # 20th {V1, V2}, 21st {V1}
                "visits_per_share": 4 / 3,
                "conversions": 2,  # c1 c2 (ada's v1 v3)
                "conversion_value": 49.9,
            },
            {
                "variant": 1,
                "text": "We launched (1)",
                "recipients": 2,  # bob finn
                "sharers": 1,  # bob
                "share_rate": 0.5,
                "share_clicks": 1,  # S4 (b3 is a bot)
                "visits": 2,  # v5 v9
                "unique_visitors": 2,  # 20th {V3}, 21st {V3}
                "visits_per_share": 2.0,
                **NO_CONVERSIONS,
            },
            {
                "variant": 2,
                "text": "We launched (2)",
                "recipients": 1,  # carol
                "sharers": 1,
                "share_rate": 1.0,
                "share_clicks": 2,  # S5 S6
                "visits": 2,  # v6 v7 (b2 is a bot)
                "unique_visitors": 2,
                "visits_per_share": 1.0,
                "conversions": 1,  # c3 (carol's v6)
                "conversion_value": 20.1,
            },
            {
                "variant": 3,
                "text": "We launched (3)",
                "recipients": 1,  # dan, who never clicks
                "sharers": 0,
                "share_rate": 0.0,
                "share_clicks": 0,
                "visits": 0,
                "unique_visitors": 0,
                "visits_per_share": 0.0,
                **NO_CONVERSIONS,
            },
        ]

    async def test_second_message_and_the_follow_up(self, scenario) -> None:
        viewer = scenario.org.viewer
        second = await get_json(viewer, f"{API}/messages/{scenario.messages[(LAUNCH, 1)]}/stats")
        assert (
            second["share_clicks"],  # S3 S7
            second["sharers"],  # ada bob
            second["visits"],  # v4 v10
            second["unique_visitors"],
            second["bot_clicks"],  # b5
        ) == (2, 2, 2, 2, 1)
        assert active(second["by_network"]) == {
            "x": {
                "share_clicks": 2,
                "sharers": 2,
                "visits": 2,
                "unique_visitors": 2,
                "bot_clicks": 0,
                **NO_CONVERSIONS,
            },
            "facebook": {
                "share_clicks": 0,
                "sharers": 0,
                "visits": 0,
                "unique_visitors": 0,
                "bot_clicks": 1,  # b5: the scanner's click counts only as a bot
                **NO_CONVERSIONS,
            },
        }
        follow = await get_json(viewer, f"{API}/messages/{scenario.messages[(FOLLOW, 0)]}/stats")
        assert follow == {
            "message_id": scenario.messages[(FOLLOW, 0)],
            "campaign_id": scenario.campaign[FOLLOW],
            "share_clicks": 1,  # S9
            "sharers": 1,
            "visits": 2,  # v11 v12
            "unique_visitors": 2,  # V2, V3
            "bot_clicks": 0,
            "conversions": 1,  # c4
            "conversion_value": 10.0,
            "by_network": {
                "linkedin": {
                    "share_clicks": 1,
                    "sharers": 1,
                    "visits": 2,
                    "unique_visitors": 2,
                    "bot_clicks": 0,
                    "conversions": 1,
                    "conversion_value": 10.0,
                }
            },
            # No variants: the base text is the one variant, sent to ada alone.
            "by_variant": [
                {
                    "variant": 0,
                    "text": "Thanks",
                    "recipients": 1,
                    "sharers": 1,
                    "share_rate": 1.0,
                    "share_clicks": 1,
                    "visits": 2,
                    "unique_visitors": 2,
                    "visits_per_share": 2.0,
                    "conversions": 1,  # c4
                    "conversion_value": 10.0,
                }
            ],
        }


class TestAmplifierStats:
    async def test_across_two_campaigns_newest_first(self, scenario) -> None:
        ada = scenario.amplifier["ada"]
        body = await get_json(scenario.org.viewer, f"{API}/amplifiers/{ada}/stats")
        assert body == {
            "amplifier_id": ada,
            "share_clicks": 5,  # Launch S1 S2 S3 S8 + Follow-up S9
            "visits": 7,  # Launch v1 v2 v3 v4 v8 + Follow-up v11 v12
            "unique_visitors": 6,  # Launch 4 + Follow-up 2
            "bot_clicks": 2,  # b1 b4
            "points": 36,  # Launch 24 + Follow-up 10 × 1 pair + 2 = 12
            "conversions": 3,  # Launch c1 c2 + Follow-up c4
            "conversion_value": 59.9,  # 49.90 + 10.00
            # facebook: links but no activity → absent
            "by_network": {
                "linkedin": {
                    "share_clicks": 4,
                    "visits": 6,
                    "unique_visitors": 5,
                    "conversions": 3,
                    "conversion_value": 59.9,
                },
                "x": {"share_clicks": 1, "visits": 1, "unique_visitors": 1, **NO_CONVERSIONS},
            },
            "by_campaign": [
                {
                    "campaign_id": scenario.campaign[FOLLOW],
                    "name": "Follow-up",
                    "share_clicks": 1,
                    "visits": 2,
                    "unique_visitors": 2,
                    "points": 12,
                    "conversions": 1,  # c4
                    "conversion_value": 10.0,
                },
                {
                    "campaign_id": scenario.campaign[LAUNCH],
                    "name": "Launch",
                    "share_clicks": 4,
                    "visits": 5,
                    "unique_visitors": 4,
                    "points": 24,
                    "conversions": 2,  # c1 c2
                    "conversion_value": 49.9,
                },
            ],
        }

    async def test_one_campaign_and_no_activity(self, scenario) -> None:
        viewer = scenario.org.viewer
        carol = await get_json(viewer, f"{API}/amplifiers/{scenario.amplifier['carol']}/stats")
        assert carol == {
            "amplifier_id": scenario.amplifier["carol"],
            "share_clicks": 2,
            "visits": 2,
            "unique_visitors": 2,
            "bot_clicks": 2,  # b2 b5
            "points": 22,
            "conversions": 1,  # c3
            "conversion_value": 20.1,
            "by_network": {
                "x": {
                    "share_clicks": 1,
                    "visits": 1,
                    "unique_visitors": 1,
                    "conversions": 1,
                    "conversion_value": 20.1,
                },
                "facebook": {
                    "share_clicks": 1,
                    "visits": 1,
                    "unique_visitors": 1,
                    **NO_CONVERSIONS,
                },
            },
            "by_campaign": [
                {
                    "campaign_id": scenario.campaign[LAUNCH],
                    "name": "Launch",
                    "share_clicks": 2,
                    "visits": 2,
                    "unique_visitors": 2,
                    "points": 22,
                    "conversions": 1,
                    "conversion_value": 20.1,
                }
            ],
        }
        dan = await get_json(viewer, f"{API}/amplifiers/{scenario.amplifier['dan']}/stats")
        assert {k: dan[k] for k in dan if k != "by_campaign"} == {
            "amplifier_id": scenario.amplifier["dan"],
            "share_clicks": 0,
            "visits": 0,
            "unique_visitors": 0,
            "bot_clicks": 0,
            "points": 0,
            **NO_CONVERSIONS,
            "by_network": {},
        }
        assert all(c["points"] == 0 for c in dan["by_campaign"])


class TestLeaderboard:
    async def test_all_time_across_campaigns(self, scenario) -> None:
        ids = scenario.amplifier
        body = await get_json(scenario.org.viewer, f"{API}/leaderboard")
        assert body == {
            "items": [
                {
                    "amplifier_id": ids["ada"],
                    "name": "Ada",
                    "email": "ada@example.com",
                    "points": 36,  # see TestAmplifierStats
                    "share_clicks": 5,
                    "visits": 7,
                    "unique_visitors": 6,
                    "conversions": 3,  # c1 c2 c4
                    "conversion_value": 59.9,
                },
                {
                    "amplifier_id": ids["bob"],
                    "name": "Bob",
                    "email": "bob@example.com",
                    "points": 23,
                    "share_clicks": 2,
                    "visits": 3,
                    "unique_visitors": 3,
                    **NO_CONVERSIONS,
                },
                {
                    "amplifier_id": ids["carol"],
                    "name": CAROL_NAME,
                    "email": "carol@example.com",
                    "points": 22,
                    "share_clicks": 2,
                    "visits": 2,
                    "unique_visitors": 2,
                    "conversions": 1,  # c3
                    "conversion_value": 20.1,
                },
                # dan, eve, finn: no points, no clicks → absent
            ],
            "next_cursor": None,
        }

    async def test_first_day(self, scenario) -> None:
        body = await get_json(
            scenario.org.viewer, f"{API}/leaderboard", since="2026-11-20", until="2026-11-20"
        )
        ids = scenario.amplifier
        assert [
            (i["amplifier_id"], i["points"], i["share_clicks"], i["visits"], i["unique_visitors"])
            for i in body["items"]
        ] == [
            # S1 S2 S3; v1-v4; M1 li {V1, V2} + M2 x {V1} = 3; pairs M1 li, M2 x → 20 + 3
            (ids["ada"], 23, 3, 4, 3),
            # S5 S6; v6 v7; 2 unique; pairs M1 x, M1 fb → 20 + 2
            (ids["carol"], 22, 2, 2, 2),
            # S4; v5; 1 unique; pair M1 li → 10 + 1
            (ids["bob"], 11, 1, 1, 1),
        ]

    async def test_second_day_from_timestamps(self, scenario) -> None:
        # 23:30 in New York on the 20th is 04:30 UTC on the 21st: both ends are UTC day 21.
        body = await get_json(
            scenario.org.viewer,
            f"{API}/leaderboard",
            since="2026-11-20T23:30:00-05:00",
            until="2026-11-21T00:00:00Z",
        )
        ids = scenario.amplifier
        expected = [
            # S8 (M1 li, first shared on the 20th: no points) S9 (Follow-up M3 li, first);
            # v8 v11 v12, all new → 10 × 1 + 3; c4 (Follow-up, 11:45)
            (ids["ada"], 13, 2, 3, 3, 1, 10.0),
            # S7 (M2 x, first); v9 v10 → 10 × 1 + 2
            (ids["bob"], 12, 1, 2, 2, 0, 0),
            # nothing but c3, a conversion on the 21st of a visit on the 20th
            (ids["carol"], 0, 0, 0, 0, 1, 20.1),
        ]
        assert [
            (
                i["amplifier_id"],
                i["points"],
                i["share_clicks"],
                i["visits"],
                i["unique_visitors"],
                i["conversions"],
                i["conversion_value"],
            )
            for i in body["items"]
        ] == expected
        # Only one end given: the other is open.
        since = await get_json(scenario.org.viewer, f"{API}/leaderboard", since="2026-11-21")
        assert [(i["amplifier_id"], i["points"]) for i in since["items"]] == [
            (ids["ada"], 13),
            (ids["bob"], 12),
            (ids["carol"], 0),
        ]
        until = await get_json(scenario.org.viewer, f"{API}/leaderboard", until="2026-11-20")
        assert [(i["amplifier_id"], i["points"]) for i in until["items"]] == [
            (ids["ada"], 23),
            (ids["carol"], 22),
            (ids["bob"], 11),
        ]

    async def test_pages_and_organizations(self, scenario, org_b) -> None:
        pages = await all_pages(scenario.org.viewer, f"{API}/leaderboard", limit=1)
        assert [len(p) for p in pages[:3]] == [1, 1, 1]
        assert [i["amplifier_id"] for page in pages for i in page] == [
            scenario.amplifier[w] for w in ("ada", "bob", "carol")
        ]
        assert await get_json(org_b.viewer, f"{API}/leaderboard") == {
            "items": [],
            "next_cursor": None,
        }


class TestCsvExport:
    async def test_rows_and_formula_guard(self, scenario) -> None:
        launch = scenario.campaign[LAUNCH]
        response = await scenario.org.viewer.get(f"{API}/campaigns/{launch}/stats.csv")
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/csv")
        assert (
            response.headers["content-disposition"]
            == f'attachment; filename="campaign-{launch}-amplifiers.csv"'
        )
        header, *rows = list(csv.reader(io.StringIO(response.text)))
        assert header == [
            "amplifier_id",
            "email",
            "name",
            "points",
            "share_clicks",
            "visits",
            "unique_visitors",
            "bot_clicks",
            "linkedin_share_clicks",
            "linkedin_visits",
            "linkedin_unique_visitors",
            "x_share_clicks",
            "x_visits",
            "x_unique_visitors",
            "facebook_share_clicks",
            "facebook_visits",
            "facebook_unique_visitors",
            "conversions",
            "conversion_value",
            "linkedin_conversions",
            "x_conversions",
            "facebook_conversions",
        ]
        ids = scenario.amplifier
        assert [row[:3] for row in rows] == [
            [str(ids["ada"]), "ada@example.com", "Ada"],
            [str(ids["bob"]), "bob@example.com", "Bob"],
            [str(ids["carol"]), "carol@example.com", "'" + CAROL_NAME],  # a formula: '-prefixed
            [str(ids["dan"]), "dan@example.com", "'-Dan"],
            [str(ids["eve"]), "eve@example.com", "'@Eve"],
            [str(ids["finn"]), "'+finn@example.com", ""],
        ]
        assert [[float(cell) for cell in row[3:]] for row in rows] == [
            # points, share, visits, unique, bot, linkedin ×3, x ×3, facebook ×3,
            # conversions, their value, conversions on linkedin, x, facebook
            [24, 4, 5, 4, 2, 3, 4, 3, 1, 1, 1, 0, 0, 0, 2, 49.9, 2, 0, 0],  # c1 c2
            [23, 2, 3, 3, 1, 1, 2, 2, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0],
            [22, 2, 2, 2, 2, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 20.1, 0, 1, 0],  # c3
            [0] * 19,
            [0] * 19,
            [0] * 19,
        ]
        # Quoted as CSV, the guarded formula stays one cell.
        assert '"\'=HYPERLINK(""http://evil.example"",""click"")"' in response.text
