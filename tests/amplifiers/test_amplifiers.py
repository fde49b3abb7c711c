import hashlib
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.amplifiers import service
from app.core.db import session_scope
from app.models import Amplifier, AmplifierStatus, Suppression
from tests.campaigns.conftest import assert_invalid
from tests.factories import OrgClients, RoleClient, amplifier_payload

URL = "/api/v1/amplifiers"
READ_KEYS = {
    "frequency",
    "paused_until",
    "timezone",
    "id",
    "email",
    "name",
    "tags",
    "networks",
    "audience",
    "locale",
    "status",
    "status_reason",
    "created_at",
    "updated_at",
}


async def create(role: RoleClient, email: str, **fields: Any) -> dict[str, Any]:
    response = await role.post(URL, json=amplifier_payload(email, **fields))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


async def suppressions(sessionmaker: async_sessionmaker[AsyncSession]) -> list[Suppression]:
    async with sessionmaker() as session:
        return list((await session.scalars(select(Suppression))).all())


class TestCreateAmplifier:
    async def test_creates_normalized_amplifier(self, org_a: OrgClients) -> None:
        response = await org_a.editor.post(
            URL,
            json={
                "email": "Ada.Lovelace@Example.COM",
                "name": "  Ada Lovelace ",
                "tags": ["engineering", " london ", "engineering"],
                "networks": ["linkedin", "x", "linkedin"],
                "audience": {"linkedin": 1200, "x": 0},
                "locale": "pt-BR",
            },
        )
        assert response.status_code == 201
        body = response.json()
        assert set(body) == READ_KEYS
        assert body["email"] == "Ada.Lovelace@example.com"
        assert body["name"] == "Ada Lovelace"
        assert body["tags"] == ["engineering", "london"]
        assert body["networks"] == ["linkedin", "x"]
        assert body["audience"] == {"linkedin": 1200, "x": 0}
        assert body["locale"] == "pt-BR"
        assert body["status"] == "active"
        assert body["created_at"].endswith("Z")

    async def test_defaults(self, org_a: OrgClients) -> None:
        body = await create(org_a.admin, "bob@example.com")
        assert body["name"] is None
        assert (body["tags"], body["networks"], body["audience"]) == ([], [], {})
        assert body["locale"] == "en"
        assert body["status"] == "active"

    async def test_duplicate_email_in_any_case_is_409(self, org_a: OrgClients) -> None:
        await create(org_a.editor, "carol@example.com")
        response = await org_a.editor.post(URL, json={"email": "CAROL@Example.com"})
        assert_problem(response, 409)

    async def test_same_email_in_two_organizations(
        self, org_a: OrgClients, org_b: OrgClients
    ) -> None:
        await create(org_a.editor, "shared@example.com")
        await create(org_b.editor, "shared@example.com")

    @pytest.mark.parametrize(
        ("payload", "field"),
        [
            ({"email": "not-an-email"}, "email"),
            ({"email": "a@localhost"}, "email"),
            ({"email": "Ada <ada@example.com>"}, "email"),
            ({"email": "ada@example.com\r\nBcc: x@example.com"}, "email"),
            ({"email": "ada@example.com", "networks": ["myspace"]}, "networks"),
            ({"email": "ada@example.com", "name": "Ada\r\nBcc: x@example.com"}, "name"),
            ({"email": "ada@example.com", "name": "Ada\nLovelace"}, "name"),
            ({"email": "ada@example.com", "name": "Ada\x00"}, "name"),
            ({"email": "ada@example.com", "name": "x" * 201}, "name"),
            ({"email": "ada@example.com", "nickname": "ada"}, "nickname"),
            ({"email": "ada@example.com", "audience": {"linkedin": -1}}, "audience"),
            ({"email": "ada@example.com", "audience": {"myspace": 3}}, "audience"),
            ({"email": "ada@example.com", "audience": {"x": True}}, "audience"),
            ({"email": "ada@example.com", "tags": ["x" * 65]}, "tags"),
            ({"email": "ada@example.com", "tags": ["  "]}, "tags"),
            ({"email": "ada@example.com", "tags": ["a\tb"]}, "tags"),
            ({"email": "ada@example.com", "tags": [f"t{i}" for i in range(51)]}, "tags"),
            ({"email": "ada@example.com", "locale": "english"}, "locale"),
            ({"name": "No Email"}, "email"),
        ],
    )
    async def test_invalid_input_is_422(
        self, org_a: OrgClients, payload: dict[str, Any], field: str
    ) -> None:
        body = assert_problem(await org_a.editor.post(URL, json=payload), 422)
        assert body["errors"]
        assert any(error["loc"][:2] == ["body", field] for error in body["errors"])
        assert (await org_a.viewer.get(URL)).json()["items"] == []

    @settings(
        max_examples=40,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )
    @given(
        before=st.text(max_size=20),
        breaker=st.sampled_from(["\r", "\n", "\r\n", "\x00"]),
        after=st.text(max_size=20),
    )
    async def test_name_with_line_break_is_always_422(
        self, org_a: OrgClients, before: str, breaker: str, after: str
    ) -> None:
        response = await org_a.editor.post(
            URL, json={"email": "header@example.com", "name": before + breaker + after}
        )
        assert_problem(response, 422)

    async def test_viewer_cannot_create(self, org_a: OrgClients) -> None:
        response = await org_a.viewer.post(URL, json={"email": "v@example.com"})
        assert_problem(response, 403)

    async def test_missing_key_is_401(self, client: httpx.AsyncClient, org_a: OrgClients) -> None:
        assert_problem(await client.post(URL, json={"email": "v@example.com"}), 401)


