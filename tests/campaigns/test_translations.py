"""Translations of a campaign (subject, intro) and of its messages (text, network_text)."""

from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.models import CampaignStatus
from tests.campaigns.conftest import (
    CAMPAIGNS,
    assert_invalid,
    create_campaign,
    message_payload,
    set_status,
)
from tests.factories import OrgClients

LONG_FOR_X = "ü" * 260  # weighs 260, plus a space and the link (23): over 280


class TestCreateWithTranslations:
    async def test_tags_are_normalized_and_translations_kept(self, org_a: OrgClients) -> None:
        campaign = await create_campaign(
            org_a.editor,
            translations={"pt_br": {"subject": "Assunto"}, "de": {"intro": "Hallo"}},
            messages=[
                message_payload(
                    "Base",
                    translations={
                        "ja": {"text": "投稿", "network_text": {"x": "Xの投稿"}},
                        "fr": {"text": "Texte"},
                    },
                )
            ],
        )
        assert campaign["translations"] == {
            "pt-BR": {"subject": "Assunto"},
            "de": {"intro": "Hallo"},
        }
        assert campaign["messages"][0]["translations"] == {
            "ja": {"text": "投稿", "network_text": {"x": "Xの投稿"}},
            "fr": {"text": "Texte", "network_text": {}},
        }
        fetched = await org_a.viewer.get(f"{CAMPAIGNS}/{campaign['id']}")
        assert fetched.json()["translations"] == campaign["translations"]

    @pytest.mark.parametrize(
        ("translations", "loc"),
        [
            ({"not a tag": {"subject": "S"}}, ("body", "translations")),
            ({"zz-ZZ-1234567890": {"subject": "S"}}, ("body", "translations")),
            ({"de": {"subject": "S", "colour": "red"}}, ("body", "translations", "de", "colour")),
            ({"de": {"subject": "Line\nbreak"}}, ("body", "translations", "de", "subject")),
            ({"de": {"subject": "x" * 301}}, ("body", "translations", "de", "subject")),
            ({"de": {"subject": None}}, ("body", "translations", "de", "subject")),
        ],
    )
    async def test_bad_campaign_translations_are_422(
        self, org_a: OrgClients, translations: dict[str, Any], loc: tuple[str, ...]
    ) -> None:
        response = await org_a.editor.post(
            CAMPAIGNS,
            json={
                "name": "n",
                "subject": "s",
                "networks": ["linkedin"],
                "translations": translations,
            },
        )
        assert_invalid(response, *loc)

    async def test_a_message_translation_needs_its_text(self, org_a: OrgClients) -> None:
        response = await org_a.editor.post(
            CAMPAIGNS,
            json={
                "name": "n",
                "subject": "s",
                "networks": ["linkedin"],
                "messages": [message_payload(translations={"de": {"network_text": {}}})],
            },
        )
        assert_invalid(response, "body", "messages", "0", "translations", "de", "text")

    async def test_the_x_weight_rule_applies_to_every_translation(self, org_a: OrgClients) -> None:
        response = await org_a.editor.post(
            CAMPAIGNS,
            json={
                "name": "n",
                "subject": "s",
                "networks": ["linkedin", "x"],
                "messages": [message_payload("fits", translations={"de": {"text": LONG_FOR_X}})],
            },
        )
        errors = assert_invalid(response, "body", "messages", "0", "translations", "de")
        assert "de translation" in errors[0]["msg"]

    async def test_a_translation_without_x_is_weighed_only_when_x_is_used(
        self, org_a: OrgClients
    ) -> None:
        campaign = await create_campaign(
            org_a.editor,
            networks=["linkedin"],
            messages=[message_payload("fits", translations={"de": {"text": LONG_FOR_X}})],
        )
        response = await org_a.editor.patch(
            f"{CAMPAIGNS}/{campaign['id']}", json={"networks": ["linkedin", "x"]}
        )
        assert_invalid(response, "body", "networks")


class TestUpdateTranslations:
    async def test_campaign_translations_change_even_after_sending_starts(
        self, org_a: OrgClients, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        campaign = await create_campaign(org_a.editor)
        await set_status(sessionmaker, campaign["id"], CampaignStatus.SCHEDULED)
        response = await org_a.editor.patch(
            f"{CAMPAIGNS}/{campaign['id']}", json={"translations": {"da": {"subject": "Del"}}}
        )
        assert response.status_code == 200, response.text
        assert response.json()["translations"] == {"da": {"subject": "Del"}}

    async def test_message_translations_replace_and_are_weighed(self, org_a: OrgClients) -> None:
        campaign = await create_campaign(org_a.editor, networks=["x"])
        message = campaign["messages"][0]
        path = f"{CAMPAIGNS}/{campaign['id']}/messages/{message['id']}"
        response = await org_a.editor.patch(path, json={"translations": {"it": {"text": "Ciao"}}})
        assert response.status_code == 200, response.text
        assert response.json()["translations"] == {"it": {"text": "Ciao", "network_text": {}}}
        too_long = await org_a.editor.patch(
            path, json={"translations": {"it": {"text": LONG_FOR_X}}}
        )
        assert_invalid(too_long, "body", "translations", "it")
        assert_invalid(await org_a.editor.patch(path, json={"translations": None}), "body")


class TestPreviewLocale:
    async def test_preview_takes_a_locale(self, org_a: OrgClients) -> None:
        campaign = await create_campaign(
            org_a.editor,
            subject="Launch",
            translations={"de": {"intro": "Wir starten heute."}},
            messages=[
                message_payload("We launch", translations={"de": {"text": "Wir starten"}}),
                message_payload("Second"),
            ],
        )
        preview = f"{CAMPAIGNS}/{campaign['id']}/preview"
        german = await org_a.viewer.get(preview, params={"locale": "de-CH"})
        assert german.status_code == 200
        assert '<html lang="de"' in german.text
        assert "Wir starten heute." in german.text and "Wir starten" in german.text
        assert "Hier sind 2 Beiträge zum Teilen." in german.text
        english = await org_a.viewer.get(preview)
        assert "We launch" in english.text and "Here are 2 posts ready to share." in english.text

    async def test_preview_refuses_an_unknown_tag(self, org_a: OrgClients) -> None:
        campaign = await create_campaign(org_a.editor)
        response = await org_a.viewer.get(
            f"{CAMPAIGNS}/{campaign['id']}/preview", params={"locale": "no such"}
        )
        assert_invalid(response, "query", "locale")
