"""GET /campaigns/{id}/stats/timeseries: hourly and daily buckets in UTC and in other zones,
empty buckets filled with 0. Expected values worked out by hand from CLICKS in conftest.py
(Launch only: the follow-up's clicks never show here)."""

from datetime import UTC, datetime
from typing import Any

from tests.stats.conftest import API, LAUNCH, SMALL, V1, V2, V3, at, get_json


async def series(scenario, campaign: str = LAUNCH, **params: Any) -> Any:
    return await get_json(
        scenario.org.viewer,
        f"{API}/campaigns/{scenario.campaign[campaign]}/stats/timeseries",
        **params,
    )


METRICS = (
    "visits",
    "share_clicks",
    "unique_visitors",
    "bot_clicks",
    "conversions",
    "conversion_value",
)


def pairs(body: dict[str, Any]) -> list[tuple[str, int]]:
    return [(p["t"], p["value"]) for p in body["points"]]


class TestHourly:
    async def test_defaults_are_hourly_visits_in_utc(self, scenario) -> None:
        body = await series(scenario, since="2026-11-20T08:00:00Z", until="2026-11-20T12:00:00Z")
        assert body == {
            "interval": "hour",
            "metric": "visits",
            "tz": "UTC",
            "points": [
                {"t": "2026-11-20T08:00:00Z", "value": 0},  # only b5, a bot
                {"t": "2026-11-20T09:00:00Z", "value": 3},  # v1 v2 v3
                {"t": "2026-11-20T10:00:00Z", "value": 2},  # v4 v5
                {"t": "2026-11-20T11:00:00Z", "value": 2},  # v6 v7
                {"t": "2026-11-20T12:00:00Z", "value": 0},  # nothing
            ],
        }

    async def test_every_metric(self, scenario) -> None:
        window = {"since": "2026-11-20T08:00:00Z", "until": "2026-11-20T12:00:00Z"}
        values = {}
        for metric in METRICS:
            body = await series(scenario, interval="hour", metric=metric, tz="UTC", **window)
            assert body["metric"] == metric
            values[metric] = [p["value"] for p in body["points"]]
        assert values == {
            "visits": [0, 3, 2, 2, 0],
            "share_clicks": [0, 3, 3, 0, 0],  # 09: S1 S2 S3; 10: S4 S5 S6
            # 09: V1 and V2 on ada M1 li (v2 repeats v1); 10: V1 on ada M2 x, V3 on bob M1 li;
            # 11: V2 on carol M1 x, V4 on carol M1 fb
            "unique_visitors": [0, 2, 2, 2, 0],
            "bot_clicks": [1, 2, 1, 0, 0],  # 08: b5; 09: b3 b1; 10: b2
            "conversions": [0, 1, 1, 0, 0],  # 09: c1 (09:50); 10: c2 (10:20)
            "conversion_value": [0, 0, 49.9, 0, 0],  # c1 has no value; c2 49.90
        }

    async def test_since_and_until_round_to_their_hours(self, scenario) -> None:
        body = await series(scenario, since="2026-11-20T09:30:00Z", until="2026-11-20T10:59:59Z")
        assert pairs(body) == [("2026-11-20T09:00:00Z", 3), ("2026-11-20T10:00:00Z", 2)]

    async def test_hours_shown_in_tokyo(self, scenario) -> None:
        body = await series(
            scenario,
            tz="Asia/Tokyo",
            since="2026-11-20T17:00:00+09:00",  # 08:00 UTC
            until="2026-11-20T20:00:00+09:00",  # 11:00 UTC
        )
        assert body["tz"] == "Asia/Tokyo"
        assert pairs(body) == [
            ("2026-11-20T17:00:00+09:00", 0),
            ("2026-11-20T18:00:00+09:00", 3),
            ("2026-11-20T19:00:00+09:00", 2),
            ("2026-11-20T20:00:00+09:00", 2),
        ]

    async def test_hours_across_utc_midnight_in_new_york(self, scenario) -> None:
        body = await series(
            scenario,
            tz="America/New_York",
            since="2026-11-21T01:00:00Z",
            until="2026-11-21T03:00:00Z",
        )
        assert pairs(body) == [
            ("2026-11-20T20:00:00-05:00", 0),
            ("2026-11-20T21:00:00-05:00", 1),  # v8 at 02:30 UTC
            ("2026-11-20T22:00:00-05:00", 0),
        ]