class TestGetAmplifier:
    async def test_viewer_reads_amplifier(self, org_a: OrgClients) -> None:
        created = await create(org_a.editor, "dan@example.com", name="Dan")
        response = await org_a.viewer.get(f"{URL}/{created['id']}")
        assert response.status_code == 200
        assert response.json() == created

    @pytest.mark.parametrize("amplifier_id", ["999999", "99999999999999999999", "0", "-1"])
    async def test_unknown_id_is_404(self, org_a: OrgClients, amplifier_id: str) -> None:
        assert_problem(await org_a.viewer.get(f"{URL}/{amplifier_id}"), 404)

    async def test_foreign_id_is_404(self, org_a: OrgClients, org_b: OrgClients) -> None:
        theirs = await create(org_b.editor, "erin@example.com")
        assert_problem(await org_a.admin.get(f"{URL}/{theirs['id']}"), 404)


class TestListAmplifiers:
    async def test_filters(self, org_a: OrgClients) -> None:
        ada = await create(org_a.editor, "ada@example.com", name="Ada Lovelace", tags=["eng"])
        bob = await create(org_a.editor, "bob@example.org", name="Bob", tags=["sales", "eng"])
        cat = await create(org_a.editor, "cat@example.org", name="Catherine", tags=["sales"])
        await org_a.editor.patch(f"{URL}/{cat['id']}", json={"status": "bounced"})

        async def ids(**params: Any) -> list[int]:
            response = await org_a.viewer.get(URL, params=params)
            assert response.status_code == 200, response.text
            return [item["id"] for item in response.json()["items"]]

        assert await ids() == [ada["id"], bob["id"], cat["id"]]
        assert await ids(tag="eng") == [ada["id"], bob["id"]]
        assert await ids(tag=["eng", "sales"]) == [ada["id"], bob["id"], cat["id"]]
        assert await ids(tag="nothing") == []
        assert await ids(status="bounced") == [cat["id"]]
        assert await ids(status="active", tag="sales") == [bob["id"]]
        assert await ids(q="LOVELACE") == [ada["id"]]
        assert await ids(q="EXAMPLE.ORG") == [bob["id"], cat["id"]]
        assert await ids(q="b") == [bob["id"]]

    async def test_search_escapes_like_wildcards(self, org_a: OrgClients) -> None:
        plain = await create(org_a.editor, "plain@example.com", name="Plain")
        percent = await create(org_a.editor, "percent@example.com", name="100% real")
        under = await create(org_a.editor, "under_score@example.com")
        found = await org_a.viewer.get(URL, params={"q": "%"})
        assert [i["id"] for i in found.json()["items"]] == [percent["id"]]
        found = await org_a.viewer.get(URL, params={"q": "_"})
        assert [i["id"] for i in found.json()["items"]] == [under["id"]]
        found = await org_a.viewer.get(URL, params={"q": "\\"})
        assert found.json()["items"] == []
        assert plain["id"] not in [i["id"] for i in found.json()["items"]]

    async def test_walks_all_pages_with_cursors(self, org_a: OrgClients) -> None:
        created = [(await create(org_a.editor, f"p{i}@example.com"))["id"] for i in range(7)]
        seen: list[int] = []
        cursor = None
        pages = 0
        while True:
            params: dict[str, Any] = {"limit": 3}
            if cursor:
                params["cursor"] = cursor
            body = (await org_a.viewer.get(URL, params=params)).json()
            seen += [item["id"] for item in body["items"]]
            pages += 1
            cursor = body["next_cursor"]
            if cursor is None:
                break
        assert seen == created
        assert pages == 3

    async def test_cursor_keeps_filters(self, org_a: OrgClients) -> None:
        for i in range(4):
            await create(org_a.editor, f"t{i}@example.com", tags=["even" if i % 2 else "odd"])
        first = (await org_a.viewer.get(URL, params={"tag": "odd", "limit": 1})).json()
        second = await org_a.viewer.get(
            URL, params={"tag": "odd", "limit": 1, "cursor": first["next_cursor"]}
        )
        assert [i["email"] for i in first["items"] + second.json()["items"]] == [
            "t0@example.com",
            "t2@example.com",
        ]
        assert second.json()["next_cursor"] is None

    async def test_tampered_cursor_is_422(self, org_a: OrgClients) -> None:
        for i in range(3):
            await create(org_a.editor, f"c{i}@example.com")
        cursor = (await org_a.viewer.get(URL, params={"limit": 1})).json()["next_cursor"]
        tampered = cursor[:-2] + ("AA" if not cursor.endswith("AA") else "BB")
        body = assert_problem(await org_a.viewer.get(URL, params={"cursor": tampered}), 422)
        assert body["errors"][0]["loc"] == ["query", "cursor"]
        keys_cursor = (await org_a.admin.get("/api/v1/keys", params={"limit": 1})).json()
        assert_problem(
            await org_a.viewer.get(URL, params={"cursor": keys_cursor["next_cursor"]}), 422
        )

    @pytest.mark.parametrize(
        "params", [{"limit": 501}, {"limit": 0}, {"status": "gone"}, {"q": "x" * 201}]
    )
    async def test_bad_query_is_422(self, org_a: OrgClients, params: dict[str, Any]) -> None:
        assert_problem(await org_a.viewer.get(URL, params=params), 422)

    async def test_limit_500_is_allowed(self, org_a: OrgClients) -> None:
        assert (await org_a.viewer.get(URL, params={"limit": 500})).status_code == 200

    async def test_lists_never_mix_organizations(
        self, org_a: OrgClients, org_b: OrgClients
    ) -> None:
        mine = await create(org_a.editor, "mine@example.com", tags=["t"])
        await create(org_b.editor, "theirs@example.com", tags=["t"])
        for params in ({}, {"tag": "t"}, {"q": "example"}, {"status": "active"}):
            items = (await org_a.viewer.get(URL, params=params)).json()["items"]
            assert [item["id"] for item in items] == [mine["id"]]


