import hashlib
import ipaddress
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.core.config import parse_trusted_proxies
from app.tracking.clients import client_ip, referrer_host, visitor_key

TRUSTED = parse_trusted_proxies("127.0.0.1, 10.0.0.0/8, ::1")
SALT = bytes(range(32))
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)


class TestClientIp:
    def test_no_trusted_proxies_means_the_peer(self) -> None:
        assert client_ip("203.0.113.7", "198.51.100.1", ()) == "203.0.113.7"
        assert client_ip("127.0.0.1", "198.51.100.1", ()) == "127.0.0.1"

    def test_forwarded_for_from_an_untrusted_peer_is_ignored(self) -> None:
        assert client_ip("203.0.113.7", "198.51.100.1, 10.0.0.1", TRUSTED) == "203.0.113.7"

    def test_trusted_peer_forwards_the_client(self) -> None:
        assert client_ip("127.0.0.1", "198.51.100.1", TRUSTED) == "198.51.100.1"

    def test_chain_of_trusted_proxies_is_skipped(self) -> None:
        forwarded = "198.51.100.1, 10.0.0.5, 10.1.2.3"
        assert client_ip("10.0.0.2", forwarded, TRUSTED) == "198.51.100.1"

    def test_spoofed_entries_left_of_the_client_are_ignored(self) -> None:
        # The client sent "X-Forwarded-For: 1.1.1.1, 10.0.0.9"; the proxy appended its address.
        forwarded = "1.1.1.1, 10.0.0.9, 203.0.113.9"
        assert client_ip("127.0.0.1", forwarded, TRUSTED) == "203.0.113.9"

    def test_all_hops_trusted_gives_the_leftmost(self) -> None:
        assert client_ip("127.0.0.1", "10.0.0.9, 10.0.0.5", TRUSTED) == "10.0.0.9"

    @pytest.mark.parametrize("forwarded", [None, "", "   "])
    def test_trusted_peer_without_forwarded_for_is_the_client(self, forwarded: str | None) -> None:
        assert client_ip("127.0.0.1", forwarded, TRUSTED) == "127.0.0.1"

    @pytest.mark.parametrize(
        ("forwarded", "expected"),
        [
            ("203.0.113.9, garbage, 10.0.0.5", "10.0.0.5"),
            ("203.0.113.9, unknown", "127.0.0.1"),
            ("203.0.113.9,,", "127.0.0.1"),
            ("203.0.113.9, 10.0.0.5:http", "127.0.0.1"),
            ("203.0.113.9, 1.2.3.4.5", "127.0.0.1"),
            ("203.0.113.9, [2001:db8::1", "127.0.0.1"),
            ("203.0.113.9, 010.0.0.1", "127.0.0.1"),  # leading zeros: ambiguous, refused
        ],
    )
    def test_malformed_entry_ends_the_walk_at_the_last_good_address(
        self, forwarded: str, expected: str
    ) -> None:
        assert client_ip("127.0.0.1", forwarded, TRUSTED) == expected

    def test_ipv6_is_compressed(self) -> None:
        full = "2001:0db8:0000:0000:0000:0000:0000:0001"
        assert client_ip(full, None, TRUSTED) == "2001:db8::1"
        assert client_ip("::1", f"{full}, ::1", TRUSTED) == "2001:db8::1"
        assert client_ip("2001:DB8::A", None, ()) == "2001:db8::a"

    def test_ipv4_mapped_addresses_are_unwrapped(self) -> None:
        assert client_ip("::ffff:203.0.113.9", None, TRUSTED) == "203.0.113.9"
        # a mapped loopback peer is the trusted 127.0.0.1
        assert client_ip("::ffff:127.0.0.1", "::ffff:198.51.100.1", TRUSTED) == "198.51.100.1"

    @pytest.mark.parametrize(
        ("forwarded", "expected"),
        [
            ("203.0.113.9:5678", "203.0.113.9"),
            ("[2001:db8::1]:443", "2001:db8::1"),
            ("[2001:db8::1]", "2001:db8::1"),
            ("[::ffff:203.0.113.9]:80", "203.0.113.9"),
            ("fe80::1%eth0", "fe80::1"),
        ],
    )
    def test_ports_brackets_and_zones_are_stripped(self, forwarded: str, expected: str) -> None:
        assert client_ip("127.0.0.1", forwarded, TRUSTED) == expected

    @pytest.mark.parametrize("peer", [None, "", "testclient", "unix:/run/amplify.sock", "1.2.3"])
    def test_missing_or_malformed_peer_is_unknown(self, peer: str | None) -> None:
        assert client_ip(peer, "198.51.100.1", TRUSTED) == "0.0.0.0"


