"""Click ids handed out by the redirect and conversions reported against them, through the
real app: redirects over HTTP, the click recorder, the conversions API and its CSV import."""

import asyncio
from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import select

from app.core.schemas import NETWORKS
from app.models import ClickId, Link, WebhookEvent
from app.tracking.retention import purge_old_click_ids, purge_old_clicks
from tests.conversions.conftest import API, click_id_of, visit
from tests.tracking.conftest import CHROME, FIREFOX

ADA, BOB = "ada@example.com", "bob@example.com"


async def _click_ids(sessionmaker) -> list[ClickId]:
    async with sessionmaker() as session:
        return list((await session.scalars(select(ClickId))).all())


async def _campaign_stats(org, campaign_id: int) -> dict:
    response = await org.viewer.get(f"{API}/campaigns/{campaign_id}/stats")
    assert response.status_code == 200, response.text
    return response.json()


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


class TestClickIdsOnRedirects:
    async def test_a_human_visit_carries_one_tied_to_its_stored_click(
        self, client, app, sent_campaign, sessionmaker
    ) -> None:
        sent = await sent_campaign()
        code = sent.code(ADA, 0, "linkedin", "visit")
        response = await client.get(f"/r/{code}", headers={"user-agent": CHROME})
        target = urlsplit(response.headers["location"])
        query = parse_qs(target.query)
        # The message URL's own query and the UTM parameters stay; the click id comes last.
        assert target.query.startswith("ref=mail&utm_source=linkedin")
        assert list(query)[-1] == "amp_cid" and len(query["amp_cid"]) == 1
        click_id = query["amp_cid"][0]
        assert app.state.tracking.click_ids.stored_key(click_id) is not None
        await app.state.tracking.recorder.flush()
        (stored,) = await _click_ids(sessionmaker)
        assert stored.key == app.state.tracking.click_ids.stored_key(click_id)
        assert click_id not in repr(stored.key)  # the MAC is never stored
        again = await visit(client, code)
        assert again is not None and again != click_id

    async def test_bots_share_links_and_heads_get_none(
        self, client, app, sent_campaign, sessionmaker
    ) -> None:
        sent = await sent_campaign()
        code = sent.code(ADA, 0, "x", "visit")
        assert await visit(client, code, "LinkedInBot/1.0 (compatible; Mozilla/5.0)") is None
        assert await visit(client, code, "") is None
        prefetch = await client.get(
            f"/r/{code}", headers={"user-agent": CHROME, "sec-purpose": "prefetch"}
        )
        assert click_id_of(prefetch) is None
        head = await client.head(f"/r/{code}", headers={"user-agent": CHROME})
        assert "amp_cid" not in head.headers["location"]
        share = await client.get(
            f"/r/{sent.code(ADA, 0, 'x', 'share')}", headers={"user-agent": FIREFOX}
        )
        assert "amp_cid" not in share.headers["location"]
        await app.state.tracking.recorder.flush()
        assert await _click_ids(sessionmaker) == []

    async def test_none_when_the_campaign_has_attribution_off(
        self, client, app, org_a, org_campaign, sessionmaker
    ) -> None:
        codes = await org_campaign(org_a, attribution=False, utm=False)
        response = await client.get(f"/r/{codes['x']}", headers={"user-agent": CHROME})
        assert response.headers["location"] == "https://shop.example/p"
        await app.state.tracking.recorder.flush()
        assert await _click_ids(sessionmaker) == []

    async def test_query_fragment_and_a_stale_click_id_in_the_target(
        self, client, org_a, org_campaign
    ) -> None:
        codes = await org_campaign(
            org_a, url="https://shop.example/p?a=1&amp_cid=stale#top", utm=False
        )
        response = await client.get(f"/r/{codes['x']}", headers={"user-agent": CHROME})
        click_id = click_id_of(response)
        assert click_id is not None
        assert response.headers["location"] == f"https://shop.example/p?a=1&amp_cid={click_id}#top"


