"""`amplify bounces`: reports from real servers delivered over SMTP change the right amplifiers."""

import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.bounces.verp import ReturnPaths
from tests.bounces import samples
from tests.bounces.conftest import (
    BOUNCE_ADDRESS,
    Receiver,
    amplifier_state,
    delivery_state,
    event_count,
)
from tests.conftest import TEST_SECRET
from tests.factories import OrgClients

Maker = async_sessionmaker[AsyncSession]


def counted(kind: str) -> float:
    return REGISTRY.get_sample_value("amplify_bounces_total", {"kind": kind}) or 0.0


async def campaign_stats(org: OrgClients, message_id: str) -> dict[str, Any]:
    campaign_id = int(message_id.split(".")[1])
    response = await org.viewer.get(f"/api/v1/campaigns/{campaign_id}/stats")
    assert response.status_code == 200, response.text
    return dict(response.json())


class TestReturnPath:
    async def test_each_mail_names_its_delivery(
        self, org_a: OrgClients, send_digests: Callable[..., Any]
    ) -> None:
        sent = await send_digests(org_a, 3)
        paths = ReturnPaths(BOUNCE_ADDRESS, TEST_SECRET)
        ids = []
        for mail in sent:
            assert re.fullmatch(r"bounces\+\d+-[0-9a-f]{20}@acme\.test", mail.return_path)
            delivery_id = paths.delivery_of(mail.return_path)
            assert delivery_id is not None
            assert paths.delivery_of(mail.return_path.upper()) == delivery_id
            ids.append(delivery_id)
        assert len(set(ids)) == 3
        forged = re.sub(r"\+(\d+)-", lambda m: f"+{int(m.group(1)) + 1}-", sent[0].return_path)
        assert paths.delivery_of(forged) is None
        assert (
            ReturnPaths(BOUNCE_ADDRESS, "another secret").delivery_of(sent[0].return_path) is None
        )
        assert paths.delivery_of("bounces@acme.test") is None


class TestHardBounces:
    @pytest.mark.parametrize(
        ("sample", "by_return_path"),
        [
            (samples.postfix_user_unknown, True),
            (samples.exim_permanent, True),
            (samples.exim_permanent, False),
            (samples.exchange_recipient_not_found, False),
        ],
        ids=["postfix", "exim", "exim-by-message-id", "exchange-by-message-id"],
    )
    async def test_bounce_marks_delivery_and_amplifier(
        self,
        org_a: OrgClients,
        send_digests: Callable[..., Any],
        receiver: Receiver,
        sessionmaker: Maker,
        sample: Callable[[samples.Sent], bytes],
        by_return_path: bool,
    ) -> None:
        bounced, kept = await send_digests(org_a, 2)
        before = counted("hard")
        to = bounced.return_path if by_return_path else BOUNCE_ADDRESS
        response = await receiver.deliver(sample(bounced), to=to)
        assert response.code == 250
        assert await amplifier_state(sessionmaker, bounced.recipient) == ("bounced", "hard_bounce")
        status, error = await delivery_state(sessionmaker, bounced.message_id)
        assert status == "bounced" and error is not None and "5.1." in error
        assert "@" not in error  # addresses in diagnostics are not kept
        assert await amplifier_state(sessionmaker, kept.recipient) == ("active", None)
        assert await delivery_state(sessionmaker, kept.message_id) == ("sent", None)
        assert counted("hard") == before + 1
        stats = await campaign_stats(org_a, bounced.message_id)
        assert (stats["sent"], stats["bounced"], stats["complaints"]) == (1, 1, 0)
        listed = await org_a.viewer.get(
            f"/api/v1/campaigns/{stats['campaign_id']}/deliveries", params={"status": "bounced"}
        )
        assert [d["email"] for d in listed.json()["items"]] == [bounced.recipient]
        amplifier = await org_a.viewer.get("/api/v1/amplifiers", params={"status": "bounced"})
        (item,) = amplifier.json()["items"]
        assert (item["email"], item["status_reason"]) == (bounced.recipient, "hard_bounce")

    async def test_a_repeat_changes_nothing(
        self,
        org_a: OrgClients,
        send_digests: Callable[..., Any],
        receiver: Receiver,
        sessionmaker: Maker,
    ) -> None:
        (sent,) = await send_digests(org_a, 1)
        report = samples.postfix_user_unknown(sent)
        duplicates = counted("duplicate")
        for _ in range(2):
            assert (await receiver.deliver(report, to=sent.return_path)).code == 250
        assert await event_count(sessionmaker) == 1
        assert counted("duplicate") == duplicates + 1


