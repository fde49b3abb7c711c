"""Campaigns over HTTP: create, read, list, change, delete, validation and the status rules."""

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from app.models import CampaignStatus, Message
from tests.campaigns.conftest import (
    CAMPAIGNS,
    assert_invalid,
    assert_problem,
    create_campaign,
    message_payload,
    set_status,
)
from tests.factories import OrgClients, campaign_payload

CAMPAIGN_KEYS = {
    "id",
    "expires_at",
    "name",
    "subject",
    "intro",
    "audience",
    "networks",
    "utm",
    "attribution",
    "status",
    "scheduled_at",
    "sent_at",
    "created_at",
    "updated_at",
    "messages",
    "translations",
}
MESSAGE_KEYS = {
    *("id", "campaign_id", "text", "url", "network_text", "hashtags", "image_url", "position"),
    "translations",
    "variants",
}


def header_breaking_text() -> st.SearchStrategy[str]:
    """Any text with at least one CR, LF or NUL somewhere in it."""
    return st.tuples(
        st.text(max_size=40), st.sampled_from(["\r", "\n", "\r\n", "\x00"]), st.text(max_size=40)
    ).map("".join)


class TestCreateCampaign:
    async def test_creates_draft_with_messages(self, org_a: OrgClients) -> None:
        payload = campaign_payload(
            intro="Hello team,\nplease share.",
            audience={"tags": ["staff", "partners"]},
            networks=["linkedin", "x", "bluesky"],
            utm=False,
            messages=[
                message_payload("First", hashtags=["#Launch", "spring_2025"]),
                message_payload(
                    "Second",
                    network_text={"x": "Second, for X", "linkedin": "Second, at length"},
                    image_url="https://cdn.example.com/a.png",
                ),
            ],
        )
        response = await org_a.editor.post(CAMPAIGNS, json=payload)
        assert response.status_code == 201
        body = response.json()
        assert body.keys() == CAMPAIGN_KEYS
        assert response.headers["location"] == f"{CAMPAIGNS}/{body['id']}"
        assert body["name"] == "Spring launch"
        assert body["subject"] == "Help us spread the word"
        assert body["intro"] == "Hello team,\nplease share."
        assert body["audience"] == {"tags": ["staff", "partners"]}
        assert body["networks"] == ["linkedin", "x", "bluesky"]
        assert body["utm"] is False
        assert body["status"] == "draft"
        assert body["scheduled_at"] is None and body["sent_at"] is None
        assert body["created_at"].endswith("Z") and body["updated_at"].endswith("Z")
        first, second = body["messages"]
        assert first.keys() == MESSAGE_KEYS
        assert [first["position"], second["position"]] == [0, 1]
        assert first["campaign_id"] == second["campaign_id"] == body["id"]
        assert first["hashtags"] == ["Launch", "spring_2025"]
        assert first["network_text"] == {} and first["image_url"] is None
        assert second["network_text"] == {"x": "Second, for X", "linkedin": "Second, at length"}
        assert second["image_url"] == "https://cdn.example.com/a.png"

    async def test_defaults(self, org_a: OrgClients) -> None:
        response = await org_a.admin.post(
            CAMPAIGNS, json={"name": "N", "subject": "S", "networks": ["email"]}
        )
        assert response.status_code == 201
        body = response.json()
        assert body["intro"] == ""
        assert body["audience"] == {"tags": []}
        assert body["utm"] is True
        assert body["messages"] == []

    async def test_networks_tags_and_hashtags_are_deduplicated_in_order(
        self, org_a: OrgClients
    ) -> None:
        body = await create_campaign(
            org_a.editor,
            networks=["x", "linkedin", "x", "email", "linkedin"],
            audience={"tags": ["b", " a ", "b"]},
            messages=[message_payload(hashtags=["Spring", "#spring", "news"])],
        )
        assert body["networks"] == ["x", "linkedin", "email"]
        assert body["audience"] == {"tags": ["b", "a"]}
        assert body["messages"][0]["hashtags"] == ["Spring", "news"]

    async def test_name_and_subject_are_trimmed(self, org_a: OrgClients) -> None:
        body = await create_campaign(org_a.editor, name="  Launch ", subject="\tHi there ")
        assert body["name"] == "Launch" and body["subject"] == "Hi there"

    async def test_blank_network_text_falls_back_to_text(self, org_a: OrgClients) -> None:
        body = await create_campaign(
            org_a.editor, messages=[message_payload(network_text={"x": "", "linkedin": "LI"})]
        )
        assert body["messages"][0]["network_text"] == {"linkedin": "LI"}

    async def test_nothing_is_stored_when_a_message_is_invalid(
        self, org_a: OrgClients, sessionmaker
    ) -> None:
        payload = campaign_payload(
            messages=[message_payload(), message_payload(url="ftp://example.com")]
        )
        assert_invalid(await org_a.editor.post(CAMPAIGNS, json=payload), "body", "messages", "1")
        listed = (await org_a.viewer.get(CAMPAIGNS)).json()
        assert listed["items"] == []
        async with sessionmaker() as session:
            assert await session.scalar(select(func.count()).select_from(Message)) == 0

    async def test_fifty_messages_are_allowed(self, org_a: OrgClients) -> None:
        messages = [message_payload(f"Message {i}") for i in range(50)]
        body = await create_campaign(org_a.editor, messages=messages)
        assert [m["position"] for m in body["messages"]] == list(range(50))
        assert [m["text"] for m in body["messages"]] == [f"Message {i}" for i in range(50)]