class TestCreateConversion:
    async def test_attributed_to_the_amplifier_message_and_network_of_the_visit(
        self, client, org_a, sent_campaign
    ) -> None:
        sent = await sent_campaign()
        bob_x = await visit(client, sent.code(BOB, 1, "x", "visit"))
        ada_li = await visit(client, sent.code(ADA, 0, "linkedin", "visit"))
        campaign = (await org_a.viewer.get(f"{API}/campaigns/{sent.campaign_id}")).json()
        messages = [m["id"] for m in campaign["messages"]]
        amplifiers = {
            a["email"]: a["id"]
            for a in (await org_a.viewer.get(f"{API}/amplifiers")).json()["items"]
        }
        # Reported right behind the click, before the recorder's flush: still found.
        first = await org_a.editor.post(
            f"{API}/conversions",
            json={"click_id": bob_x, "event": "purchase", "value": 12.5, "external_id": "o-1"},
        )
        assert first.status_code == 201, first.text
        body = first.json()
        assert body.pop("id") > 0
        assert body.pop("created_at").endswith("Z")
        occurred = datetime.fromisoformat(body.pop("occurred_at").replace("Z", "+00:00"))
        assert abs(occurred - datetime.now(UTC)) < timedelta(minutes=1)
        assert body == {
            "click_id": bob_x,
            "event": "purchase",
            "value": 12.5,
            "currency": "USD",
            "external_id": "o-1",
            "campaign_id": sent.campaign_id,
            "message_id": messages[1],
            "amplifier_id": amplifiers[BOB],
            "network": "x",
        }
        moment = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=1)
        second = await org_a.editor.post(
            f"{API}/conversions",
            json={
                "click_id": ada_li,
                "event": "signup",
                "occurred_at": moment.astimezone(timezone(timedelta(hours=1))).isoformat(),
            },
        )
        assert second.status_code == 201, second.text
        assert (
            second.json()["amplifier_id"],
            second.json()["message_id"],
            second.json()["network"],
            second.json()["value"],
            second.json()["occurred_at"],
        ) == (amplifiers[ADA], messages[0], "linkedin", None, _iso(moment).replace("Z", ".000000Z"))

    async def test_the_same_external_id_is_counted_once(self, client, org_a, sent_campaign) -> None:
        sent = await sent_campaign()
        click_id = await visit(client, sent.code(ADA, 0, "x", "visit"))
        payload = {"click_id": click_id, "event": "purchase", "value": 30, "external_id": "o-9"}
        first = await org_a.editor.post(f"{API}/conversions", json=payload)
        again = await org_a.editor.post(f"{API}/conversions", json={**payload, "value": 99})
        assert (first.status_code, again.status_code) == (201, 200)
        assert again.json() == first.json()
        # Without an external id every report counts.
        for _ in range(2):
            extra = await org_a.editor.post(
                f"{API}/conversions", json={"click_id": click_id, "event": "signup"}
            )
            assert extra.status_code == 201
        stats = await _campaign_stats(org_a, sent.campaign_id)
        assert (stats["conversions"], stats["conversion_value"]) == (3, 30.0)

    async def test_counted_for_the_copy_variant_of_the_link_clicked(
        self, client, org_a, sessionmaker
    ) -> None:
        """Three amplifiers, a message with one variant beside its base text: dealt 0, 1, 0 in
        roster order. Conversions: variant 0 gets 1 (7.25), variant 1 gets 2 (10 + 2.5)."""
        for name in ("a1", "a2", "a3"):
            made = await org_a.editor.post(
                f"{API}/amplifiers", json={"email": f"{name}@example.com"}
            )
            assert made.status_code == 201, made.text
        created = await org_a.editor.post(
            f"{API}/campaigns",
            json={
                "name": "Variants",
                "subject": "Variants",
                "networks": ["linkedin"],
                "messages": [
                    {"text": "Base", "url": "https://shop.example/v", "variants": [{"text": "Alt"}]}
                ],
            },
        )
        assert created.status_code == 201, created.text
        campaign = created.json()
        sent = await org_a.editor.post(f"{API}/campaigns/{campaign['id']}/send")
        assert sent.status_code == 202, sent.text
        async with sessionmaker() as session:
            links = (
                await session.scalars(
                    select(Link)
                    .where(Link.campaign_id == campaign["id"], Link.kind == "visit")
                    .order_by(Link.amplifier_id)
                )
            ).all()
        assert [link.variant for link in links] == [0, 1, 0]
        reports = [(links[0], 7.25), (links[1], 10), (links[1], 2.5)]
        for link, value in reports:
            click_id = await visit(client, link.code)
            made = await org_a.editor.post(
                f"{API}/conversions", json={"click_id": click_id, "event": "sale", "value": value}
            )
            assert made.status_code == 201, made.text
        message_id = campaign["messages"][0]["id"]
        stats = await org_a.viewer.get(f"{API}/messages/{message_id}/stats")
        assert stats.status_code == 200, stats.text
        by_variant = [
            (v["variant"], v["recipients"], v["conversions"], v["conversion_value"])
            for v in stats.json()["by_variant"]
        ]
        assert by_variant == [(0, 2, 1, 7.25), (1, 1, 2, 12.5)]
        assert (stats.json()["conversions"], stats.json()["conversion_value"]) == (3, 19.75)

    async def test_concurrent_reports_are_batched_and_still_counted_once(
        self, client, org_a, sent_campaign
    ) -> None:
        sent = await sent_campaign()
        ada = await visit(client, sent.code(ADA, 0, "x", "visit"))
        bob = await visit(client, sent.code(BOB, 1, "linkedin", "visit"))
        bodies = (
            [{"click_id": ada, "event": "purchase", "value": 10, "external_id": "same"}] * 20
            + [{"click_id": bob, "event": "signup"}] * 10
            + [{"click_id": "x", "event": "e"}]
        )
        answers = await asyncio.gather(
            *(org_a.editor.post(f"{API}/conversions", json=body) for body in bodies)
        )
        statuses = [a.status_code for a in answers]
        assert sorted(statuses[:20]) == [200] * 19 + [201]
        assert len({a.json()["id"] for a in answers[:20]}) == 1
        assert statuses[20:] == [201] * 10 + [404]
        assert len({a.json()["id"] for a in answers[20:30]}) == 10
        stats = await _campaign_stats(org_a, sent.campaign_id)
        assert (stats["conversions"], stats["conversion_value"]) == (11, 10.0)
        by_network = {n: v["conversions"] for n, v in stats["by_network"].items()}
        assert by_network == {"linkedin": 10, "x": 1}

    async def test_the_attribution_window(self, client, app, clock, org_a, sent_campaign) -> None:
        clock.now = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
        sent = await sent_campaign(now=clock.now)
        click_id = await visit(client, sent.code(ADA, 0, "x", "visit"))

        async def at(moment: datetime) -> int:
            response = await org_a.editor.post(
                f"{API}/conversions",
                json={"click_id": click_id, "event": "purchase", "occurred_at": _iso(moment)},
            )
            if response.status_code == 422:
                assert response.json()["errors"][0]["loc"] == ["body", "occurred_at"]
            return response.status_code

        assert await at(clock.now + timedelta(days=90)) == 201  # AMPLIFY_ATTRIBUTION_DAYS 90
        assert await at(clock.now + timedelta(days=90, seconds=1)) == 422
        assert await at(clock.now - timedelta(days=1)) == 422  # before its click
        assert await at(clock.now - timedelta(minutes=1)) == 201  # clock skew
        assert await at(datetime.now(UTC) + timedelta(days=1)) == 422  # in the future

    async def test_only_the_organizations_currency(self, client, org_a, sent_campaign) -> None:
        sent = await sent_campaign()
        click_id = await visit(client, sent.code(ADA, 0, "x", "visit"))
        eur = {"click_id": click_id, "event": "purchase", "value": 5, "currency": "EUR"}
        refused = await org_a.editor.post(f"{API}/conversions", json=eur)
        assert refused.status_code == 422
        assert refused.json()["errors"] == [{"loc": ["body", "currency"], "msg": "must be USD"}]
        # The organization's currency is the one its costs per click are in.
        rates = {n: {"amount": 1, "currency": "EUR"} for n in NETWORKS}
        assert (await org_a.editor.put(f"{API}/settings/cpc", json=rates)).status_code == 200
        accepted = await org_a.editor.post(f"{API}/conversions", json=eur)
        assert accepted.status_code == 201 and accepted.json()["currency"] == "EUR"
        usd = await org_a.editor.post(f"{API}/conversions", json={**eur, "currency": "USD"})
        assert usd.status_code == 422
        unstated = await org_a.editor.post(
            f"{API}/conversions", json={"click_id": click_id, "event": "signup"}
        )
        assert unstated.json()["currency"] == "EUR"
        stats = await _campaign_stats(org_a, sent.campaign_id)
        assert (stats["conversions"], stats["currency"]) == (2, "EUR")

    async def test_unknown_tampered_and_foreign_click_ids_are_404(
        self, client, app, org_a, org_b, org_campaign, sent_campaign
    ) -> None:
        sent = await sent_campaign()
        ours = await visit(client, sent.code(ADA, 0, "x", "visit"))
        theirs = await visit(client, (await org_campaign(org_b))["linkedin"])
        assert ours is not None and theirs is not None
        tampered = ours[:5] + ("A" if ours[5] != "A" else "B") + ours[6:]
        minted, _ = app.state.tracking.click_ids.mint()  # well-formed, never handed out
        for click_id in (tampered, minted, theirs, "nonsense", ours.upper()):
            response = await org_a.editor.post(
                f"{API}/conversions", json={"click_id": click_id, "event": "purchase"}
            )
            assert response.status_code == 404, (click_id, response.text)
            assert response.headers["content-type"].startswith("application/problem+json")
        stats = await _campaign_stats(org_a, sent.campaign_id)
        assert stats["conversions"] == 0

    async def test_click_ids_outlive_raw_clicks_for_the_window(
        self, client, app, clock, org_a, sent_campaign, sessionmaker
    ) -> None:
        clock.now = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
        sent = await sent_campaign(now=clock.now)
        click_id = await visit(client, sent.code(ADA, 0, "x", "visit"))
        await app.state.tracking.recorder.flush()
        async with sessionmaker.begin() as session:
            purged = await purge_old_clicks(
                session, now=clock.now + timedelta(days=30), retention_days=7
            )
            kept = await purge_old_click_ids(
                session, now=clock.now + timedelta(days=30), window_days=90
            )
        assert (purged.clicks, kept) == (1, 0)
        occurred = _iso(clock.now + timedelta(days=29))
        payload = {"click_id": click_id, "event": "purchase", "occurred_at": occurred}
        assert (await org_a.editor.post(f"{API}/conversions", json=payload)).status_code == 201
        async with sessionmaker.begin() as session:
            gone = await purge_old_click_ids(
                session, now=clock.now + timedelta(days=98), window_days=90
            )
        assert gone == 1
        assert (await org_a.editor.post(f"{API}/conversions", json=payload)).status_code == 404

    async def test_conversion_created_is_written_to_the_outbox(
        self, client, org_a, sent_campaign, sessionmaker
    ) -> None:
        sent = await sent_campaign()
        click_id = await visit(client, sent.code(BOB, 0, "linkedin", "visit"))
        created = await org_a.editor.post(
            f"{API}/conversions",
            json={"click_id": click_id, "event": "purchase", "value": 7.25, "external_id": "w"},
        )
        again = await org_a.editor.post(
            f"{API}/conversions",
            json={"click_id": click_id, "event": "purchase", "value": 7.25, "external_id": "w"},
        )
        assert (created.status_code, again.status_code) == (201, 200)
        async with sessionmaker() as session:
            events = (
                await session.scalars(
                    select(WebhookEvent).where(WebhookEvent.type.like("conversion.%"))
                )
            ).all()
        assert [(e.organization_id, e.type, e.data) for e in events] == [
            (org_a.organization_id, "conversion.created", created.json())
        ]

    async def test_invalid_input_is_422(self, client, org_a, sent_campaign) -> None:
        sent = await sent_campaign()
        click_id = await visit(client, sent.code(ADA, 0, "x", "visit"))
        for bad, loc in [
            ({"event": ""}, "event"),
            ({"event": "e" * 65}, "event"),
            ({"value": -1}, "value"),
            ({"currency": "usd"}, "currency"),
            ({"occurred_at": "2026-11-30T10:00:00"}, "occurred_at"),  # no zone
            ({"external_id": "a\nb"}, "external_id"),
            ({"color": "red"}, "color"),
        ]:
            body = {"click_id": click_id, "event": "purchase", **bad}
            response = await org_a.editor.post(f"{API}/conversions", json=body)
            assert response.status_code == 422, (bad, response.text)
            assert loc in response.json()["errors"][0]["loc"], (bad, response.text)
        assert (await org_a.viewer.post(f"{API}/conversions", json=body)).status_code == 403


