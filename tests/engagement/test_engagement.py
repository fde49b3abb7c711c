"""Engagement over two months, three teams and two time zones, against hand-computed numbers.

Seven amplifiers, created in September: A1 A2 (sales), A3 A4 (eng), A5 (marketing),
A6 (marketing and sales), A7 (eng, unsubscribed on 15 October). Digests: everyone on
5 October; A1 A3 A5 on 10 November; A2 again at 23:30 UTC on 31 October (already
1 November in Berlin). Clicks (human, per link and hour): A1 shares twice and A3 once in
early October, A2 shares once at 23:00 UTC on 31 October (midnight in Berlin), A5 once in
November; visits: A1's LinkedIn post 10, A3's X post 5 (October), A5's LinkedIn post 4
(November). Conversions: A1 two in October, A2 one at 23:10 UTC on 31 October (November in
Berlin), A5 one in November. Default costs per click: LinkedIn 5.58, X 0.38.
"""

from datetime import UTC, datetime
from itertools import count
from typing import Any

import pytest
from fastapi import FastAPI

from app.core.db import session_scope
from app.models import Amplifier, Campaign, ClickRollup, Conversion, Delivery, Link, Message
from tests.factories import OrgClients

SEP = datetime(2026, 9, 1, tzinfo=UTC)
TEAMS = {
    "A1": ["sales"],
    "A2": ["sales"],
    "A3": ["eng"],
    "A4": ["eng"],
    "A5": ["marketing"],
    "A6": ["marketing", "sales"],
    "A7": ["eng"],
}
DIGESTS = [
    *[(name, datetime(2026, 10, 5, 10, tzinfo=UTC)) for name in TEAMS],
    *[(name, datetime(2026, 11, 10, 10, tzinfo=UTC)) for name in ("A1", "A3", "A5")],
    ("A2", datetime(2026, 10, 31, 23, 30, tzinfo=UTC)),
]
CLICKS = [  # amplifier, kind, network, hour, clicks
    ("A1", "share", "linkedin", datetime(2026, 10, 6, 9, tzinfo=UTC), 2),
    ("A3", "share", "linkedin", datetime(2026, 10, 7, 12, tzinfo=UTC), 1),
    ("A1", "visit", "linkedin", datetime(2026, 10, 8, 0, tzinfo=UTC), 10),
    ("A3", "visit", "x", datetime(2026, 10, 8, 0, tzinfo=UTC), 5),
    ("A2", "share", "linkedin", datetime(2026, 10, 31, 23, tzinfo=UTC), 1),
    ("A5", "share", "linkedin", datetime(2026, 11, 11, 8, tzinfo=UTC), 1),
    ("A5", "visit", "linkedin", datetime(2026, 11, 12, 0, tzinfo=UTC), 4),
]
CONVERSIONS = [  # amplifier, occurred at
    ("A1", datetime(2026, 10, 8, 1, tzinfo=UTC)),
    ("A1", datetime(2026, 10, 9, 14, tzinfo=UTC)),
    ("A2", datetime(2026, 10, 31, 23, 10, tzinfo=UTC)),
    ("A5", datetime(2026, 11, 12, 3, tzinfo=UTC)),
]


@pytest.fixture
async def roster(app: FastAPI, org_a: OrgClients) -> dict[str, int]:
    codes = count()
    ids: dict[str, int] = {}
    async for session in session_scope(app.state.sessionmaker):
        for name, tags in TEAMS.items():
            left = name == "A7"
            person = Amplifier(
                organization_id=org_a.organization_id,
                email=f"{name.lower()}@example.com",
                email_key=f"{name.lower()}@example.com",
                tags=tags,
                status="unsubscribed" if left else "active",
                created_at=SEP,
                updated_at=datetime(2026, 10, 15, tzinfo=UTC) if left else SEP,
            )
            session.add(person)
            await session.flush()
            ids[name] = person.id
        campaigns: dict[datetime, int] = {}
        for _, at in DIGESTS:  # one campaign per sending: a delivery per amplifier each
            if at not in campaigns:
                campaign = Campaign(
                    organization_id=org_a.organization_id, name=f"{at}", subject="s", status="sent"
                )
                session.add(campaign)
                await session.flush()
                campaigns[at] = campaign.id
        first = min(campaigns.values())
        message = Message(campaign_id=first, position=0, text="t", url="https://e.com")
        session.add(message)
        await session.flush()
        for name, at in DIGESTS:
            session.add(
                Delivery(
                    campaign_id=campaigns[at], amplifier_id=ids[name], status="sent", sent_at=at
                )
            )
        for name, kind, network, hour, clicks in CLICKS:
            link = Link(
                code=f"code{next(codes):04d}",
                kind=kind,
                campaign_id=first,
                message_id=message.id,
                amplifier_id=ids[name],
                network=network,
                target="https://e.com",
            )
            session.add(link)
            await session.flush()
            session.add(ClickRollup(link_id=link.id, hour=hour, clicks=clicks, bot_clicks=3))
        for number, (name, occurred_at) in enumerate(CONVERSIONS):
            session.add(
                Conversion(
                    organization_id=org_a.organization_id,
                    click_id=f"click{number}",
                    event="signup",
                    currency="USD",
                    occurred_at=occurred_at,
                    campaign_id=first,
                    message_id=message.id,
                    amplifier_id=ids[name],
                    network="linkedin",
                )
            )
    return ids


