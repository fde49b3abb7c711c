"""Who clicked: the client address behind trusted proxies, the referring host, the visitor key.

These read request headers that anyone can forge, so none of them raises on bad input: a click
is recorded whatever its headers say.
"""

import hashlib
import ipaddress
import re
from functools import lru_cache
from urllib.parse import urlsplit

from app.core.config import IPNetwork

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

UNKNOWN_CLIENT = "0.0.0.0"
MAX_HOST_LENGTH = 255
VISITOR_KEY_LENGTH = 32  # hex characters: 128 bits
MIN_SALT_LENGTH = 16
ADDRESS_CACHE_SIZE = 16_384
MAX_ADDRESS_TEXT = 100

_HOST_NAME = re.compile(r"[a-z0-9_-]+(?:\.[a-z0-9_-]+)*")


def _address(text: str) -> IPAddress | None:
    """The address in "1.2.3.4", "1.2.3.4:5678", "[2001:db8::1]:443" or "::ffff:1.2.3.4"."""
    # No address is this long (IPv6 with a port and a zone); the bound also keeps junk
    # headers out of the cache.
    return _parsed_address(text) if len(text) <= MAX_ADDRESS_TEXT else None


@lru_cache(maxsize=ADDRESS_CACHE_SIZE)  # the same clients and proxies come back
def _parsed_address(text: str) -> IPAddress | None:
    host = text.strip()
    if host.startswith("["):
        end = host.find("]")
        port = host[end + 1 :]
        if end < 0 or (port and not (port[0] == ":" and port[1:].isascii() and port[1:].isdigit())):
            return None
        host = host[1:end]
    elif host.count(":") == 1:  # IPv6 has at least two colons; one is a port
        host, port = host.split(":")
        if not (port.isascii() and port.isdigit()):
            return None
    host = host.split("%", 1)[0]  # a zone names an interface of ours, not part of the client
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _is_trusted(address: IPAddress, trusted: tuple[IPNetwork, ...]) -> bool:
    return any(address in network for network in trusted)


def client_ip(peer: str | None, forwarded_for: str | None, trusted: tuple[IPNetwork, ...]) -> str:
    """The client's address: the peer's, or, when the peer is a trusted proxy, the nearest
    untrusted hop of X-Forwarded-For (read from the right: entries further left are whatever the
    client chose to send). A malformed hop ends the walk at the last good address."""
    address = _address(peer) if peer is not None else None
    if address is None:
        return UNKNOWN_CLIENT
    if not forwarded_for or not _is_trusted(address, trusted):
        return str(address)
    for entry in reversed(forwarded_for.split(",")):
        hop = _address(entry)
        if hop is None:
            break
        address = hop
        if not _is_trusted(hop, trusted):
            break
    return str(address)


def referrer_host(referer: str | None) -> str | None:
    """The lower-cased host of an http(s) Referer; None if missing, malformed or another scheme."""
    if not referer:
        return None
    try:
        parts = urlsplit(referer.strip())
        host = parts.hostname  # lower-cased, without user info, port or IPv6 brackets
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not host:
        return None
    host = host.removesuffix(".")  # "example.com." is example.com
    if len(host) > MAX_HOST_LENGTH:
        return None
    if "[" not in parts.netloc:
        return host if _HOST_NAME.fullmatch(host) else None
    if "%" in host:  # a zone only means something on the referring machine
        return None
    try:
        return str(ipaddress.IPv6Address(host))  # not "[v1.fe]" and other future formats
    except ValueError:
        return None


def visitor_key(salt: bytes, ip: str, user_agent: str) -> str:
    """A keyed hash of (ip, user agent): equal for one visitor while the salt lasts (a day), and
    useless for recovering the address without the salt."""
    if len(salt) < MIN_SALT_LENGTH:
        raise ValueError(f"the visitor salt must be at least {MIN_SALT_LENGTH} random bytes")
    message = f"{ip}\n{user_agent}".encode("utf-8", "surrogatepass")
    return hashlib.blake2b(message, key=salt, digest_size=VISITOR_KEY_LENGTH // 2).hexdigest()
