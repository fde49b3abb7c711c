"""The redirect's link lookups against the real database: a launch's burst of first clicks
costs one query, not one per link."""

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event

from app.tracking.resolver import LinkResolver

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


def _lookups(statements: list[str]) -> list[str]:
    return [s for s in statements if "FROM links" in s]


class TestColdLinks:
    async def test_concurrent_misses_share_one_query(self, app, sent_campaign, statements):
        sent = await sent_campaign(EMAILS)
        resolver = LinkResolver(app.state.engine)
        wanted = [sent.code(email, 0, "linkedin", "share") for email in EMAILS[:2]]
        wanted += [sent.code("ada@example.com", 1, "x", "visit"), "Unknown0000"]
        statements.clear()
        found = await asyncio.gather(*(resolver.link(code) for code in [*wanted, *wanted]))
        assert len(_lookups(statements)) == 1
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
        assert statements == []  # every one from memory
        other = await resolver.link(sent.code("cyd@example.com", 0, "x", "share"))
        assert other is not None and other.delivery_id != share.delivery_id
        assert len(_lookups(statements)) == 1  # another delivery: looked up

    async def test_an_unknown_code_is_remembered_briefly(self, app, statements):
        resolver = LinkResolver(app.state.engine)
        assert await resolver.link("Unknown0000") is None
        assert await resolver.link("Unknown0000") is None
        assert len(_lookups(statements)) == 1
