import ipaddress
import re

import pytest
from pydantic import ValidationError

from app.core.config import Settings, parse_trusted_proxies


class TestParseTrustedProxies:
    def test_addresses_and_networks(self) -> None:
        assert parse_trusted_proxies("127.0.0.1, 10.0.0.0/8, ::1") == (
            ipaddress.IPv4Network("127.0.0.1/32"),
            ipaddress.IPv4Network("10.0.0.0/8"),
            ipaddress.IPv6Network("::1/128"),
        )

    @pytest.mark.parametrize("value", ["", "  ", " , ,"])
    def test_empty_list_trusts_nobody(self, value: str) -> None:
        assert parse_trusted_proxies(value) == ()

    def test_ipv4_mapped_entries_become_ipv4(self) -> None:
        assert parse_trusted_proxies("::ffff:10.0.0.1, ::ffff:172.16.0.0/108") == (
            ipaddress.IPv4Network("10.0.0.1/32"),
            ipaddress.IPv4Network("172.16.0.0/12"),
        )

    @pytest.mark.parametrize(
        ("value", "bad"),
        [
            ("10.0.0.0/8, proxy.internal", "proxy.internal"),
            ("10.0.0.1/8", "10.0.0.1/8"),  # host bits set: a typo, not a network
            ("127.0.0.1,300.1.2.3", "300.1.2.3"),
            ("10.0.0.0/33", "10.0.0.0/33"),
            ("::1, 2001:db8::/129", "2001:db8::/129"),
            ("*", "*"),
        ],
    )
    def test_bad_entry_is_named(self, value: str, bad: str) -> None:
        with pytest.raises(ValueError, match=re.escape(repr(bad))):
            parse_trusted_proxies(value)


class TestTrustedProxiesSetting:
    def test_environment_list_becomes_networks(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("AMPLIFY_TRUSTED_PROXIES", "127.0.0.1, 10.0.0.0/8")
        settings = Settings(_env_file=None)  # type: ignore[call-arg]
        assert settings.trusted_proxies == (
            ipaddress.IPv4Network("127.0.0.1/32"),
            ipaddress.IPv4Network("10.0.0.0/8"),
        )

    def test_unset_trusts_nobody(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("AMPLIFY_TRUSTED_PROXIES", raising=False)
        assert Settings(_env_file=None).trusted_proxies == ()  # type: ignore[call-arg]

    def test_bad_entry_refuses_to_start(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("AMPLIFY_TRUSTED_PROXIES", "10.0.0.0/8, proxy.internal")
        with pytest.raises(
            ValidationError, match=re.escape("invalid trusted proxy 'proxy.internal'")
        ):
            Settings(_env_file=None)  # type: ignore[call-arg]


class TestAttributionSettings:
    def test_defaults(self) -> None:
        settings = Settings(_env_file=None)  # type: ignore[call-arg]
        assert (settings.attribution_param, settings.attribution_days) == ("amp_cid", 90)

    def test_environment_renames_the_parameter(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("AMPLIFY_ATTRIBUTION_PARAM", "ref_cid")
        monkeypatch.setenv("AMPLIFY_ATTRIBUTION_DAYS", "30")
        settings = Settings(_env_file=None)  # type: ignore[call-arg]
        assert (settings.attribution_param, settings.attribution_days) == ("ref_cid", 30)

    @pytest.mark.parametrize("bad", ["", "amp cid", "a&b", "a=b", "x" * 65, "ü"])
    def test_a_parameter_name_that_breaks_urls_is_refused(
        self, monkeypatch: pytest.MonkeyPatch, bad: str
    ) -> None:
        monkeypatch.setenv("AMPLIFY_ATTRIBUTION_PARAM", bad)
        with pytest.raises(ValidationError, match="AMPLIFY_ATTRIBUTION_PARAM must be"):
            Settings(_env_file=None)  # type: ignore[call-arg]

    @pytest.mark.parametrize("bad", ["0", "-1", "3651", "soon"])
    def test_a_window_out_of_range_is_refused(
        self, monkeypatch: pytest.MonkeyPatch, bad: str
    ) -> None:
        monkeypatch.setenv("AMPLIFY_ATTRIBUTION_DAYS", bad)
        with pytest.raises(ValidationError, match="attribution_days"):
            Settings(_env_file=None)  # type: ignore[call-arg]