class TestUpdateAmplifier:
    async def test_patch_changes_only_given_fields(self, org_a: OrgClients) -> None:
        created = await create(
            org_a.editor, "eve@example.com", name="Eve", tags=["a"], networks=["x"]
        )
        response = await org_a.editor.patch(
            f"{URL}/{created['id']}", json={"tags": ["b", "b", "c"], "audience": {"x": 5}}
        )
        assert response.status_code == 200
        body = response.json()
        assert body["tags"] == ["b", "c"]
        assert body["audience"] == {"x": 5}
        assert (body["name"], body["networks"], body["email"]) == ("Eve", ["x"], created["email"])
        assert body["created_at"] == created["created_at"]
        assert body["updated_at"] > created["updated_at"]
        assert (await org_a.viewer.get(f"{URL}/{created['id']}")).json() == body

    async def test_null_name_clears_it_but_null_email_is_422(self, org_a: OrgClients) -> None:
        created = await create(org_a.editor, "fay@example.com", name="Fay")
        cleared = await org_a.editor.patch(f"{URL}/{created['id']}", json={"name": None})
        assert cleared.json()["name"] is None
        for field in ("email", "tags", "networks", "audience", "locale", "status"):
            response = await org_a.editor.patch(f"{URL}/{created['id']}", json={field: None})
            body = assert_problem(response, 422)
            assert body["errors"][0]["loc"] == ["body", field]

    async def test_email_change_checks_duplicates_in_any_case(self, org_a: OrgClients) -> None:
        await create(org_a.editor, "gus@example.com")
        hal = await create(org_a.editor, "hal@example.com")
        response = await org_a.editor.patch(f"{URL}/{hal['id']}", json={"email": "GUS@example.com"})
        assert_problem(response, 409)
        recased = await org_a.editor.patch(f"{URL}/{hal['id']}", json={"email": "Hal@EXAMPLE.com"})
        assert recased.status_code == 200
        assert recased.json()["email"] == "Hal@example.com"

    @pytest.mark.parametrize(
        "payload",
        [
            {"name": "Ivy\r\nBcc: x@example.com"},
            {"networks": ["myspace"]},
            {"audience": {"x": -5}},
            {"id": 3},
            {"created_at": "2020-01-01T00:00:00Z"},
            {"status": "deleted"},
        ],
    )
    async def test_invalid_patch_is_422(self, org_a: OrgClients, payload: dict[str, Any]) -> None:
        created = await create(org_a.editor, "ivy@example.com")
        body = assert_problem(await org_a.editor.patch(f"{URL}/{created['id']}", json=payload), 422)
        assert body["errors"]

    async def test_unsubscribed_cannot_be_reactivated(self, org_a: OrgClients) -> None:
        created = await create(org_a.editor, "jay@example.com")
        path = f"{URL}/{created['id']}"
        response = await org_a.editor.patch(path, json={"status": "unsubscribed"})
        assert response.json()["status"] == "unsubscribed"
        assert_problem(await org_a.admin.patch(path, json={"status": "active"}), 409)
        assert_problem(await org_a.admin.patch(path, json={"status": "bounced"}), 409)
        same = await org_a.editor.patch(path, json={"status": "unsubscribed", "name": "Jay"})
        assert same.status_code == 200
        assert same.json()["status"] == "unsubscribed"

    async def test_bounced_can_be_reactivated(self, org_a: OrgClients) -> None:
        created = await create(org_a.editor, "kim@example.com")
        path = f"{URL}/{created['id']}"
        assert (await org_a.editor.patch(path, json={"status": "bounced"})).json()[
            "status"
        ] == "bounced"
        response = await org_a.editor.patch(path, json={"status": "active"})
        assert response.status_code == 200
        assert response.json()["status"] == "active"

    async def test_viewer_cannot_patch(self, org_a: OrgClients) -> None:
        created = await create(org_a.editor, "lee@example.com")
        response = await org_a.viewer.patch(f"{URL}/{created['id']}", json={"name": "X"})
        assert_problem(response, 403)

    async def test_foreign_id_is_404(self, org_a: OrgClients, org_b: OrgClients) -> None:
        theirs = await create(org_b.editor, "max@example.com", name="Max")
        response = await org_a.editor.patch(f"{URL}/{theirs['id']}", json={"name": "Hacked"})
        assert_problem(response, 404)
        assert (await org_b.viewer.get(f"{URL}/{theirs['id']}")).json()["name"] == "Max"