class TestDefaults:
    async def test_from_the_first_hour_with_clicks_to_now(self, scenario) -> None:
        # Launch has no sent_at of its own (no worker ran): its first clicked hour is 08:00 on
        # the 20th (b5); the last bucket is the current UTC hour.
        before = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        body = await series(scenario)
        after = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        assert (body["interval"], body["metric"], body["tz"]) == ("hour", "visits", "UTC")
        assert body["points"][0] == {"t": "2026-11-20T08:00:00Z", "value": 0}
        last = datetime.fromisoformat(body["points"][-1]["t"].replace("Z", "+00:00"))
        assert before <= last <= after
        assert sum(p["value"] for p in body["points"]) == 10  # v1-v10
        expected = {
            "2026-11-20T09:00:00Z": 3,
            "2026-11-20T10:00:00Z": 2,
            "2026-11-20T11:00:00Z": 2,
            "2026-11-21T02:00:00Z": 1,
            "2026-11-21T10:00:00Z": 2,
        }
        assert {p["t"]: p["value"] for p in body["points"] if p["value"]} == expected


class TestDaily:
    async def test_utc_days_from_dates(self, scenario) -> None:
        window = {"interval": "day", "since": "2026-11-19", "until": "2026-11-22"}
        values = {}
        for metric in METRICS:
            body = await series(scenario, metric=metric, **window)
            assert [p["t"] for p in body["points"]] == [
                "2026-11-19T00:00:00Z",
                "2026-11-20T00:00:00Z",
                "2026-11-21T00:00:00Z",
                "2026-11-22T00:00:00Z",
            ]
            values[metric] = [p["value"] for p in body["points"]]
        assert values == {
            "visits": [0, 7, 3, 0],  # 20th: v1-v7; 21st: v8 v9 v10
            "share_clicks": [0, 6, 2, 0],  # 20th: S1-S6; 21st: S7 S8
            "unique_visitors": [0, 6, 3, 0],  # 20th: 2 + 2 + 2 by hour; 21st: v8 v9 v10
            "bot_clicks": [0, 4, 1, 0],  # 20th: b1 b2 b3 b5; 21st: b4
            "conversions": [0, 2, 1, 0],  # 20th: c1 c2; 21st: c3 (c4 is the follow-up's)
            "conversion_value": [0, 49.9, 20.1, 0],
        }

    async def test_a_date_until_takes_in_its_whole_day(self, scenario) -> None:
        body = await series(scenario, interval="day", since="2026-11-20", until="2026-11-21")
        # 21st: v8 at 02:30, v9 at 10:00, v10 at 10:10
        assert pairs(body) == [("2026-11-20T00:00:00Z", 7), ("2026-11-21T00:00:00Z", 3)]

    async def test_new_york_days(self, scenario) -> None:
        # In New York (UTC-5) the 21st's 02:xx UTC clicks (v8, b4) fall on the 20th.
        expected_t = [
            "2026-11-19T00:00:00-05:00",
            "2026-11-20T00:00:00-05:00",
            "2026-11-21T00:00:00-05:00",
            "2026-11-22T00:00:00-05:00",
        ]
        for since, until in (
            ("2026-11-19T00:00:00-05:00", "2026-11-22T00:00:00-05:00"),
            ("2026-11-19", "2026-11-22"),  # dates are days of the zone asked for
        ):
            window = {"interval": "day", "tz": "America/New_York", "since": since, "until": until}
            values = {}
            for metric in ("visits", "unique_visitors", "bot_clicks"):
                body = await series(scenario, metric=metric, **window)
                assert body["tz"] == "America/New_York"
                assert [p["t"] for p in body["points"]] == expected_t
                values[metric] = [p["value"] for p in body["points"]]
            assert values == {
                "visits": [0, 8, 2, 0],  # 20th: v1-v8; 21st: v9 v10
                "unique_visitors": [0, 7, 2, 0],
                "bot_clicks": [0, 5, 0, 0],  # 20th: b1-b5
            }, since


