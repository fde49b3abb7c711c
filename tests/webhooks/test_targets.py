import ipaddress

import pytest

from app.webhooks.targets import TargetRefused, is_forbidden_address, parse_target, resolve_target


class TestForbiddenAddresses:
    @pytest.mark.parametrize(
        "address",
        [
            "127.0.0.1",
            "127.8.9.10",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",  # cloud metadata
            "100.64.0.1",  # carrier-grade NAT
            "0.0.0.0",
            "224.0.0.251",  # multicast
            "240.0.0.1",  # reserved
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fc00::1",
            "ff02::1",
            "::ffff:127.0.0.1",  # IPv4 inside IPv6
            "::ffff:10.0.0.1",
        ],
    )
    def test_refused(self, address: str) -> None:
        assert is_forbidden_address(ipaddress.ip_address(address))

    @pytest.mark.parametrize("address", ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111"])
    def test_public_allowed(self, address: str) -> None:
        assert not is_forbidden_address(ipaddress.ip_address(address))


class TestParseTarget:
    @pytest.mark.parametrize(
        "url",
        [
            "http://127.0.0.1/hook",
            "http://10.0.0.5:8080/hook",
            "https://169.254.169.254/latest/meta-data",
            "http://[::1]/hook",
            "http://[::ffff:192.168.0.1]/",
            "http://localhost:9000/hook",
            "http://api.localhost/hook",
            "http://printer.local/hook",
            "http://intranet/hook",
        ],
    )
    def test_local_targets_refused_unless_allowed(self, url: str) -> None:
        with pytest.raises(TargetRefused):
            parse_target(url, allow_private=False)
        assert parse_target(url, allow_private=True).url == url

    @pytest.mark.parametrize(
        "url",
        [
            "ftp://example.com/x",
            "javascript:alert(1)",
            "http:///nohost",
            "https://user:pw@example.com/",
            "https://example.com/a b",
            "https://example.com/\r\nX: y",
            "https://example.com:99999/",
            "https://example.com/" + "a" * 2100,
        ],
    )
    def test_malformed_refused_always(self, url: str) -> None:
        with pytest.raises(TargetRefused):
            parse_target(url, allow_private=True)

    def test_public_url_parsed(self) -> None:
        target = parse_target("https://Hooks.Example.com/in?x=1", allow_private=False)
        assert (target.scheme, target.host, target.port) == ("https", "hooks.example.com", 443)


class TestResolveTarget:
    async def test_name_resolving_to_loopback_refused_at_delivery(self) -> None:
        # Allowed when saved (as with a public name that later points inside: DNS rebinding),
        # refused when the resolved address is checked before the post.
        target = parse_target("http://localhost:9/hook", allow_private=True)
        with pytest.raises(TargetRefused, match="resolves to"):
            await resolve_target(target, allow_private=False)

    async def test_allowed_when_private_targets_are_on(self) -> None:
        target = parse_target("http://localhost:9/hook", allow_private=True)
        address = await resolve_target(target, allow_private=True)
        assert address.is_loopback

    async def test_literal_address_needs_no_lookup(self) -> None:
        target = parse_target("http://127.0.0.1:9/", allow_private=True)
        assert str(await resolve_target(target, allow_private=True)) == "127.0.0.1"


class TestWebhookSettings:
    def test_lease_must_outlast_a_post(self) -> None:
        from pydantic import ValidationError

        from app.core.config import Settings

        with pytest.raises(ValidationError, match="LEASE"):
            Settings(_env_file=None, webhook_lease_seconds=5, webhook_timeout_seconds=10)  # type: ignore[call-arg]
        with pytest.raises(ValidationError, match="RETRY"):
            Settings(_env_file=None, webhook_retry_seconds=(5, -1))  # type: ignore[call-arg]
