"""Click classification by User-Agent: which clicks come from bots, and from what kind of device.

Flag, never drop: a bot still gets its redirect; the recorder stores the reason and stats leave it
out. Timing signals (a click right after delivery, a burst of links) live with the recorder: most
mail scanners copy a browser's User-Agent, so no list here can catch them.
"""

import re
from collections.abc import Iterable, Iterator
from functools import lru_cache
from itertools import pairwise

from crawleruseragents import CRAWLER_USER_AGENTS_DATA  # type: ignore[import-untyped]

# Longer agents are classified on their first MAX_USER_AGENT characters: real ones are far shorter,
# and the bound keeps both the regex scan and the cache's memory small under junk headers.
MAX_USER_AGENT = 1024
# Agents classified, by exact string: a day's clicks come from a few thousand distinct agents
# (browser builds x platforms), and a miss costs a regex scan (about 10 µs).
CACHE_SIZE = 32_768

# Link-preview fetchers and social crawlers that must be caught whatever the package list says.
PREVIEW_PATTERNS = (
    "LinkedInBot",
    "facebookexternalhit",
    "Facebot",
    "Twitterbot",
    "Slackbot",
    "Slack-ImgProxy",
    "WhatsApp",
    "Discordbot",
    r"Mastodon/",  # "Mastodon/4.2.0 (…)" and "http.rb/5.1.1 (Mastodon/4.2.0; …)"
    "TelegramBot",
    "SkypeUriPreview",  # Skype and Teams
    r"MicrosoftPreview/",  # Outlook and Teams
    "Applebot",
    "redditbot",
    "Pinterestbot",
    # "Pinterest/0.2 (+http://www.pinterest.com/bot.html)"; "Pinterest/" alone is also the app's
    # in-app browser ("[Pinterest/iOS]").
    r"pinterest\.com/bot",
    "Iframely",
    "Embedly",
    "Bluesky Cardyb",
    "Google-InspectionTool",
    "Googlebot",
)

# Mail-security and link scanners that name themselves. Microsoft documents the two Office
# discovery requests; "ms-office" marks the pre-fetch Office apps make before handing a link to
# the browser (the browser's own request follows and counts). Google-Safety scans links for
# Gmail. The gateway vendors' names never occur in a browser's User-Agent. Not listed: Symantec,
# Trend Micro, Zscaler: they also run the web proxies and endpoint agents people browse through,
# so a token of theirs would not prove the absence of a human.
SCANNER_PATTERNS = (
    "Microsoft Office Existence Discovery",
    "Microsoft Office Protocol Discovery",
    "ms-office",
    "Google-Safety",
    "Barracuda",
    "Mimecast",
    "Proofpoint",
)

# HTTP libraries and headless browsers: nobody reads a share intent through these.
LIBRARY_PATTERNS = (
    r"curl/",
    r"Wget/",
    r"python-requests/",
    r"python-httpx/",
    r"Go-http-client/",
    r"okhttp/",
    r"axios/",
    "node-fetch",
    r"Java/",
    "libwww-perl",
    "HeadlessChrome",
)

# Package patterns that match people. Facebook's in-app browser (iOS and Android, since 2025)
# ends its agent with "MetaIAB Facebook"; the package files that as a preview fetcher.
EXCLUDED_PACKAGE_PATTERNS = frozenset({"MetaIAB Facebook"})

_SPECIAL = frozenset(".^$*+?{}[]|()\\")
_QUANTIFIERS = frozenset("*+?{")
_MAX_VARIANTS = 16


def _structure(pattern: str) -> Iterator[tuple[int, str, int]]:
    """(position, character, group depth) of the characters that are regex syntax or literals,
    skipping escapes; a character class is reported once, as "[" at its start."""
    depth, i = 0, 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            i += 2
            continue
        if char == "[":
            yield i, char, depth
            i += 1
            if pattern[i : i + 1] == "^":
                i += 1
            if pattern[i : i + 1] == "]":  # a leading "]" is a member, not the end
                i += 1
            while i < len(pattern) and pattern[i] != "]":
                i += 2 if pattern[i] == "\\" else 1
            i += 1
            continue
        if char == ")":
            depth -= 1
        yield i, char, depth
        if char == "(":
            depth += 1
        i += 1


