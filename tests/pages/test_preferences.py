"""The preference page over HTTP: a signed token opens it, the form saves, a form that did not
come from the page changes nothing, and the unsubscribe page offers fewer mails first."""

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.public_links import PREFERENCES, page_token, unsubscribe_token
from app.models import Delivery
from tests.factories import OrgClients, campaign_payload

FORM = {"content-type": "application/x-www-form-urlencoded"}


async def amplifier(org: OrgClients, **fields: Any) -> dict[str, Any]:
    response = await org.editor.post(
        "/api/v1/amplifiers", json={"email": "pia@example.com", "name": "Pia", **fields}
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def form_token(html: str) -> str:
    found = re.search(r'name="form_token" value="([^"]+)"', html)
    assert found
    return found.group(1)


async def post(
    client: httpx.AsyncClient, path: str, fields: list[tuple[str, str]]
) -> httpx.Response:
    return await client.post(path, content=httpx.QueryParams(fields).__str__(), headers=FORM)


class TestPreferencePage:
    async def test_shows_the_choices_in_the_amplifiers_language(
        self, client: httpx.AsyncClient, org_a: OrgClients, app: FastAPI
    ) -> None:
        pia = await amplifier(org_a, locale="de", frequency="weekly", networks=["linkedin"])
        response = await client.get(f"/p/{page_token(app.state.signer, PREFERENCES, pia['id'])}")
        assert response.status_code == 200
        assert response.headers["content-language"] == "de"
        assert response.headers["cache-control"] == "no-store"
        html = response.text
        assert "Mail-Einstellungen" in html
        assert re.search(r'value="weekly" checked', html)
        assert re.search(r'value="linkedin" checked', html)
        assert not re.search(r'value="x" checked', html)
        assert "/u/" in html  # unsubscribe stays one click away

    async def test_tampered_or_foreign_tokens_are_404(
        self, client: httpx.AsyncClient, org_a: OrgClients, app: FastAPI
    ) -> None:
        pia = await amplifier(org_a)
        token = page_token(app.state.signer, PREFERENCES, pia["id"])
        for bad in (token[:-2] + "xx", unsubscribe_token(app.state.signer, pia["id"]), "x"):
            assert (await client.get(f"/p/{bad}")).status_code == 404
            assert (await post(client, f"/p/{bad}", [("frequency", "daily")])).status_code == 404

    async def test_saving_the_form(
        self, client: httpx.AsyncClient, org_a: OrgClients, app: FastAPI
    ) -> None:
        pia = await amplifier(org_a)
        path = f"/p/{page_token(app.state.signer, PREFERENCES, pia['id'])}"
        token = form_token((await client.get(path)).text)
        now = datetime.now(UTC)
        response = await post(
            client,
            path,
            [
                ("form_token", token),
                ("frequency", "daily"),
                ("pause", "2w"),
                ("networks", "x"),
                ("networks", "bluesky"),
                ("locale", "da"),
            ],
        )
        assert response.status_code == 200, response.text
        assert "Gemt." in response.text  # the answer is already in the new language
        saved = (await org_a.viewer.get(f"/api/v1/amplifiers/{pia['id']}")).json()
        assert (saved["frequency"], saved["networks"], saved["locale"]) == (
            "daily",
            ["x", "bluesky"],
            "da",
        )
        paused_until = datetime.fromisoformat(saved["paused_until"])
        assert timedelta(days=13) < paused_until - now < timedelta(days=15)

        response = await post(
            client,
            path,
            [
                ("form_token", token),
                ("frequency", "daily"),
                ("pause", "date"),
                ("pause_until", "2099-01-01"),
                ("locale", "da"),
            ],
        )
        assert response.status_code == 422 and "det næste år" in response.text
        assert (await org_a.viewer.get(f"/api/v1/amplifiers/{pia['id']}")).json() == saved

    @pytest.mark.parametrize(
        "fields",
        [
            [("frequency", "hourly")],
            [("networks", "myspace")],
            [("locale", "tlh")],
            [("pause", "forever")],
            [("pause", "date"), ("pause_until", "soon")],
        ],
    )
    async def test_choices_the_form_does_not_offer_are_422(
        self,
        client: httpx.AsyncClient,
        org_a: OrgClients,
        app: FastAPI,
        fields: list[tuple[str, str]],
    ) -> None:
        pia = await amplifier(org_a)
        path = f"/p/{page_token(app.state.signer, PREFERENCES, pia['id'])}"
        token = form_token((await client.get(path)).text)
        response = await post(client, path, [("form_token", token), *fields])
        assert response.status_code == 422
        assert "Choose from the options" in response.text or "date" in response.text
        after = (await org_a.viewer.get(f"/api/v1/amplifiers/{pia['id']}")).json()
        assert after["frequency"] == "each" and after["networks"] == []

    async def test_a_form_from_elsewhere_changes_nothing(
        self, client: httpx.AsyncClient, org_a: OrgClients, app: FastAPI
    ) -> None:
        pia = await amplifier(org_a)
        other = await org_a.editor.post("/api/v1/amplifiers", json={"email": "o@example.com"})
        path = f"/p/{page_token(app.state.signer, PREFERENCES, pia['id'])}"
        other_path = f"/p/{page_token(app.state.signer, PREFERENCES, other.json()['id'])}"
        foreign = form_token((await client.get(other_path)).text)
        for fields in (
            [("frequency", "weekly")],
            [("form_token", foreign), ("frequency", "weekly")],
        ):
            response = await post(client, path, fields)
            assert response.status_code == 400
        response = await client.post(path, content=b"\xff\xfe", headers=FORM)
        assert response.status_code == 400
        after = (await org_a.viewer.get(f"/api/v1/amplifiers/{pia['id']}")).json()
        assert after["frequency"] == "each"

    async def test_back_to_every_campaign_releases_held_deliveries_now(
        self,
        client: httpx.AsyncClient,
        org_a: OrgClients,
        app: FastAPI,
        sessionmaker: async_sessionmaker[AsyncSession],
    ) -> None:
        pia = await amplifier(org_a, frequency="weekly")
        campaign = await org_a.editor.post("/api/v1/campaigns", json=campaign_payload())
        sent = await org_a.editor.post(f"/api/v1/campaigns/{campaign.json()['id']}/send")
        assert sent.status_code == 202
        async with sessionmaker() as session:
            [held] = (await session.scalars(select(Delivery))).all()
        assert held.status == "held" and held.due_at is not None
        assert held.due_at > datetime.now(UTC)
        path = f"/p/{page_token(app.state.signer, PREFERENCES, pia['id'])}"
        token = form_token((await client.get(path)).text)
        response = await post(client, path, [("form_token", token), ("frequency", "each")])
        assert response.status_code == 200
        async with sessionmaker() as session:
            [due] = (await session.scalars(select(Delivery))).all()
        assert due.status == "held" and due.due_at is not None
        assert due.due_at <= datetime.now(UTC)


class TestLinks:
    async def test_unsubscribe_page_offers_fewer_mails_first(
        self, client: httpx.AsyncClient, org_a: OrgClients, app: FastAPI
    ) -> None:
        pia = await amplifier(org_a)
        html = (await client.get(f"/u/{unsubscribe_token(app.state.signer, pia['id'])}")).text
        preferences = f"/p/{page_token(app.state.signer, PREFERENCES, pia['id'])}"
        assert preferences in html
        assert html.index(preferences) < html.index('<form method="post"')
