from html import escape

import pytest

from app.sending.render import (
    CampaignContent,
    DigestPrototype,
    MessageContent,
    Recipient,
    impact_kind,
    render_digest,
)
from app.stats.impact import Score

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


def _recipient(
    name: str, *, locale: str = "en", impact: Score | None = None, show_impact: bool = False
) -> Recipient:
    return Recipient(
        name=name,
        email="someone@example.com",
        share_urls={
            (10 + i, n): f"https://amplify.test/r/CODE{i}{n}" for i in range(3) for n in NETWORKS
        },
        web_version_url="https://amplify.test/a/1.sig",
        unsubscribe_url="https://amplify.test/u/2.sig",
        impact_url="https://amplify.test/m/3.sig",
        preferences_url="https://amplify.test/p/4.sig",
        locale=locale,
        impact=impact,
        show_impact=show_impact,
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

    def test_values_are_escaped_one_by_one_whatever_they_hold(self) -> None:
        prototype = DigestPrototype(CAMPAIGN, NETWORKS)
        for name in ("<b>'Ada'</b> & \"Co\"", "A\x00<b>"):  # the NUL defeats the joined pass
            html = prototype.render(_recipient(name)).html
            assert f"Hi {escape(name)}," in html
            assert escape("https://amplify.test/r/CODE1x") in html

    def test_wire_parts_decode_to_the_rendered_text(self) -> None:
        prototype = DigestPrototype(CAMPAIGN, NETWORKS)
        recipient = _recipient("Jürgen & <Co>")
        rendered = prototype.render(recipient)
        text, html = prototype.render_parts(recipient, eight_bit=True)
        assert (text.transfer_encoding, html.transfer_encoding) == ("8bit", "8bit")
        assert text.data.decode().replace("\r\n", "\n") == rendered.text
        assert html.data.decode().replace("\r\n", "\n") == rendered.html
        assert max(len(line) for line in html.data.split(b"\r\n")) <= 998

    def test_no_line_of_the_chrome_starts_with_a_dot(self) -> None:
        """SMTP doubles a line's leading dot; with none in the chrome, dot-stuffing a digest is
        a scan that finds nothing to copy (only a text of the campaign's own may need it)."""
        prototype = DigestPrototype(CAMPAIGN, NETWORKS, impact="scored")
        recipient = _recipient("Ada", impact=Score(1, 2, 3, 4, 5), show_impact=True)
        for part in prototype.render_parts(recipient, eight_bit=True):
            assert b"\r\n." not in part.data and not part.data.startswith(b".")

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

    @pytest.mark.parametrize("locale", ["en", "de", "pt-BR", "ja", "pl", "xx"])
    @pytest.mark.parametrize(
        ("impact", "show"),
        [(None, False), (None, True), (Score(3, 1234, 1250, 2, 1500), True)],
    )
    def test_prototype_equals_direct_rendering_in_every_language_and_impact(
        self, locale: str, impact: Score | None, show: bool
    ) -> None:
        recipient = _recipient("Åse", locale=locale, impact=impact, show_impact=show)
        prototype = DigestPrototype(
            CAMPAIGN.localized(locale), NETWORKS, locale=locale, impact=impact_kind(recipient)
        )
        fast = prototype.render(recipient)
        direct = render_digest(CAMPAIGN, NETWORKS, recipient, preview=False)
        assert fast.text == direct.text
        # CSS inlining writes a no-break space (Polish digit groups) as &nbsp;: the same text.
        same = [h.replace("&nbsp;", "\u00a0").split() for h in (fast.html, direct.html)]
        assert same[0] == same[1]


class TestLanguages:
    def test_chrome_follows_the_amplifier_language_with_numbers_formatted(self) -> None:
        impact = Score(shares=3, visits=1234, points=1250, rank=2, total=1500)
        german = render_digest(
            CAMPAIGN,
            NETWORKS,
            _recipient("Jörg", locale="de-AT", impact=impact, show_impact=True),
            preview=False,
        )
        assert "Hallo Jörg," in german.text
        assert "Hier sind 3 Beiträge zum Teilen." in german.text
        assert "Auf LinkedIn teilen" in german.text
        assert "Erzielte Besuche: 1.234" in german.text
        assert "Platz 2 von 1.500" in german.text
        assert '<html lang="de"' in german.html

    def test_plural_forms_follow_the_language(self) -> None:
        def hint(locale: str, count: int) -> str:
            content = CampaignContent(
                organization_name="Acme",
                name="n",
                subject="s",
                intro="",
                messages=CAMPAIGN.messages[:1] * count,
            )
            return render_digest(content, (), _recipient("A", locale=locale), preview=False).text

        assert "Oto post gotowy do udostępnienia." in hint("pl", 1)
        assert "Oto 2 posty gotowe do udostępnienia." in hint("pl", 2)
        assert "Oto 5 postów gotowych do udostępnienia." in hint("pl", 5)
        assert "Here is a post ready to share." in hint("en", 1)
        assert "Here are 2 posts ready to share." in hint("en", 2)
        assert "シェアできる投稿が1件あります。" in hint("ja", 1)

    def test_new_amplifier_gets_an_encouraging_line_instead_of_zeros(self) -> None:
        text = render_digest(
            CAMPAIGN, NETWORKS, _recipient("A", locale="fr", show_impact=True), preview=False
        ).text
        assert "Votre premier partage est à un clic." in text
        assert "Partages:" not in text

    def test_content_translation_best_match_falls_back_by_language_then_to_base(self) -> None:
        content = CampaignContent(
            organization_name="Acme",
            name="n",
            subject="Base subject",
            intro="Base intro",
            messages=[
                MessageContent(
                    id=1,
                    position=0,
                    text="Base text",
                    url="https://e.com",
                    image_url=None,
                    translations={"pt": {"text": "Texto"}, "da": {"text": "Tekst"}},
                )
            ],
            translations={"pt-BR": {"subject": "Assunto BR"}, "pt": {"intro": "Intro PT"}},
        )
        brazil = content.localized("pt-BR")
        assert (brazil.subject, brazil.intro, brazil.messages[0].text) == (
            "Assunto BR",
            "Base intro",
            "Texto",
        )
        portugal = content.localized("pt-PT")
        assert (portugal.subject, portugal.intro) == ("Base subject", "Intro PT")
        assert content.localized("ja").messages[0].text == "Base text"
        assert content.translation_key("pt-br") == ("pt-BR", "pt")
