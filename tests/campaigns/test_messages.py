"""A draft's messages over HTTP: add, insert, change, reorder, delete; positions stay 0..n-1."""

from typing import Any

import pytest

from tests.campaigns.conftest import (
    CAMPAIGNS,
    assert_invalid,
    assert_problem,
    create_campaign,
    message_payload,
)
from tests.factories import OrgClients, RoleClient


async def campaign_with(client: RoleClient, *texts: str, **fields: Any) -> dict[str, Any]:
    return await create_campaign(client, messages=[message_payload(t) for t in texts], **fields)


async def order(client: RoleClient, campaign_id: int) -> list[str]:
    """The campaign's message texts in order, checking positions are 0..n-1."""
    messages = (await client.get(f"{CAMPAIGNS}/{campaign_id}")).json()["messages"]
    assert [m["position"] for m in messages] == list(range(len(messages)))
    return [m["text"] for m in messages]


def ids_by_text(campaign: dict[str, Any]) -> dict[str, int]:
    return {m["text"]: m["id"] for m in campaign["messages"]}


class TestAddMessage:
    async def test_appends(self, org_a: OrgClients) -> None:
        campaign = await campaign_with(org_a.editor, "A", "B")
        payload = message_payload(
            "C",
            network_text={"linkedin": "C for LinkedIn"},
            hashtags=["#one", "two"],
            image_url="https://cdn.example.com/c.png",
        )
        response = await org_a.editor.post(f"{CAMPAIGNS}/{campaign['id']}/messages", json=payload)
        assert response.status_code == 201
        body = response.json()
        assert response.headers["location"] == (
            f"{CAMPAIGNS}/{campaign['id']}/messages/{body['id']}"
        )
        assert body == {
            "id": body["id"],
            "campaign_id": campaign["id"],
            "text": "C",
            "url": "https://example.com/launch",
            "network_text": {"linkedin": "C for LinkedIn"},
            "hashtags": ["one", "two"],
            "image_url": "https://cdn.example.com/c.png",
            "position": 2,
            "translations": {},
            "variants": [],
        }
        assert await order(org_a.viewer, campaign["id"]) == ["A", "B", "C"]

    async def test_first_message_of_empty_campaign(self, org_a: OrgClients) -> None:
        campaign = await create_campaign(org_a.editor, messages=[])
        response = await org_a.editor.post(
            f"{CAMPAIGNS}/{campaign['id']}/messages", json=message_payload("Only")
        )
        assert response.status_code == 201 and response.json()["position"] == 0

    @pytest.mark.parametrize(
        ("position", "expected"),
        [
            (0, ["N", "A", "B", "C"]),
            (1, ["A", "N", "B", "C"]),
            (2, ["A", "B", "N", "C"]),
            (3, ["A", "B", "C", "N"]),
            (None, ["A", "B", "C", "N"]),
        ],
    )
    async def test_inserts_at_position(
        self, org_a: OrgClients, position: int | None, expected: list[str]
    ) -> None:
        campaign = await campaign_with(org_a.editor, "A", "B", "C")
        response = await org_a.editor.post(
            f"{CAMPAIGNS}/{campaign['id']}/messages",
            json=message_payload("N", position=position),
        )
        assert response.status_code == 201
        assert response.json()["position"] == expected.index("N")
        assert await order(org_a.viewer, campaign["id"]) == expected

    async def test_position_past_the_end_is_422(self, org_a: OrgClients) -> None:
        campaign = await campaign_with(org_a.editor, "A", "B")
        url = f"{CAMPAIGNS}/{campaign['id']}/messages"
        assert_invalid(await org_a.editor.post(url, json=message_payload(position=3)), "body")
        assert_invalid(
            await org_a.editor.post(url, json=message_payload(position=-1)), "body", "position"
        )
        assert await order(org_a.viewer, campaign["id"]) == ["A", "B"]

    async def test_fifty_first_message_is_422(self, org_a: OrgClients) -> None:
        campaign = await campaign_with(org_a.editor, *[f"M{i}" for i in range(50)])
        response = await org_a.editor.post(
            f"{CAMPAIGNS}/{campaign['id']}/messages", json=message_payload()
        )
        assert_invalid(response, "body")
        assert len(await order(org_a.viewer, campaign["id"])) == 50

    async def test_x_rule_is_checked(self, org_a: OrgClients) -> None:
        campaign = await campaign_with(org_a.editor, "A", "B")
        url = f"{CAMPAIGNS}/{campaign['id']}/messages"
        response = await org_a.editor.post(url, json=message_payload("a" * 257, position=1))
        errors = assert_invalid(response, "body")
        assert "message 1" in errors[0]["msg"] and "281" in errors[0]["msg"]
        response = await org_a.editor.post(
            url, json=message_payload("a" * 250, hashtags=["abcdef"])
        )
        assert "282" in assert_invalid(response)[0]["msg"]
        assert await order(org_a.viewer, campaign["id"]) == ["A", "B"]

    async def test_x_rule_does_not_apply_without_x(self, org_a: OrgClients) -> None:
        campaign = await campaign_with(org_a.editor, "A", networks=["linkedin", "email"])
        response = await org_a.editor.post(
            f"{CAMPAIGNS}/{campaign['id']}/messages", json=message_payload("a" * 3000)
        )
        assert response.status_code == 201

    @pytest.mark.parametrize(
        ("payload", "loc"),
        [
            ({"url": "https://example.com"}, ["body", "text"]),
            ({"text": "no url"}, ["body", "url"]),
            (message_payload(url="ftp://example.com"), ["body", "url"]),
            (message_payload(url="https://u:p@example.com"), ["body", "url"]),
            (message_payload(image_url="http://exa mple.com/i.png"), ["body", "image_url"]),
            (message_payload(network_text={"orkut": "hi"}), ["body", "network_text", "orkut"]),
            (message_payload(hashtags=["no spaces"]), ["body", "hashtags", "0"]),
            (message_payload(text="t" * 3001), ["body", "text"]),
            (message_payload(extra=1), ["body", "extra"]),
        ],
    )
    async def test_invalid_message_is_422(
        self, org_a: OrgClients, payload: dict[str, Any], loc: list[str]
    ) -> None:
        campaign = await campaign_with(org_a.editor, "A")
        response = await org_a.editor.post(f"{CAMPAIGNS}/{campaign['id']}/messages", json=payload)
        assert_invalid(response, *loc)


