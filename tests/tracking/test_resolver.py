"""The redirect's link lookups against the real database: a launch's burst of first clicks
costs one query, not one per link."""

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event

from app.tracking.clickstore import link_facts
from app.tracking.resolver import INLINE_CODES, LinkResolver, _with_their_deliveries

EMAILS = ("ada@example.com", "bob@example.com", "cyd@example.com")


@pytest.fixture
def statements(app) -> Iterator[list[str]]:
    """Every statement the engine sends while the test runs."""
    sent: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        sent.append(statement)

    engine = app.state.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    yield sent
    event.remove(engine, "before_cursor_execute", record)


class TestColdLinks:
    async def test_concurrent_misses_share_one_query(self, app, sent_campaign):
        sent = await sent_campaign(EMAILS)
        resolver = LinkResolver(app.state.engine)
        wanted = [sent.code(email, 0, "linkedin", "share") for email in EMAILS[:2]]
        wanted += [sent.code("ada@example.com", 1, "x", "visit"), "Unknown0000"]
        found = await asyncio.gather(*(resolver.link(code) for code in [*wanted, *wanted]))
        assert resolver.queries == 1
        assert [link.code if link else None for link in found] == [
            *wanted[:3],
            None,
            *wanted[:3],
            None,
        ]
        assert found[0] is not None and found[0].kind == "share"
        assert found[2] is not None and found[2].kind == "visit"

    async def test_a_link_brings_its_deliverys_links_and_sent_at(
        self, app, sent_campaign, statements
    ):
        sent = await sent_campaign(EMAILS)
        resolver = LinkResolver(app.state.engine)
        share = await resolver.link(sent.code("bob@example.com", 0, "linkedin", "share"))
        assert share is not None
        statements.clear()
        for position in (0, 1):
            for network in ("linkedin", "x"):
                for kind in ("share", "visit"):
                    link = await resolver.link(
                        sent.code("bob@example.com", position, network, kind)
                    )
                    assert link is not None and link.delivery_id == share.delivery_id
                    assert await resolver.delivery_sent_at(link) is not None
        assert statements == [] and resolver.queries == 1  # every one from memory
        other = await resolver.link(sent.code("cyd@example.com", 0, "x", "share"))
        assert other is not None and other.delivery_id != share.delivery_id
        assert resolver.queries == 2  # another delivery: looked up

    async def test_a_code_wanted_while_its_delivery_is_looked_up_costs_no_query(
        self, app, sent_campaign
    ):
        sent = await sent_campaign(EMAILS)
        resolver = LinkResolver(app.state.engine)
        share = asyncio.create_task(resolver.link(sent.code("ada@example.com", 0, "x", "share")))
        for _ in range(3):  # the share's lookup gathers its moment's misses, then queries
            await asyncio.sleep(0)
        assert resolver.queries == 1  # under way
        visit = await resolver.link(sent.code("ada@example.com", 0, "x", "visit"))
        assert (await share) is not None and visit is not None
        assert visit.kind == "visit" and visit.delivery_id == (await share).delivery_id
        assert resolver.queries == 1

    async def test_the_links_read_as_through_the_orm(self, app, sent_campaign):
        """SQLite's rows come from the driver untyped: the cached links must not differ."""
        sent = await sent_campaign(EMAILS)
        resolver = LinkResolver(app.state.engine)
        link = await resolver.link(sent.code("bob@example.com", 1, "x", "visit"))
        assert link is not None
        async with app.state.engine.connect() as connection:
            row = (await connection.execute(_with_their_deliveries([link.code]))).all()
        expected = {r.code: r for r in row}[link.code]
        assert (link.id, link.target, link.delivery_id) == (
            expected.id,
            expected.target,
            expected.delivery_id,
        )
        assert link.facts == link_facts(expected)
        assert link.attributed is not None  # campaigns attribute visits by default
        sent_at = await resolver.delivery_sent_at(link)
        assert sent_at == expected.sent_at and sent_at is not None and sent_at.tzinfo is not None

    async def test_an_unknown_code_is_remembered_briefly(self, app):
        resolver = LinkResolver(app.state.engine)
        assert await resolver.link("Unknown0000") is None
        assert await resolver.link("Unknown0000") is None
        assert resolver.queries == 1


class TestSqliteInline:
    """On SQLite a lookup of a few codes is read on the event loop from the resolver's own
    connection; a larger one, or one SQLite cannot answer at once, goes to the driver's
    thread. Either way the links are the same."""

    @pytest.fixture(autouse=True)
    def _sqlite_only(self, app: Any) -> None:
        if app.state.engine.dialect.name != "sqlite":
            pytest.skip("the inline reader is SQLite's")

    async def test_a_few_codes_are_read_inline(self, app, sent_campaign):
        sent = await sent_campaign(EMAILS)
        resolver = LinkResolver(app.state.engine)
        link = await resolver.link(sent.code("ada@example.com", 0, "x", "share"))
        assert link is not None and link.kind == "share"
        assert (resolver.queries, resolver.inline_queries) == (1, 1)
        resolver.close()

    async def test_a_burst_goes_to_the_drivers_thread(self, app, sent_campaign):
        sent = await sent_campaign(EMAILS)
        resolver = LinkResolver(app.state.engine)
        codes = [
            sent.code(email, position, network, "share")
            for email in EMAILS
            for position in (0, 1)
            for network in ("linkedin", "x")
        ]
        codes += [f"Unknown{i:04}" for i in range(INLINE_CODES)]
        found = await asyncio.gather(*(resolver.link(code) for code in codes))
        assert (resolver.queries, resolver.inline_queries) == (1, 0)
        assert [link.code if link else None for link in found] == [
            *codes[: len(EMAILS) * 4],
            *[None] * INLINE_CODES,
        ]
        inline = LinkResolver(app.state.engine)
        for code, link in zip(codes, found, strict=True):
            assert await inline.link(code) == link
        inline.close()

    async def test_a_database_it_cannot_read_at_once_goes_to_the_drivers_thread(
        self, app, sent_campaign, tmp_path
    ):
        sent = await sent_campaign(EMAILS)
        resolver = LinkResolver(app.state.engine)
        assert resolver._inline is not None
        resolver._inline.path = tmp_path  # a folder: SQLite cannot open it
        link = await resolver.link(sent.code("cyd@example.com", 1, "linkedin", "visit"))
        assert link is not None and link.kind == "visit"
        assert (resolver.queries, resolver.inline_queries) == (1, 0)
