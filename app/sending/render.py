"""Digest rendering: one sandboxed Jinja environment, and a per-campaign prototype.

Jinja and CSS inlining run once per (campaign, set of networks) with placeholder tokens where
the per-amplifier values go; each mail then only substitutes its own values into the prototype.
"""

import html
import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import css_inline
import jinja2
from jinja2.sandbox import SandboxedEnvironment

from app.models import Campaign, Message
from app.sending.mime import MAX_LINE_OCTETS, MimeBody, encode_body
from app.sending.networks import NETWORK_INFO

# Beside the `app` package (source tree or site-packages), never a same-named folder in the cwd.
TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "email_templates"


def _environment(autoescape: bool) -> SandboxedEnvironment:
    return SandboxedEnvironment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=autoescape,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


_HTML_ENV = _environment(autoescape=True)
_TEXT_ENV = _environment(autoescape=False)
_INLINER = css_inline.CSSInliner(keep_style_tags=True, load_remote_stylesheets=False)


@dataclass(frozen=True, slots=True)
class MessageContent:
    id: int
    position: int
    text: str
    url: str
    image_url: str | None


@dataclass(frozen=True, slots=True)
class CampaignContent:
    organization_name: str
    name: str
    subject: str
    intro: str
    messages: Sequence[MessageContent]

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
                    id=m.id, position=m.position, text=m.text, url=m.url, image_url=m.image_url
                )
                for m in messages
            ],
        )


@dataclass(frozen=True, slots=True)
class Recipient:
    name: str
    email: str
    # (message id, network) → tracked share link
    share_urls: Mapping[tuple[int, str], str]
    web_version_url: str
    unsubscribe_url: str


@dataclass(frozen=True, slots=True)
class RenderedDigest:
    text: str
    html: str


@dataclass
class _Placeholders:
    """Tokens that survive autoescaping and CSS inlining; a random nonce keeps user text from
    ever matching one."""

    nonce: str = field(default_factory=lambda: secrets.token_hex(6))
    keys: list[str] = field(default_factory=list)

    def token(self, key: str) -> str:
        self.keys.append(key)
        return f"AMPLIFYx{self.nonce}x{len(self.keys) - 1}x"

    def pattern(self) -> re.Pattern[str]:
        return re.compile(rf"AMPLIFYx{self.nonce}x(\d+)x")


def _host(url: str) -> str:
    host = urlsplit(url).hostname or ""
    return host.removeprefix("www.")


def digest_context(
    campaign: CampaignContent,
    networks: Sequence[str],
    *,
    name: str,
    email: str,
    share_url: Any,
    web_version_url: str,
    unsubscribe_url: str,
    preview: bool,
) -> dict[str, Any]:
    messages = [
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
        )
        for m in campaign.messages
    ]
    return {
        "organization_name": campaign.organization_name,
        "campaign": SimpleNamespace(
            name=campaign.name, subject=campaign.subject, intro=campaign.intro
        ),
        "amplifier": SimpleNamespace(name=name, email=email),
        "messages": messages,
        "web_version_url": web_version_url,
        "unsubscribe_url": unsubscribe_url,
        "preview": preview,
    }


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
    # Per line: (octets of its static text, placeholders on it); bounds a filled line's length.
    lines: tuple[tuple[int, int], ...]

    @classmethod
    def parse(cls, token: re.Pattern[str], source: str) -> "_Template":
        source = source.replace("\r\n", "\n").replace("\r", "\n")
        pieces = token.split(source)  # static, index, static, index, …, static
        statics = tuple(pieces[0::2])
        lines = tuple(
            (len(token.sub("", line).encode()), len(token.findall(line)))
            for line in source.split("\n")
        )
        wire = tuple(part.replace("\n", "\r\n").encode() for part in statics)
        return cls(statics, tuple(int(i) for i in pieces[1::2]), wire, lines)

    def fill(self, values: Sequence[str]) -> str:
        out = [self.statics[0]]
        for slot, static in zip(self.slots, self.statics[1:], strict=True):
            out.append(values[slot])
            out.append(static)
        return "".join(out)

    def fill_wire(self, values: Sequence[bytes]) -> bytes:
        out = [self.wire[0]]
        for slot, static in zip(self.slots, self.wire[1:], strict=True):
            out.append(values[slot])
            out.append(static)
        return b"".join(out)

    def longest_line(self, longest_value: int) -> int:
        return max(static + count * longest_value for static, count in self.lines)


