"""Parsing inbound reports without a database: hostile input never raises."""

from hypothesis import given, settings
from hypothesis import strategies as st

from app.bounces.reports import parse_inbound, redact
from app.bounces.verp import ReturnPaths
from app.models import BounceKind
from tests.bounces import samples

PATHS = ReturnPaths("bounces@acme.test", "secret")
SENT = samples.Sent(
    headers="From: Acme <advocacy@acme.test>\r\nMessage-ID: <amplify.1.2.abc@acme.test>",
    message_id="<amplify.1.2.abc@acme.test>",
    recipient="bob@example.com",
    return_path=PATHS.sender_for(2),
)

PIECES = st.sampled_from(
    [
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n",
        b"Content-Type: multipart/report; report-type=feedback-report; boundary=b\r\n",
        b"Content-Type: message/delivery-status\r\n",
        b"Content-Type: message/rfc822\r\n",
        b"--b\r\n",
        b"--b--\r\n",
        b"\r\n",
        b"Action: failed\r\n",
        b"Status: 5.1.1\r\n",
        b"Status: 4.\xff\r\n",
        b"Final-Recipient: rfc822;\r\n",
        b"X-Failed-Recipients: a@b.c\r\n",
        b"Message-ID: <amplify.9.9.x@acme.test>\r\n",
        b"From: \r\n",
        b"Subject: =?utf-8?q?=FF?=\r\n",
        b"\x00\x01\xfe",
    ]
)


class TestParse:
    def test_every_sample_is_understood(self) -> None:
        expected = {
            samples.postfix_user_unknown: (BounceKind.HARD, "5.1.1"),
            samples.exim_permanent: (BounceKind.HARD, "5.1.1"),
            samples.exchange_recipient_not_found: (BounceKind.HARD, "5.1.10"),
            samples.gmail_over_quota: (BounceKind.SOFT, "4.2.2"),
            samples.yahoo_complaint: (BounceKind.COMPLAINT, None),
        }
        for sample, (kind, status) in expected.items():
            report = parse_inbound(sample(SENT), recipients=[SENT.return_path], return_paths=PATHS)
            assert report is not None, sample.__name__
            assert (report.kind, report.status) == (kind, status), sample.__name__
            assert report.message_id == SENT.message_id, sample.__name__
            assert report.delivery_id == 2, sample.__name__

    @settings(max_examples=300, deadline=None)
    @given(st.lists(PIECES, max_size=25).map(b"".join) | st.binary(max_size=400))
    def test_hostile_mail_never_raises(self, raw: bytes) -> None:
        parse_inbound(raw, recipients=["bounces+1-x@acme.test", ""], return_paths=PATHS)

    def test_diagnostics_lose_their_addresses(self) -> None:
        assert redact("550 5.1.1 <bob@example.com>: no such user  here") == (
            "550 5.1.1 <<address>>: no such user here"
        )
