from app.sending.render import (
    CampaignContent,
    DigestPrototype,
    MessageContent,
    Recipient,
    render_digest,
)

NETWORKS = ("linkedin", "x", "email")
CAMPAIGN = CampaignContent(
    organization_name="Acme & Co",
    name="Launch",
    subject="Help us <launch>",
    intro="First paragraph.\n\nSecond one with ünïcode.",
    messages=[
        MessageContent(
            id=10 + i,
            position=i,
            text=f"Message {i} & <b>",
            url=f"https://e.com/{i}",
            image_url=None,
        )
        for i in range(3)
    ],
)


def _recipient(name: str) -> Recipient:
    return Recipient(
        name=name,
        email="someone@example.com",
        share_urls={
            (10 + i, n): f"https://amplify.test/r/CODE{i}{n}" for i in range(3) for n in NETWORKS
        },
        web_version_url="https://amplify.test/a/1.sig",
        unsubscribe_url="https://amplify.test/u/2.sig",
    )


class TestDigestPrototype:
    def test_prototype_equals_direct_rendering(self) -> None:
        prototype = DigestPrototype(CAMPAIGN, NETWORKS)
        for name in ("Ada", "", "<script>alert(1)</script> & Jürgen", "AMPLIFYx00x1x"):
            fast = prototype.render(_recipient(name))
            direct = render_digest(CAMPAIGN, NETWORKS, _recipient(name), preview=False)
            assert fast.text == direct.text
            # The prototype wraps long lines at spaces; otherwise it is the same document.
            assert fast.html.split() == direct.html.split()
            assert "<script>" not in fast.html

    def test_wire_parts_decode_to_the_rendered_text(self) -> None:
        prototype = DigestPrototype(CAMPAIGN, NETWORKS)
        recipient = _recipient("Jürgen & <Co>")
        rendered = prototype.render(recipient)
        text, html = prototype.render_parts(recipient, eight_bit=True)
        assert (text.transfer_encoding, html.transfer_encoding) == ("8bit", "8bit")
        assert text.data.decode().replace("\r\n", "\n") == rendered.text
        assert html.data.decode().replace("\r\n", "\n") == rendered.html
        assert max(len(line) for line in html.data.split(b"\r\n")) <= 998

    def test_without_8bitmime_parts_are_quoted_printable(self) -> None:
        prototype = DigestPrototype(CAMPAIGN, NETWORKS)
        text, html = prototype.render_parts(_recipient("Ada"), eight_bit=False)
        assert (text.transfer_encoding, html.transfer_encoding) == (
            "quoted-printable",
            "quoted-printable",
        )

    def test_overlong_values_fall_back_to_quoted_printable(self) -> None:
        prototype = DigestPrototype(CAMPAIGN, NETWORKS)
        text, html = prototype.render_parts(_recipient("&" * 200), eight_bit=True)
        assert (
            "quoted-printable" in (text.transfer_encoding, html.transfer_encoding)
            or max(len(line) for line in html.data.split(b"\r\n")) <= 998
        )