class TestDaylightSavingTime:
    """New York falls back on 2026-11-01 at 06:00 UTC (02:00 EDT → 01:00 EST)."""

    async def test_hours_and_days_over_the_change(self, small_campaign) -> None:
        sent = await small_campaign(
            networks=["linkedin"], messages=1, sent_at=datetime(2026, 10, 30, tzinfo=UTC)
        )
        for moment, agent in (
            (at(1, 5, 30), V1),  # 01:30 EDT, Nov 1
            (at(1, 6, 30), V2),  # 01:30 EST, Nov 1
            (at(2, 4, 30), V3),  # 23:30 EST, Nov 1 (Nov 2 in UTC)
            (at(2, 5, 30), V1),  # 00:30 EST, Nov 2
        ):
            await sent.click("ada", SMALL, 0, "linkedin", "visit", moment, agent)
        await sent.flush()
        hours = await series(
            sent,
            SMALL,
            tz="America/New_York",
            since="2026-11-01T04:00:00Z",
            until="2026-11-01T07:00:00Z",
        )
        assert pairs(hours) == [
            ("2026-11-01T00:00:00-04:00", 0),
            ("2026-11-01T01:00:00-04:00", 1),
            ("2026-11-01T01:00:00-05:00", 1),  # the same wall-clock hour, an hour later
            ("2026-11-01T02:00:00-05:00", 0),
        ]
        days = await series(
            sent,
            SMALL,
            interval="day",
            tz="America/New_York",
            since="2026-10-31",
            until="2026-11-02",
        )
        assert pairs(days) == [
            ("2026-10-31T00:00:00-04:00", 0),
            ("2026-11-01T00:00:00-04:00", 3),  # a 25-hour day: 04:00 UTC to 05:00 UTC next day
            ("2026-11-02T00:00:00-05:00", 1),
        ]
        utc_days = await series(sent, SMALL, interval="day", since="2026-10-31", until="2026-11-02")
        assert pairs(utc_days) == [
            ("2026-10-31T00:00:00Z", 0),
            ("2026-11-01T00:00:00Z", 2),
            ("2026-11-02T00:00:00Z", 2),
        ]


class TestInvalidQueries:
    async def test_unknown_zone_interval_metric_and_naive_times(self, scenario) -> None:
        url = f"{API}/campaigns/{scenario.campaign[LAUNCH]}/stats/timeseries"
        window = {"since": "2026-11-20T08:00:00Z", "until": "2026-11-20T12:00:00Z"}
        for params in (
            {"tz": "Mars/Olympus_Mons", **window},
            {"interval": "week", **window},
            {"metric": "likes", **window},
            {"since": "2026-11-20T08:00:00", "until": "2026-11-20T12:00:00Z"},  # no zone
        ):
            response = await scenario.org.viewer.get(url, params=params)
            assert response.status_code == 422, (params, response.text)
            assert response.headers["content-type"].startswith("application/problem+json")

    async def test_at_most_ten_thousand_buckets(self, scenario) -> None:
        url = f"{API}/campaigns/{scenario.campaign[LAUNCH]}/stats/timeseries"
        # 2026-01-01T00 → 2027-02-21T15: 365 + 31 + 20 = 416 days × 24 + 15 = 9,999 hours later,
        # so 10,000 hourly buckets; one hour more is too many.
        body = await get_json(
            scenario.org.viewer, url, since="2026-01-01T00:00:00Z", until="2027-02-21T15:00:00Z"
        )
        assert len(body["points"]) == 10_000
        assert body["points"][0]["t"] == "2026-01-01T00:00:00Z"
        assert body["points"][-1]["t"] == "2027-02-21T15:00:00Z"
        assert sum(p["value"] for p in body["points"]) == 10  # v1-v10
        response = await scenario.org.viewer.get(
            url, params={"since": "2026-01-01T00:00:00Z", "until": "2027-02-21T16:00:00Z"}
        )
        assert response.status_code == 422, response.text
