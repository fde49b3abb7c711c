"""Digests and amplifier pages in each amplifier's language, over real SMTP: the chrome from the
catalogs, the content from the campaign's translations (best match, then the base text), and
the impact block's numbers as the stats API has them."""

import re
from datetime import timedelta
from email.message import EmailMessage
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from app.core.db import utcnow
from app.models import Link
from tests.factories import OrgClients
from tests.sending.conftest import make_campaign, send_campaign, wait_for_status
from tests.sending.smtp import SmtpServer
from tests.stats.conftest import _cold_salt_cache, mark_deliveries
from tests.tracking import conftest as tracking
from tests.tracking.conftest import Clock

clock = tracking.clock  # the redirect's clock
cold_salt_cache = _cold_salt_cache

PEOPLE = {
    "ada": {"email": "ada@example.com", "name": "Ada", "locale": "en"},
    "dorthe": {"email": "dorthe@example.dk", "name": "Dorthe", "locale": "da"},
    "dieter": {"email": "dieter@example.de", "name": "Dieter", "locale": "de-AT"},
    "beatriz": {"email": "beatriz@example.br", "name": "Beatriz", "locale": "pt-BR"},
    "jun": {"email": "jun@example.jp", "name": "Jun", "locale": "ja"},
}
BROWSERS = [
    f"Mozilla/5.0 (X11; Linux x86_64; rv:{version}.0) Gecko/20100101 Firefox/{version}.0"
    for version in range(120, 140)
]

TRANSLATED_CAMPAIGN: dict[str, Any] = {
    "name": "Autumn launch",
    "subject": "Help us launch",
    "intro": "Our autumn release is out.",
    "networks": ["linkedin", "x"],
    "translations": {
        "da": {"subject": "Hjælp os med lanceringen", "intro": "Vores efterårsudgivelse er ude."},
        "DE": {"subject": "Hilf uns beim Start"},
        "pt": {"subject": "Ajude-nos no lançamento", "intro": "Nossa versão de outono saiu."},
    },
    "messages": [
        {
            "text": "We shipped dark mode",
            "url": "https://example.com/dark",
            "translations": {
                "da": {"text": "Vi har lanceret mørk tilstand"},
                "de": {"text": "Dunkelmodus ist da", "network_text": {"x": "Dunkelmodus! Jetzt"}},
                "pt": {"text": "Lançamos o modo escuro"},
            },
        },
        {"text": "And faster search", "url": "https://example.com/search"},
    ],
}


async def _roster(org: OrgClients) -> dict[str, int]:
    ids = {}
    for who, row in PEOPLE.items():
        response = await org.editor.post("/api/v1/amplifiers", json=row)
        assert response.status_code == 201, response.text
        ids[who] = response.json()["id"]
    return ids


async def _earn(
    org: OrgClients, client: httpx.AsyncClient, app: FastAPI, sessionmaker, clock: Clock
) -> None:
    """A first campaign, delivered an hour ago, in which Ada and Dieter share and bring
    visitors."""
    first = await make_campaign(org, name="Earlier", networks=["linkedin"])
    await send_campaign(org, first["id"])
    everyone = [a["id"] for a in (await org.viewer.get("/api/v1/amplifiers")).json()["items"]]
    await mark_deliveries(
        sessionmaker, first["id"], everyone, status="sent", sent_at=utcnow() - timedelta(hours=1)
    )
    async with sessionmaker() as session:
        links = (await session.scalars(select(Link).where(Link.campaign_id == first["id"]))).all()
    emails = {row["email"]: who for who, row in PEOPLE.items()}
    ids = {
        a["id"]: a["email"] for a in (await org.viewer.get("/api/v1/amplifiers")).json()["items"]
    }
    code = {(emails[ids[link.amplifier_id]], link.kind): link.code for link in links}
    plan = [
        ("ada", "share", 1),
        ("ada", "visit", 3),
        ("dieter", "share", 1),
        ("dieter", "visit", 1),
    ]
    clock.now = utcnow() - timedelta(minutes=30)
    browsers = iter(BROWSERS)
    for who, kind, times in plan:
        for _ in range(times):
            clock.advance(minutes=1)
            response = await client.get(
                f"/r/{code[(who, kind)]}", headers={"user-agent": next(browsers)}
            )
            assert response.status_code == 302
    await app.state.tracking.recorder.flush()