class TestCampaignValidation:
    @pytest.mark.parametrize(
        ("fields", "loc"),
        [
            ({"name": ""}, ["body", "name"]),
            ({"name": "   "}, ["body", "name"]),
            ({"name": "n" * 201}, ["body", "name"]),
            ({"name": "Launch\nBcc: victim@example.com"}, ["body", "name"]),
            ({"subject": ""}, ["body", "subject"]),
            ({"subject": "s" * 301}, ["body", "subject"]),
            ({"subject": "Hi\r\nBcc: victim@example.com"}, ["body", "subject"]),
            ({"subject": "Hi\x00"}, ["body", "subject"]),
            ({"subject": "Hi\x1b[31m"}, ["body", "subject"]),
            ({"subject": None}, ["body", "subject"]),
            ({"intro": "i" * 5001}, ["body", "intro"]),
            ({"intro": "bell\x07"}, ["body", "intro"]),
            ({"networks": []}, ["body", "networks"]),
            ({"networks": ["linkedin", "myspace"]}, ["body", "networks", "1"]),
            ({"networks": "x"}, ["body", "networks"]),
            ({"audience": {"tags": [""]}}, ["body", "audience", "tags", "0"]),
            ({"audience": {"tags": ["t" * 65]}}, ["body", "audience", "tags", "0"]),
            ({"audience": {"tags": [f"t{i}" for i in range(51)]}}, ["body", "audience", "tags"]),
            ({"audience": {"tags": ["a\nb"]}}, ["body", "audience", "tags", "0"]),
            ({"audience": {"tags": ["a\tb"]}}, ["body", "audience", "tags", "0"]),
            ({"audience": {"tags": ["a\x85b"]}}, ["body", "audience", "tags", "0"]),
            ({"audience": {"tags": ["a"], "exclude": ["b"]}}, ["body", "audience", "exclude"]),
            ({"audience": ["a"]}, ["body", "audience"]),
            ({"utm": "yes"}, ["body", "utm"]),
            ({"messages": [message_payload()] * 51}, ["body", "messages"]),
            ({"owner": "me"}, ["body", "owner"]),
        ],
    )
    async def test_invalid_campaign_is_422(
        self, org_a: OrgClients, fields: dict[str, Any], loc: list[str]
    ) -> None:
        assert_invalid(await org_a.editor.post(CAMPAIGNS, json=campaign_payload(**fields)), *loc)

    @pytest.mark.parametrize("missing", ["name", "subject", "networks"])
    async def test_required_fields(self, org_a: OrgClients, missing: str) -> None:
        payload = campaign_payload()
        del payload[missing]
        assert_invalid(await org_a.editor.post(CAMPAIGNS, json=payload), "body", missing)

    @pytest.mark.parametrize(
        "url",
        [
            "ftp://example.com/file",
            "javascript:alert(1)",
            "mailto:someone@example.com",
            "/relative/path",
            "example.com/launch",
            "https://",
            "http:///path-only",
            "https://user:secret@example.com/",
            "https://user@example.com/",
            "https://exa mple.com/",
            "https://example.com/a b",
            "https://example.com/\tx",
            " https://example.com/",
            "https://example.com/\n",
            "https://example.com:99999/",
            "https://example.com/" + "a" * 2030,
            "",
        ],
    )
    async def test_bad_urls_are_422(self, org_a: OrgClients, url: str) -> None:
        for field in ("url", "image_url"):
            payload = campaign_payload(messages=[message_payload(**{field: url})])
            response = await org_a.editor.post(CAMPAIGNS, json=payload)
            assert_invalid(response, "body", "messages", "0", field)

    async def test_url_of_exactly_2048_characters_is_accepted(self, org_a: OrgClients) -> None:
        url = "https://example.com/" + "a" * (2048 - len("https://example.com/"))
        body = await create_campaign(org_a.editor, messages=[message_payload(url=url)])
        assert body["messages"][0]["url"] == url

    @pytest.mark.parametrize(
        ("message", "loc"),
        [
            ({"text": ""}, ["text"]),
            ({"text": "  \n "}, ["text"]),
            ({"text": "t" * 3001}, ["text"]),
            ({"text": "nul\x00"}, ["text"]),
            ({"network_text": {"myspace": "hello"}}, ["network_text", "myspace"]),
            ({"network_text": {"linkedin": "l" * 3001}}, ["network_text", "linkedin"]),
            ({"network_text": ["x"]}, ["network_text"]),
            ({"hashtags": [f"tag{i}" for i in range(11)]}, ["hashtags"]),
            ({"hashtags": ["two words"]}, ["hashtags", "0"]),
            ({"hashtags": ["ok", "dash-ed"]}, ["hashtags", "1"]),
            ({"hashtags": ["#"]}, ["hashtags", "0"]),
            ({"hashtags": ["##double"]}, ["hashtags", "0"]),
            ({"hashtags": ["emoji😀"]}, ["hashtags", "0"]),
            ({"hashtags": ["t" * 101]}, ["hashtags", "0"]),
            ({"hashtags": "tag"}, ["hashtags"]),
            ({"position": 0}, ["position"]),
            ({"shout": True}, ["shout"]),
        ],
    )
    async def test_invalid_message_is_422(
        self, org_a: OrgClients, message: dict[str, Any], loc: list[str]
    ) -> None:
        payload = campaign_payload(messages=[message_payload(**message)])
        response = await org_a.editor.post(CAMPAIGNS, json=payload)
        assert_invalid(response, "body", "messages", "0", *loc)

    @given(bad=header_breaking_text(), field=st.sampled_from(["name", "subject"]))
    @settings(
        max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    async def test_header_injection_is_always_422(
        self, org_a: OrgClients, bad: str, field: str
    ) -> None:
        response = await org_a.editor.post(CAMPAIGNS, json=campaign_payload(**{field: bad}))
        assert_invalid(response, "body", field)

    @given(bad=header_breaking_text(), field=st.sampled_from(["name", "subject"]))
    @settings(
        max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    async def test_header_injection_in_patch_is_always_422(
        self, org_a: OrgClients, bad: str, field: str
    ) -> None:
        response = await org_a.editor.patch(f"{CAMPAIGNS}/1", json={field: bad})
        assert_invalid(response, "body", field)

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("name", '"Launch \\ud800"'),
            ("subject", '"\\udfff"'),
            ("intro", '"Hi \\ud83d"'),
            ("audience", '{"tags": ["\\ud800"]}'),
            ("messages", '[{"text": "\\ud800", "url": "https://example.com"}]'),
            ("messages", '[{"text": "t", "url": "https://example.com/\\ud800"}]'),
            (
                "messages",
                '[{"text": "t", "url": "https://e.com", "image_url": "https://\\ud800.com"}]',
            ),
            (
                "messages",
                '[{"text": "t", "url": "https://e.com", "network_text": {"x": "\\ud800"}}]',
            ),
            (
                "messages",
                '[{"text": "t", "url": "https://e.com", "network_text": {"\\ud800": "t"}}]',
            ),
            ("messages", '[{"text": "t", "url": "https://e.com", "hashtags": ["a\\ud800"]}]'),
        ],
    )
    async def test_unpaired_surrogates_are_422(
        self, org_a: OrgClients, field: str, value: str
    ) -> None:
        fields = {"name": '"N"', "subject": '"S"', "networks": '["x"]', field: value}
        raw = "{" + ", ".join(f'"{k}": {v}' for k, v in fields.items()) + "}"
        response = await org_a.editor.post(
            CAMPAIGNS, content=raw.encode(), headers={"content-type": "application/json"}
        )
        assert_invalid(response)
        assert (await org_a.viewer.get(CAMPAIGNS)).json()["items"] == []

    async def test_body_that_is_not_json_is_400(self, org_a: OrgClients) -> None:
        response = await org_a.editor.post(
            CAMPAIGNS, content=b"{not json", headers={"content-type": "application/json"}
        )
        assert_problem(response, 400)


