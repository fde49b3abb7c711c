"""The data backfills of migrations 0003 (clicks.kind/delivery_id, link_visitors, click_rollups),
0004 (engagement, campaign_hours, amplifier_days), 0005 (the statistics counters) and 0011 (the
per-variant counters), on a database of their own: migrated to 0002, given clicks with plain
SQL, then upgraded to head.
Every expected value below is counted by hand from CLICKS.

On PostgreSQL the scratch database's TimeZone is set to Pacific/Marquesas (UTC-09:30): a
half-hour offset that also puts the 09:00-09:29 UTC clicks on the previous local day, so any
hour or day taken in the session's zone rather than in UTC would show."""

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Date, bindparam, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.db import UTCDateTime, make_engine
from app.core.migrate import current_revision, head_revision, upgrade
from app.core.scratch_databases import create_scratch_database, drop_scratch_database
from app.tracking.recorder import ClickEvent, store_clicks
from tests.conftest import _database_url

SESSION_TIME_ZONE = "Pacific/Marquesas"

ORG, AMPLIFIER, CAMPAIGN, MESSAGE, DELIVERY = 3, 5, 7, 9, 11
SHARE, VISIT = 13, 17  # link ids
NETWORK = "linkedin"

D1, D2 = date(2026, 11, 20), date(2026, 11, 21)


def at(day: date, hour: int, minute: int = 0, second: int = 0, micro: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, second, micro, tzinfo=UTC)


H9_D1, H10_D1, H9_D2, H10_D2 = at(D1, 9), at(D1, 10), at(D2, 9), at(D2, 10)

# (link, at, is_bot, bot_reason, visitor_key), inserted in this order (ids 1, 2, ...).
CLICKS: list[tuple[int, datetime, bool, str | None, str | None]] = [
    (VISIT, at(D1, 9, 5), False, None, "A"),
    (VISIT, at(D1, 9, 40), False, None, "A"),  # A again, same hour
    (VISIT, at(D1, 9, 50), False, None, "B"),
    (VISIT, at(D1, 9, 30), True, "burst", "C"),  # C as a bot before their first human click
    (VISIT, at(D1, 10, 10), False, None, "A"),  # A again, next hour: no new visitor
    (VISIT, at(D1, 10, 20), False, None, "C"),  # C's first human click: counted in hour 10
    (VISIT, at(D1, 10, 45), False, None, None),  # human without a visitor key
    (SHARE, at(D1, 9, 2), True, "agent", "E"),  # the share link's 09:00 hour is bots only
    (SHARE, at(D1, 10, 5), False, None, "S"),
    (SHARE, at(D1, 10, 35), False, None, "S"),
    (VISIT, at(D2, 9, 15), False, None, "A"),  # A on the next day: a visitor again
    (VISIT, at(D2, 9, 59, 59, 999_999), False, None, "A"),  # last moment of the hour
    (SHARE, at(D2, 10), False, None, "S"),  # first moment of the hour
]


