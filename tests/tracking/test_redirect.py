from urllib.parse import parse_qs, urlsplit

from sqlalchemy import func, select, text

from app.models import Click, ClickRollup
from tests.tracking.conftest import CHROME


async def _clicks(sessionmaker) -> list[Click]:
    async with sessionmaker() as session:
        return list((await session.scalars(select(Click).order_by(Click.id))).all())


class TestRedirect:
    async def test_visit_link_redirects_to_the_message_with_utm(
        self, client, app, sent_campaign, sessionmaker
    ) -> None:
        sent = await sent_campaign()
        response = await client.get(
            f"/r/{sent.code('ada@example.com', 0, 'linkedin', 'visit')}",
            headers={"user-agent": CHROME},
        )
        assert response.status_code == 302
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert response.content == b""
        target = urlsplit(response.headers["location"])
        assert (target.netloc, target.path) == ("example.com", "/one")
        query = parse_qs(target.query)
        assert query["ref"] == ["mail"] and query["utm_source"] == ["linkedin"]
        await app.state.tracking.recorder.flush()
        clicks = await _clicks(sessionmaker)
        assert len(clicks) == 1
        click = clicks[0]
        assert (click.kind, click.is_bot, click.bot_reason, click.ua_class) == (
            "visit",
            False,
            None,
            "desktop",
        )
        assert click.delivery_id == sent.delivery_of["ada@example.com"]
        assert click.visitor_key and len(click.visitor_key) == 32

    async def test_share_link_redirects_to_the_intent(self, client, sent_campaign) -> None:
        sent = await sent_campaign()
        response = await client.get(f"/r/{sent.code('bob@example.com', 1, 'x', 'share')}")
        intent = urlsplit(response.headers["location"])
        assert (intent.netloc, intent.path) == ("x.com", "/intent/tweet")
        visit = parse_qs(intent.query)["url"][0]
        assert visit.endswith(sent.code("bob@example.com", 1, "x", "visit"))

    async def test_head_answers_like_get_and_records_nothing(
        self, client, app, sent_campaign, sessionmaker
    ) -> None:
        sent = await sent_campaign()
        code = sent.code("ada@example.com", 0, "x", "visit")
        head = await client.head(f"/r/{code}")
        get = await client.get(f"/r/{code}")
        assert head.status_code == get.status_code == 302
        assert head.headers["location"] == get.headers["location"]
        await app.state.tracking.recorder.flush()
        assert len(await _clicks(sessionmaker)) == 1

    async def test_unknown_and_malformed_codes_are_404_pages(self, client) -> None:
        for path in ("/r/ZZZZZZZZZZ", "/r/short", "/r/" + "a" * 40, "/r/%00%0d%0a", "/r/"):
            response = await client.get(path)
            assert response.status_code == 404, path
            assert response.headers["content-type"].startswith("text/html")
            assert "location" not in response.headers
        assert (await client.head("/r/ZZZZZZZZZZ")).status_code == 404

    async def test_query_parameters_never_change_the_location(self, client, sent_campaign) -> None:
        sent = await sent_campaign()
        code = sent.code("ada@example.com", 0, "linkedin", "visit")
        plain = (await client.get(f"/r/{code}")).headers["location"]
        for query in (
            "url=https://evil.test",
            "next=//evil.test",
            "redirect=https%3A%2F%2Fevil.test",
            "u=evil",
        ):
            response = await client.get(f"/r/{code}?{query}")
            assert response.headers["location"] == plain
            assert "evil" not in response.headers["location"]

    async def test_redirect_is_described_in_openapi(self, client) -> None:
        paths = (await client.get("/openapi.json")).json()["paths"]
        assert {"get", "head"} <= set(paths["/r/{code}"])


class TestRecordingFailures:
    async def test_recorder_failure_still_redirects_and_nothing_is_lost(
        self, client, app, sent_campaign, sessionmaker
    ) -> None:
        sent = await sent_campaign()
        code = sent.code("ada@example.com", 0, "linkedin", "visit")
        recorder = app.state.tracking.recorder
        async with app.state.engine.begin() as connection:
            await connection.execute(text("ALTER TABLE clicks RENAME TO clicks_away"))
        try:
            responses = [await client.get(f"/r/{code}") for _ in range(3)]
            assert [r.status_code for r in responses] == [302, 302, 302]
            failed_before = recorder.failed_flushes
            await recorder.flush()
            assert recorder.failed_flushes > failed_before
            assert recorder.pending == 3  # kept for the next try
        finally:
            async with app.state.engine.begin() as connection:
                await connection.execute(text("ALTER TABLE clicks_away RENAME TO clicks"))
        await recorder.flush()
        assert recorder.pending == 0
        assert len(await _clicks(sessionmaker)) == 3


class TestShutdown:
    async def test_clean_shutdown_under_load_loses_no_answered_click(
        self, settings, sent_campaign, sessionmaker
    ) -> None:
        import asyncio

        import httpx

        from app.main import create_app

        sent = await sent_campaign()
        codes = [c for (_, _, _, kind), c in sent.codes.items() if kind == "visit"]
        second = create_app(settings.model_copy(update={"click_flush_seconds": 5.0}))
        answered = 0
        async with second.router.lifespan_context(second):
            transport = httpx.ASGITransport(app=second)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                responses = await asyncio.gather(
                    *(http.get(f"/r/{codes[i % len(codes)]}") for i in range(400))
                )
                answered = sum(r.status_code == 302 for r in responses)
            assert second.state.tracking.recorder.pending > 0  # still only in memory
        async with sessionmaker() as session:
            stored = await session.scalar(select(func.count()).select_from(Click))
            rolled = await session.scalar(
                select(func.sum(ClickRollup.clicks + ClickRollup.bot_clicks))
            )
        assert answered == stored == rolled == 400
