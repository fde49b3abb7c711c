"""Digest MIME assembly without the EmailMessage object tree.

Building each mail with `EmailMessage` costs more than sending it (≈ 650 mails/s on this
hardware), so the campaign-wide headers are folded and encoded once by the stdlib email policy
and each mail only adds its own headers and bodies. Every value that reaches a header is either
produced here from trusted parts or encoded by `email.policy.SMTP`; CR, LF and NUL never pass.
Tests parse the produced bytes with the stdlib parser.
"""

import base64
import binascii
import re
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.headerregistry import Address
from email.utils import format_datetime, formataddr, parseaddr

from app.core import entropy

CRLF = b"\r\n"
# 75 characters per encoded-word minus the "=?utf-8?b?" and "?=" around the payload.
MAX_ENCODED_PAYLOAD = 75 - len("=?utf-8?b??=")


class HeaderInjection(ValueError):
    pass


_BREAKS = re.compile(r"[\r\n\x00]")
_CONTROLS = re.compile(r"[\x01-\x08\x0b-\x1f\x7f]")
FOLD_AT = 78


def _checked(value: str) -> str:
    if _BREAKS.search(value):
        raise HeaderInjection("header values must not contain CR, LF or NUL")
    if _CONTROLS.search(value):
        raise HeaderInjection("header values must not contain control characters")
    # Runs of white space mean nothing in a header and would not survive folding anyway.
    return " ".join(value.split())


def ascii_header(name: str, value: str, *, fold_after: str = ", ") -> bytes:
    """A header of ASCII tokens (dates, ids, URL lists), folded after `fold_after` separators
    when longer than 78 characters: what the stdlib folder does, without its per-call cost."""
    value = _checked(value)
    if not value.isascii():
        raise HeaderInjection(f"{name} must be ASCII")
    if len(name) + 2 + len(value) <= FOLD_AT:
        return f"{name}: {value}\r\n".encode("ascii")
    pieces = value.split(fold_after)
    if len(pieces) == 1:  # one long token: start it on a continuation line
        return f"{name}:\r\n {value}\r\n".encode("ascii")
    folded = f"{fold_after.rstrip()}\r\n ".join(pieces)
    return f"{name}: {folded}\r\n".encode("ascii")


def fold_header(name: str, value: str) -> bytes:
    """One header line (folded, RFC 2047-encoded where needed), ending in CRLF."""
    header = policy.SMTP.header_factory(name, _checked(value))
    folded: str = header.fold(policy=policy.SMTP)
    return folded.encode("ascii")


def _encoded_words(text: str) -> str:
    """RFC 2047 base64 encoded-words, split on character boundaries, each at most 75 chars.
    (The stdlib folder q-encodes phrases and leaves specials such as '(' bare.)"""
    max_bytes = MAX_ENCODED_PAYLOAD // 4 * 3
    words: list[str] = []
    chunk, size = "", 0
    for char in text:
        width = len(char.encode())
        if size + width > max_bytes:
            words.append(chunk)
            chunk, size = "", 0
        chunk, size = chunk + char, size + width
    words.append(chunk)
    return "\r\n ".join(f"=?utf-8?b?{base64.b64encode(w.encode()).decode()}?=" for w in words)


def address_header(name: str, display_name: str | None, addr_spec: str) -> bytes:
    phrase = _checked(display_name or "")
    address = _checked(addr_spec)
    if not address.isascii():
        raise HeaderInjection("internationalized addresses (SMTPUTF8) are not supported")
    if phrase.isascii():
        # At most 200 + 320 characters (the API's caps): no folding needed below 998.
        return f"{name}: {formataddr((phrase, address))}\r\n".encode("ascii")
    return f"{name}: {_encoded_words(phrase)} <{address}>\r\n".encode("ascii")


def envelope_address(header_value: str) -> str:
    """The bare address of a `Name <addr>` setting (for MAIL FROM)."""
    _name, addr = parseaddr(header_value)
    if not addr or "@" not in addr:
        raise ValueError(f"not an email address: {header_value!r}")
    return addr


def message_id(domain: str, *parts: int) -> str:
    local = ".".join(str(p) for p in parts) + "." + entropy.POOL.token_hex(8)
    return f"<amplify.{local}@{domain}>"


def domain_of(header_value: str) -> str:
    return Address(addr_spec=envelope_address(header_value)).domain or "localhost"


MAX_LINE_OCTETS = 998


@dataclass(frozen=True, slots=True)
class MimeBody:
    transfer_encoding: str
    data: bytes  # encoded, CRLF line ends


def encode_body(text: str, *, eight_bit: bool) -> MimeBody:
    """Raw 8bit when the server takes it and every line fits SMTP's 998 octets (nothing to
    encode); quoted-printable otherwise."""
    data = text.replace("\r\n", "\n").replace("\r", "\n").encode("utf-8")
    if eight_bit and max(map(len, data.split(b"\n"))) <= MAX_LINE_OCTETS:
        return MimeBody("8bit", data.replace(b"\n", CRLF))
    return MimeBody("quoted-printable", binascii.b2a_qp(data, istext=True).replace(b"\n", CRLF))


@dataclass(frozen=True, slots=True)
class CampaignHeaders:
    """The header lines every digest of a campaign shares, encoded once."""

    block: bytes

    @classmethod
    def build(
        cls, *, mail_from: str, subject: str, extra: dict[str, str] | None = None
    ) -> "CampaignHeaders":
        name, addr = parseaddr(_checked(mail_from))
        lines = [
            address_header("From", name, addr),
            fold_header("Subject", subject),
            b"MIME-Version: 1.0\r\n",
            b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n",
        ]
        for header, value in (extra or {}).items():
            lines.append(fold_header(header, value))
        return cls(b"".join(lines))


def build_digest(
    *,
    campaign_headers: CampaignHeaders,
    to_name: str | None,
    to_addr: str,
    message_id_value: str,
    date: datetime,
    list_unsubscribe: str,
    text: MimeBody,
    html: MimeBody,
) -> bytes:
    """A multipart/alternative digest: text/plain first, text/html last. Send with
    BODY=8BITMIME when a part is 8bit."""
    boundary = "=_amplify_" + entropy.POOL.token_hex(12)
    head = b"".join(
        (
            campaign_headers.block,
            address_header("To", to_name, to_addr),
            ascii_header("Date", format_datetime(date)),
            ascii_header("Message-ID", message_id_value),
            ascii_header("List-Unsubscribe", list_unsubscribe),
            f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n'.encode(),
        )
    )
    sep = f"--{boundary}\r\n".encode()
    parts: list[bytes] = [head, CRLF]
    for subtype, body in (("plain", text), ("html", html)):
        parts += (
            sep,
            f'Content-Type: text/{subtype}; charset="utf-8"\r\n'.encode(),
            f"Content-Transfer-Encoding: {body.transfer_encoding}\r\n\r\n".encode(),
            body.data,
            CRLF,
        )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts)
