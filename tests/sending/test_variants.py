"""Copy variants at send time, over real SMTP: dealt evenly and for good (stored on the links),
shown in the digest, its web version and the preview, carried by the share intents; a
translation for the amplifier's language wins over the wording it was dealt."""

import re
from collections import Counter, defaultdict, deque
from email.message import EmailMessage
from typing import Any

import httpx
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from app.models import Link, LinkKind
from app.sending.variants import recipients_per_variant, variant_of, variants_of_rank
from tests.factories import OrgClients
from tests.sending.conftest import make_campaign, make_roster, send_campaign, wait_for_status
from tests.sending.smtp import SmtpServer

URL = "https://example.com/launch"


def _parts(mail: EmailMessage) -> tuple[str, str]:
    text, html = (part.get_content() for part in mail.iter_parts())
    return text, html


async def _variants_on_links(
    sessionmaker: Any, campaign_id: int
) -> dict[tuple[int, int], set[int]]:
    """(message, delivery) → the variants its links carry."""
    async with sessionmaker() as session:
        rows = (
            await session.execute(
                select(Link.message_id, Link.delivery_id, Link.variant).where(
                    Link.campaign_id == campaign_id
                )
            )
        ).all()
    found: dict[tuple[int, int], set[int]] = defaultdict(set)
    for message_id, delivery_id, variant in rows:
        found[(message_id, delivery_id)].add(variant)
    return found


async def _by_variant(org: OrgClients, message_id: int) -> list[dict[str, Any]]:
    response = await org.viewer.get(f"/api/v1/messages/{message_id}/stats")
    assert response.status_code == 200, response.text
    return list(response.json()["by_variant"])


class TestDealing:
    @given(recipients=st.integers(0, 3_000), variant_count=st.integers(1, 11))
    def test_the_counts_written_at_the_snapshot_are_the_deal(
        self, recipients: int, variant_count: int
    ) -> None:
        dealt = Counter(variant_of(rank, variant_count) for rank in range(recipients))
        counts = recipients_per_variant(recipients, variant_count)
        assert counts == [dealt[variant] for variant in range(variant_count)]
        assert sum(counts) == recipients and max(counts) - min(counts) <= 1

    def test_each_message_is_dealt_on_its_own(self) -> None:
        assert [variants_of_rank(rank, (1, 2, 3)) for rank in range(4)] == [
            (0, 0, 0),
            (0, 1, 1),
            (0, 0, 2),
            (0, 1, 0),
        ]


class TestAssignment:
    async def test_a_thousand_amplifiers_are_split_evenly(
        self, org_a: OrgClients, sessionmaker
    ) -> None:
        await make_roster(org_a, 1_000)
        campaign = await make_campaign(
            org_a,
            networks=["linkedin"],
            messages=[
                {"text": "One wording", "url": URL},
                {"text": "Three", "url": URL, "variants": [{"text": "3b"}, {"text": "3c"}]},
                {"text": "Ten", "url": URL, "variants": [{"text": f"10-{n}"} for n in range(9)]},
                {"text": "Seven", "url": URL, "variants": [{"text": f"7-{n}"} for n in range(6)]},
            ],
        )
        await send_campaign(org_a, campaign["id"])
        on_links = await _variants_on_links(sessionmaker, campaign["id"])
        # One variant per recipient and message: every link of theirs carries it.
        assert len(on_links) == 4 * 1_000
        assert all(len(variants) == 1 for variants in on_links.values())
        dealt = Counter((message, *variants) for (message, _), variants in on_links.items())
        for message, variant_count in zip(campaign["messages"], (1, 3, 10, 7), strict=True):
            counts = [dealt[(message["id"], variant)] for variant in range(variant_count)]
            assert sum(counts) == 1_000
            assert max(counts) - min(counts) <= 1, counts
            stats = await _by_variant(org_a, message["id"])
            assert [v["variant"] for v in stats] == list(range(variant_count))
            assert [v["recipients"] for v in stats] == counts
        # The wordings vary across the roster together: no recipient gets every first wording.
        firsts = Counter(
            delivery for (message, delivery), variants in on_links.items() if variants == {0}
        )
        assert max(firsts.values()) == 4 and min(firsts.values()) == 1


