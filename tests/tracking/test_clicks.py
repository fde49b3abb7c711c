from datetime import timedelta

from sqlalchemy import func, select, text

from app.core.config import parse_trusted_proxies
from app.models import Click, ClickRollup, LinkVisitor, VisitorSalt
from app.tracking.retention import purge_old_clicks
from tests.tracking.conftest import CHROME, FIREFOX


async def _get(client, code: str, **headers: str):
    response = await client.get(f"/r/{code}", headers=headers)
    assert response.status_code == 302
    return response


async def _flush(app) -> None:
    await app.state.tracking.recorder.flush()


async def _clicks(sessionmaker) -> list[Click]:
    async with sessionmaker() as session:
        return list((await session.scalars(select(Click).order_by(Click.id))).all())


async def _totals(sessionmaker) -> tuple[int, int, int]:
    async with sessionmaker() as session:
        row = (
            await session.execute(
                select(
                    func.coalesce(func.sum(ClickRollup.clicks), 0),
                    func.coalesce(func.sum(ClickRollup.bot_clicks), 0),
                    func.coalesce(func.sum(ClickRollup.unique_visitors), 0),
                )
            )
        ).one()
    return int(row[0]), int(row[1]), int(row[2])


class TestBotFlags:
    async def test_link_preview_fetchers_and_empty_agents_are_bots(
        self, client, app, clock, sent_campaign, sessionmaker
    ) -> None:
        sent = await sent_campaign(now=clock.now)
        code = sent.code("ada@example.com", 0, "linkedin", "visit")
        agents = [
            "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)",
            "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
            "Twitterbot/1.0",
            "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
            "WhatsApp/2.23.20.0",
            "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
            "Mastodon/4.2.0 (http.rb/5.1.1; +https://mastodon.social/)",
            "",
        ]
        for agent in agents:
            await _get(client, code, **{"user-agent": agent})
            clock.advance(minutes=1)
        await _flush(app)
        clicks = await _clicks(sessionmaker)
        assert len(clicks) == len(agents)
        assert all(c.is_bot for c in clicks)
        assert clicks[-1].bot_reason == "empty-ua"
        assert await _totals(sessionmaker) == (0, len(agents), 0)

    async def test_prefetches_are_bots(
        self, client, app, clock, sent_campaign, sessionmaker
    ) -> None:
        sent = await sent_campaign(now=clock.now)
        code = sent.code("ada@example.com", 0, "linkedin", "visit")
        await _get(client, code, **{"user-agent": CHROME, "sec-purpose": "prefetch;prerender"})
        await _flush(app)
        (click,) = await _clicks(sessionmaker)
        assert (click.is_bot, click.bot_reason) == (True, "prefetch")

    async def test_digest_click_right_after_delivery_is_a_scanner(
        self, client, app, clock, sent_campaign, sessionmaker
    ) -> None:
        sent = await sent_campaign(now=clock.now, sent_ago=timedelta(seconds=3))
        await _get(
            client, sent.code("ada@example.com", 0, "linkedin", "share"), **{"user-agent": CHROME}
        )
        await _flush(app)
        (click,) = await _clicks(sessionmaker)
        assert (click.is_bot, click.bot_reason) == (True, "scanner-window")

    async def test_human_two_hours_later_counts_as_human(
        self, client, app, clock, sent_campaign, sessionmaker
    ) -> None:
        sent = await sent_campaign(now=clock.now, sent_ago=timedelta(hours=2))
        await _get(
            client, sent.code("ada@example.com", 0, "linkedin", "share"), **{"user-agent": CHROME}
        )
        await _flush(app)
        (click,) = await _clicks(sessionmaker)
        assert (click.is_bot, click.bot_reason) == (False, None)
        assert await _totals(sessionmaker) == (1, 0, 1)


class TestBursts:
    async def test_three_links_in_five_seconds_reflag_the_whole_burst(
        self, client, app, clock, sent_campaign, sessionmaker
    ) -> None:
        sent = await sent_campaign(now=clock.now)
        first = sent.code("ada@example.com", 0, "linkedin", "share")
        await _get(client, first, **{"user-agent": CHROME})
        await _flush(app)  # the first click is stored as human before the burst shows
        assert await _totals(sessionmaker) == (1, 0, 1)
        clock.advance(seconds=2)
        await _get(client, sent.code("ada@example.com", 0, "x", "share"), **{"user-agent": CHROME})
        clock.advance(seconds=2)
        await _get(
            client, sent.code("ada@example.com", 1, "linkedin", "share"), **{"user-agent": CHROME}
        )
        await _flush(app)
        clicks = await _clicks(sessionmaker)
        assert [(c.is_bot, c.bot_reason) for c in clicks] == [(True, "burst")] * 3
        assert await _totals(sessionmaker) == (0, 3, 0)
        async with sessionmaker() as session:
            assert await session.scalar(select(func.count()).select_from(LinkVisitor)) == 0

    async def test_two_links_or_a_slow_third_stay_human(
        self, client, app, clock, sent_campaign, sessionmaker
    ) -> None:
        sent = await sent_campaign(now=clock.now)
        await _get(
            client, sent.code("ada@example.com", 0, "linkedin", "share"), **{"user-agent": CHROME}
        )
        clock.advance(seconds=1)
        await _get(client, sent.code("ada@example.com", 0, "x", "share"), **{"user-agent": CHROME})
        clock.advance(seconds=6)
        await _get(client, sent.code("ada@example.com", 1, "x", "share"), **{"user-agent": CHROME})
        # The same link again inside the window is no burst either.
        await _get(client, sent.code("ada@example.com", 1, "x", "share"), **{"user-agent": CHROME})
        await _flush(app)
        assert [c.is_bot for c in await _clicks(sessionmaker)] == [False] * 4
        assert await _totals(sessionmaker) == (4, 0, 3)

    async def test_visit_links_of_the_delivery_count_too(
        self, client, app, clock, sent_campaign, sessionmaker
    ) -> None:
        # API.md: ≥ 3 different links of one delivery, share or visit.
        sent = await sent_campaign(now=clock.now)
        for message, network, kind in (
            (0, "linkedin", "share"),
            (0, "x", "visit"),
            (1, "x", "visit"),
        ):
            await _get(
                client,
                sent.code("ada@example.com", message, network, kind),
                **{"user-agent": CHROME},
            )
            clock.advance(seconds=1)
        await _flush(app)
        assert [(c.is_bot, c.bot_reason) for c in await _clicks(sessionmaker)] == [
            (True, "burst")
        ] * 3
        assert await _totals(sessionmaker) == (0, 3, 0)

    async def test_other_visitors_and_deliveries_do_not_make_a_burst(
        self, client, app, clock, sent_campaign, sessionmaker
    ) -> None:
        sent = await sent_campaign(now=clock.now)
        await _get(
            client, sent.code("ada@example.com", 0, "linkedin", "share"), **{"user-agent": CHROME}
        )
        await _get(client, sent.code("ada@example.com", 0, "x", "share"), **{"user-agent": FIREFOX})
        await _get(client, sent.code("bob@example.com", 1, "x", "share"), **{"user-agent": CHROME})
        await _flush(app)
        assert [c.is_bot for c in await _clicks(sessionmaker)] == [False] * 3