def _numbers(point: dict[str, Any]) -> tuple[Any, ...]:
    return (
        point["amplifiers"],
        point["reached"],
        point["sharers"],
        point["engagement_index"],
        point["share_clicks"],
        point["visits"],
        point["emv"],
        point["conversions"],
    )


RANGE = {"since": "2026-10-01", "until": "2026-11-30"}


class TestEngagementOverTime:
    async def test_months_in_utc(self, org_a: OrgClients, roster: dict[str, int]) -> None:
        response = await org_a.viewer.get("/api/v1/engagement", params=RANGE)
        assert response.status_code == 200
        body = response.json()
        assert (body["interval"], body["tz"]) == ("month", "UTC")
        october, november = body["points"]
        assert october["t"] == "2026-10-01T00:00:00Z"
        # A7 left in October; everyone got the 5 October digest; A1, A3, A2 shared.
        assert _numbers(october) == (6, 7, 3, 3 / 7, 4, 15, 57.70, 3)
        assert november["t"] == "2026-11-01T00:00:00Z"
        assert _numbers(november) == (6, 3, 1, 1 / 3, 1, 4, 22.32, 1)

    async def test_months_in_berlin(self, org_a: OrgClients, roster: dict[str, int]) -> None:
        response = await org_a.viewer.get(
            "/api/v1/engagement", params={**RANGE, "tz": "Europe/Berlin"}
        )
        october, november = response.json()["points"]
        assert october["t"] == "2026-10-01T00:00:00+02:00"
        # A2's late digest and share fall on 1 November in Berlin.
        assert _numbers(october) == (6, 7, 2, 2 / 7, 3, 15, 57.70, 2)
        assert november["t"] == "2026-11-01T00:00:00+01:00"
        assert _numbers(november) == (6, 4, 2, 0.5, 2, 4, 22.32, 2)

    async def test_one_team(self, org_a: OrgClients, roster: dict[str, int]) -> None:
        response = await org_a.viewer.get("/api/v1/engagement", params={**RANGE, "tag": "sales"})
        october, november = response.json()["points"]
        assert _numbers(october) == (3, 3, 2, 2 / 3, 3, 10, 55.80, 3)
        assert _numbers(november) == (3, 1, 0, 0.0, 0, 0, 0.0, 0)

    async def test_weeks_start_on_monday(self, org_a: OrgClients, roster: dict[str, int]) -> None:
        response = await org_a.viewer.get(
            "/api/v1/engagement", params={**RANGE, "interval": "week"}
        )
        points = response.json()["points"]
        assert points[0]["t"] == "2026-09-28T00:00:00Z"
        assert points[-1]["t"] == "2026-11-30T00:00:00Z"
        assert len(points) == 10
        week_of_5_october = next(p for p in points if p["t"] == "2026-10-05T00:00:00Z")
        # A7 left on 15 October: still active at the end of that week.
        assert _numbers(week_of_5_october) == (7, 7, 2, 2 / 7, 3, 15, 57.70, 2)

    async def test_etag_and_not_modified(self, org_a: OrgClients, roster: dict[str, int]) -> None:
        first = await org_a.viewer.get("/api/v1/engagement", params=RANGE)
        again = await org_a.viewer.get(
            "/api/v1/engagement", params=RANGE, headers={"If-None-Match": first.headers["etag"]}
        )
        assert again.status_code == 304

    @pytest.mark.parametrize(
        "params",
        [
            {"interval": "day"},
            {"tz": "Mars/Olympus"},
            {"since": "2026-11-30", "until": "2026-10-01"},
            {"since": "yesterday"},
            {"since": "1900-01-01", "interval": "week"},
        ],
    )
    async def test_bad_parameters(self, org_a: OrgClients, params: dict[str, str]) -> None:
        response = await org_a.viewer.get("/api/v1/engagement", params=params)
        assert response.status_code == 422

    async def test_other_organizations_see_nothing(
        self, org_b: OrgClients, roster: dict[str, int]
    ) -> None:
        points = (await org_b.viewer.get("/api/v1/engagement", params=RANGE)).json()["points"]
        assert all(_numbers(p) == (0, 0, 0, 0.0, 0, 0, 0.0, 0) for p in points)


class TestEngagementByTag:
    async def test_teams(self, org_a: OrgClients, roster: dict[str, int]) -> None:
        response = await org_a.viewer.get("/api/v1/engagement/tags", params=RANGE)
        assert response.status_code == 200
        teams = {item["tag"]: _numbers(item) for item in response.json()["items"]}
        assert teams == {
            "eng": (2, 3, 1, 1 / 3, 1, 5, 1.90, 0),
            "marketing": (2, 2, 1, 0.5, 1, 4, 22.32, 1),
            "sales": (3, 3, 2, 2 / 3, 3, 10, 55.80, 3),
        }

    async def test_paginated(self, org_a: OrgClients, roster: dict[str, int]) -> None:
        first = (
            await org_a.viewer.get("/api/v1/engagement/tags", params={**RANGE, "limit": 2})
        ).json()
        assert [t["tag"] for t in first["items"]] == ["eng", "marketing"]
        rest = await org_a.viewer.get(
            "/api/v1/engagement/tags", params={**RANGE, "cursor": first["next_cursor"]}
        )
        assert [t["tag"] for t in rest.json()["items"]] == ["sales"]
        assert rest.json()["next_cursor"] is None
