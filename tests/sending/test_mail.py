import re
from email.headerregistry import Address
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import select

from app.models import Link, LinkKind
from tests.factories import OrgClients
from tests.sending.conftest import make_campaign, send_campaign, wait_for_status
from tests.sending.smtp import SmtpServer

PUBLIC = "https://amplify.test"


async def _one_digest(
    org: OrgClients, smtp_server: SmtpServer, run_worker, sessionmaker, **campaign
):
    response = await org.editor.post(
        "/api/v1/amplifiers",
        json={
            "email": "jurgen@example.com",
            "name": "Jürgen Müller",
            "networks": ["linkedin", "x"],
        },
    )
    assert response.status_code == 201, response.text
    created = await make_campaign(org, **campaign)
    await send_campaign(org, created["id"])
    async with run_worker():
        await wait_for_status(sessionmaker, created["id"])
    assert len(smtp_server.handler.received) == 1
    return created, response.json(), smtp_server.handler.received[0]


class TestDigestMail:
    async def test_headers_and_mime_structure(
        self, org_a: OrgClients, smtp_server: SmtpServer, run_worker, sessionmaker
    ) -> None:
        _campaign, _amplifier, received = await _one_digest(
            org_a,
            smtp_server,
            run_worker,
            sessionmaker,
            subject="Grüße – our launch 🚀",
            networks=["linkedin", "x", "facebook"],
            messages=[
                {
                    "text": "First ünïcode message\n.a line with a leading dot\n..and two",
                    "url": "https://example.com/a",
                },
                {"text": "Second", "url": "https://example.com/b?ref=1", "hashtags": ["launch"]},
            ],
        )
        raw = received.raw
        assert all(ord(ch) < 128 for ch in raw.decode("latin-1").split("\r\n\r\n", 1)[0])
        mail = received.parsed()
        assert mail["Subject"] == "Grüße – our launch 🚀"
        to = mail["To"].addresses[0]
        assert isinstance(to, Address)
        assert (to.display_name, to.addr_spec) == ("Jürgen Müller", "jurgen@example.com")
        assert mail["From"].addresses[0].addr_spec == "advocacy@acme.test"
        assert re.fullmatch(r"<[^<>@\s]+@acme\.test>", mail["Message-ID"])
        assert mail.get_content_type() == "multipart/alternative"
        parts = list(mail.iter_parts())
        assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
        assert all(p.get_content_charset() == "utf-8" for p in parts)
        assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        targets = re.findall(r"<([^>]+)>", mail["List-Unsubscribe"])
        assert targets[0].startswith(f"{PUBLIC}/u/") and targets[1].startswith("mailto:")
        text, html = parts[0].get_content(), parts[1].get_content()
        assert "First ünïcode message" in text and "First ünïcode message" in html
        # SMTP dot-stuffing is undone by the receiver: lines starting with dots arrive intact.
        assert "\n.a line with a leading dot\n..and two" in text.replace("\r\n", "\n")
        # Every link in the mail is ours: tracked shortlinks and amplifier pages.
        hrefs = re.findall(r'href="([^"]+)"', html)
        assert hrefs and all(
            h.startswith(
                (f"{PUBLIC}/r/", f"{PUBLIC}/a/", f"{PUBLIC}/u/", f"{PUBLIC}/m/", f"{PUBLIC}/p/")
            )
            for h in hrefs
        )
        share_links = {h for h in hrefs if h.startswith(f"{PUBLIC}/r/")}
        # The amplifier uses linkedin and x (not facebook): 2 messages × 2 networks.
        assert len(share_links) == 4
        assert share_links <= set(re.findall(r"https://amplify\.test/r/\w+", text))
        assert f"{PUBLIC}/a/" in text and f"{PUBLIC}/u/" in text

    async def test_share_buttons_follow_the_order_the_links_were_made_in(
        self, org_a: OrgClients, smtp_server: SmtpServer, run_worker, sessionmaker
    ) -> None:
        response = await org_a.editor.post(
            "/api/v1/amplifiers",
            json={"email": "order@example.com", "networks": ["whatsapp", "x", "linkedin"]},
        )
        assert response.status_code == 201, response.text
        created = await make_campaign(
            org_a,
            networks=["linkedin", "x", "facebook", "whatsapp"],
            messages=[{"text": f"Post {n}", "url": f"https://example.com/{n}"} for n in range(3)],
        )
        await send_campaign(org_a, created["id"])
        async with run_worker():
            await wait_for_status(sessionmaker, created["id"])
        [received] = smtp_server.handler.received
        text = received.parsed().get_body(("plain",)).get_content()
        async with sessionmaker() as session:
            codes = (
                await session.scalars(
                    select(Link.code)
                    .where(Link.campaign_id == created["id"], Link.kind == LinkKind.SHARE)
                    .order_by(Link.id)
                )
            ).all()
        assert len(codes) == 9
        assert re.findall(r"https://amplify\.test/r/(\w+)", text)[: len(codes)] == codes

    async def test_share_and_visit_links_redirect(
        self, client, org_a: OrgClients, smtp_server: SmtpServer, run_worker, sessionmaker
    ) -> None:
        campaign, _amp, received = await _one_digest(
            org_a,
            smtp_server,
            run_worker,
            sessionmaker,
            name="Spring Launch 2026!",
            networks=["x"],
            messages=[
                {
                    "text": "Big news",
                    "url": "https://example.com/post?utm_source=newsletter&a=1",
                    "hashtags": ["launch", "news"],
                }
            ],
        )
        text = received.parsed().get_body(("plain",)).get_content()
        share = re.findall(r"https://amplify\.test(/r/\w+)", text)[0]
        response = await client.get(share)
        assert response.status_code == 302
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["referrer-policy"] == "no-referrer"
        intent = urlsplit(response.headers["location"])
        assert (intent.scheme, intent.netloc, intent.path) == ("https", "x.com", "/intent/tweet")
        query = parse_qs(intent.query)
        assert query["text"] == ["Big news #launch #news"]
        visit = urlsplit(query["url"][0])
        assert f"{visit.scheme}://{visit.netloc}" == PUBLIC and visit.path.startswith("/r/")
        landed = await client.get(visit.path)
        assert landed.status_code == 302
        target = urlsplit(landed.headers["location"])
        params = parse_qs(target.query)
        assert params["a"] == ["1"]
        assert params["utm_source"] == ["newsletter"]  # the URL's own utm_* wins
        assert params["utm_medium"] == ["amplify"]
        assert params["utm_campaign"] == ["spring-launch-2026"]
        assert params["utm_content"] == [str(campaign["messages"][0]["id"])]