class TestReadMessages:
    async def test_get_one(self, org_a: OrgClients) -> None:
        campaign = await campaign_with(org_a.editor, "A", "B")
        message = campaign["messages"][1]
        response = await org_a.viewer.get(f"{CAMPAIGNS}/{campaign['id']}/messages/{message['id']}")
        assert response.status_code == 200
        assert response.json() == message

    async def test_list_in_order_and_by_pages(self, org_a: OrgClients) -> None:
        campaign = await campaign_with(org_a.editor, "A", "B", "C", "D", "E")
        url = f"{CAMPAIGNS}/{campaign['id']}/messages"
        whole = (await org_a.viewer.get(url)).json()
        assert whole == {"items": campaign["messages"], "next_cursor": None}
        seen: list[str] = []
        params: dict[str, Any] = {"limit": 2}
        while True:
            page = (await org_a.viewer.get(url, params=params)).json()
            seen += [m["text"] for m in page["items"]]
            if page["next_cursor"] is None:
                break
            params["cursor"] = page["next_cursor"]
        assert seen == ["A", "B", "C", "D", "E"]

    async def test_bad_cursor_is_422(self, org_a: OrgClients) -> None:
        campaign = await campaign_with(org_a.editor, "A")
        response = await org_a.viewer.get(
            f"{CAMPAIGNS}/{campaign['id']}/messages", params={"cursor": "nope"}
        )
        assert_invalid(response, "query", "cursor")


