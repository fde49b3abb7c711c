"""Digest rendering: one sandboxed Jinja environment, and a per-campaign prototype.

Jinja and CSS inlining run once per (campaign, language, set of networks, kind of impact block)
with placeholder tokens where the per-amplifier values go; each mail then only substitutes its
own values into the prototype.
"""

import html
import re
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast
from urllib.parse import urlsplit

import css_inline
import jinja2
from jinja2.sandbox import SandboxedEnvironment

from app import i18n
from app.models import Campaign, Message
from app.sending.mime import MAX_LINE_OCTETS, MimeBody, encode_body
from app.sending.networks import NETWORK_INFO
from app.stats.impact import Score

# Beside the `app` package (source tree or site-packages), never a same-named folder in the cwd.
TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "email_templates"


def _environment(autoescape: bool) -> SandboxedEnvironment:
    return SandboxedEnvironment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=autoescape,
        extensions=["jinja2.ext.i18n"],
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


_HTML_ENV = _environment(autoescape=True)
_TEXT_ENV = _environment(autoescape=False)
i18n.install(_HTML_ENV)
i18n.install(_TEXT_ENV)
_INLINER = css_inline.CSSInliner(keep_style_tags=True, load_remote_stylesheets=False)


@dataclass(frozen=True, slots=True)
class MessageContent:
    id: int
    position: int
    text: str
    url: str
    image_url: str | None
    # locale tag → {"text", "network_text"?}, as stored
    translations: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    variants: Sequence[str] = ()  # the texts of variants 1, 2 …

    def localized(self, tag: str | None, variant: int = 0) -> "MessageContent":
        """The message as an amplifier of `tag` who got `variant` reads it: a translation for
        the language wins over the variant (the base language's wording)."""
        chosen = i18n.best_match(tag, self.translations)
        if chosen:
            text = chosen.get("text") or self.text
        elif 0 < variant <= len(self.variants):
            text = self.variants[variant - 1]
        else:
            return self
        return MessageContent(
            id=self.id, position=self.position, text=text, url=self.url, image_url=self.image_url
        )


@dataclass(frozen=True, slots=True)
class CampaignContent:
    organization_name: str
    name: str
    subject: str
    intro: str
    messages: Sequence[MessageContent]
    # locale tag → {"subject"?, "intro"?}, as stored
    translations: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    @classmethod
    def of(
        cls, campaign: Campaign, messages: Iterable[Message], organization_name: str
    ) -> "CampaignContent":
        """What a digest shows of the campaign and its messages (in the order given)."""
        return cls(
            organization_name=organization_name,
            name=campaign.name,
            subject=campaign.subject,
            intro=campaign.intro or "",
            messages=[
                MessageContent(
                    id=m.id,
                    position=m.position,
                    text=m.text,
                    url=m.url,
                    image_url=m.image_url,
                    translations=m.translations or {},
                    variants=[variant["text"] for variant in m.variants or []],
                )
                for m in messages
            ],
            translations=campaign.translations or {},
        )

    def localized(
        self, tag: str | None, variants: Mapping[int, int] | None = None
    ) -> "CampaignContent":
        """The content in the best translation for `tag` (each text falls back on its own),
        each message in its variant from `variants` (message id → variant; absent: 0)."""
        chosen = i18n.best_match(tag, self.translations) or {}
        variants = variants or {}
        return CampaignContent(
            organization_name=self.organization_name,
            name=self.name,
            subject=chosen.get("subject") or self.subject,
            intro=chosen.get("intro") or self.intro,
            messages=[m.localized(tag, variants.get(m.id, 0)) for m in self.messages],
        )

    def translation_key(self, tag: str | None) -> tuple[str | None, ...]:
        """Which translation each text of `tag` uses: amplifiers with equal keys read the same."""
        keys = [_matched_key(tag, self.translations)]
        keys += [_matched_key(tag, m.translations) for m in self.messages]
        return tuple(keys)


def _matched_key(tag: str | None, available: Mapping[str, Any]) -> str | None:
    return i18n.best_match(tag, {key: key for key in available})