class TestReferrerHost:
    @pytest.mark.parametrize(
        ("referer", "expected"),
        [
            ("https://www.LinkedIn.com/feed/", "www.linkedin.com"),
            ("http://user:secret@Example.COM:8080/x?y=1#z", "example.com"),
            ("https://example.com./", "example.com"),
            ("  https://t.co/abc  ", "t.co"),
            ("https://xn--bcher-kva.de/", "xn--bcher-kva.de"),
            ("https://my_host.example.org", "my_host.example.org"),
            ("http://192.0.2.1/path", "192.0.2.1"),
            ("https://[2001:DB8:0::1]:443/", "2001:db8::1"),
        ],
    )
    def test_host_of_http_referers(self, referer: str, expected: str) -> None:
        assert referrer_host(referer) == expected

    @pytest.mark.parametrize(
        "referer",
        [
            None,
            "",
            "android-app://com.google.android.gm/",
            "ftp://example.com/file",
            "javascript:alert(1)",
            "https://",
            "https:///path",
            "not a url",
            "//example.com/path",
            "https://[::1",
            "https://[v1.fe]/",
            "https://exa mple.com/",
            "https://bücher.de/",
            "https://example..com/",
            "https://" + "a" * 300 + ".com/",
        ],
    )
    def test_missing_invalid_or_other_schemes(self, referer: str | None) -> None:
        assert referrer_host(referer) is None

    def test_host_up_to_255_characters(self) -> None:
        host = ".".join(["a" * 63] * 4)  # 255 characters
        assert referrer_host(f"https://{host}/") == host


class TestVisitorKey:
    def test_is_keyed_blake2b_of_ip_and_agent(self) -> None:
        message = f"203.0.113.9\n{CHROME}".encode()
        expected = hashlib.blake2b(message, key=SALT, digest_size=16).hexdigest()
        assert visitor_key(SALT, "203.0.113.9", CHROME) == expected

    def test_is_stable_for_equal_inputs(self) -> None:
        assert visitor_key(SALT, "203.0.113.9", CHROME) == visitor_key(SALT, "203.0.113.9", CHROME)

    def test_differs_by_salt_ip_and_agent(self) -> None:
        keys = {
            visitor_key(SALT, "203.0.113.9", CHROME),
            visitor_key(bytes(32), "203.0.113.9", CHROME),
            visitor_key(SALT, "203.0.113.10", CHROME),
            visitor_key(SALT, "203.0.113.9", CHROME + " Edg/131.0.0.0"),
            visitor_key(SALT, "203.0.113.9", ""),
        }
        assert len(keys) == 5

    @pytest.mark.parametrize("ip", ["203.0.113.9", "2001:db8::1", "0.0.0.0", "1.1.1.1", "::1"])
    def test_never_contains_the_ip(self, ip: str) -> None:
        key = visitor_key(SALT, ip, CHROME)
        assert re.fullmatch(r"[0-9a-f]{32}", key)
        assert ip not in key

    def test_odd_agents_are_hashed(self) -> None:
        assert re.fullmatch(r"[0-9a-f]{32}", visitor_key(SALT, "::1", "\udcff\x00é"))

    @pytest.mark.parametrize("salt", [b"", b"short salt"])
    def test_short_salt_is_refused(self, salt: bytes) -> None:
        with pytest.raises(ValueError, match="at least 16"):
            visitor_key(salt, "203.0.113.9", CHROME)


ip_texts = st.ip_addresses().map(str)
header_texts = st.one_of(
    st.none(),
    st.text(),
    ip_texts,
    st.lists(st.one_of(ip_texts, st.text(max_size=8)), max_size=6).map(", ".join),
)


class TestArbitraryHeaders:
    @given(peer=header_texts, forwarded=header_texts, referer=header_texts)
    def test_client_ip_and_referrer_host_never_raise(
        self, peer: str | None, forwarded: str | None, referer: str | None
    ) -> None:
        for trusted in ((), TRUSTED, parse_trusted_proxies("0.0.0.0/0, ::/0")):
            ipaddress.ip_address(client_ip(peer, forwarded, trusted))
        host = referrer_host(referer)
        assert host is None or (0 < len(host) <= 255 and host == host.lower())