async def _seed(engine: AsyncEngine) -> None:
    """One organization, amplifier, campaign, message, delivery, a share and a visit link of
    that delivery, and CLICKS: the columns of revision 0002, in plain SQL."""
    moment = bindparam("now", type_=UTCDateTime())
    now = {"now": at(D1, 8)}
    statements: list[tuple[str, Any]] = [
        (
            "INSERT INTO organizations (id, name, created_at) VALUES (:id, 'Org', :now)",
            {"id": ORG, **now},
        ),
        (
            "INSERT INTO amplifiers (id, organization_id, email, email_key, name, tags, "
            "networks, audience, locale, status, created_at, updated_at) VALUES (:id, :org, "
            "'ada@example.com', 'ada@example.com', 'Ada', '[]', '[\"linkedin\"]', :audience, 'en', "
            "'active', :now, :now)",
            {"id": AMPLIFIER, "org": ORG, "audience": '{"linkedin": 250, "x": "n/a"}', **now},
        ),
        (
            "INSERT INTO campaigns (id, organization_id, name, subject, intro, audience, "
            "networks, utm, status, sent_at, created_at, updated_at) VALUES (:id, :org, "
            "'Launch', 'Share this', '', '{}', '[\"linkedin\"]', :utm, 'sent', :now, :now, :now)",
            {"id": CAMPAIGN, "org": ORG, "utm": False, **now},
        ),
        (
            "INSERT INTO messages (id, campaign_id, position, text, url, network_text, "
            "hashtags) VALUES (:id, :campaign, 0, 'We launched', 'https://example.com/launch', "
            "'{}', '[]')",
            {"id": MESSAGE, "campaign": CAMPAIGN},
        ),
        (
            "INSERT INTO deliveries (id, campaign_id, amplifier_id, status, attempts, "
            "next_attempt_at, sent_at, created_at, updated_at) VALUES (:id, :campaign, :amp, "
            "'sent', 1, :now, :now, :now, :now)",
            {"id": DELIVERY, "campaign": CAMPAIGN, "amp": AMPLIFIER, **now},
        ),
        (
            "INSERT INTO links (id, code, kind, campaign_id, message_id, delivery_id, "
            "amplifier_id, network, target, created_at) VALUES (:id, :code, :kind, :campaign, "
            ":message, :delivery, :amp, :network, :target, :now)",
            [
                {
                    "id": link,
                    "code": code,
                    "kind": kind,
                    "campaign": CAMPAIGN,
                    "message": MESSAGE,
                    "delivery": DELIVERY,
                    "amp": AMPLIFIER,
                    "network": NETWORK,
                    "target": target,
                    **now,
                }
                for link, code, kind, target in (
                    (SHARE, "share-code", "share", "https://www.linkedin.com/sharing/"),
                    (VISIT, "visit-code", "visit", "https://example.com/launch"),
                )
            ],
        ),
    ]
    async with engine.begin() as connection:
        for sql, parameters in statements:
            statement = text(sql)
            if ":now" in sql:
                statement = statement.bindparams(moment)
            await connection.execute(statement, parameters)
        await connection.execute(
            text(
                "INSERT INTO clicks (link_id, at, is_bot, bot_reason, visitor_key, ua_class) "
                "VALUES (:link, :at, :bot, :reason, :visitor, 'desktop')"
            ).bindparams(bindparam("at", type_=UTCDateTime())),
            [
                {"link": link, "at": when, "bot": bot, "reason": reason, "visitor": visitor}
                for link, when, bot, reason, visitor in CLICKS
            ],
        )


async def _set_time_zone(admin_url: str, run_url: str) -> None:
    engine = make_engine(admin_url, isolation_level="AUTOCOMMIT")
    async with engine.connect() as connection:
        await connection.execute(
            text(
                f'ALTER DATABASE "{make_url(run_url).database}" '
                f"SET timezone TO '{SESSION_TIME_ZONE}'"
            )
        )
    await engine.dispose()