class TestPreferences:
    async def test_frequency_pause_and_time_zone(self, org_a: OrgClients) -> None:
        response = await org_a.editor.post(URL, json={"email": "pref@example.com"})
        body = response.json()
        assert (body["frequency"], body["paused_until"], body["timezone"]) == ("each", None, None)
        amplifier = f"{URL}/{body['id']}"
        response = await org_a.editor.patch(
            amplifier,
            json={
                "frequency": "weekly",
                "paused_until": "2026-12-24T12:00:00+01:00",
                "timezone": "Europe/Copenhagen",
            },
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["frequency"], body["timezone"]) == ("weekly", "Europe/Copenhagen")
        assert body["paused_until"].startswith("2026-12-24T11:00:00")
        response = await org_a.editor.patch(
            amplifier, json={"paused_until": None, "timezone": None}
        )
        assert (response.json()["paused_until"], response.json()["timezone"]) == (None, None)
        assert response.json()["frequency"] == "weekly"

    @pytest.mark.parametrize(
        "payload",
        [
            {"frequency": "hourly"},
            {"frequency": None},
            {"timezone": "Europe/Atlantis"},
            {"timezone": "../../etc/passwd"},
            {"timezone": ""},
            {"paused_until": "next week"},
            {"paused_until": "2026-12-24T12:00:00"},  # no zone
        ],
    )
    async def test_bad_values_are_422(self, org_a: OrgClients, payload: dict[str, Any]) -> None:
        created = await org_a.editor.post(URL, json={"email": "bad@example.com"})
        field = next(iter(payload))
        errors = assert_invalid(
            await org_a.editor.patch(f"{URL}/{created.json()['id']}", json=payload), "body", field
        )
        if field == "timezone":
            assert "IANA" in errors[0]["msg"]
        response = await org_a.editor.post(URL, json={"email": "new@example.com", **payload})
        assert_invalid(response, "body", field)


