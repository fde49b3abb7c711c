"""Copy variants of a message: stored and read back, bounded, and weighed for X like the base
text; the preview shows the variant asked for."""

from typing import Any

import pytest

from tests.campaigns.conftest import CAMPAIGNS, assert_invalid, create_campaign, message_payload
from tests.factories import OrgClients

LONG_FOR_X = "ü" * 260  # weighs 260, plus a space and the link (23): over 280


async def _post(org: OrgClients, **message: Any) -> Any:
    return await org.editor.post(
        CAMPAIGNS,
        json={
            "name": "n",
            "subject": "s",
            "networks": ["linkedin", "x"],
            "messages": [message_payload(**message)],
        },
    )


class TestCreateWithVariants:
    async def test_variants_are_kept_in_order(self, org_a: OrgClients) -> None:
        campaign = await create_campaign(
            org_a.editor,
            messages=[
                message_payload(
                    "Base",
                    variants=[
                        {
                            "text": "Second wording",
                            "network_text": {"x": "Short on X", "email": ""},
                        },
                        {"text": "Third wording"},
                    ],
                )
            ],
        )
        expected = [
            # A blank per-network text means "no override", as on the base text.
            {"text": "Second wording", "network_text": {"x": "Short on X"}},
            {"text": "Third wording", "network_text": {}},
        ]
        assert campaign["messages"][0]["variants"] == expected
        fetched = await org_a.viewer.get(f"{CAMPAIGNS}/{campaign['id']}")
        assert fetched.json()["messages"][0]["variants"] == expected

    async def test_a_message_without_variants_has_an_empty_list(self, org_a: OrgClients) -> None:
        campaign = await create_campaign(org_a.editor)
        assert campaign["messages"][0]["variants"] == []

    @pytest.mark.parametrize(
        ("variants", "loc"),
        [
            ([{"text": f"v{n}"} for n in range(11)], ("body", "messages", "0", "variants")),
            ([{"text": "  "}], ("body", "messages", "0", "variants", "0", "text")),
            ([{"network_text": {"x": "t"}}], ("body", "messages", "0", "variants", "0", "text")),
            ([{"text": "t", "colour": "red"}], ("body", "messages", "0", "variants", "0")),
            ([{"text": "t", "network_text": {"myspace": "t"}}], ("body", "messages", "0")),
            ([{"text": "x" * 3_001}], ("body", "messages", "0", "variants", "0", "text")),
            (None, ("body", "messages", "0", "variants")),
        ],
    )
    async def test_bad_variants_are_422(
        self, org_a: OrgClients, variants: Any, loc: tuple[str, ...]
    ) -> None:
        assert_invalid(await _post(org_a, variants=variants), *loc)

    async def test_ten_variants_are_the_most(self, org_a: OrgClients) -> None:
        response = await _post(org_a, variants=[{"text": f"v{n}"} for n in range(10)])
        assert response.status_code == 201, response.text

    async def test_the_x_weight_rule_applies_to_every_variant(self, org_a: OrgClients) -> None:
        response = await _post(org_a, text="fits", variants=[{"text": "ok"}, {"text": LONG_FOR_X}])
        errors = assert_invalid(response, "body", "messages", "0", "variants", "1")
        assert "variant 2" in errors[0]["msg"]

    async def test_a_variant_x_text_is_what_is_weighed(self, org_a: OrgClients) -> None:
        short_on_x = [{"text": LONG_FOR_X, "network_text": {"x": "short"}}]
        assert (await _post(org_a, variants=short_on_x)).status_code == 201
        long_on_x = [{"text": "short", "network_text": {"x": LONG_FOR_X}}]
        assert_invalid(await _post(org_a, variants=long_on_x), "body", "messages", "0", "variants")

    async def test_variants_are_weighed_only_when_x_is_used(self, org_a: OrgClients) -> None:
        campaign = await create_campaign(
            org_a.editor,
            networks=["linkedin"],
            messages=[message_payload("fits", variants=[{"text": LONG_FOR_X}])],
        )
        response = await org_a.editor.patch(
            f"{CAMPAIGNS}/{campaign['id']}", json={"networks": ["linkedin", "x"]}
        )
        assert_invalid(response, "body", "networks")


class TestUpdateVariants:
    async def test_variants_replace_and_are_weighed(self, org_a: OrgClients) -> None:
        campaign = await create_campaign(org_a.editor, networks=["x"])
        message = campaign["messages"][0]
        path = f"{CAMPAIGNS}/{campaign['id']}/messages/{message['id']}"
        response = await org_a.editor.patch(path, json={"variants": [{"text": "Another"}]})
        assert response.status_code == 200, response.text
        assert response.json()["variants"] == [{"text": "Another", "network_text": {}}]
        too_long = await org_a.editor.patch(path, json={"variants": [{"text": LONG_FOR_X}]})
        assert_invalid(too_long, "body", "variants", "0")
        assert_invalid(await org_a.editor.patch(path, json={"variants": None}), "body")
        # Another change keeps the variants.
        kept = await org_a.editor.patch(path, json={"text": "New base"})
        assert kept.json()["variants"] == [{"text": "Another", "network_text": {}}]
        cleared = await org_a.editor.patch(path, json={"variants": []})
        assert cleared.json()["variants"] == []

    async def test_added_messages_take_variants(self, org_a: OrgClients) -> None:
        campaign = await create_campaign(org_a.editor, networks=["x"])
        added = await org_a.editor.post(
            f"{CAMPAIGNS}/{campaign['id']}/messages",
            json=message_payload("Base", variants=[{"text": "Other"}]),
        )
        assert added.status_code == 201, added.text
        assert added.json()["variants"] == [{"text": "Other", "network_text": {}}]
        too_long = await org_a.editor.post(
            f"{CAMPAIGNS}/{campaign['id']}/messages",
            json=message_payload("Base", variants=[{"text": LONG_FOR_X}]),
        )
        assert_invalid(too_long, "body", "variants", "0")


class TestPreviewVariant:
    async def test_preview_shows_the_variant_asked_for(self, org_a: OrgClients) -> None:
        campaign = await create_campaign(
            org_a.editor,
            networks=["x"],
            messages=[
                message_payload("Base one", variants=[{"text": "Other one"}]),
                message_payload("Only one wording"),
            ],
        )
        preview = f"{CAMPAIGNS}/{campaign['id']}/preview"
        base = await org_a.viewer.get(preview)
        assert "Base one" in base.text and "Other one" not in base.text
        other = await org_a.viewer.get(preview, params={"variant": 1})
        assert other.status_code == 200
        assert "Other one" in other.text and "Base one" not in other.text
        # The share button is prefilled with the variant's text.
        assert "text=Other%20one" in other.text
        # A message without that variant shows its base text.
        assert "Only one wording" in other.text
        first = await org_a.viewer.get(preview, params={"variant": 0})
        assert "Base one" in first.text

    @pytest.mark.parametrize("variant", ["2", "10", "11", "-1", "one"])
    async def test_a_variant_out_of_range_is_422(self, org_a: OrgClients, variant: str) -> None:
        campaign = await create_campaign(
            org_a.editor, messages=[message_payload("Base", variants=[{"text": "Other"}])]
        )
        response = await org_a.viewer.get(
            f"{CAMPAIGNS}/{campaign['id']}/preview", params={"variant": variant}
        )
        assert_invalid(response, "query", "variant")