def _alternatives(pattern: str) -> list[str]:
    cuts = [i for i, char, depth in _structure(pattern) if char == "|" and depth == 0]
    bounds = [-1, *cuts, len(pattern)]
    return [pattern[start + 1 : end] for start, end in pairwise(bounds)]


def _has_nested_quantifier(pattern: str) -> bool:
    """A repeated group that repeats something itself ("(a+)+", "(x*y)*"): exponential time."""
    outer: list[bool] = []  # per open group: whether what encloses it repeats something
    repeats = False
    for i, char, _ in _structure(pattern):
        if char == "(":
            outer.append(repeats)
            repeats = False
        elif char == ")":
            if repeats and pattern[i + 1 : i + 2] in ("*", "+", "{"):
                return True
            repeats = (outer.pop() if outer else False) or repeats
        elif char in ("*", "+", "{"):
            repeats = True
    return False


def _usable(pattern: str) -> bool:
    prefix, rest = _split_literal_prefix(pattern)
    if prefix and not rest:  # plain text, most of the list: nothing to check, nothing to compile
        return True
    try:
        compiled = re.compile(pattern)
        re.compile(f"x|(?:{pattern})")  # global flags such as "(?i)" cannot be combined
    except (re.error, RecursionError):
        return False
    return (
        compiled.search("") is None  # matching the empty string would flag every agent
        and not compiled.groupindex
        and "(?P=" not in pattern
        and re.search(r"\\[1-9]", pattern) is None  # group numbers change once combined
        and not _has_nested_quantifier(pattern)
    )


def _split_literal_prefix(pattern: str) -> tuple[str, str]:
    """("LinkedInBot", "") for r"LinkedInBot"; ("Ahrefs", "(Bot|SiteAudit)") for the grouped one."""
    if len(_alternatives(pattern)) > 1:
        return "", pattern
    literal: list[tuple[int, str]] = []  # (position in the pattern, character)
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            escaped = pattern[i + 1 : i + 2]
            if not escaped or escaped.isalnum():  # \d, \b, \x41 …: not a plain character
                break
            literal.append((i, escaped))
            i += 2
            continue
        if char in _SPECIAL:
            if char in _QUANTIFIERS and literal:  # "ab?" repeats the "b" alone
                i = literal.pop()[0]
            break
        literal.append((i, char))
        i += 1
    return "".join(char for _, char in literal), pattern[i:]


def _leading_choice(pattern: str) -> tuple[list[str], str] | None:
    """The choices of a leading "[wW]" or "(^| )" / "(sistrix|SISTRIX)", and what follows."""
    if pattern.startswith("["):
        end = pattern.find("]", 1)
        members = pattern[1:end]
        if end < 0 or not members or any(char in "\\^-[" for char in members):
            return None
        choices, rest = [re.escape(char) for char in members], pattern[end + 1 :]
    elif pattern.startswith("(") and (not pattern.startswith("(?") or pattern.startswith("(?:")):
        close = next(
            (i for i, char, depth in _structure(pattern) if char == ")" and depth == 0), -1
        )
        if close < 0:
            return None
        inner = pattern[3 if pattern.startswith("(?:") else 1 : close]
        choices, rest = _alternatives(inner), pattern[close + 1 :]
        # Only plain text (or "^") may be glued to what follows: "a{2" + "}" would change meaning.
        if any(choice != "^" and _split_literal_prefix(choice)[1] for choice in choices):
            return None
    else:
        return None
    if rest[:1] in _QUANTIFIERS:  # "[ab]+…", "(a|b)?…": the choice is repeated, keep it whole
        return None
    return choices, rest


def _variants(pattern: str) -> list[str]:
    """Patterns whose union matches what `pattern` matches, each starting with plain text or "^"
    where possible: "[wW]get" → "wget", "Wget"; "(^| )sentry" → "^sentry", " sentry"."""
    alternatives = _alternatives(pattern)
    if len(alternatives) > 1:
        variants = [variant for part in alternatives for variant in _variants(part)]
    elif choice := _leading_choice(pattern):
        choices, rest = choice
        variants = [variant for head in choices for variant in _variants(head + rest)]
    else:
        return [pattern]
    return variants if len(variants) <= _MAX_VARIANTS else [pattern]