class TestUpdateMessage:
    async def test_changes_fields(self, org_a: OrgClients) -> None:
        campaign = await campaign_with(org_a.editor, "A", "B")
        message = campaign["messages"][0]
        url = f"{CAMPAIGNS}/{campaign['id']}/messages/{message['id']}"
        changes = {
            "text": "A2",
            "url": "http://example.org/new?x=1",
            "network_text": {"x": "A for X"},
            "hashtags": ["#new"],
            "image_url": "https://cdn.example.com/a.png",
        }
        response = await org_a.editor.patch(url, json=changes)
        assert response.status_code == 200
        assert response.json() == {**message, **changes, "hashtags": ["new"]}
        after = (await org_a.viewer.get(f"{CAMPAIGNS}/{campaign['id']}")).json()
        assert after["messages"][0] == response.json()
        assert after["messages"][1] == campaign["messages"][1]

    async def test_fields_left_out_are_kept_and_null_image_removes_it(
        self, org_a: OrgClients
    ) -> None:
        campaign = await create_campaign(
            org_a.editor,
            messages=[
                message_payload("A", hashtags=["h"], image_url="https://cdn.example.com/a.png")
            ],
        )
        message = campaign["messages"][0]
        url = f"{CAMPAIGNS}/{campaign['id']}/messages/{message['id']}"
        body = (await org_a.editor.patch(url, json={"text": "A2"})).json()
        assert body == {**message, "text": "A2"}
        body = (await org_a.editor.patch(url, json={"image_url": None})).json()
        assert body == {**message, "text": "A2", "image_url": None}

    @pytest.mark.parametrize(
        ("move", "to", "expected"),
        [
            ("A", 3, ["B", "C", "D", "A"]),
            ("D", 0, ["D", "A", "B", "C"]),
            ("B", 2, ["A", "C", "B", "D"]),
            ("C", 1, ["A", "C", "B", "D"]),
            ("B", 1, ["A", "B", "C", "D"]),
        ],
    )
    async def test_reorders(
        self, org_a: OrgClients, move: str, to: int, expected: list[str]
    ) -> None:
        campaign = await campaign_with(org_a.editor, "A", "B", "C", "D")
        message_id = ids_by_text(campaign)[move]
        response = await org_a.editor.patch(
            f"{CAMPAIGNS}/{campaign['id']}/messages/{message_id}", json={"position": to}
        )
        assert response.status_code == 200
        assert response.json()["position"] == to
        assert await order(org_a.viewer, campaign["id"]) == expected

    async def test_reorder_and_edit_at_once(self, org_a: OrgClients) -> None:
        campaign = await campaign_with(org_a.editor, "A", "B", "C")
        message_id = ids_by_text(campaign)["C"]
        response = await org_a.editor.patch(
            f"{CAMPAIGNS}/{campaign['id']}/messages/{message_id}",
            json={"position": 0, "text": "C2"},
        )
        assert response.json()["position"] == 0
        assert await order(org_a.viewer, campaign["id"]) == ["C2", "A", "B"]

    async def test_position_out_of_range_is_422(self, org_a: OrgClients) -> None:
        campaign = await campaign_with(org_a.editor, "A", "B")
        url = f"{CAMPAIGNS}/{campaign['id']}/messages/{campaign['messages'][0]['id']}"
        assert_invalid(await org_a.editor.patch(url, json={"position": 2}), "body", "position")
        assert_invalid(await org_a.editor.patch(url, json={"position": None}), "body", "position")
        assert await order(org_a.viewer, campaign["id"]) == ["A", "B"]

    @pytest.mark.parametrize(
        ("changes", "loc"),
        [
            ({"text": None}, ["body", "text"]),
            ({"text": ""}, ["body", "text"]),
            ({"url": None}, ["body", "url"]),
            ({"url": "ftp://example.com"}, ["body", "url"]),
            ({"url": "https://" + "a" * 2050 + ".com"}, ["body", "url"]),
            ({"hashtags": ["a"] * 11}, ["body", "hashtags"]),
            ({"network_text": {"nope": "x"}}, ["body", "network_text", "nope"]),
            ({"campaign_id": 1}, ["body", "campaign_id"]),
        ],
    )
    async def test_invalid_patch_is_422(
        self, org_a: OrgClients, changes: dict[str, Any], loc: list[str]
    ) -> None:
        campaign = await campaign_with(org_a.editor, "A")
        url = f"{CAMPAIGNS}/{campaign['id']}/messages/{campaign['messages'][0]['id']}"
        assert_invalid(await org_a.editor.patch(url, json=changes), *loc)

    async def test_x_rule_is_rechecked(self, org_a: OrgClients) -> None:
        campaign = await campaign_with(org_a.editor, "A", "a" * 240)
        message = campaign["messages"][1]
        url = f"{CAMPAIGNS}/{campaign['id']}/messages/{message['id']}"
        # 240 + " #abcdefghijklmnop" (18) + 24 = 282
        response = await org_a.editor.patch(url, json={"hashtags": ["abcdefghijklmnop"]})
        errors = assert_invalid(response, "body")
        assert "message 1" in errors[0]["msg"] and "282" in errors[0]["msg"]
        response = await org_a.editor.patch(url, json={"network_text": {"x": "日" * 129}})
        assert "282" in assert_invalid(response)[0]["msg"]
        response = await org_a.editor.patch(url, json={"network_text": {"x": "short"}})
        assert response.status_code == 200
        response = await org_a.editor.patch(url, json={"text": "b" * 2000})
        assert response.status_code == 200

    async def test_message_of_another_campaign_is_404(self, org_a: OrgClients) -> None:
        first = await campaign_with(org_a.editor, "A")
        second = await campaign_with(org_a.editor, "B")
        url = f"{CAMPAIGNS}/{first['id']}/messages/{second['messages'][0]['id']}"
        assert_problem(await org_a.editor.patch(url, json={"text": "hijack"}), 404)
        assert await order(org_a.viewer, second["id"]) == ["B"]


