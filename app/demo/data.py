"""What the demo is made of: its organization, campaign, roster and the visitors' browsers."""

import math
import random
import unicodedata
from typing import Any

ORGANIZATION = "Demo Co"
NETWORKS = ("linkedin", "x", "facebook", "whatsapp")
SHARE_RATE = 0.6  # share of the roster that shares something
SEED = 2026


FIRST_NAMES = (
    "Ada", "Grace", "Alan", "Linus", "Margaret", "Tim", "Katherine", "Dennis", "Barbara", "Ken",
    "Frances", "Edsger", "Radia", "Vint", "Hedy", "Donald", "Anita", "Guido", "Sophie", "Yukihiro",
    "Mary", "John", "Lucia", "Mateo", "Amara", "Kenji", "Priya", "Omar", "Ingrid", "Diego",
    "Chloé", "Noah", "Fatima", "Lars", "Mei", "Tariq", "Elena", "Kwame", "Zoë", "José",
    "Aiko", "Rafael", "Nadia", "Hugo", "Leila", "Sven", "Isabel", "Tomás",
)  # fmt: skip


LAST_NAMES = (
    "Lovelace", "Hopper", "Turing", "Torvalds", "Hamilton", "Berners-Lee", "Johnson", "Ritchie",
    "Liskov", "Thompson", "Allen", "Dijkstra", "Perlman", "Cerf", "Lamarr", "Knuth", "Borg",
    "van Rossum", "Wilson", "Matsumoto", "Keller", "McCarthy", "Moreno", "García", "Okafor",
    "Tanaka", "Sharma", "Haddad", "Larsen", "Fernández", "Dubois", "Schmidt", "Rahman",
    "Nilsson", "Chen", "Khan", "Rossi", "Mensah", "Novak", "Silva", "Sato", "Costa", "Petrov",
    "Laurent", "Nasser", "Berg", "Ortega", "Almeida",
)  # fmt: skip


TEAMS = ("engineering", "sales", "marketing", "customer-success", "partners")
REGIONS = ("emea", "americas", "apac")
LOCALES = ("en", "en", "en", "en", "de", "fr", "es", "pt-BR")


# Chance that an amplifier uses a network, and the range of their followers there.
NETWORK_USE = {"linkedin": 0.9, "x": 0.5, "facebook": 0.4, "whatsapp": 0.35}


AUDIENCE_RANGE = {
    "linkedin": (150, 4_000),
    "x": (50, 12_000),
    "facebook": (80, 1_500),
    "whatsapp": (20, 250),
}


# Where a visitor comes from (WhatsApp sends no Referer).
REFERERS = {
    "linkedin": "https://www.linkedin.com/",
    "x": "https://t.co/",
    "facebook": "https://l.facebook.com/",
}


# The link-preview fetcher that reads a post's link as soon as it is posted.
PREVIEW_BOTS = {
    "linkedin": "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)",
    "x": "Twitterbot/1.0",
    "facebook": "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
    "whatsapp": "WhatsApp/2.24.8.85 A",
}


PREVIEW_ADDRESSES = {
    "linkedin": "192.0.2.10",
    "x": "192.0.2.20",
    "facebook": "192.0.2.30",
    "whatsapp": "192.0.2.40",
}


DESKTOP_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{v}.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{v}.0.0.0 Safari/537.36 Edg/{v}.0.0.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.{m} Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:{v}.0) Gecko/20100101 Firefox/{v}.0",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{v}.0.0.0 Safari/537.36",
)


MOBILE_AGENTS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_{m} like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.{m} Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel {p}) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{v}.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 13; SM-S91{p}B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{v}.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (iPad; CPU OS 17_{m} like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.{m} Mobile/15E148 Safari/604.1",
)


# Security gateways copy a browser's User-Agent: only their timing gives them away.
SCANNER_AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/118.0.0.0 Safari/537.36"
)


SCANNER_ADDRESS = "203.0.113.25"
ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


CAMPAIGN: dict[str, Any] = {
    "name": "Product launch",
    "subject": "Three posts to share for our launch week",
    "intro": "It's launch week! Each post below takes one click to share. Thank you for helping.",
    "networks": list(NETWORKS),
    "utm": True,
    "messages": [
        {
            "text": "We just launched Demo Co Cloud: analytics your whole team can read in "
            "minutes, not days.",
            "url": "https://example.com/launch",
            "hashtags": ["launch", "analytics"],
        },
        {
            "text": "How Northwind cut its reporting time by 60% with Demo Co. Read the "
            "customer story:",
            "url": "https://example.com/customers/northwind",
            "hashtags": ["customerstory"],
        },
        {
            "text": "We're hiring engineers and designers in Berlin, Lisbon and remote. Come "
            "build with us!",
            "url": "https://example.com/careers",
            "hashtags": ["hiring"],
        },
    ],
}


def _ascii(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in folded.lower() if ch.isalnum() or ch in ".-")


def make_roster(count: int, rng: random.Random) -> list[dict[str, Any]]:
    """`count` amplifiers with distinct names and example.com addresses, networks and audiences."""
    names = [(first, last) for first in FIRST_NAMES for last in LAST_NAMES]
    rng.shuffle(names)
    roster = []
    for index in range(count):
        first, last = names[index % len(names)]
        round_ = index // len(names)
        email = f"{_ascii(first)}.{_ascii(last.replace(' ', ''))}"
        if round_:
            email += str(round_ + 1)
        networks = [n for n in NETWORKS if rng.random() < NETWORK_USE[n]] or ["linkedin"]
        audience = {}
        for network in networks:
            low, high = AUDIENCE_RANGE[network]
            audience[network] = round(math.exp(rng.uniform(math.log(low), math.log(high))))
        roster.append(
            {
                "email": f"{email}@example.com",
                "name": f"{first} {last}",
                "tags": [rng.choice(TEAMS), rng.choice(REGIONS)],
                "networks": networks,
                "audience": audience,
                "locale": rng.choice(LOCALES),
            }
        )
    return roster
