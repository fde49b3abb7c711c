import re

import pytest
from crawleruseragents import CRAWLER_USER_AGENTS_DATA, is_crawler  # type: ignore[import-untyped]

from app.tracking import bots
from app.tracking.bots import (
    MAX_USER_AGENT,
    PREVIEW_PATTERNS,
    classify_user_agent,
    combine_patterns,
    user_agent_class,
)

IOS_APP = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_6_2 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/22G100"
)
ANDROID_WEBVIEW = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8 Build/AP2A.240805.005; wv) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/138.0.7204.179 Mobile Safari/537.36"
)

# (name, agent, class) of browsers people click with.
HUMAN_AGENTS: list[tuple[str, str, str]] = [
    (
        "chrome-windows",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36",
        "desktop",
    ),
    (
        "chrome-mac",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36",
        "desktop",
    ),
    (
        "chrome-linux",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36",
        "desktop",
    ),
    (
        "chrome-chromeos",
        "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36",
        "desktop",
    ),
    (
        "firefox-windows",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
        "desktop",
    ),
    (
        "firefox-mac",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:133.0) Gecko/20100101 Firefox/133.0",
        "desktop",
    ),
    (
        "firefox-linux",
        "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
        "desktop",
    ),
    (
        "safari-mac",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/18.1 Safari/605.1.15",
        "desktop",
    ),
    (
        "edge-windows",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
        "desktop",
    ),
    (
        "opera-windows",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/130.0.0.0 Safari/537.36 OPR/115.0.0.0",
        "desktop",
    ),
    (
        "safari-iphone",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
        "mobile",
    ),
    (
        "chrome-iphone",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_7 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1",
        "mobile",
    ),
    (
        "firefox-iphone",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_7 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) FxiOS/132.0 Mobile/15E148 Safari/605.1.15",
        "mobile",
    ),
    (
        "chrome-android",
        "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Mobile Safari/537.36",
        "mobile",
    ),
    (
        "firefox-android",
        "Mozilla/5.0 (Android 14; Mobile; rv:133.0) Gecko/133.0 Firefox/133.0",
        "mobile",
    ),
    (
        "samsung-internet",
        "Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S918B) AppleWebKit/537.36 "
        "(KHTML, like Gecko) SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36",
        "mobile",
    ),
    (
        "edge-android",
        "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.6778.81 Mobile Safari/537.36 EdgA/131.0.2903.70",
        "mobile",
    ),
    (
        "edge-windows-phone",
        "Mozilla/5.0 (Windows Phone 10.0; Android 6.0.1; Microsoft; Lumia 950) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/52.0.2743.116 Mobile Safari/537.36 Edge/15.15063",
        "mobile",
    ),
    (
        "safari-ipad",
        "Mozilla/5.0 (iPad; CPU OS 17_7 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.7 Mobile/15E148 Safari/604.1",
        "tablet",
    ),
    (
        "chrome-ipad",
        "Mozilla/5.0 (iPad; CPU OS 17_7 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1",
        "tablet",
    ),
    (
        "chrome-android-tablet",
        "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36",
        "tablet",
    ),
    (
        "samsung-internet-tablet",
        "Mozilla/5.0 (Linux; Android 13; SAMSUNG SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) "
        "SamsungBrowser/25.0 Chrome/121.0.0.0 Safari/537.36",
        "tablet",
    ),
    (
        "facebook-ios-fban",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5_1 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Mobile/15E148 [FBAN/FBIOS;FBAV/470.0.0.40.95;FBBV/614184577;"
        "FBDV/iPhone15,2;FBMD/iPhone;FBSN/iOS;FBSV/17.5.1;FBSS/3;FBID/phone;FBLC/en_US;FBOP/5;"
        "FBRV/615993377]",
        "mobile",
    ),
    ("facebook-android-iab", f"{ANDROID_WEBVIEW} [FB_IAB/FB4A;FBAV/477.0.0.49.74;]", "mobile"),
    ("facebook-ios-metaiab", f"{IOS_APP} Safari/604.1 MetaIAB Facebook", "mobile"),
    ("facebook-android-metaiab", f"{ANDROID_WEBVIEW} MetaIAB Facebook", "mobile"),
    (
        "instagram-ios",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5_1 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Mobile/15E148 Instagram 339.0.3.12.91 (iPhone14,5; iOS 17_5_1; en_US; "
        "en; scale=3.00; 1170x2532; 618023787; IABMV/1)",
        "mobile",
    ),
    (
        "instagram-android",
        "Mozilla/5.0 (Linux; Android 14; SM-S911B Build/UP1A.231005.007; wv) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Version/4.0 Chrome/126.0.6478.134 Mobile Safari/537.36 "
        "Instagram 340.0.0.22.109 Android (34/14; 480dpi; 1080x2340; samsung; SM-S911B; dm1q; "
        "qcom; en_US; 625392474)",
        "mobile",
    ),
    ("instagram-metaiab", f"{IOS_APP} Safari/604.1 MetaIAB Instagram", "mobile"),
    (
        "linkedin-ios",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Mobile/15E148 [LinkedInApp]/9.29.8962",
        "mobile",
    ),
    ("linkedin-android", f"{ANDROID_WEBVIEW} [LinkedInApp]/4.1.1003", "mobile"),
    ("x-ios", f"{IOS_APP} Twitter for iPhone/10.52", "mobile"),
    ("pinterest-ios", f"{IOS_APP} [Pinterest/iOS]", "mobile"),
]

# (name, agent, reason) of crawlers, preview fetchers, scanners and HTTP clients.
BOT_AGENTS: list[tuple[str, str, str]] = [
    (
        "linkedinbot",
        "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)",
        "preview",
    ),
    (
        "facebookexternalhit",
        "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
        "preview",
    ),
    ("facebot", "Facebot/1.0", "preview"),
    ("twitterbot", "Twitterbot/1.0", "preview"),
    ("slackbot", "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)", "preview"),
    ("slack-imgproxy", "Slack-ImgProxy (+https://api.slack.com/robots)", "preview"),
    ("whatsapp", "WhatsApp/2.23.20.0", "preview"),
    ("discordbot", "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)", "preview"),
    ("mastodon", "Mastodon/4.2.0 (+https://mastodon.social/)", "preview"),
    ("mastodon-http-rb", "http.rb/5.1.1 (Mastodon/4.2.0; +https://mastodon.social/)", "preview"),
    ("telegrambot", "TelegramBot (like TwitterBot)", "preview"),
    (
        "skype-teams",
        "Mozilla/5.0 (Windows NT 6.1; WOW64) SkypeUriPreview Preview/0.5 "
        "skype-url-preview@microsoft.com",
        "preview",
    ),
    ("outlook", "MicrosoftPreview/2.0; +https://aka.ms/MicrosoftPreview", "preview"),
    (
        "applebot",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_5) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/13.1.1 Safari/605.1.15 (Applebot/0.1; +http://www.apple.com/go/applebot)",
        "preview",
    ),
    (
        "redditbot",
        "Mozilla/5.0 (compatible; redditbot/1.0; +http://www.reddit.com/feedback)",
        "preview",
    ),
    ("pinterest", "Pinterest/0.2 (+http://www.pinterest.com/bot.html)", "preview"),
    (
        "pinterestbot",
        "Mozilla/5.0 (compatible; Pinterestbot/1.0; +http://www.pinterest.com/bot.html)",
        "preview",
    ),
    ("iframely", "Iframely/1.3.1 (+https://iframely.com/docs/about)", "preview"),
    ("embedly", "Mozilla/5.0 (compatible; Embedly/0.2; +http://support.embed.ly/)", "preview"),
    (
        "bluesky-cardyb",
        "Mozilla/5.0 (compatible; Bluesky Cardyb/1.1; +mailto:support@bsky.app)",
        "preview",
    ),
    (
        "google-inspectiontool",
        "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/131.0.6778.139 Mobile Safari/537.36 "
        "(compatible; Google-InspectionTool/1.0;)",
        "preview",
    ),
    (
        "googlebot",
        "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; Googlebot/2.1; "
        "+http://www.google.com/bot.html) Chrome/131.0.6778.139 Safari/537.36",
        "preview",
    ),
    (
        "bingbot",
        "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
        "crawler",
    ),
    ("ahrefs", "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)", "crawler"),
    (
        "gptbot",
        "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; "
        "+https://openai.com/gptbot)",
        "crawler",
    ),
    ("curl", "curl/8.4.0", "crawler"),
    ("wget", "Wget/1.21.4", "crawler"),
    ("python-requests", "python-requests/2.31.0", "crawler"),
    ("python-httpx", "python-httpx/0.27.0", "crawler"),
    ("go-http-client", "Go-http-client/1.1", "crawler"),
    ("okhttp", "okhttp/4.12.0", "crawler"),
    ("axios", "axios/1.6.2", "crawler"),
    ("node", "node-fetch/1.0 (+https://github.com/bitinn/node-fetch)", "crawler"),
    ("java", "Java/1.8.0_292", "crawler"),
    ("libwww-perl", "libwww-perl/6.72", "crawler"),
    (
        "headless-chrome",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "HeadlessChrome/120.0.6099.28 Safari/537.36",
        "crawler",
    ),
    ("office-existence", "Microsoft Office Existence Discovery", "scanner"),
    ("office-protocol", "Microsoft Office Protocol Discovery", "scanner"),
    (
        "office-prefetch",
        "Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 10.0; WOW64; Trident/7.0; ms-office; "
        "MSOffice 16)",
        "scanner",
    ),
    (
        "google-safety",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/114.0.5735.179 Safari/537.36 (compatible; Google-Safety; "
        "+http://www.google.com/bot.html)",
        "scanner",
    ),
]


HUMANS = [pytest.param(agent, expected, id=name) for name, agent, expected in HUMAN_AGENTS]
BOTS = [pytest.param(agent, expected, id=name) for name, agent, expected in BOT_AGENTS]
PREVIEW_AGENTS = [agent for _, agent, reason in BOT_AGENTS if reason == "preview"]


def _agents(table: list[tuple[str, str, str]]) -> list[str]:
    return [agent for _, agent, _ in table]


class TestClassifyUserAgent:
    @pytest.mark.parametrize(("user_agent", "_class"), HUMANS)
    def test_browsers_are_human(self, user_agent: str, _class: str) -> None:
        assert classify_user_agent(user_agent) is None

    @pytest.mark.parametrize(("user_agent", "reason"), BOTS)
    def test_bots_are_flagged_with_their_reason(self, user_agent: str, reason: str) -> None:
        assert classify_user_agent(user_agent) == reason

    @pytest.mark.parametrize("user_agent", ["", " ", "\t", " \r\n "])
    def test_empty_or_blank_agent(self, user_agent: str) -> None:
        assert classify_user_agent(user_agent) == "empty-ua"

    @pytest.mark.parametrize("user_agent", PREVIEW_AGENTS)
    def test_preview_fetchers_are_caught_without_the_package(self, user_agent: str) -> None:
        pinned, rejected = combine_patterns(PREVIEW_PATTERNS)
        assert rejected == ()
        assert pinned.search(user_agent)

    def test_package_flags_the_facebook_in_app_browser(self) -> None:
        # Why EXCLUDED_PACKAGE_PATTERNS exists: when this fails, the package has fixed its entry
        # and the exclusion can go.
        assert is_crawler(f"{IOS_APP} Safari/604.1 MetaIAB Facebook")
        assert classify_user_agent(f"{IOS_APP} Safari/604.1 MetaIAB Facebook") is None

    def test_matching_is_case_sensitive(self) -> None:
        # The package's contract: its patterns are meant to be matched case-sensitively.
        assert classify_user_agent("Mozilla/5.0 (compatible; Googlebot/2.1)") == "preview"
        assert classify_user_agent("Mozilla/5.0 (compatible; googlebot/2.1)") is None

    def test_every_package_pattern_is_used(self) -> None:
        assert bots.REJECTED_PATTERNS == ()

    def test_long_agents_are_classified_on_their_start(self) -> None:
        assert classify_user_agent("curl/8.4.0 " + "x" * 100_000) == "crawler"
        assert classify_user_agent("x" * MAX_USER_AGENT + " curl/8.4.0") is None

    def test_repeated_agents_give_the_same_answer(self) -> None:
        user_agent = _agents(BOT_AGENTS)[0]
        assert classify_user_agent(user_agent) == classify_user_agent(user_agent) == "preview"


class TestCombinePatterns:
    def test_agrees_with_the_package_on_every_listed_agent(self) -> None:
        combined, rejected = combine_patterns(
            entry["pattern"] for entry in CRAWLER_USER_AGENTS_DATA
        )
        assert rejected == ()
        agents = [ua for entry in CRAWLER_USER_AGENTS_DATA for ua in entry["instances"]]
        agents += _agents(HUMAN_AGENTS) + _agents(BOT_AGENTS)
        assert len(agents) > 2000
        disagreements = [ua for ua in agents if bool(combined.search(ua)) != is_crawler(ua)]
        assert disagreements == []

    @pytest.mark.parametrize(
        ("pattern", "agents"),
        [
            ("[wW]get", ["Wget/1.2", "wget", "WGET", "get"]),
            ("(^| )sentry\\/", ["sentry/1", "a sentry/1", "asentry/1", "Sentry/1"]),
            (
                "(sistrix|SISTRIX) [cC]rawler",
                ["SISTRIX crawler", "sistrix Crawler", "Sistrix crawler"],
            ),
            ("Automaton|Newsify Feed Fetcher", ["x Automaton", "Newsify Feed Fetcher", "Newsify"]),
            ("AdsBot-Google([^-]|$)", ["AdsBot-Google", "AdsBot-Google ", "AdsBot-Google-Mobile"]),
            (
                "GoogleAssociationService$",
                ["GoogleAssociationService", "GoogleAssociationServiceX"],
            ),
            ("^Silk\\/", ["Silk/1.0", "Mozilla Silk/121"]),
            ("Feedly(Bot)?s", ["Feedlys", "FeedlyBots", "FeedlyBot"]),
            ("ab?c", ["ac", "abc", "abbc"]),
            ("x|[0-9]ab", ["x", "3ab", "ab"]),
            ("^x|" + "|".join("bcdefghijklmnopqrs"), ["xa", "ab", "zz"]),  # too many variants
            ("Spider[\\s\\S]*spider\\.com", ["Spider x spider.com", "spider.com Spider"]),
        ],
    )
    def test_rewritten_patterns_match_like_the_originals(
        self, pattern: str, agents: list[str]
    ) -> None:
        combined, _ = combine_patterns([pattern, "Googlebot"])
        for agent in agents:
            assert bool(combined.search(agent)) == bool(re.search(pattern, agent)), agent

    @pytest.mark.parametrize(
        "pattern", ["", "^", "x*", "(a+)+$", "([a-z]*b)*c", "(?i)bot", "(a)\\1", "(?P<n>x)", "["]
    )
    def test_rejects_patterns_that_match_everyone_backtrack_or_do_not_combine(
        self, pattern: str
    ) -> None:
        combined, rejected = combine_patterns([pattern, "Googlebot"])
        assert rejected == (pattern,)
        assert combined.search("Googlebot/2.1")
        assert not combined.search(
            "Mozilla/5.0 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        )

    def test_no_patterns_match_nothing(self) -> None:
        combined, rejected = combine_patterns([])
        assert rejected == ()
        assert not combined.search("anything")
        assert not combined.search("")


class TestUserAgentClass:
    @pytest.mark.parametrize(("user_agent", "expected"), HUMANS)
    def test_human_agents(self, user_agent: str, expected: str) -> None:
        assert user_agent_class(user_agent) == expected

    @pytest.mark.parametrize("user_agent", [*_agents(BOT_AGENTS), "", "   "])
    def test_bots_and_empty_agents(self, user_agent: str) -> None:
        assert user_agent_class(user_agent) == "bot"

    @pytest.mark.parametrize(
        "user_agent",
        [
            "Mozilla/5.0 (PlayStation; PlayStation 5/2.26) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/13.0 Safari/605.1.15",
            "Mozilla/5.0 (SMART-TV; LINUX; Tizen 6.0) AppleWebKit/537.36 (KHTML, like Gecko) "
            "76.0.3809.146/6.0 TV Safari/537.36",
            "Mozilla/5.0",
        ],
    )
    def test_unknown_devices_are_other(self, user_agent: str) -> None:
        assert user_agent_class(user_agent) == "other"