async def _digests(
    org: OrgClients, smtp_server: SmtpServer, run_worker, sessionmaker, **campaign: Any
) -> dict[str, EmailMessage]:
    created = await make_campaign(org, **(campaign or TRANSLATED_CAMPAIGN))
    await send_campaign(org, created["id"])
    async with run_worker():
        await wait_for_status(sessionmaker, created["id"])
    by_email = {r.recipient: r.parsed() for r in smtp_server.handler.received}
    return {who: by_email[row["email"]] for who, row in PEOPLE.items() if row["email"] in by_email}


def _parts(mail: EmailMessage) -> tuple[str, str]:
    text, html = (part.get_content() for part in mail.iter_parts())
    return text, html


def _link(html: str, prefix: str) -> str:
    found = re.search(rf'href="https://amplify\.test(/{prefix}/[^"]+)"', html)
    assert found, prefix
    return found.group(1)


@pytest.fixture
async def sent(
    org_a: OrgClients,
    client: httpx.AsyncClient,
    app: FastAPI,
    sessionmaker,
    clock: Clock,
    smtp_server: SmtpServer,
    run_worker,
) -> dict[str, EmailMessage]:
    await _roster(org_a)
    await _earn(org_a, client, app, sessionmaker, clock)
    return await _digests(org_a, smtp_server, run_worker, sessionmaker)


class TestDigestLanguages:
    async def test_danish_chrome_and_danish_content(self, sent: dict[str, EmailMessage]) -> None:
        mail = sent["dorthe"]
        text, html = _parts(mail)
        assert mail["Subject"] == "Hjælp os med lanceringen"
        assert mail["Content-Language"] == "da"
        assert '<html lang="da"' in html
        assert "Hej Dorthe" in text
        assert "Vores efterårsudgivelse er ude." in text
        assert "Her er 2 opslag, der er klar til at blive delt." in text
        assert "Opslag 1 af 2" in text and "Del på LinkedIn" in text
        assert "Vi har lanceret mørk tilstand" in text
        # The second message has no translation: its base text.
        assert "And faster search" in text
        # Nothing earned yet: the encouraging line, no zeros.
        assert "Din første deling er kun ét klik væk." in text
        assert "Point:" not in text

    async def test_german_subject_translated_intro_falls_back_to_base(
        self, sent: dict[str, EmailMessage]
    ) -> None:
        mail = sent["dieter"]
        text, _html = _parts(mail)
        assert mail["Subject"] == "Hilf uns beim Start"
        assert mail["Content-Language"] == "de"
        assert "Hallo Dieter," in text
        assert "Our autumn release is out." in text
        assert "Dunkelmodus ist da" in text
        assert "Hier sind 2 Beiträge zum Teilen." in text

    async def test_brazilian_portuguese_falls_back_to_portuguese(
        self, sent: dict[str, EmailMessage]
    ) -> None:
        mail = sent["beatriz"]
        text, _html = _parts(mail)
        assert mail["Subject"] == "Ajude-nos no lançamento"
        assert mail["Content-Language"] == "pt"
        assert "Olá, Beatriz!" in text
        assert "Nossa versão de outono saiu." in text
        assert "Lançamos o modo escuro" in text
        assert "Compartilhar no LinkedIn" in text

    async def test_japanese_chrome_with_the_base_content(
        self, sent: dict[str, EmailMessage]
    ) -> None:
        mail = sent["jun"]
        text, html = _parts(mail)
        assert mail["Subject"] == "Help us launch"
        assert mail["Content-Language"] == "ja"
        assert '<html lang="ja"' in html
        assert "Junさん、こんにちは。" in text
        assert "シェアできる投稿が2件あります。" in text
        assert "LinkedInでシェア" in text
        assert "We shipped dark mode" in text

    async def test_share_intent_carries_the_translated_text(
        self, sent: dict[str, EmailMessage], client: httpx.AsyncClient
    ) -> None:
        text, _html = _parts(sent["dieter"])
        x_link = re.search(r"Auf X teilen: https://amplify\.test(/r/\S+)", text)
        assert x_link
        response = await client.get(x_link.group(1), headers={"user-agent": BROWSERS[-1]})
        assert response.status_code == 302
        assert "text=Dunkelmodus%21%20Jetzt&" in response.headers["location"]

    async def test_impact_block_matches_the_leaderboard(
        self, sent: dict[str, EmailMessage], org_a: OrgClients
    ) -> None:
        since = (utcnow() - timedelta(days=29)).date().isoformat()
        board = (await org_a.viewer.get("/api/v1/leaderboard", params={"since": since})).json()
        rows = {row["amplifier_id"]: row for row in board["items"]}
        amplifiers = (await org_a.viewer.get("/api/v1/amplifiers")).json()["items"]
        ids = {a["email"]: a["id"] for a in amplifiers}
        dieter = rows[ids["dieter@example.de"]]
        ada = rows[ids["ada@example.com"]]
        # Ada: one pair shared (10) and three unique visitors; Dieter: 10 + 1.
        assert (ada["points"], dieter["points"]) == (13, 11)
        text, _html = _parts(sent["dieter"])
        assert f"Geteilt: {dieter['share_clicks']}" in text
        assert f"Erzielte Besuche: {dieter['visits']}" in text
        assert f"Punkte: {dieter['points']}" in text
        assert "Rang: Platz 2 von 5" in text
        ada_text, _html = _parts(sent["ada"])
        assert "Rank: #1 of 5" in ada_text
        assert f"Points: {ada['points']}" in ada_text

    async def test_impact_block_hidden_when_the_organization_turns_it_off(
        self,
        org_a: OrgClients,
        smtp_server: SmtpServer,
        run_worker,
        sessionmaker,
    ) -> None:
        await _roster(org_a)
        response = await org_a.admin.put("/api/v1/settings/sending", json={"show_impact": False})
        assert response.status_code == 200
        mails = await _digests(org_a, smtp_server, run_worker, sessionmaker)
        text, html = _parts(mails["dorthe"])
        assert "Din effekt de seneste 30 dage" not in text
        assert "Din første deling" not in html
        # The page stays linked.
        assert _link(html, "m")


