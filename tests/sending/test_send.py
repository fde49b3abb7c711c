import asyncio

from sqlalchemy import func, select

from app.models import Delivery, Link
from tests.factories import OrgClients
from tests.sending.conftest import make_campaign, make_roster, send_campaign


async def _count(sessionmaker, model, **where) -> int:
    async with sessionmaker() as session:
        stmt = select(func.count()).select_from(model)
        for column, value in where.items():
            stmt = stmt.where(getattr(model, column) == value)
        return int(await session.scalar(stmt) or 0)


class TestSendCampaign:
    async def test_send_snapshots_audience_and_links(self, org_a: OrgClients, sessionmaker) -> None:
        await make_roster(org_a, 3)
        campaign = await make_campaign(
            org_a,
            networks=["linkedin", "x", "facebook"],
            messages=[
                {"text": "One", "url": "https://example.com/1"},
                {"text": "Two", "url": "https://example.com/2"},
            ],
        )
        sent = await send_campaign(org_a, campaign["id"])
        assert sent["status"] == "sending"
        assert await _count(sessionmaker, Delivery, campaign_id=campaign["id"]) == 3
        # 3 amplifiers × 2 messages × 3 networks × (share + visit)
        assert await _count(sessionmaker, Link, campaign_id=campaign["id"]) == 36
        async with sessionmaker() as session:
            codes = (await session.scalars(select(Link.code))).all()
        assert len(set(codes)) == 36 and all(len(c) >= 8 for c in codes)

    async def test_second_send_is_409_and_creates_nothing(
        self, org_a: OrgClients, sessionmaker
    ) -> None:
        await make_roster(org_a, 2)
        campaign = await make_campaign(org_a)
        await send_campaign(org_a, campaign["id"])
        again = await org_a.editor.post(f"/api/v1/campaigns/{campaign['id']}/send")
        assert again.status_code == 409
        assert again.headers["content-type"].startswith("application/problem+json")
        assert await _count(sessionmaker, Delivery, campaign_id=campaign["id"]) == 2

    async def test_concurrent_sends_create_one_snapshot(
        self, org_a: OrgClients, sessionmaker
    ) -> None:
        await make_roster(org_a, 5)
        campaign = await make_campaign(org_a)
        url = f"/api/v1/campaigns/{campaign['id']}/send"
        responses = await asyncio.gather(*(org_a.editor.post(url) for _ in range(4)))
        assert sorted(r.status_code for r in responses) == [202, 409, 409, 409]
        assert await _count(sessionmaker, Delivery, campaign_id=campaign["id"]) == 5

    async def test_audience_tags_and_networks(self, org_a: OrgClients, sessionmaker) -> None:
        rows = [
            {"email": "a@example.com", "tags": ["sales"], "networks": ["linkedin"]},
            {"email": "b@example.com", "tags": ["sales", "emea"]},
            {"email": "c@example.com", "tags": ["hr"]},
            {"email": "d@example.com", "tags": ["sales"], "networks": ["reddit"]},
        ]
        assert (await org_a.editor.post("/api/v1/amplifiers/import", json=rows)).status_code == 200
        campaign = await make_campaign(
            org_a, audience={"tags": ["sales", "emea"]}, networks=["linkedin", "x"]
        )
        await send_campaign(org_a, campaign["id"])
        deliveries = (
            await org_a.viewer.get(f"/api/v1/campaigns/{campaign['id']}/deliveries")
        ).json()["items"]
        # d@ uses none of the campaign's networks: nothing to share, so no digest.
        assert sorted(d["email"] for d in deliveries) == ["a@example.com", "b@example.com"]
        async with sessionmaker() as session:
            networks = (
                await session.execute(select(Link.amplifier_id, Link.network).distinct())
            ).all()
        by_email = {d["amplifier_id"]: d["email"] for d in deliveries}
        used = {(by_email[a], n) for a, n in networks}
        assert used == {
            ("a@example.com", "linkedin"),
            ("b@example.com", "linkedin"),
            ("b@example.com", "x"),
        }

    async def test_empty_audience_and_no_messages_are_422(self, org_a: OrgClients) -> None:
        campaign = await make_campaign(org_a)
        response = await org_a.editor.post(f"/api/v1/campaigns/{campaign['id']}/send")
        assert response.status_code == 422
        await make_roster(org_a, 1)
        empty = await make_campaign(org_a, messages=[])
        response = await org_a.editor.post(f"/api/v1/campaigns/{empty['id']}/send")
        assert response.status_code == 422
        assert (await org_a.viewer.get(f"/api/v1/campaigns/{empty['id']}")).json()[
            "status"
        ] == "draft"

    async def test_unsubscribed_and_bounced_are_not_in_the_snapshot(
        self, org_a: OrgClients
    ) -> None:
        roster = await make_roster(org_a, 3)
        await org_a.editor.patch(
            f"/api/v1/amplifiers/{roster[0]['id']}", json={"status": "unsubscribed"}
        )
        await org_a.editor.patch(
            f"/api/v1/amplifiers/{roster[1]['id']}", json={"status": "bounced"}
        )
        campaign = await make_campaign(org_a)
        await send_campaign(org_a, campaign["id"])
        deliveries = (
            await org_a.viewer.get(f"/api/v1/campaigns/{campaign['id']}/deliveries")
        ).json()["items"]
        assert [d["amplifier_id"] for d in deliveries] == [roster[2]["id"]]

    async def test_scheduled_send(self, org_a: OrgClients) -> None:
        await make_roster(org_a, 1)
        campaign = await make_campaign(org_a)
        sent = await send_campaign(org_a, campaign["id"], scheduled_at="2099-01-01T09:00:00Z")
        assert sent["status"] == "scheduled"
        assert sent["scheduled_at"].startswith("2099-01-01T09:00:00")
        assert sent["scheduled_at"].endswith("Z")

    async def test_naive_scheduled_at_is_422(self, org_a: OrgClients) -> None:
        await make_roster(org_a, 1)
        campaign = await make_campaign(org_a)
        response = await org_a.editor.post(
            f"/api/v1/campaigns/{campaign['id']}/send", json={"scheduled_at": "2099-01-01T09:00:00"}
        )
        assert response.status_code == 422

    async def test_viewer_cannot_send_and_foreign_is_404(
        self, org_a: OrgClients, org_b: OrgClients
    ) -> None:
        await make_roster(org_a, 1)
        campaign = await make_campaign(org_a)
        url = f"/api/v1/campaigns/{campaign['id']}"
        assert (await org_a.viewer.post(f"{url}/send")).status_code == 403
        for path in ("send", "cancel", "resume"):
            assert (await org_b.editor.post(f"{url}/{path}")).status_code == 404
        assert (await org_b.viewer.get(f"{url}/deliveries")).status_code == 404
        assert (await org_b.viewer.get(f"{url}/preview")).status_code == 404


