from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.header import decode_header, make_header

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.sending.mime import CampaignHeaders, HeaderInjection, build_digest, encode_body


def _build(
    subject: str,
    name: str,
    text: str = "Hi\n.\nbye",
    html: str = "<p>Hi</p>",
    eight_bit: bool = False,
) -> bytes:
    headers = CampaignHeaders.build(mail_from="Acme <news@acme.test>", subject=subject)
    return build_digest(
        campaign_headers=headers,
        to_name=name,
        to_addr="someone@example.com",
        message_id_value="<x.1@acme.test>",
        date=datetime(2026, 11, 22, 9, 0, tzinfo=UTC),
        list_unsubscribe="<https://amplify.test/u/t>, <mailto:news@acme.test?subject=unsubscribe>",
        text=encode_body(text, eight_bit=eight_bit),
        html=encode_body(html, eight_bit=eight_bit),
    )


header_text = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=120)


def _collapsed(value: str) -> str:
    return " ".join(value.split())


def _decoded(raw_header: str) -> str:
    return str(make_header(decode_header(raw_header)))


class TestDigestMime:
    @settings(max_examples=150, deadline=None)
    @given(subject=header_text, name=header_text, body=st.text(max_size=400))
    def test_round_trips_through_the_stdlib_parser(
        self, subject: str, name: str, body: str
    ) -> None:
        raw = _build(subject, name, text=body, html=f"<p>{body}</p>")
        mail = message_from_bytes(raw, policy=policy.default)
        # RFC 2047 decoding of the raw headers: the modern parser inserts a space between
        # adjacent encoded-words inside a display name (a CPython quirk mail clients don't share).
        legacy = message_from_bytes(raw, policy=policy.compat32)
        assert _decoded(legacy["Subject"]) == _collapsed(subject)
        to = mail["To"].addresses[0]
        assert to.addr_spec == "someone@example.com"
        if name.isascii():
            assert to.display_name == _collapsed(name)
        else:
            assert _collapsed(name) in _decoded(legacy["To"])
        assert [p.get_content_type() for p in mail.iter_parts()] == ["text/plain", "text/html"]
        plain = mail.get_body(("plain",)).get_content().replace("\r\n", "\n")
        assert plain == body.replace("\r\n", "\n").replace("\r", "\n")
        head = raw.split(b"\r\n\r\n", 1)[0]
        assert all(len(line) <= 998 for line in head.split(b"\r\n"))
        assert max(head) < 128

    @pytest.mark.parametrize("bad", ["a\r\nBcc: x@evil.test", "a\nb", "a\rb", "a\x00b", "a\x1bb"])
    def test_header_injection_is_refused(self, bad: str) -> None:
        with pytest.raises(HeaderInjection):
            _build(bad, "n")
        with pytest.raises(HeaderInjection):
            _build("s", bad)