class TestXLength:
    async def test_exactly_280_fits(self, org_a: OrgClients) -> None:
        # 256 + space + link (23) = 280
        await create_campaign(org_a.editor, messages=[message_payload("a" * 256)])

    async def test_one_more_is_422_naming_message_and_weight(self, org_a: OrgClients) -> None:
        messages = [message_payload("short"), message_payload("a" * 257)]
        response = await org_a.editor.post(CAMPAIGNS, json=campaign_payload(messages=messages))
        errors = assert_invalid(response, "body", "messages", "1")
        assert len(errors) == 1
        assert "message 1" in errors[0]["msg"] and "281" in errors[0]["msg"]
        assert "281" in response.json()["detail"]

    async def test_every_long_message_is_reported(self, org_a: OrgClients) -> None:
        messages = [message_payload("a" * 300), message_payload("ok"), message_payload("b" * 290)]
        response = await org_a.editor.post(CAMPAIGNS, json=campaign_payload(messages=messages))
        errors = assert_invalid(response)
        assert [e["loc"] for e in errors] == [["body", "messages", "0"], ["body", "messages", "2"]]

    async def test_hashtags_count(self, org_a: OrgClients) -> None:
        # 250 + " #abcdef" (8) + 24 = 282
        too_long = message_payload("a" * 250, hashtags=["#abcdef"])
        response = await org_a.editor.post(CAMPAIGNS, json=campaign_payload(messages=[too_long]))
        errors = assert_invalid(response, "body", "messages", "0")
        assert "282" in errors[0]["msg"]
        fits = message_payload("a" * 248, hashtags=["#abcdef"])
        await create_campaign(org_a.editor, messages=[fits])

    async def test_wide_characters_weigh_two(self, org_a: OrgClients) -> None:
        await create_campaign(org_a.editor, messages=[message_payload("日" * 128)])
        response = await org_a.editor.post(
            CAMPAIGNS, json=campaign_payload(messages=[message_payload("日" * 129)])
        )
        errors = assert_invalid(response, "body", "messages", "0")
        assert "282" in errors[0]["msg"]

    async def test_emoji_weigh_two(self, org_a: OrgClients) -> None:
        response = await org_a.editor.post(
            CAMPAIGNS, json=campaign_payload(messages=[message_payload("😀" * 129)])
        )
        assert_invalid(response, "body", "messages", "0")

    async def test_urls_in_the_text_weigh_23(self, org_a: OrgClients) -> None:
        long_url = "https://example.com/" + "p" * 400
        await create_campaign(org_a.editor, messages=[message_payload(f"Read {long_url} now")])

    async def test_x_text_overrides_text(self, org_a: OrgClients) -> None:
        long_text_short_x = message_payload("a" * 1000, network_text={"x": "Short for X"})
        await create_campaign(org_a.editor, messages=[long_text_short_x])
        short_text_long_x = message_payload("short", network_text={"x": "x" * 300})
        response = await org_a.editor.post(
            CAMPAIGNS, json=campaign_payload(messages=[short_text_long_x])
        )
        assert_invalid(response, "body", "messages", "0")

    async def test_no_limit_without_x(self, org_a: OrgClients) -> None:
        body = await create_campaign(
            org_a.editor, networks=["linkedin"], messages=[message_payload("a" * 3000)]
        )
        assert len(body["messages"][0]["text"]) == 3000

    async def test_adding_x_rechecks_every_message(self, org_a: OrgClients) -> None:
        campaign = await create_campaign(
            org_a.editor,
            networks=["linkedin"],
            messages=[message_payload("ok"), message_payload("a" * 300)],
        )
        url = f"{CAMPAIGNS}/{campaign['id']}"
        response = await org_a.editor.patch(url, json={"networks": ["linkedin", "x"]})
        errors = assert_invalid(response, "body", "networks")
        assert "message 1" in errors[0]["msg"] and "324" in errors[0]["msg"]
        assert (await org_a.viewer.get(url)).json()["networks"] == ["linkedin"]