class TestDeleteMessage:
    @pytest.mark.parametrize(
        ("remove", "expected"),
        [("A", ["B", "C", "D"]), ("B", ["A", "C", "D"]), ("D", ["A", "B", "C"])],
    )
    async def test_deletes_and_renumbers(
        self, org_a: OrgClients, remove: str, expected: list[str]
    ) -> None:
        campaign = await campaign_with(org_a.editor, "A", "B", "C", "D")
        url = f"{CAMPAIGNS}/{campaign['id']}/messages/{ids_by_text(campaign)[remove]}"
        response = await org_a.editor.delete(url)
        assert response.status_code == 204 and response.content == b""
        assert await order(org_a.viewer, campaign["id"]) == expected
        assert_problem(await org_a.editor.delete(url), 404)
        assert_problem(await org_a.viewer.get(url), 404)

    async def test_delete_then_add_keeps_positions_contiguous(self, org_a: OrgClients) -> None:
        campaign = await campaign_with(org_a.editor, "A", "B", "C")
        base = f"{CAMPAIGNS}/{campaign['id']}/messages"
        await org_a.editor.delete(f"{base}/{ids_by_text(campaign)['A']}")
        added = await org_a.editor.post(base, json=message_payload("D"))
        assert added.json()["position"] == 2
        await org_a.editor.post(base, json=message_payload("E", position=1))
        assert await order(org_a.viewer, campaign["id"]) == ["B", "E", "C", "D"]

    async def test_last_message_can_go(self, org_a: OrgClients) -> None:
        campaign = await campaign_with(org_a.editor, "A")
        response = await org_a.editor.delete(
            f"{CAMPAIGNS}/{campaign['id']}/messages/{campaign['messages'][0]['id']}"
        )
        assert response.status_code == 204
        assert await order(org_a.viewer, campaign["id"]) == []