class TestDeleteAmplifier:
    async def test_delete(self, org_a: OrgClients) -> None:
        created = await create(org_a.editor, "ned@example.com")
        response = await org_a.editor.delete(f"{URL}/{created['id']}")
        assert response.status_code == 204
        assert_problem(await org_a.viewer.get(f"{URL}/{created['id']}"), 404)
        assert_problem(await org_a.editor.delete(f"{URL}/{created['id']}"), 404)

    async def test_viewer_cannot_delete(self, org_a: OrgClients) -> None:
        created = await create(org_a.editor, "oli@example.com")
        assert_problem(await org_a.viewer.delete(f"{URL}/{created['id']}"), 403)
        assert (await org_a.viewer.get(f"{URL}/{created['id']}")).status_code == 200

    async def test_foreign_id_is_404(self, org_a: OrgClients, org_b: OrgClients) -> None:
        theirs = await create(org_b.editor, "pam@example.com")
        assert_problem(await org_a.admin.delete(f"{URL}/{theirs['id']}"), 404)
        assert (await org_b.viewer.get(f"{URL}/{theirs['id']}")).status_code == 200

    async def test_active_amplifier_leaves_no_suppression(
        self, org_a: OrgClients, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        created = await create(org_a.editor, "quin@example.com")
        await org_a.editor.delete(f"{URL}/{created['id']}")
        assert await suppressions(sessionmaker) == []
        again = await create(org_a.editor, "quin@example.com")
        assert again["status"] == "active"

    async def test_unsubscribed_address_stays_suppressed_without_personal_data(
        self,
        org_a: OrgClients,
        org_b: OrgClients,
        sessionmaker: async_sessionmaker[AsyncSession],
    ) -> None:
        created = await create(org_a.editor, "Rae@Example.com", name="Rae")
        path = f"{URL}/{created['id']}"
        await org_a.editor.patch(path, json={"status": "unsubscribed"})
        assert (await org_a.editor.delete(path)).status_code == 204

        [row] = await suppressions(sessionmaker)
        assert row.organization_id == org_a.organization_id
        assert row.reason == "unsubscribed"
        assert row.email_hash == hashlib.sha256(b"rae@example.com").hexdigest()
        async with sessionmaker() as session:
            assert (await session.scalars(select(Amplifier))).all() == []

        again = await create(org_a.editor, "RAE@example.com", name="Rae again")
        assert again["status"] == "unsubscribed"
        assert_problem(
            await org_a.editor.patch(f"{URL}/{again['id']}", json={"status": "active"}), 409
        )
        elsewhere = await create(org_b.editor, "rae@example.com")
        assert elsewhere["status"] == "active"

    async def test_deleting_again_keeps_one_suppression(
        self, org_a: OrgClients, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        for _ in range(2):
            created = await create(org_a.editor, "sam@example.com")
            if created["status"] == "active":
                await org_a.editor.patch(f"{URL}/{created['id']}", json={"status": "unsubscribed"})
            assert (await org_a.editor.delete(f"{URL}/{created['id']}")).status_code == 204
        assert [s.reason for s in await suppressions(sessionmaker)] == ["unsubscribed"]

    async def test_cleared_bounce_is_forgotten(
        self, org_a: OrgClients, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        created = await create(org_a.editor, "tom@example.com")
        await org_a.editor.patch(f"{URL}/{created['id']}", json={"status": "bounced"})
        await org_a.editor.delete(f"{URL}/{created['id']}")
        again = await create(org_a.editor, "tom@example.com")
        assert again["status"] == "bounced"
        response = await org_a.editor.patch(f"{URL}/{again['id']}", json={"status": "active"})
        assert response.json()["status"] == "active"
        assert await suppressions(sessionmaker) == []

    async def test_email_change_to_suppressed_address_is_not_active(
        self, org_a: OrgClients
    ) -> None:
        gone = await create(org_a.editor, "uma@example.com")
        await org_a.editor.patch(f"{URL}/{gone['id']}", json={"status": "unsubscribed"})
        await org_a.editor.delete(f"{URL}/{gone['id']}")
        other = await create(org_a.editor, "other@example.com")
        response = await org_a.editor.patch(
            f"{URL}/{other['id']}", json={"email": "uma@example.com"}
        )
        assert response.status_code == 200
        assert response.json()["status"] == "unsubscribed"


class TestSetStatus:
    """The service call the worker (bounces) and the amplifier's own pages use."""

    async def test_bounce_never_overrides_unsubscribe(
        self, org_a: OrgClients, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        created = await create(org_a.editor, "vera@example.com")
        async for session in session_scope(sessionmaker):
            await service.set_status(
                session, amplifier_id=created["id"], status=AmplifierStatus.UNSUBSCRIBED
            )
            await service.set_status(
                session, amplifier_id=created["id"], status=AmplifierStatus.BOUNCED
            )
        current = await org_a.viewer.get(f"{URL}/{created['id']}")
        assert current.json()["status"] == "unsubscribed"

    async def test_amplifier_can_resubscribe_and_suppression_is_forgotten(
        self, org_a: OrgClients, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        created = await create(org_a.editor, "walt@example.com")
        await org_a.editor.patch(f"{URL}/{created['id']}", json={"status": "unsubscribed"})
        await org_a.editor.delete(f"{URL}/{created['id']}")
        again = await create(org_a.editor, "walt@example.com")
        assert again["status"] == "unsubscribed"
        async for session in session_scope(sessionmaker):
            amplifier = await service.set_status(
                session, amplifier_id=again["id"], status=AmplifierStatus.ACTIVE
            )
            assert amplifier is not None
            missing = await service.set_status(
                session, amplifier_id=again["id"] + 1000, status=AmplifierStatus.ACTIVE
            )
            assert missing is None
        assert (await org_a.viewer.get(f"{URL}/{again['id']}")).json()["status"] == "active"
        assert await suppressions(sessionmaker) == []