class TestGetCampaign:
    async def test_get(self, org_a: OrgClients) -> None:
        created = await create_campaign(org_a.editor)
        response = await org_a.viewer.get(f"{CAMPAIGNS}/{created['id']}")
        assert response.status_code == 200
        assert response.json() == created

    @pytest.mark.parametrize("campaign_id", ["999999", "0", "-1", "99999999999999999999"])
    async def test_unknown_is_404(self, org_a: OrgClients, campaign_id: str) -> None:
        assert_problem(await org_a.viewer.get(f"{CAMPAIGNS}/{campaign_id}"), 404)

    async def test_non_integer_id_is_422(self, org_a: OrgClients) -> None:
        assert_invalid(await org_a.viewer.get(f"{CAMPAIGNS}/abc"), "path", "campaign_id")

    async def test_timestamps_are_utc_with_z(self, org_a: OrgClients, sessionmaker) -> None:
        created = await create_campaign(org_a.editor)
        await set_status(sessionmaker, created["id"], CampaignStatus.SENT)
        body = (await org_a.viewer.get(f"{CAMPAIGNS}/{created['id']}")).json()
        for field in ("created_at", "updated_at", "sent_at"):
            assert body[field].endswith("Z"), body[field]


class TestListCampaigns:
    async def test_lists_with_messages(self, org_a: OrgClients) -> None:
        first = await create_campaign(org_a.editor, name="First")
        second = await create_campaign(
            org_a.editor, name="Second", messages=[message_payload("A"), message_payload("B")]
        )
        response = await org_a.viewer.get(CAMPAIGNS)
        assert response.status_code == 200
        body = response.json()
        assert body["next_cursor"] is None
        assert body["items"] == [first, second]
        assert [m["text"] for m in body["items"][1]["messages"]] == ["A", "B"]

    async def test_walks_pages(self, org_a: OrgClients) -> None:
        created = [(await create_campaign(org_a.editor, name=f"C{i}"))["id"] for i in range(5)]
        seen: list[int] = []
        cursor: str | None = None
        pages = 0
        while True:
            params: dict[str, Any] = {"limit": 2}
            if cursor:
                params["cursor"] = cursor
            body = (await org_a.viewer.get(CAMPAIGNS, params=params)).json()
            assert len(body["items"]) <= 2
            assert all(item["messages"] for item in body["items"])
            seen += [item["id"] for item in body["items"]]
            pages += 1
            cursor = body["next_cursor"]
            if cursor is None:
                break
        assert seen == created
        assert pages == 3

    async def test_status_filter(self, org_a: OrgClients, sessionmaker) -> None:
        ids = [(await create_campaign(org_a.editor, name=f"C{i}"))["id"] for i in range(4)]
        await set_status(sessionmaker, ids[1], CampaignStatus.SENT)
        await set_status(sessionmaker, ids[3], CampaignStatus.SENT)
        await set_status(sessionmaker, ids[2], CampaignStatus.SCHEDULED)

        async def listed(status: str) -> list[int]:
            body = (await org_a.viewer.get(CAMPAIGNS, params={"status": status})).json()
            assert all(item["status"] == status for item in body["items"])
            return [item["id"] for item in body["items"]]

        assert await listed("sent") == [ids[1], ids[3]]
        assert await listed("draft") == [ids[0]]
        assert await listed("scheduled") == [ids[2]]
        assert await listed("sending") == []
        page = (await org_a.viewer.get(CAMPAIGNS, params={"status": "sent", "limit": 1})).json()
        assert [i["id"] for i in page["items"]] == [ids[1]]
        rest = await org_a.viewer.get(
            CAMPAIGNS, params={"status": "sent", "cursor": page["next_cursor"]}
        )
        assert [i["id"] for i in rest.json()["items"]] == [ids[3]]

    @pytest.mark.parametrize(
        "params",
        [{"status": "archived"}, {"limit": 0}, {"limit": 501}, {"cursor": "tampered"}],
    )
    async def test_bad_query_is_422(self, org_a: OrgClients, params: dict[str, Any]) -> None:
        assert_invalid(await org_a.viewer.get(CAMPAIGNS, params=params))

    async def test_cursor_of_another_list_is_422(self, org_a: OrgClients) -> None:
        await create_campaign(org_a.editor)
        await create_campaign(org_a.editor)
        keys = await org_a.admin.post("/api/v1/keys", json={"role": "viewer"})
        assert keys.status_code == 201
        key_page = (await org_a.admin.get("/api/v1/keys", params={"limit": 1})).json()
        assert key_page["next_cursor"]
        response = await org_a.viewer.get(CAMPAIGNS, params={"cursor": key_page["next_cursor"]})
        assert_invalid(response, "query", "cursor")


