"""Where a webhook may be posted: http(s) URLs whose addresses are public (SSRF rules).

A URL is checked when an endpoint is saved (its form, and its host when that is an address or
a local name) and again before every post against the addresses its host resolves to then: a
name that pointed somewhere public at creation may point inside the network later (DNS
rebinding). The post then goes to the address that was checked, not to a fresh lookup.
"""

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_URL_LENGTH = 2048
LOCAL_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")
LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".home.arpa")


class TargetRefused(ValueError):
    """The URL is malformed or points at an address webhooks may not reach."""


@dataclass(frozen=True, slots=True)
class Target:
    scheme: str
    host: str  # as written (lower-cased), for the Host header and TLS
    port: int
    url: str


def is_forbidden_address(address: IpAddress) -> bool:
    """Private, loopback, link-local, multicast, reserved, unspecified or otherwise not
    globally routable (an IPv4 address inside IPv6 is judged as IPv4)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global
    )


def _literal_address(host: str) -> IpAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def parse_target(url: str, *, allow_private: bool) -> Target:
    """The URL's parts, or `TargetRefused` saying what is wrong with it. No DNS lookup."""
    if len(url) > MAX_URL_LENGTH:
        raise TargetRefused(f"The URL is longer than {MAX_URL_LENGTH} characters.")
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        raise TargetRefused("The URL may not contain whitespace or control characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise TargetRefused(f"The URL cannot be parsed: {exc}.") from None
    if parts.scheme not in ("http", "https"):
        raise TargetRefused("The URL must start with http:// or https://.")
    host = (parts.hostname or "").lower()
    if not host:
        raise TargetRefused("The URL has no host.")
    if parts.username is not None or parts.password is not None:
        raise TargetRefused("The URL may not carry credentials.")
    if not allow_private:
        _refuse_local_host(host)
    default_port = 443 if parts.scheme == "https" else 80
    return Target(scheme=parts.scheme, host=host, port=port or default_port, url=url)


def _refuse_local_host(host: str) -> None:
    address = _literal_address(host)
    if address is not None and is_forbidden_address(address):
        raise TargetRefused(
            f"{host} is a private, loopback, link-local or reserved address: webhooks are "
            "posted to public addresses only (AMPLIFY_WEBHOOK_ALLOW_PRIVATE=true lifts this)."
        )
    single_label = "." not in host and address is None
    if host in LOCAL_NAMES or host.endswith(LOCAL_SUFFIXES) or single_label:
        raise TargetRefused(
            f"{host} names a machine on the local network: webhooks are posted to public "
            "hosts only (AMPLIFY_WEBHOOK_ALLOW_PRIVATE=true lifts this)."
        )


async def resolve_target(target: Target, *, allow_private: bool) -> IpAddress:
    """The address to connect to: the host's first address if every address it resolves to
    is allowed (one bad address refuses the host: the resolver could answer either later)."""
    literal = _literal_address(target.host)
    if literal is not None:
        addresses = [literal]
    else:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(
                target.host, target.port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
            )
        except OSError as exc:
            raise TargetRefused(f"{target.host} does not resolve: {exc}") from None
        addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    if not addresses:
        raise TargetRefused(f"{target.host} does not resolve.")
    if not allow_private:
        for address in addresses:
            if is_forbidden_address(address):
                raise TargetRefused(
                    f"{target.host} resolves to {address}, a private, loopback, link-local or "
                    "reserved address."
                )
    return addresses[0]