class TestDigest:
    async def test_each_amplifier_reads_its_variant_everywhere(
        self,
        org_a: OrgClients,
        client: httpx.AsyncClient,
        smtp_server: SmtpServer,
        run_worker,
        sessionmaker,
    ) -> None:
        roster = await make_roster(org_a, 3)
        campaign = await make_campaign(
            org_a,
            networks=["x", "linkedin"],
            messages=[
                {
                    "text": "Plain wording",
                    "url": URL,
                    "variants": [{"text": "Bold wording", "network_text": {"x": "Bold on X"}}],
                }
            ],
        )
        # Amp 1's first attempt is refused: the retry must show the same variant.
        smtp_server.handler.data_replies["amp1@example.com"] = deque(["451 4.3.0 try later"])
        await send_campaign(org_a, campaign["id"])
        async with run_worker():
            await wait_for_status(sessionmaker, campaign["id"])
        assert smtp_server.handler.attempts["amp1@example.com"] == 2
        mails = {r.recipient: r.parsed() for r in smtp_server.handler.received}
        ids = {a["email"]: a["id"] for a in roster}
        preview = f"/api/v1/campaigns/{campaign['id']}/preview"
        # Dealt in roster order: amp0 the base text, amp1 variant 1, amp2 the base text again.
        for email, wording, other, on_x in (
            ("amp0@example.com", "Plain wording", "Bold wording", "Plain%20wording"),
            ("amp1@example.com", "Bold wording", "Plain wording", "Bold%20on%20X"),
            ("amp2@example.com", "Plain wording", "Bold wording", "Plain%20wording"),
        ):
            text, html = _parts(mails[email])
            assert wording in text and wording in html
            assert other not in text and other not in html
            x_link = re.search(r"Share on X: https://amplify\.test(/r/\S+)", text)
            assert x_link
            shared = await client.get(x_link.group(1), headers={"user-agent": "Mozilla/5.0"})
            assert shared.status_code == 302
            assert f"text={on_x}&" in shared.headers["location"]
            web = re.search(r'href="https://amplify\.test(/a/[^"]+)"', html)
            assert web
            page = await client.get(web.group(1))
            assert wording in page.text and other not in page.text
            shown = await org_a.viewer.get(preview, params={"amplifier_id": ids[email]})
            assert wording in shown.text and other not in shown.text

    async def test_a_translation_wins_over_the_variant(
        self, org_a: OrgClients, smtp_server: SmtpServer, run_worker, sessionmaker
    ) -> None:
        for email, locale in (("ada@example.com", "en"), ("dieter@example.de", "de")):
            response = await org_a.editor.post(
                "/api/v1/amplifiers", json={"email": email, "locale": locale}
            )
            assert response.status_code == 201, response.text
        campaign = await make_campaign(
            org_a,
            networks=["linkedin"],
            messages=[
                {
                    "text": "First plain",
                    "url": URL,
                    "variants": [{"text": "First bold"}],
                    "translations": {"de": {"text": "Erste Nachricht"}},
                },
                {"text": "Second plain", "url": URL, "variants": [{"text": "Second bold"}]},
            ],
        )
        await send_campaign(org_a, campaign["id"])
        async with run_worker():
            await wait_for_status(sessionmaker, campaign["id"])
        mails = {r.recipient: r.parsed() for r in smtp_server.handler.received}
        ada, _ = _parts(mails["ada@example.com"])
        assert "First plain" in ada and "Second plain" in ada
        # Dieter was dealt variant 1 of both: German where a translation exists, else variant 1.
        dieter, _ = _parts(mails["dieter@example.de"])
        assert "Erste Nachricht" in dieter and "First bold" not in dieter
        assert "Second bold" in dieter and "Second plain" not in dieter
        on_links = await _variants_on_links(sessionmaker, campaign["id"])
        assert sorted(variants for variants in map(tuple, on_links.values())) == [
            (0,),
            (0,),
            (1,),
            (1,),
        ]
        first = await _by_variant(org_a, campaign["messages"][0]["id"])
        assert [(v["text"], v["recipients"]) for v in first] == [
            ("First plain", 1),
            ("First bold", 1),
        ]


class TestLinkKinds:
    async def test_visit_and_share_links_carry_the_same_variant(
        self, org_a: OrgClients, sessionmaker
    ) -> None:
        await make_roster(org_a, 5)
        campaign = await make_campaign(
            org_a,
            networks=["linkedin", "x"],
            messages=[{"text": "A", "url": URL, "variants": [{"text": "B"}, {"text": "C"}]}],
        )
        await send_campaign(org_a, campaign["id"])
        async with sessionmaker() as session:
            rows = (
                await session.execute(
                    select(Link.delivery_id, Link.kind, Link.variant)
                    .where(Link.campaign_id == campaign["id"])
                    .order_by(Link.delivery_id)
                )
            ).all()
        kinds: dict[int, set[tuple[str, int]]] = defaultdict(set)
        for delivery_id, kind, variant in rows:
            kinds[delivery_id].add((kind, variant))
        dealt = [sorted(found) for found in kinds.values()]
        assert dealt == [[(LinkKind.SHARE, v), (LinkKind.VISIT, v)] for v in (0, 1, 2, 0, 1)]