@dataclass(frozen=True, slots=True)
class Recipient:
    name: str
    email: str
    # (message id, network) → tracked share link
    share_urls: Mapping[tuple[int, str], str]
    web_version_url: str
    unsubscribe_url: str
    locale: str = i18n.DEFAULT_LOCALE
    impact_url: str = ""
    # None: nothing earned yet (the encouraging line); ignored when the block is off
    impact: Score | None = None
    show_impact: bool = False
    preferences_url: str = ""
    # A combined digest's sections: campaign id → the web version of that campaign's delivery
    section_web_urls: Mapping[int, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Section:
    """One campaign of a combined digest, its content already localized."""

    campaign_id: int
    content: CampaignContent
    networks: Sequence[str]


def combined_subject(organization_name: str, posts: int, locale: str) -> str:
    """The subject of a combined digest: the organization and how many posts it carries."""
    catalog = i18n.translations(i18n.chrome_locale(locale))
    text = catalog.ungettext(
        "%(organization)s: %(count)s post to share",
        "%(organization)s: %(count)s posts to share",
        posts,
    )
    return text % {"organization": organization_name, "count": i18n.format_number(posts, locale)}


@dataclass(frozen=True, slots=True)
class RenderedDigest:
    text: str
    html: str


@dataclass
class _Placeholders:
    """Tokens that survive autoescaping and CSS inlining; a random nonce keeps user text from
    ever matching one."""

    nonce: str = field(default_factory=lambda: secrets.token_hex(6))
    # A value's name; a share link's is its (message id, network), as in `share_urls`.
    keys: list[str | tuple[int, str]] = field(default_factory=list)

    def token(self, key: str | tuple[int, str]) -> str:
        self.keys.append(key)
        return f"AMPLIFYx{self.nonce}x{len(self.keys) - 1}x"

    def pattern(self) -> re.Pattern[str]:
        return re.compile(rf"AMPLIFYx{self.nonce}x(\d+)x")


def _host(url: str) -> str:
    host = urlsplit(url).hostname or ""
    return host.removeprefix("www.")


def greeting(name: str, locale: str | None = None) -> str:
    """In `locale` (default: the current language); the name is filled in as it is."""
    catalog = i18n.translations(locale or i18n.current_locale())
    if not name:
        return catalog.ugettext("Hi there,")
    return catalog.ugettext("Hi %(name)s,") % {"name": name}


def digest_context(
    campaign: CampaignContent,
    networks: Sequence[str],
    *,
    greeting: str,
    email: str,
    share_url: Any,
    web_version_url: str,
    unsubscribe_url: str,
    preview: bool,
    impact: SimpleNamespace | None = None,
    impact_url: str = "",
    preferences_url: str = "",
    sections: Sequence[Section] = (),
    section_web_url: Callable[[int], str] | None = None,
) -> dict[str, Any]:
    """The template context; call inside `i18n.translating` with the campaign already
    localized. A combined digest passes its `sections` (and `campaign` carries only its
    subject): their messages follow one another, the first of each with the section's heading."""
    if not sections:
        messages = _message_views(campaign, networks, share_url)
    else:
        messages = []
        for section in sections:
            views = _message_views(section.content, section.networks, share_url)
            views[0].section = SimpleNamespace(
                subject=section.content.subject,
                intro=section.content.intro,
                web_version_url=section_web_url(section.campaign_id) if section_web_url else "",
            )
            messages += views
    return {
        "organization_name": campaign.organization_name,
        "campaign": SimpleNamespace(
            name=campaign.name, subject=campaign.subject, intro=campaign.intro
        ),
        "greeting": greeting,
        "amplifier": SimpleNamespace(email=email),
        "messages": messages,
        "web_version_url": web_version_url,
        "unsubscribe_url": unsubscribe_url,
        "impact": impact,
        "impact_url": impact_url,
        "preferences_url": preferences_url,
        "preview": preview,
    }


def _message_views(
    campaign: CampaignContent, networks: Sequence[str], share_url: Any
) -> list[SimpleNamespace]:
    return [
        SimpleNamespace(
            position=m.position,
            text=m.text,
            url=m.url,
            host=_host(m.url),
            image_url=m.image_url,
            shares=[
                SimpleNamespace(
                    network=n,
                    label=NETWORK_INFO[n].label,
                    color=NETWORK_INFO[n].color,
                    url=share_url(m.id, n),
                )
                for n in networks
            ],
            section=None,
        )
        for m in campaign.messages
    ]


def impact_context(recipient: Recipient) -> SimpleNamespace | None:
    """The impact block's values, formatted for the current language."""
    if not recipient.show_impact:
        return None
    numbers = recipient.impact
    if numbers is None:
        return SimpleNamespace(new=True, url=recipient.impact_url)
    fmt = i18n.format_number
    return SimpleNamespace(
        new=False,
        url=recipient.impact_url,
        shares=fmt(numbers.shares),
        visits=fmt(numbers.visits),
        points=fmt(numbers.points),
        rank=fmt(numbers.rank),
        total=fmt(numbers.total),
    )


_IMPACT_FIGURES = ("shares", "visits", "points", "rank", "total")
_IMPACT_KEYS = tuple((figure, f"impact:{figure}") for figure in _IMPACT_FIGURES)


def impact_kind(recipient: Recipient) -> str:
    if not recipient.show_impact:
        return "off"
    return "new" if recipient.impact is None else "scored"


WRAP_AT = 500


def wrap_long_lines(html_source: str, limit: int = WRAP_AT) -> str:
    """Break lines longer than `limit` at a space (CSS inlining makes very long lines; SMTP
    allows 998 octets). Outside <pre> a space and a line break are the same white space in HTML;
    the margin leaves room for the values filled in later."""
    lines = []
    for line in html_source.split("\n"):
        while len(line) > limit:
            cut = line.rfind(" ", 0, limit)
            if cut <= 0:
                break
            lines.append(line[:cut])
            line = line[cut + 1 :]
        lines.append(line)
    return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class _Template:
    statics: tuple[str, ...]  # one more than slots
    slots: tuple[int, ...]  # placeholder index between statics[i] and statics[i + 1]
    # The same statics as UTF-8 with CRLF line ends, ready for an 8bit MIME part.
    wire: tuple[bytes, ...]
    # The longest value (in octets) that keeps every filled line within SMTP's limit; -1 when
    # a line without placeholders is already too long.
    max_value_octets: int

    @classmethod
    def parse(cls, token: re.Pattern[str], source: str) -> "_Template":
        source = source.replace("\r\n", "\n").replace("\r", "\n")
        pieces = token.split(source)  # static, index, static, index, …, static
        statics = tuple(pieces[0::2])
        every_line = [
            (len(token.sub("", line).encode()), len(token.findall(line)))
            for line in source.split("\n")
        ]
        longest_static = max((size for size, count in every_line if not count), default=0)
        max_value_octets = min(
            [(MAX_LINE_OCTETS - size) // count for size, count in every_line if count],
            default=MAX_LINE_OCTETS,
        )
        if longest_static > MAX_LINE_OCTETS:
            max_value_octets = -1
        wire = tuple(part.replace("\n", "\r\n").encode() for part in statics)
        slots = tuple(int(i) for i in pieces[1::2])
        return cls(statics, slots, wire, max_value_octets)

    def fill(self, values: Sequence[str]) -> str:
        filled = zip(map(values.__getitem__, self.slots), self.statics[1:], strict=True)
        return "".join(chain((self.statics[0],), chain.from_iterable(filled)))

    def fill_wire(self, values: Sequence[bytes]) -> bytes:
        filled = zip(map(values.__getitem__, self.slots), self.wire[1:], strict=True)
        return b"".join(chain((self.wire[0],), chain.from_iterable(filled)))


class DigestPrototype:
    """A campaign's digest for one language, set of networks and kind of impact block,
    rendered once with placeholders. `campaign` is already localized."""

    def __init__(
        self,
        campaign: CampaignContent,
        networks: Sequence[str],
        *,
        locale: str = i18n.DEFAULT_LOCALE,
        impact: str = "off",
        sections: Sequence[Section] = (),
    ) -> None:
        placeholders = _Placeholders()
        self.locale = i18n.chrome_locale(locale)
        impact_values = None
        if impact != "off":
            numbers = (
                {key: placeholders.token(f"impact:{key}") for key in _IMPACT_FIGURES}
                if impact == "scored"
                else {}
            )
            impact_values = SimpleNamespace(
                new=impact == "new", url=placeholders.token("impact_url"), **numbers
            )
        with i18n.translating(self.locale):
            context = digest_context(
                campaign,
                networks,
                greeting=placeholders.token("greeting"),
                email=placeholders.token("email"),
                share_url=lambda message_id, network: placeholders.token((message_id, network)),
                # A combined digest has a web version per section and none of its own.
                web_version_url="" if sections else placeholders.token("web"),
                unsubscribe_url=placeholders.token("unsubscribe"),
                preview=False,
                impact=impact_values,
                impact_url=placeholders.token("impact_url"),
                preferences_url=placeholders.token("preferences"),
                sections=sections,
                section_web_url=lambda campaign_id: placeholders.token(f"web:{campaign_id}"),
            )
            html_source = wrap_long_lines(
                _INLINER.inline(_HTML_ENV.get_template("digest.html.j2").render(context))
            )
            text_source = _TEXT_ENV.get_template("digest.txt.j2").render(context)
        self._keys = placeholders.keys
        token = placeholders.pattern()
        # Split once into static runs and placeholder slots: a mail is one join, no scanning.
        self._html = _Template.parse(token, html_source)
        self._text = _Template.parse(token, text_source)

    def _values(self, recipient: Recipient) -> list[str]:
        values: dict[str | tuple[int, str], str] = {
            "greeting": greeting(recipient.name, self.locale),
            "email": recipient.email,
            "web": recipient.web_version_url,
            "unsubscribe": recipient.unsubscribe_url,
            "impact_url": recipient.impact_url,
            "preferences": recipient.preferences_url,
        }
        for campaign_id, url in recipient.section_web_urls.items():
            values[f"web:{campaign_id}"] = url
        score = recipient.impact
        if recipient.show_impact and score is not None:
            for figure, key in _IMPACT_KEYS:
                values[key] = i18n.format_number(getattr(score, figure), self.locale)
        values.update(cast(Mapping[str | tuple[int, str], str], recipient.share_urls))
        return [values[key] for key in self._keys]

    def render(self, recipient: Recipient) -> RenderedDigest:
        raw = self._values(recipient)
        escaped = _escape_all(raw)
        return RenderedDigest(text=self._text.fill(raw), html=self._html.fill(escaped))

    def render_parts(self, recipient: Recipient, *, eight_bit: bool) -> tuple[MimeBody, MimeBody]:
        """The text and HTML parts ready for MIME: with 8BITMIME, joined straight from the
        pre-encoded statics when every line provably fits SMTP's limit; else encoded."""
        raw = self._values(recipient)
        escaped = _escape_all(raw)
        return (
            self._part(self._text, raw, eight_bit=eight_bit),
            self._part(self._html, escaped, eight_bit=eight_bit),
        )

    @staticmethod
    def _part(template: _Template, values: list[str], *, eight_bit: bool) -> MimeBody:
        if eight_bit:
            wire = [v.encode() for v in values]
            if max(map(len, wire), default=0) <= template.max_value_octets:
                return MimeBody("8bit", template.fill_wire(wire))
        return encode_body(template.fill(values), eight_bit=eight_bit)


_JOINER = "\x00"


def _escape_all(values: list[str]) -> list[str]:
    """`html.escape` of every value, in one pass over their join (a digest has dozens)."""
    escaped = html.escape(_JOINER.join(values)).split(_JOINER)
    if len(escaped) != len(values):  # a value holds the joiner itself
        return [html.escape(value) for value in values]
    return escaped


def render_digest(
    campaign: CampaignContent,
    networks: Sequence[str],
    recipient: Recipient,
    *,
    preview: bool,
    variants: Mapping[int, int] | None = None,
) -> RenderedDigest:
    """Render one digest directly (previews and web versions; mail uses a prototype)."""
    localized = campaign.localized(recipient.locale, variants)
    with i18n.translating(recipient.locale):
        context = digest_context(
            localized,
            networks,
            greeting=greeting(recipient.name),
            email=recipient.email,
            share_url=lambda message_id, network: recipient.share_urls[(message_id, network)],
            web_version_url=recipient.web_version_url,
            unsubscribe_url=recipient.unsubscribe_url,
            preview=preview,
            impact=impact_context(recipient),
            impact_url=recipient.impact_url,
            preferences_url=recipient.preferences_url,
        )
        return RenderedDigest(
            text=_TEXT_ENV.get_template("digest.txt.j2").render(context),
            html=_INLINER.inline(_HTML_ENV.get_template("digest.html.j2").render(context)),
        )