class TestSoftBounces:
    async def test_third_soft_bounce_in_30_days_marks_the_amplifier(
        self,
        org_a: OrgClients,
        send_digests: Callable[..., Any],
        receiver: Receiver,
        sessionmaker: Maker,
    ) -> None:
        (sent,) = await send_digests(org_a, 1)
        arrivals = [f"Mon, 30 Nov 2026 0{h}:40:09 -0800" for h in (2, 3, 4)]
        for count, arrival in enumerate(arrivals, start=1):
            report = samples.gmail_over_quota(sent, arrival=arrival)
            assert (await receiver.deliver(report, to=sent.return_path)).code == 250
            expected = ("bounced", "soft_bounces") if count == 3 else ("active", None)
            assert await amplifier_state(sessionmaker, sent.recipient) == expected
        # A soft bounce does not undo the delivery: the mail may still have arrived.
        assert (await delivery_state(sessionmaker, sent.message_id))[0] == "sent"
        assert await event_count(sessionmaker) == 3


class TestComplaints:
    async def test_yahoo_arf_unsubscribes_with_reason_complaint(
        self,
        org_a: OrgClients,
        send_digests: Callable[..., Any],
        receiver: Receiver,
        sessionmaker: Maker,
    ) -> None:
        complained, kept = await send_digests(org_a, 2)
        before = counted("complaint")
        first = await campaign_stats(org_a, complained.message_id)
        assert (first["bounced"], first["complaints"]) == (0, 0)
        report = samples.yahoo_complaint(complained)
        assert (await receiver.deliver(report, to="fbl@acme.test")).code == 250
        assert await amplifier_state(sessionmaker, complained.recipient) == (
            "unsubscribed",
            "complaint",
        )
        assert await amplifier_state(sessionmaker, kept.recipient) == ("active", None)
        assert (await delivery_state(sessionmaker, complained.message_id))[0] == "sent"
        assert counted("complaint") == before + 1
        stats = await campaign_stats(org_a, complained.message_id)
        assert (stats["sent"], stats["bounced"], stats["complaints"]) == (2, 0, 1)


class TestHostileMail:
    @pytest.mark.parametrize(
        "raw",
        [
            b"",
            b"\x00\xff\xfe garbage \r\n\r\n\x00",
            b"From: friend@example.com\r\nSubject: hello\r\n\r\nJust saying hi.\r\n",
            b"Content-Type: multipart/report; report-type=delivery-status; boundary=x\r\n\r\n"
            b"--x\r\nContent-Type: message/delivery-status\r\n\r\nAction: failed\r\n\r\n"
            b"Action: failed\r\nStatus: 9.9.9999\r\n--",
            b'Content-Type: multipart/report; report-type=feedback-report; boundary="\r\n\r\n',
            b"Subject: =?utf-8?b?////?=\r\nContent-Type: text/plain; charset=x-unknown\r\n\r\n"
            b"550 5.1.1 user unknown\r\n",
        ],
        ids=["empty", "binary", "not-a-bounce", "broken-dsn", "broken-arf", "bad-charset"],
    )
    async def test_accepted_logged_counted_and_the_receiver_goes_on(
        self,
        org_a: OrgClients,
        send_digests: Callable[..., Any],
        receiver: Receiver,
        sessionmaker: Maker,
        raw: bytes,
    ) -> None:
        (sent,) = await send_digests(org_a, 1)
        before = sum(counted(k) for k in ("unparsed", "unmapped", "error"))
        assert (await receiver.deliver(raw, to=BOUNCE_ADDRESS)).code == 250
        assert sum(counted(k) for k in ("unparsed", "unmapped", "error")) == before + 1
        assert await amplifier_state(sessionmaker, sent.recipient) == ("active", None)
        # Still serving: a real bounce right after is recorded.
        response = await receiver.deliver(samples.postfix_user_unknown(sent), to=sent.return_path)
        assert response.code == 250
        assert await amplifier_state(sessionmaker, sent.recipient) == ("bounced", "hard_bounce")

    async def test_a_report_about_mail_we_never_sent_is_unmapped(
        self, org_a: OrgClients, receiver: Receiver, sessionmaker: Maker
    ) -> None:
        stranger = samples.Sent(
            headers="Message-ID: <someone.else@example.org>\r\nSubject: x",
            message_id="<someone.else@example.org>",
            recipient="bob@example.org",
            return_path="bounces+12-00000000000000000000@acme.test",
        )
        before = counted("unmapped")
        response = await receiver.deliver(
            samples.postfix_user_unknown(stranger), to=stranger.return_path
        )
        assert response.code == 250
        assert counted("unmapped") == before + 1
        assert await event_count(sessionmaker) == 0

    async def test_oversized_mail_is_refused_at_data(self, receiver: Receiver) -> None:
        with pytest.raises(Exception, match="552"):
            await receiver.deliver(
                b"Subject: big\r\n\r\n" + (b"x" * 70 + b"\r\n") * 1000, to="a@b.c"
            )

    async def test_metrics_count_bounces_by_kind(
        self, client: httpx.AsyncClient, receiver: Receiver
    ) -> None:
        await receiver.deliver(b"Subject: hi\r\n\r\nhello\r\n", to=BOUNCE_ADDRESS)
        body = (await client.get("/metrics")).text
        assert re.search(r'^amplify_bounces_total\{kind="unparsed"\} [1-9]', body, re.MULTILINE)