class TestUpdateCampaign:
    async def test_draft_changes_everything(self, org_a: OrgClients) -> None:
        created = await create_campaign(org_a.editor)
        changes = {
            "name": "Renamed",
            "subject": "New subject",
            "intro": "New intro",
            "audience": {"tags": ["vip"]},
            "networks": ["facebook", "email", "facebook"],
            "utm": False,
        }
        response = await org_a.editor.patch(f"{CAMPAIGNS}/{created['id']}", json=changes)
        assert response.status_code == 200
        body = response.json()
        assert body["name"] == "Renamed" and body["subject"] == "New subject"
        assert body["intro"] == "New intro" and body["utm"] is False
        assert body["audience"] == {"tags": ["vip"]}
        assert body["networks"] == ["facebook", "email"]
        assert body["messages"] == created["messages"]
        assert body["created_at"] == created["created_at"]
        assert body["updated_at"] >= created["updated_at"]
        assert (await org_a.viewer.get(f"{CAMPAIGNS}/{created['id']}")).json() == body

    async def test_fields_left_out_are_kept(self, org_a: OrgClients) -> None:
        created = await create_campaign(org_a.editor, intro="Keep me", audience={"tags": ["a"]})
        body = (
            await org_a.editor.patch(f"{CAMPAIGNS}/{created['id']}", json={"name": "Only name"})
        ).json()
        assert body["intro"] == "Keep me" and body["audience"] == {"tags": ["a"]}
        assert body["networks"] == created["networks"]

    async def test_empty_patch_changes_nothing(self, org_a: OrgClients) -> None:
        created = await create_campaign(org_a.editor)
        response = await org_a.editor.patch(f"{CAMPAIGNS}/{created['id']}", json={})
        assert response.status_code == 200
        assert response.json() == created

    async def test_audience_can_be_emptied(self, org_a: OrgClients) -> None:
        created = await create_campaign(org_a.editor, audience={"tags": ["a"]})
        url = f"{CAMPAIGNS}/{created['id']}"
        body = (await org_a.editor.patch(url, json={"audience": {}})).json()
        assert body["audience"] == {"tags": []}

    @pytest.mark.parametrize(
        ("changes", "loc"),
        [
            ({"name": None}, ["body", "name"]),
            ({"networks": None}, ["body", "networks"]),
            ({"networks": []}, ["body", "networks"]),
            ({"networks": ["friendster"]}, ["body", "networks", "0"]),
            ({"subject": "a\nb"}, ["body", "subject"]),
            ({"utm": None}, ["body", "utm"]),
            ({"status": "sent"}, ["body", "status"]),
            ({"messages": []}, ["body", "messages"]),
            ({"id": 5}, ["body", "id"]),
        ],
    )
    async def test_invalid_patch_is_422(
        self, org_a: OrgClients, changes: dict[str, Any], loc: list[str]
    ) -> None:
        created = await create_campaign(org_a.editor)
        response = await org_a.editor.patch(f"{CAMPAIGNS}/{created['id']}", json=changes)
        assert_invalid(response, *loc)


