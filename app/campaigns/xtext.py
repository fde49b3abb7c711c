"""How long a post is for X: twitter-text v3 weighting, pure and without I/O.

X counts "weighted" characters: code points in a few ranges (Latin, Greek, Cyrillic, Hebrew,
Arabic, Indic … up to U+10FF, and some punctuation) weigh 1, everything else (CJK, emoji …)
weighs 2, and every URL weighs 23 whatever its length because X wraps it in t.co. Text is
NFC-normalized first, as twitter-text does. Emoji sequences are weighed per code point, which
is stricter than X (X counts a whole sequence as 2), so a post that fits here fits on X.
"""

import re
import unicodedata
from collections.abc import Iterable

MAX_WEIGHT = 280
URL_WEIGHT = 23

# Inclusive code point ranges that weigh 1 in twitter-text's v3 configuration.
_LIGHT_RANGES: tuple[tuple[int, int], ...] = (
    (0, 4351),
    (8192, 8205),
    (8208, 8223),
    (8242, 8247),
)
_DEFAULT_WEIGHT = 2

# An explicit http(s) URL inside the text; trailing sentence punctuation is not part of it.
_URL_IN_TEXT = re.compile(r"https?://[^\s]+", re.IGNORECASE)
_URL_TRAILING = ".,;:!?'\")]}>"


def char_weight(char: str) -> int:
    code = ord(char)
    for first, last in _LIGHT_RANGES:
        if first <= code <= last:
            return 1
    return _DEFAULT_WEIGHT


def _plain_weight(text: str) -> int:
    return sum(char_weight(char) for char in text)


def weight(text: str) -> int:
    """The weighted length of `text` as X counts it (URLs written in the text weigh 23)."""
    text = unicodedata.normalize("NFC", text)
    total = 0
    end = 0
    for match in _URL_IN_TEXT.finditer(text):
        url = match.group().rstrip(_URL_TRAILING)
        if "://" not in url or url.endswith("://"):
            continue
        total += _plain_weight(text[end : match.start()]) + URL_WEIGHT
        end = match.start() + len(url)
    return total + _plain_weight(text[end:])


def compose(text: str, hashtags: Iterable[str]) -> str:
    """The text of the post: the message text, then ` #tag` for every hashtag."""
    return text + "".join(f" #{tag}" for tag in hashtags)


def post_weight(text: str, hashtags: Iterable[str] = ()) -> int:
    """The weight of the whole post: text, hashtags, a space and the shared link (23)."""
    return weight(compose(text, hashtags)) + 1 + URL_WEIGHT


def fits(text: str, hashtags: Iterable[str] = ()) -> bool:
    return post_weight(text, hashtags) <= MAX_WEIGHT