class TestPagesLanguages:
    async def test_web_version_in_danish(
        self, sent: dict[str, EmailMessage], client: httpx.AsyncClient
    ) -> None:
        _text, html = _parts(sent["dorthe"])
        page = await client.get(_link(html, "a"))
        assert page.status_code == 200
        assert page.headers["content-language"] == "da"
        assert '<html lang="da">' in page.text
        assert "Vi har lanceret mørk tilstand" in page.text
        assert "Her er 2 opslag" in page.text

    async def test_unsubscribe_page_in_japanese(
        self, sent: dict[str, EmailMessage], client: httpx.AsyncClient
    ) -> None:
        _text, html = _parts(sent["jun"])
        page = await client.get(_link(html, "u"))
        assert page.status_code == 200
        assert page.headers["content-language"] == "ja"
        assert "このダイジェストの配信を停止しますか？" in page.text

    async def test_impact_page_in_german_with_the_numbers(
        self, sent: dict[str, EmailMessage], client: httpx.AsyncClient, org_a: OrgClients
    ) -> None:
        _text, html = _parts(sent["dieter"])
        page = await client.get(_link(html, "m"))
        assert page.status_code == 200
        assert page.headers["content-language"] == "de"
        assert '<html lang="de">' in page.text
        assert "Deine Wirkung" in page.text
        assert "Dieser Monat" in page.text and "Insgesamt" in page.text
        assert "Platz 2 von 5" in page.text
        assert "Earlier" in page.text  # the campaign Dieter shared
        assert "<svg" in page.text  # visits over time
        assert "Top 10" not in page.text  # public_leaderboard is off by default

    async def test_impact_page_shows_the_top_ten_when_public(
        self, sent: dict[str, EmailMessage], client: httpx.AsyncClient, org_a: OrgClients
    ) -> None:
        response = await org_a.admin.put(
            "/api/v1/settings/sending", json={"public_leaderboard": True}
        )
        assert response.status_code == 200
        _text, html = _parts(sent["beatriz"])
        page = await client.get(_link(html, "m"))
        assert page.headers["content-language"] == "pt"
        assert "Top 10 do mês" in page.text
        assert "Ada" in page.text and "Dieter" in page.text
        assert "Seu primeiro compartilhamento está a um clique." in page.text

    @pytest.mark.parametrize("prefix", ["m", "a", "u"])
    async def test_tampered_tokens_answer_404(
        self, sent: dict[str, EmailMessage], client: httpx.AsyncClient, prefix: str
    ) -> None:
        _text, html = _parts(sent["dieter"])
        path = _link(html, prefix)
        tampered = path[:-1] + ("A" if path[-1] != "A" else "B")
        page = await client.get(tampered)
        assert page.status_code == 404
        assert page.headers["content-type"].startswith("text/html")
        assert "This link is not valid or has expired." in page.text

    async def test_a_token_of_another_page_opens_no_impact_page(
        self, sent: dict[str, EmailMessage], client: httpx.AsyncClient
    ) -> None:
        _text, html = _parts(sent["dieter"])
        token = _link(html, "u").rsplit("/", 1)[1]
        assert (await client.get(f"/m/{token}")).status_code == 404
