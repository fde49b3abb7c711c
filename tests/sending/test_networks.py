from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from app.core.schemas import NETWORKS
from app.sending.links import slugify, visit_target
from app.sending.networks import SHARE_INTENTS, SharePost, share_url

VISIT = "https://amplify.test/r/AbCdEfGh23"
POST = SharePost(text="Launch day: 50% off & more", visit_url=VISIT, hashtags=["launch", "saas"])


def _parts(url: str) -> tuple[str, str, str, dict[str, list[str]]]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc, parts.path, parse_qs(parts.query, keep_blank_values=True)


class TestShareIntents:
    def test_every_network_has_an_intent(self) -> None:
        assert set(SHARE_INTENTS) == set(NETWORKS)

    @pytest.mark.parametrize(
        ("network", "host", "path", "url_param"),
        [
            ("linkedin", "www.linkedin.com", "/sharing/share-offsite/", "url"),
            ("facebook", "www.facebook.com", "/sharer/sharer.php", "u"),
            ("xing", "www.xing.com", "/spi/shares/new", "url"),
        ],
    )
    def test_url_only_networks(self, network: str, host: str, path: str, url_param: str) -> None:
        scheme, netloc, got_path, query = _parts(share_url(network, POST))
        assert (scheme, netloc, got_path) == ("https", host, path)
        assert query == {url_param: [VISIT]}

    def test_x_intent_carries_text_hashtags_and_url(self) -> None:
        scheme, netloc, path, query = _parts(share_url("x", POST))
        assert (scheme, netloc, path) == ("https", "x.com", "/intent/tweet")
        assert query == {"text": ["Launch day: 50% off & more #launch #saas"], "url": [VISIT]}

    def test_telegram_and_reddit(self) -> None:
        _, netloc, path, query = _parts(share_url("telegram", POST))
        assert (netloc, path) == ("t.me", "/share/url")
        assert query == {"url": [VISIT], "text": ["Launch day: 50% off & more #launch #saas"]}
        _, netloc, path, query = _parts(share_url("reddit", POST))
        assert (netloc, path) == ("www.reddit.com", "/submit")
        assert query == {"url": [VISIT], "title": ["Launch day: 50% off & more"]}

    @pytest.mark.parametrize(
        ("network", "host", "path"),
        [
            ("whatsapp", "wa.me", "/"),
            ("bluesky", "bsky.app", "/intent/compose"),
            ("threads", "www.threads.net", "/intent/post"),
        ],
    )
    def test_text_networks_end_with_the_visit_link(
        self, network: str, host: str, path: str
    ) -> None:
        scheme, netloc, got_path, query = _parts(share_url(network, POST))
        assert (scheme, netloc, got_path) == ("https", host, path)
        assert query == {"text": [f"Launch day: 50% off & more #launch #saas {VISIT}"]}

    def test_email_is_a_mailto_with_subject_and_body(self) -> None:
        url = share_url("email", POST)
        assert url.startswith("mailto:?")
        assert "+" not in url  # RFC 6068: spaces are %20
        query = parse_qs(urlsplit(url).query)
        assert query["subject"] == ["Launch day: 50% off & more"]
        assert query["body"][0].endswith(VISIT)

    def test_values_are_fully_encoded(self) -> None:
        tricky = SharePost(text="a&b=c#d?e f\nnew line", visit_url=VISIT)
        for network in NETWORKS:
            url = share_url(network, tricky)
            query = urlsplit(url).query
            assert " " not in url and "\n" not in url and "#" not in url
            assert all(part.count("=") == 1 for part in query.split("&")), network
            assert unquote(url).count(VISIT) == 1 or network in ("linkedin",)


class TestVisitTarget:
    def test_utm_appended_and_existing_kept(self) -> None:
        url = visit_target(
            "https://example.com/p?utm_medium=mail&x=1#top",
            utm=True,
            network="linkedin",
            campaign_name="Été 2026: Launch",
            message_id=7,
        )
        parts = urlsplit(url)
        assert parts.fragment == "top"
        assert parse_qs(parts.query) == {
            "x": ["1"],
            "utm_medium": ["mail"],
            "utm_source": ["linkedin"],
            "utm_campaign": ["ete-2026-launch"],
            "utm_content": ["7"],
        }

    def test_utm_off_keeps_the_url(self) -> None:
        url = "https://example.com/p?x=1"
        assert visit_target(url, utm=False, network="x", campaign_name="c", message_id=1) == url

    def test_slugify(self) -> None:
        assert slugify("  Spring Launch!! 2026 ") == "spring-launch-2026"
        assert slugify("日本") == "campaign"