class TestUnsubscribe:
    async def test_one_click_from_the_list_unsubscribe_header(
        self, client, org_a: OrgClients, smtp_server: SmtpServer, run_worker, sessionmaker
    ) -> None:
        _campaign, amplifier, received = await _one_digest(
            org_a, smtp_server, run_worker, sessionmaker
        )
        url = re.findall(r"<([^>]+)>", received.parsed()["List-Unsubscribe"])[0]
        path = urlsplit(url).path
        page = await client.get(path)
        assert page.status_code == 200 and "<form" in page.text and 'method="post"' in page.text
        assert page.headers["cache-control"] == "no-store"
        current = await org_a.viewer.get(f"/api/v1/amplifiers/{amplifier['id']}")
        assert current.json()["status"] == "active"  # a GET never unsubscribes
        response = await client.post(
            path,
            content="List-Unsubscribe=One-Click",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert response.status_code == 200
        assert "set-cookie" not in response.headers
        current = await org_a.viewer.get(f"/api/v1/amplifiers/{amplifier['id']}")
        assert current.json()["status"] == "unsubscribed"
        again = await client.post(path, content="List-Unsubscribe=One-Click")
        assert again.status_code == 200

    async def test_tampered_tokens_are_404(self, client, org_a: OrgClients) -> None:
        response = await org_a.editor.post("/api/v1/amplifiers", json={"email": "a@example.com"})
        assert response.status_code == 201
        from app.core.security import Signer
        from tests.conftest import TEST_SECRET

        token = Signer(TEST_SECRET).sign_id("unsubscribe", response.json()["id"])
        digest_token = Signer(TEST_SECRET).sign_id("digest", response.json()["id"])
        tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
        foreign = Signer("another-secret-another-secret-another").sign_id("unsubscribe", 1)
        for path in (
            f"/u/{tampered}",
            "/u/garbage",
            "/a/garbage",
            f"/a/{token}",  # an unsubscribe token is no digest token
            f"/u/{digest_token}",
            f"/u/{foreign}",
            f"/u/{response.json()['id']}",
        ):
            page = await client.get(path)
            assert page.status_code == 404, path
            assert page.headers["content-type"].startswith("text/html")
        assert (await client.post(f"/u/{tampered}")).status_code == 404
        assert (await client.get(f"/u/{token}")).status_code == 200

    async def test_web_version_shows_the_digest(
        self, client, org_a: OrgClients, smtp_server: SmtpServer, run_worker, sessionmaker
    ) -> None:
        _campaign, _amp, received = await _one_digest(org_a, smtp_server, run_worker, sessionmaker)
        text = received.parsed().get_body(("plain",)).get_content()
        web = re.findall(r"https://amplify\.test(/a/[\w.\-]+)", text)[0]
        page = await client.get(web)
        assert page.status_code == 200
        assert "We are launching!" in page.text
        shares = set(re.findall(r"https://amplify\.test/r/\w+", page.text))
        assert shares and shares <= set(re.findall(r"https://amplify\.test/r/\w+", text))


class TestPreview:
    async def test_preview_before_and_after_send(self, org_a: OrgClients) -> None:
        amp = (
            await org_a.editor.post(
                "/api/v1/amplifiers", json={"email": "p@example.com", "name": "<b>Pat</b>"}
            )
        ).json()
        campaign = await make_campaign(org_a)
        url = f"/api/v1/campaigns/{campaign['id']}/preview"
        sample = await org_a.viewer.get(url)
        assert sample.status_code == 200 and sample.headers["content-type"].startswith("text/html")
        assert "We are launching!" in sample.text
        personal = await org_a.viewer.get(url, params={"amplifier_id": amp["id"]})
        assert "&lt;b&gt;Pat&lt;/b&gt;" in personal.text and "<b>Pat</b>" not in personal.text
        await send_campaign(org_a, campaign["id"])
        after = await org_a.viewer.get(url, params={"amplifier_id": amp["id"]})
        assert re.search(r"https://amplify\.test/r/\w{10}", after.text)
        assert (await org_a.viewer.get(url, params={"amplifier_id": 999999})).status_code == 404