class TestCancelAndResume:
    async def test_cancel_pending_deliveries(self, org_a: OrgClients) -> None:
        await make_roster(org_a, 2)
        campaign = await make_campaign(org_a)
        await send_campaign(org_a, campaign["id"], scheduled_at="2099-01-01T09:00:00Z")
        response = await org_a.editor.post(f"/api/v1/campaigns/{campaign['id']}/cancel")
        assert response.status_code == 200 and response.json()["status"] == "cancelled"
        deliveries = (
            await org_a.viewer.get(
                f"/api/v1/campaigns/{campaign['id']}/deliveries", params={"status": "cancelled"}
            )
        ).json()["items"]
        assert len(deliveries) == 2
        again = await org_a.editor.post(f"/api/v1/campaigns/{campaign['id']}/cancel")
        assert again.status_code == 200

    async def test_cancel_draft_and_resume_non_paused_are_409(self, org_a: OrgClients) -> None:
        campaign = await make_campaign(org_a)
        assert (
            await org_a.editor.post(f"/api/v1/campaigns/{campaign['id']}/cancel")
        ).status_code == 409
        assert (
            await org_a.editor.post(f"/api/v1/campaigns/{campaign['id']}/resume")
        ).status_code == 409


class TestDeliveriesList:
    async def test_pages_and_status_filter(self, org_a: OrgClients) -> None:
        await make_roster(org_a, 5)
        campaign = await make_campaign(org_a)
        await send_campaign(org_a, campaign["id"])
        url = f"/api/v1/campaigns/{campaign['id']}/deliveries"
        first = (await org_a.viewer.get(url, params={"limit": 2})).json()
        assert len(first["items"]) == 2 and first["next_cursor"]
        seen = [d["id"] for d in first["items"]]
        cursor = first["next_cursor"]
        while cursor:
            page = (await org_a.viewer.get(url, params={"limit": 2, "cursor": cursor})).json()
            seen += [d["id"] for d in page["items"]]
            cursor = page["next_cursor"]
        assert len(seen) == len(set(seen)) == 5
        item = first["items"][0]
        assert {
            "id",
            "amplifier_id",
            "email",
            "status",
            "attempts",
            "last_error",
            "sent_at",
        } <= item.keys()
        assert (await org_a.viewer.get(url, params={"status": "sent"})).json()["items"] == []
        assert (await org_a.viewer.get(url, params={"status": "bogus"})).status_code == 422

    async def test_cursor_of_another_campaign_is_refused(self, org_a: OrgClients) -> None:
        await make_roster(org_a, 3)
        ids = []
        for _ in range(2):
            campaign = await make_campaign(org_a)
            await send_campaign(org_a, campaign["id"])
            ids.append(campaign["id"])
        first = (
            await org_a.viewer.get(f"/api/v1/campaigns/{ids[0]}/deliveries", params={"limit": 1})
        ).json()
        foreign = await org_a.viewer.get(
            f"/api/v1/campaigns/{ids[1]}/deliveries", params={"cursor": first["next_cursor"]}
        )
        assert foreign.status_code == 422
        assert foreign.headers["content-type"].startswith("application/problem+json")