class DigestPrototype:
    """A campaign's digest for one set of networks, rendered once with placeholders."""

    def __init__(self, campaign: CampaignContent, networks: Sequence[str]) -> None:
        placeholders = _Placeholders()
        context = digest_context(
            campaign,
            networks,
            name=placeholders.token("name"),
            email=placeholders.token("email"),
            share_url=lambda message_id, network: placeholders.token(
                f"share:{message_id}:{network}"
            ),
            web_version_url=placeholders.token("web"),
            unsubscribe_url=placeholders.token("unsubscribe"),
            preview=False,
        )
        self._keys = placeholders.keys
        token = placeholders.pattern()
        html_source = wrap_long_lines(
            _INLINER.inline(_HTML_ENV.get_template("digest.html.j2").render(context))
        )
        text_source = _TEXT_ENV.get_template("digest.txt.j2").render(context)
        # Split once into static runs and placeholder slots: a mail is one join, no scanning.
        self._html = _Template.parse(token, html_source)
        self._text = _Template.parse(token, text_source)

    def _values(self, recipient: Recipient) -> list[str]:
        values: dict[str, str] = {
            "name": recipient.name or "there",
            "email": recipient.email,
            "web": recipient.web_version_url,
            "unsubscribe": recipient.unsubscribe_url,
        }
        for (message_id, network), url in recipient.share_urls.items():
            values[f"share:{message_id}:{network}"] = url
        return [values[key] for key in self._keys]

    def render(self, recipient: Recipient) -> RenderedDigest:
        raw = self._values(recipient)
        escaped = [html.escape(value) for value in raw]
        return RenderedDigest(text=self._text.fill(raw), html=self._html.fill(escaped))

    def render_parts(self, recipient: Recipient, *, eight_bit: bool) -> tuple[MimeBody, MimeBody]:
        """The text and HTML parts ready for MIME: with 8BITMIME, joined straight from the
        pre-encoded statics when every line provably fits SMTP's limit; else encoded."""
        raw = self._values(recipient)
        escaped = [html.escape(value) for value in raw]
        return (
            self._part(self._text, raw, eight_bit=eight_bit),
            self._part(self._html, escaped, eight_bit=eight_bit),
        )

    @staticmethod
    def _part(template: _Template, values: list[str], *, eight_bit: bool) -> MimeBody:
        if eight_bit:
            wire = [v.encode() for v in values]
            if template.longest_line(max(map(len, wire), default=0)) <= MAX_LINE_OCTETS:
                return MimeBody("8bit", template.fill_wire(wire))
        return encode_body(template.fill(values), eight_bit=eight_bit)


def render_digest(
    campaign: CampaignContent, networks: Sequence[str], recipient: Recipient, *, preview: bool
) -> RenderedDigest:
    """Render one digest directly (previews and web versions; mail uses a prototype)."""
    context = digest_context(
        campaign,
        networks,
        name=recipient.name,
        email=recipient.email,
        share_url=lambda message_id, network: recipient.share_urls[(message_id, network)],
        web_version_url=recipient.web_version_url,
        unsubscribe_url=recipient.unsubscribe_url,
        preview=preview,
    )
    return RenderedDigest(
        text=_TEXT_ENV.get_template("digest.txt.j2").render(context),
        html=_INLINER.inline(_HTML_ENV.get_template("digest.html.j2").render(context)),
    )