class TestDeleteCampaign:
    async def test_delete_removes_campaign_and_messages(
        self, org_a: OrgClients, sessionmaker
    ) -> None:
        created = await create_campaign(
            org_a.editor, messages=[message_payload("A"), message_payload("B")]
        )
        kept = await create_campaign(org_a.editor)
        response = await org_a.editor.delete(f"{CAMPAIGNS}/{created['id']}")
        assert response.status_code == 204
        assert response.content == b""
        assert_problem(await org_a.viewer.get(f"{CAMPAIGNS}/{created['id']}"), 404)
        assert_problem(await org_a.editor.delete(f"{CAMPAIGNS}/{created['id']}"), 404)
        async with sessionmaker() as session:
            ids = set((await session.scalars(select(Message.campaign_id))).all())
        assert ids == {kept["id"]}


class TestStatusRules:
    @pytest.mark.parametrize("status", [CampaignStatus.SENDING, CampaignStatus.SENT])
    async def test_sending_or_sent_cannot_be_changed_or_deleted(
        self, org_a: OrgClients, sessionmaker, status: CampaignStatus
    ) -> None:
        created = await create_campaign(org_a.editor)
        await set_status(sessionmaker, created["id"], status)
        url = f"{CAMPAIGNS}/{created['id']}"
        for changes in ({"name": "Renamed"}, {"intro": "x"}, {"networks": ["email"]}, {}):
            body = assert_problem(await org_a.editor.patch(url, json=changes), 409)
            assert status.value in body["detail"]
        assert_problem(await org_a.admin.delete(url), 409)
        after = (await org_a.viewer.get(url)).json()
        assert after["name"] == created["name"] and after["status"] == status.value

    @pytest.mark.parametrize(
        "status", [CampaignStatus.SCHEDULED, CampaignStatus.PAUSED, CampaignStatus.CANCELLED]
    )
    async def test_after_snapshot_only_labels_change(
        self, org_a: OrgClients, sessionmaker, status: CampaignStatus
    ) -> None:
        created = await create_campaign(org_a.editor, audience={"tags": ["a"]})
        await set_status(sessionmaker, created["id"], status)
        url = f"{CAMPAIGNS}/{created['id']}"
        labels = {"name": "Renamed", "subject": "New subject", "intro": "New intro"}
        response = await org_a.editor.patch(url, json=labels)
        assert response.status_code == 200
        assert response.json()["status"] == status.value
        for frozen in (
            {"audience": {"tags": ["b"]}},
            {"networks": ["email"]},
            {"utm": False},
            {"name": "Also renamed", "networks": ["email"]},
        ):
            body = assert_problem(await org_a.editor.patch(url, json=frozen), 409)
            assert body["errors"]
        after = (await org_a.viewer.get(url)).json()
        assert after["name"] == "Renamed"
        assert after["audience"] == {"tags": ["a"]} and after["networks"] == created["networks"]

    async def test_unchanged_frozen_fields_may_be_resent(
        self, org_a: OrgClients, sessionmaker
    ) -> None:
        created = await create_campaign(org_a.editor, audience={"tags": ["a"]})
        await set_status(sessionmaker, created["id"], CampaignStatus.SCHEDULED)
        whole = {
            key: created[key] for key in ("name", "subject", "intro", "audience", "networks", "utm")
        }
        response = await org_a.editor.patch(
            f"{CAMPAIGNS}/{created['id']}", json={**whole, "name": "Renamed"}
        )
        assert response.status_code == 200
        assert response.json()["name"] == "Renamed"

    @pytest.mark.parametrize(
        ("status", "code"),
        [
            (CampaignStatus.DRAFT, 204),
            (CampaignStatus.SCHEDULED, 204),
            (CampaignStatus.CANCELLED, 204),
            (CampaignStatus.PAUSED, 409),
            (CampaignStatus.SENDING, 409),
            (CampaignStatus.SENT, 409),
        ],
    )
    async def test_delete_by_status(
        self, org_a: OrgClients, sessionmaker, status: CampaignStatus, code: int
    ) -> None:
        created = await create_campaign(org_a.editor)
        await set_status(sessionmaker, created["id"], status)
        response = await org_a.editor.delete(f"{CAMPAIGNS}/{created['id']}")
        assert response.status_code == code
        exists = (await org_a.viewer.get(f"{CAMPAIGNS}/{created['id']}")).status_code == 200
        assert exists is (code == 409)

    @pytest.mark.parametrize(
        "status",
        [s for s in CampaignStatus if s != CampaignStatus.DRAFT],
    )
    async def test_messages_are_frozen_outside_draft(
        self, org_a: OrgClients, sessionmaker, status: CampaignStatus
    ) -> None:
        created = await create_campaign(org_a.editor)
        message_id = created["messages"][0]["id"]
        await set_status(sessionmaker, created["id"], status)
        base = f"{CAMPAIGNS}/{created['id']}/messages"
        assert_problem(await org_a.editor.post(base, json=message_payload()), 409)
        assert_problem(
            await org_a.editor.patch(f"{base}/{message_id}", json={"text": "Changed"}), 409
        )
        assert_problem(await org_a.editor.patch(f"{base}/{message_id}", json={"position": 0}), 409)
        assert_problem(await org_a.editor.delete(f"{base}/{message_id}"), 409)
        after = (await org_a.viewer.get(f"{CAMPAIGNS}/{created['id']}")).json()
        assert after["messages"] == created["messages"]