class TestImportConversions:
    async def test_good_rows_kept_bad_rows_reported_reimport_changes_nothing(
        self, client, org_a, sent_campaign
    ) -> None:
        sent = await sent_campaign()
        ada = await visit(client, sent.code(ADA, 0, "linkedin", "visit"))
        bob = await visit(client, sent.code(BOB, 1, "x", "visit"))
        assert ada is not None and bob is not None
        tampered = ada[:-1] + ("A" if ada[-1] != "A" else "B")
        soon = _iso(datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=1))
        file = "\r\n".join(
            [
                "click_id,event,value,currency,external_id,occurred_at",  # line 1
                f"{ada},purchase,19.90,USD,o-1,{soon}",  # 2: created
                f"{bob},signup,,,,",  # 3: created (no value, no external id)
                f"{ada},purchase,19.90,USD,o-1,{soon}",  # 4: duplicate of 2
                f"{bob},purchase,lots,USD,o-2,",  # 5: bad value
                f"{tampered},purchase,5,USD,o-3,",  # 6: unknown click id
                f"{bob},purchase,5,EUR,o-4,",  # 7: another currency
                f"{bob},purchase,5",  # 8: too few fields
                f"{bob},,5,USD,o-5,",  # 9: no event
                "",
                f"{bob},purchase,5.10,,o-6,",  # 11: created
            ]
        )
        headers = {"content-type": "text/csv"}
        first = await org_a.editor.post(f"{API}/conversions/import", content=file, headers=headers)
        assert first.status_code == 200, first.text
        result = first.json()
        errors = result.pop("errors")
        assert result == {"created": 3, "duplicates": 1, "skipped": 5, "errors_truncated": False}
        assert [(e["row"], e["error"].split(":")[0]) for e in errors] == [
            (5, "value"),
            (6, "click_id"),
            (7, "currency"),
            (8, "columns"),
            (9, "event"),
        ]
        again = await org_a.editor.post(f"{API}/conversions/import", content=file, headers=headers)
        assert again.json()["created"] == 1  # line 3: no external id, so counted again
        assert again.json()["duplicates"] == 3
        stats = await _campaign_stats(org_a, sent.campaign_id)
        assert (stats["conversions"], stats["conversion_value"]) == (4, 25.0)  # 19.90 + 5.10

    async def test_whole_file_problems(self, org_a) -> None:
        csv_type = {"content-type": "text/csv"}
        for content, status in [
            ("click_id,event,price\n", 422),  # unknown column
            ("event,value\n", 422),  # no click_id column
            ("click_id,event,event\n", 422),
            ("", 422),
        ]:
            response = await org_a.editor.post(
                f"{API}/conversions/import", content=content, headers=csv_type
            )
            assert response.status_code == status, (content, response.text)
        as_json = await org_a.editor.post(f"{API}/conversions/import", json=[])
        assert as_json.status_code == 415
        latin = await org_a.editor.post(
            f"{API}/conversions/import", content=b"click_id,event\n\xe9,x\n", headers=csv_type
        )
        assert latin.status_code == 422