class TestUniqueVisitors:
    async def test_per_link_and_day(self, client, app, clock, sent_campaign, sessionmaker) -> None:
        sent = await sent_campaign(now=clock.now)
        code = sent.code("ada@example.com", 0, "linkedin", "visit")
        await _get(client, code, **{"user-agent": CHROME})
        clock.advance(minutes=30)
        await _get(client, code, **{"user-agent": CHROME})  # same visitor, same day
        await _get(client, code, **{"user-agent": FIREFOX})  # another visitor
        clock.advance(days=1)
        await _get(client, code, **{"user-agent": CHROME})  # a new day: a new visitor key
        await _flush(app)
        assert await _totals(sessionmaker) == (4, 0, 3)
        keys = {c.visitor_key for c in await _clicks(sessionmaker)}
        assert len(keys) == 3

    async def test_forwarded_for_is_trusted_only_from_configured_proxies(
        self, settings, sent_campaign, sessionmaker, clock
    ) -> None:
        import httpx

        from app.main import create_app

        sent = await sent_campaign(now=clock.now)
        code = sent.code("ada@example.com", 0, "linkedin", "visit")
        keys = {}
        for trusted in ("", "127.0.0.1"):
            proxied = create_app(
                settings.model_copy(update={"trusted_proxies": parse_trusted_proxies(trusted)})
            )
            async with proxied.router.lifespan_context(proxied):
                proxied.state.tracking.clock = clock
                transport = httpx.ASGITransport(app=proxied, client=("127.0.0.1", 5000))
                async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                    for ip in ("203.0.113.7", "198.51.100.9"):
                        await http.get(
                            f"/r/{code}", headers={"user-agent": CHROME, "x-forwarded-for": ip}
                        )
            keys[trusted] = [c.visitor_key for c in (await _clicks(sessionmaker))[-2:]]
        assert keys[""][0] == keys[""][1]  # untrusted peer: the header is ignored
        assert keys["127.0.0.1"][0] != keys["127.0.0.1"][1]

    async def test_no_raw_ip_at_rest(self, settings, sent_campaign, sessionmaker, clock) -> None:
        import httpx

        from app.main import create_app

        sent = await sent_campaign(now=clock.now)
        proxied = create_app(
            settings.model_copy(update={"trusted_proxies": parse_trusted_proxies("127.0.0.1")})
        )
        async with proxied.router.lifespan_context(proxied):
            transport = httpx.ASGITransport(app=proxied, client=("127.0.0.1", 5000))
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                # One link at a time (several links at once would be a scanner burst).
                for code in [sent.code("ada@example.com", 0, "x", "visit")] * 3:
                    await http.get(
                        f"/r/{code}",
                        headers={"user-agent": CHROME, "x-forwarded-for": "203.0.113.77"},
                    )
        async with sessionmaker() as session:
            for table in ("clicks", "link_visitors", "click_rollups"):
                rows = (await session.execute(text(f"SELECT * FROM {table}"))).all()
                assert rows, table
                assert "203.0.113.77" not in repr(rows)
                assert "203.0.113" not in repr(rows)


class TestRetention:
    async def test_old_raw_clicks_go_and_rollups_stay(
        self, client, app, clock, sent_campaign, sessionmaker
    ) -> None:
        sent = await sent_campaign(now=clock.now)
        await _get(
            client, sent.code("ada@example.com", 0, "linkedin", "visit"), **{"user-agent": CHROME}
        )
        clock.advance(days=100)
        await _get(client, sent.code("ada@example.com", 0, "x", "visit"), **{"user-agent": CHROME})
        await _flush(app)
        async with sessionmaker.begin() as session:
            purged = await purge_old_clicks(session, now=clock.now, retention_days=90)
        assert purged.clicks == 1 and purged.visitors == 1 and purged.salts >= 1
        assert len(await _clicks(sessionmaker)) == 1
        assert await _totals(sessionmaker) == (2, 0, 2)
        async with sessionmaker() as session:
            salts = (await session.scalars(select(VisitorSalt.day))).all()
        assert min(salts) >= (clock.now - timedelta(days=1)).date()