@pytest.fixture(scope="module")
async def engine(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[AsyncEngine]:
    """A database of this module's own (never the suite's), backfilled from 0002 to head."""
    tmp_dir: Path = tmp_path_factory.mktemp("backfill")
    url = _database_url(tmp_dir)
    postgres = url.startswith("postgresql")
    run_url = await create_scratch_database(url, "run") if postgres else url
    try:
        if postgres:
            await _set_time_zone(url, run_url)
        await asyncio.to_thread(upgrade, run_url, "0002")
        seeding = make_engine(run_url)
        try:
            await _seed(seeding)
        finally:
            await seeding.dispose()
        await asyncio.to_thread(upgrade, run_url, "head")
        migrated = make_engine(run_url)
        try:
            yield migrated
        finally:
            await migrated.dispose()
    finally:
        if postgres:
            await drop_scratch_database(url, run_url)


async def _rows(engine: AsyncEngine, sql: str, **types: Any) -> list[tuple[Any, ...]]:
    async with engine.connect() as connection:
        return await _fetch(connection, sql, **types)


async def _fetch(connection: Any, sql: str, **types: Any) -> list[tuple[Any, ...]]:
    result = await connection.execute(text(sql).columns(**types))
    return [tuple(row) for row in result]


HOUR = {"hour": UTCDateTime()}
DAY = {"day": Date()}

# Hand-computed from CLICKS.
LINK_VISITORS = [
    (SHARE, D1, "S", H10_D1),
    (SHARE, D2, "S", H10_D2),
    (VISIT, D1, "A", H9_D1),
    (VISIT, D1, "B", H9_D1),
    (VISIT, D1, "C", H10_D1),  # the bot click at 09:30 does not make C a visitor
    (VISIT, D2, "A", H9_D2),
]
CLICK_ROLLUPS = [  # link, hour, clicks, bot_clicks, unique_visitors
    (SHARE, H9_D1, 0, 1, 0),
    (SHARE, H10_D1, 2, 0, 1),
    (SHARE, H10_D2, 1, 0, 1),
    (VISIT, H9_D1, 3, 1, 2),
    (VISIT, H10_D1, 3, 0, 1),
    (VISIT, H9_D2, 2, 0, 1),
]
# campaign, amplifier, message, network, organization, share clicks, visits, unique visitors,
# bot clicks, first shared at (the 09:00 share hour has bot clicks only, so not then)
ENGAGEMENT = [(CAMPAIGN, AMPLIFIER, MESSAGE, NETWORK, ORG, 3, 8, 4, 2, H10_D1)]
CAMPAIGN_HOURS = [  # campaign, hour, share clicks, visits, unique visitors, bot clicks
    (CAMPAIGN, H9_D1, 0, 3, 2, 2),
    (CAMPAIGN, H10_D1, 2, 3, 1, 0),
    (CAMPAIGN, H9_D2, 0, 2, 1, 0),
    (CAMPAIGN, H10_D2, 1, 0, 0, 0),
]
AMPLIFIER_DAYS = [  # organization, day, amplifier, share clicks, visits, unique visitors
    (ORG, D1, AMPLIFIER, 2, 6, 3),
    (ORG, D2, AMPLIFIER, 1, 2, 1),
]
# ... and the (message, network) pairs first shared that day, points: 10 × those + unique
AMPLIFIER_DAY_POINTS = [(ORG, D1, AMPLIFIER, 1, 13), (ORG, D2, AMPLIFIER, 0, 1)]
# campaign, message (0: all), network ('': all), share clicks, visits, unique visitors, bot
# clicks, sharers, potential reach (Ada shared on linkedin, where her audience is 250)
CAMPAIGN_COUNTS = [
    (CAMPAIGN, 0, "", 0, 0, 0, 0, 1, 0),
    (CAMPAIGN, 0, NETWORK, 0, 0, 0, 0, 1, 250),
    (CAMPAIGN, MESSAGE, "", 0, 0, 0, 0, 1, 0),
    (CAMPAIGN, MESSAGE, NETWORK, 3, 8, 4, 2, 1, 0),
]
# campaign, amplifier, share clicks, visits, unique visitors, bot clicks, pairs shared, points
CAMPAIGN_AMPLIFIERS = [(CAMPAIGN, AMPLIFIER, 3, 8, 4, 2, 1, 14)]
AMPLIFIER_TOTALS = [(ORG, AMPLIFIER, 3, 8, 4, 14)]  # share clicks, visits, unique, points
# campaign, message, variant, recipients, share clicks, visits, unique, bot clicks, sharers:
# everything sent before copy variants is the base text's (migration 0011)
VARIANT_COUNTS = [(CAMPAIGN, MESSAGE, 0, 1, 3, 8, 4, 2, 1)]
MESSAGE_SHARERS = [(CAMPAIGN, MESSAGE, AMPLIFIER, 1)]  # one network shared
NETWORK_SHARERS = [(CAMPAIGN, NETWORK, AMPLIFIER, 1, 250)]  # one message shared; audience

LINK_VISITORS_SQL = "SELECT link_id, day, visitor_key, hour FROM link_visitors ORDER BY 1, 2, 3"
CLICK_ROLLUPS_SQL = (
    "SELECT link_id, hour, clicks, bot_clicks, unique_visitors FROM click_rollups ORDER BY 1, 2"
)
ENGAGEMENT_SQL = (
    "SELECT campaign_id, amplifier_id, message_id, network, organization_id, share_clicks, "
    "visits, unique_visitors, bot_clicks, first_shared_at FROM engagement ORDER BY 1, 2, 3, 4"
)
CAMPAIGN_HOURS_SQL = (
    "SELECT campaign_id, hour, share_clicks, visits, unique_visitors, bot_clicks "
    "FROM campaign_hours ORDER BY 1, 2"
)
AMPLIFIER_DAYS_SQL = (
    "SELECT organization_id, day, amplifier_id, share_clicks, visits, unique_visitors "
    "FROM amplifier_days ORDER BY 1, 2, 3"
)
FIRST_SHARED = {"first_shared_at": UTCDateTime()}
AMPLIFIER_DAY_POINTS_SQL = (
    "SELECT organization_id, day, amplifier_id, first_shares, points FROM amplifier_days "
    "ORDER BY 1, 2, 3"
)
CAMPAIGN_COUNTS_SQL = (
    "SELECT campaign_id, message_id, network, share_clicks, visits, unique_visitors, "
    "bot_clicks, sharers, potential_reach FROM campaign_counts ORDER BY 1, 2, 3"
)
CAMPAIGN_AMPLIFIERS_SQL = (
    "SELECT campaign_id, amplifier_id, share_clicks, visits, unique_visitors, bot_clicks, "
    "shared_pairs, points FROM campaign_amplifiers ORDER BY 1, 2"
)
AMPLIFIER_TOTALS_SQL = (
    "SELECT organization_id, amplifier_id, share_clicks, visits, unique_visitors, points "
    "FROM amplifier_totals ORDER BY 1, 2"
)
VARIANT_COUNTS_SQL = (
    "SELECT campaign_id, message_id, variant, recipients, share_clicks, visits, "
    "unique_visitors, bot_clicks, sharers FROM variant_counts ORDER BY 1, 2, 3"
)
MESSAGE_SHARERS_SQL = (
    "SELECT campaign_id, message_id, amplifier_id, shared FROM message_sharers ORDER BY 1, 2, 3"
)
NETWORK_SHARERS_SQL = (
    "SELECT campaign_id, network, amplifier_id, shared, audience FROM network_sharers "
    "ORDER BY 1, 2, 3"
)


class TestBackfill:
    async def test_the_database_is_at_head(self, engine: AsyncEngine) -> None:
        async with engine.connect() as connection:
            assert await current_revision(connection) == head_revision()
            if engine.dialect.name == "postgresql":  # the zone trap is really set
                zone = await connection.scalar(text("SHOW timezone"))
                assert zone == SESSION_TIME_ZONE

    async def test_clicks_take_kind_and_delivery_from_their_link(self, engine: AsyncEngine) -> None:
        rows = await _rows(engine, "SELECT link_id, kind, delivery_id FROM clicks ORDER BY id")
        kinds = {SHARE: "share", VISIT: "visit"}
        assert rows == [(link, kinds[link], DELIVERY) for link, *_ in CLICKS]

    async def test_link_visitors_hold_each_human_visitor_per_link_and_day(
        self, engine: AsyncEngine
    ) -> None:
        assert await _rows(engine, LINK_VISITORS_SQL, **DAY, **HOUR) == LINK_VISITORS

    async def test_click_rollups_per_link_and_utc_hour(self, engine: AsyncEngine) -> None:
        assert await _rows(engine, CLICK_ROLLUPS_SQL, **HOUR) == CLICK_ROLLUPS

    async def test_engagement(self, engine: AsyncEngine) -> None:
        assert await _rows(engine, ENGAGEMENT_SQL, **FIRST_SHARED) == ENGAGEMENT
        stamped = await _rows(engine, "SELECT count(*) FROM engagement WHERE updated_at IS NULL")
        assert stamped == [(0,)]

    async def test_campaign_hours(self, engine: AsyncEngine) -> None:
        assert await _rows(engine, CAMPAIGN_HOURS_SQL, **HOUR) == CAMPAIGN_HOURS

    async def test_amplifier_days(self, engine: AsyncEngine) -> None:
        assert await _rows(engine, AMPLIFIER_DAYS_SQL, **DAY) == AMPLIFIER_DAYS

    async def test_counters(self, engine: AsyncEngine) -> None:
        assert await _rows(engine, AMPLIFIER_DAY_POINTS_SQL, **DAY) == AMPLIFIER_DAY_POINTS
        assert await _rows(engine, CAMPAIGN_COUNTS_SQL) == CAMPAIGN_COUNTS
        assert await _rows(engine, CAMPAIGN_AMPLIFIERS_SQL) == CAMPAIGN_AMPLIFIERS
        assert await _rows(engine, AMPLIFIER_TOTALS_SQL) == AMPLIFIER_TOTALS
        assert await _rows(engine, MESSAGE_SHARERS_SQL) == MESSAGE_SHARERS
        assert await _rows(engine, NETWORK_SHARERS_SQL) == NETWORK_SHARERS
        assert await _rows(engine, VARIANT_COUNTS_SQL) == VARIANT_COUNTS

    async def test_live_clicks_add_to_the_backfilled_rows(self, engine: AsyncEngine) -> None:
        """Clicks recorded after the upgrade land on the backfilled rows (same keys, same
        stored form) instead of beside them; rolled back, so the other tests see the backfill."""
        clicks = [
            (VISIT, "visit", at(D1, 9, 20), "A"),  # A is already a visitor of D1
            (VISIT, "visit", at(D1, 9, 25), "F"),  # a new visitor in a backfilled hour
            (SHARE, "share", at(D1, 10, 50), "S"),
        ]
        events = [
            ClickEvent(link, DELIVERY, kind, when, False, None, visitor, "desktop", None)
            for link, kind, when, visitor in clicks
        ]
        async with engine.connect() as connection:
            try:
                assert await store_clicks(connection, events) == 0
                visitors = await _fetch(connection, LINK_VISITORS_SQL, **DAY, **HOUR)
                rollups = await _fetch(connection, CLICK_ROLLUPS_SQL, **HOUR)
                engagement = await _fetch(connection, ENGAGEMENT_SQL, **FIRST_SHARED)
                hours = await _fetch(connection, CAMPAIGN_HOURS_SQL, **HOUR)
                days = await _fetch(connection, AMPLIFIER_DAYS_SQL, **DAY)
                counts = await _fetch(connection, CAMPAIGN_COUNTS_SQL)
                totals = await _fetch(connection, CAMPAIGN_AMPLIFIERS_SQL)
                variants = await _fetch(connection, VARIANT_COUNTS_SQL)
            finally:
                await connection.rollback()
        assert visitors == sorted([*LINK_VISITORS, (VISIT, D1, "F", H9_D1)])
        assert rollups == [
            (SHARE, H9_D1, 0, 1, 0),
            (SHARE, H10_D1, 3, 0, 1),
            (SHARE, H10_D2, 1, 0, 1),
            (VISIT, H9_D1, 5, 1, 3),
            (VISIT, H10_D1, 3, 0, 1),
            (VISIT, H9_D2, 2, 0, 1),
        ]
        assert engagement == [(CAMPAIGN, AMPLIFIER, MESSAGE, NETWORK, ORG, 4, 10, 5, 2, H10_D1)]
        assert hours == [
            (CAMPAIGN, H9_D1, 0, 5, 3, 2),
            (CAMPAIGN, H10_D1, 3, 3, 1, 0),
            (CAMPAIGN, H9_D2, 0, 2, 1, 0),
            (CAMPAIGN, H10_D2, 1, 0, 0, 0),
        ]
        assert days == [(ORG, D1, AMPLIFIER, 3, 8, 4), (ORG, D2, AMPLIFIER, 1, 2, 1)]
        # the pair was already shared: no new sharer; the new visitor F is one more point
        assert counts == [
            *CAMPAIGN_COUNTS[:3],
            (CAMPAIGN, MESSAGE, NETWORK, 4, 10, 5, 2, 1, 0),
        ]
        assert totals == [(CAMPAIGN, AMPLIFIER, 4, 10, 5, 2, 1, 15)]
        assert variants == [(CAMPAIGN, MESSAGE, 0, 1, 4, 10, 5, 2, 1)]