class _Node:
    __slots__ = ("children", "rests", "terminal")

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        self.rests: list[str] = []
        self.terminal = False

    def add(self, pattern: str) -> None:
        prefix, rest = _split_literal_prefix(pattern)
        node = self
        for char in prefix:
            node = node.children.setdefault(char, _Node())
        if rest:
            node.rests.append(rest)
        else:
            node.terminal = True

    def branches(self) -> list[str]:
        if self.terminal:  # a whole pattern ends here: what follows cannot matter to search()
            return [""]
        return [
            *(re.escape(char) + child.source() for char, child in sorted(self.children.items())),
            *(f"(?:{rest})" for rest in self.rests),
        ]

    def is_empty(self) -> bool:
        return not (self.children or self.rests or self.terminal)

    def source(self) -> str:
        branches = self.branches()
        return branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"


def combine_patterns(patterns: Iterable[str]) -> tuple[re.Pattern[str], tuple[str, ...]]:
    """One case-sensitive regex matching where any usable pattern matches, and the rejected ones.

    Literal prefixes are merged into a trie, so at each position of the agent the regex engine
    tries one branch per distinct first character (each a one-character test) instead of one per
    pattern: a plain alternation of the ~1,500 package patterns costs about a millisecond per
    browser agent. Patterns opening with "^", a class or a group are first rewritten into
    equivalent plain-text variants, as one such branch costs as much as dozens of literal ones.
    """
    floating, anchored = _Node(), _Node()
    rejected: list[str] = []
    for pattern in dict.fromkeys(patterns):
        if not _usable(pattern):
            rejected.append(pattern)
            continue
        for variant in _variants(pattern):
            # "^a|b" (left whole when it has too many variants) is not anchored as a whole
            if variant.startswith("^") and len(_alternatives(variant)) == 1:
                anchored.add(variant[1:])
            else:
                floating.add(variant)
    branches = [] if floating.is_empty() else floating.branches()
    if not anchored.is_empty():
        branches.insert(0, "^" + anchored.source())
    return re.compile("|".join(branches) or "(?!)"), tuple(rejected)


_PACKAGE_PATTERNS = tuple(
    str(entry["pattern"])
    for entry in CRAWLER_USER_AGENTS_DATA
    if entry["pattern"] not in EXCLUDED_PACKAGE_PATTERNS
)
_ANY_BOT, REJECTED_PATTERNS = combine_patterns(
    (*PREVIEW_PATTERNS, *SCANNER_PATTERNS, *LIBRARY_PATTERNS, *_PACKAGE_PATTERNS)
)
_PREVIEW, _ = combine_patterns(PREVIEW_PATTERNS)
_SCANNER, _ = combine_patterns(SCANNER_PATTERNS)


@lru_cache(maxsize=CACHE_SIZE)
def _classify(user_agent: str) -> str | None:
    if not user_agent.strip():
        return "empty-ua"
    if _ANY_BOT.search(user_agent) is None:
        return None
    if _PREVIEW.search(user_agent):
        return "preview"
    if _SCANNER.search(user_agent):
        return "scanner"
    return "crawler"


def classify_user_agent(user_agent: str) -> str | None:
    """The bot reason ("empty-ua", "preview", "scanner", "crawler"), or None for a human agent."""
    return _classify(user_agent[:MAX_USER_AGENT])


@lru_cache(maxsize=CACHE_SIZE)
def _agent_class(user_agent: str) -> str:
    if _classify(user_agent) is not None:
        return "bot"
    # Phones first: Windows Phone agents also say "Android", iPhone ones "Mobile".
    if "iPhone" in user_agent or "iPod" in user_agent or "Windows Phone" in user_agent:
        return "mobile"
    if "iPad" in user_agent:  # iPadOS Safari in desktop mode says "Macintosh": desktop
        return "tablet"
    if "Android" in user_agent:
        return "mobile" if "Mobi" in user_agent else "tablet"
    if "Mobi" in user_agent:  # MDN's advice: "Mobi" anywhere means a mobile browser
        return "mobile"
    if any(token in user_agent for token in ("Windows", "Macintosh", "X11", "CrOS")):
        return "desktop"
    return "other"


def user_agent_class(user_agent: str) -> str:
    """One of "bot", "mobile", "tablet", "desktop", "other"."""
    return _agent_class(user_agent[:MAX_USER_AGENT])
