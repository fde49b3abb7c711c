"""Who may call what: roles per route, and two organizations that never see each other."""

from dataclasses import dataclass
from typing import Any

import pytest

from app.models import Campaign, Message
from tests.campaigns.conftest import CAMPAIGNS, assert_problem, create_campaign, message_payload
from tests.factories import OrgClients, RoleClient, campaign_payload


@dataclass
class Ids:
    campaign: int
    message: int


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # {c} campaign id, {m} message id
    body: dict[str, Any] | None = None
    writes: bool = True

    def url(self, ids: Ids) -> str:
        return self.path.format(c=ids.campaign, m=ids.message)

    async def call(self, client: RoleClient, ids: Ids) -> Any:
        kwargs = {"json": self.body} if self.body is not None else {}
        return await client.request(self.method, self.url(ids), **kwargs)


CAMPAIGN = f"{CAMPAIGNS}/{{c}}"
MESSAGES = f"{CAMPAIGNS}/{{c}}/messages"
MESSAGE = f"{CAMPAIGNS}/{{c}}/messages/{{m}}"

# Every route that names a campaign (and a message) by id.
ROUTES_WITH_IDS = [
    Route("GET", CAMPAIGN, writes=False),
    Route("PATCH", CAMPAIGN, {"name": "Taken over"}),
    Route("DELETE", CAMPAIGN),
    Route("GET", MESSAGES, writes=False),
    Route("POST", MESSAGES, message_payload("Injected")),
    Route("GET", MESSAGE, writes=False),
    Route("PATCH", MESSAGE, {"text": "Taken over"}),
    Route("PATCH", MESSAGE, {"position": 0}),
    Route("DELETE", MESSAGE),
]
ALL_ROUTES = [
    Route("GET", CAMPAIGNS, writes=False),
    Route("POST", CAMPAIGNS, campaign_payload()),
    *ROUTES_WITH_IDS,
]


def route_id(route: Route) -> str:
    body = "+" + ",".join(route.body) if route.body else ""
    return f"{route.method} {route.path}{body}"


async def make(client: RoleClient) -> Ids:
    campaign = await create_campaign(
        client, messages=[message_payload("first"), message_payload("second")]
    )
    return Ids(campaign["id"], campaign["messages"][1]["id"])


async def snapshot(sessionmaker, campaign_id: int) -> tuple[Any, ...]:
    async with sessionmaker() as session:
        campaign = await session.get(Campaign, campaign_id)
        assert campaign is not None
        messages = (
            await session.scalars(
                Message.__table__.select()
                .where(Message.campaign_id == campaign_id)
                .order_by(Message.id)
            )
        ).all()
        return (campaign.name, campaign.status, campaign.updated_at, tuple(messages))


class TestRoles:
    @pytest.mark.parametrize("route", ALL_ROUTES, ids=route_id)
    async def test_viewer_reads_but_cannot_write(
        self, org_a: OrgClients, sessionmaker, route: Route
    ) -> None:
        ids = await make(org_a.editor)
        before = await snapshot(sessionmaker, ids.campaign)
        response = await route.call(org_a.viewer, ids)
        if route.writes:
            assert_problem(response, 403)
        else:
            assert response.status_code == 200
        assert await snapshot(sessionmaker, ids.campaign) == before

    @pytest.mark.parametrize("route", ALL_ROUTES, ids=route_id)
    @pytest.mark.parametrize("role", ["editor", "admin"])
    async def test_editor_and_admin_may_do_everything(
        self, org_a: OrgClients, route: Route, role: str
    ) -> None:
        ids = await make(org_a.editor)
        response = await route.call(getattr(org_a, role), ids)
        assert response.status_code in (200, 201, 204), response.text

    @pytest.mark.parametrize("route", ALL_ROUTES, ids=route_id)
    async def test_no_key_is_401(self, client, org_a: OrgClients, route: Route) -> None:
        ids = await make(org_a.editor)
        kwargs = {"json": route.body} if route.body is not None else {}
        response = await client.request(route.method, route.url(ids), **kwargs)
        assert_problem(response, 401)

    async def test_viewer_invalid_write_is_still_403(self, org_a: OrgClients) -> None:
        response = await org_a.viewer.post(CAMPAIGNS, json={"name": "\n"})
        assert_problem(response, 403)


class TestTenancy:
    @pytest.mark.parametrize("route", ROUTES_WITH_IDS, ids=route_id)
    async def test_other_organizations_ids_are_404(
        self, org_a: OrgClients, org_b: OrgClients, sessionmaker, route: Route
    ) -> None:
        theirs = await make(org_b.editor)
        ours = await make(org_a.editor)
        before = await snapshot(sessionmaker, theirs.campaign)
        for ids in (theirs, Ids(ours.campaign, theirs.message), Ids(theirs.campaign, ours.message)):
            if "{m}" not in route.path and ids.campaign == ours.campaign:
                continue
            for client in (org_a.admin, org_a.editor, org_a.viewer):
                if route.writes and client is org_a.viewer:
                    continue
                response = await route.call(client, ids)
                assert_problem(response, 404)
        assert await snapshot(sessionmaker, theirs.campaign) == before
        # The owner still sees everything as it was.
        assert (await org_b.viewer.get(route.url(theirs))).status_code == 200

    @pytest.mark.parametrize("route", [r for r in ROUTES_WITH_IDS if "{m}" in r.path], ids=route_id)
    async def test_message_of_another_campaign_is_404(
        self, org_a: OrgClients, sessionmaker, route: Route
    ) -> None:
        first = await make(org_a.editor)
        second = await make(org_a.editor)
        before = await snapshot(sessionmaker, second.campaign)
        response = await route.call(org_a.editor, Ids(first.campaign, second.message))
        assert_problem(response, 404)
        assert await snapshot(sessionmaker, second.campaign) == before

    async def test_lists_never_mix(self, org_a: OrgClients, org_b: OrgClients) -> None:
        a_ids = [(await make(org_a.editor)).campaign for _ in range(3)]
        b_ids = [(await make(org_b.editor)).campaign for _ in range(2)]
        for org, own in ((org_a, a_ids), (org_b, b_ids)):
            seen: list[int] = []
            params: dict[str, Any] = {"limit": 1}
            while True:
                page = (await org.viewer.get(CAMPAIGNS, params=params)).json()
                seen += [c["id"] for c in page["items"]]
                if page["next_cursor"] is None:
                    break
                params["cursor"] = page["next_cursor"]
            assert seen == own
            assert (await org.viewer.get(CAMPAIGNS, params={"status": "draft"})).json()[
                "items"
            ] == (await org.viewer.get(CAMPAIGNS)).json()["items"]

    async def test_created_campaign_belongs_to_the_key_org(
        self, org_a: OrgClients, org_b: OrgClients, sessionmaker
    ) -> None:
        ids = await make(org_b.editor)
        async with sessionmaker() as session:
            campaign = await session.get(Campaign, ids.campaign)
            assert campaign is not None and campaign.organization_id == org_b.organization_id
        assert_problem(await org_a.viewer.get(f"{CAMPAIGNS}/{ids.campaign}"), 404)
