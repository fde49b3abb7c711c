"""Share intents per network: pure functions from stored data to the network's share URL."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import quote

from app.core.schemas import NETWORKS


@dataclass(frozen=True, slots=True)
class NetworkInfo:
    label: str
    color: str


NETWORK_INFO: dict[str, NetworkInfo] = {
    "linkedin": NetworkInfo("LinkedIn", "#0A66C2"),
    "x": NetworkInfo("X", "#000000"),
    "facebook": NetworkInfo("Facebook", "#1877F2"),
    "email": NetworkInfo("Email", "#5F6368"),
    "whatsapp": NetworkInfo("WhatsApp", "#128C7E"),
    "telegram": NetworkInfo("Telegram", "#229ED9"),
    "reddit": NetworkInfo("Reddit", "#FF4500"),
    "xing": NetworkInfo("XING", "#006567"),
    "bluesky": NetworkInfo("Bluesky", "#0A7AFF"),
    "threads": NetworkInfo("Threads", "#000000"),
}
assert set(NETWORK_INFO) == set(NETWORKS)

EMAIL_SUBJECT_MAX = 78
REDDIT_TITLE_MAX = 300


@dataclass(frozen=True, slots=True)
class SharePost:
    """What an amplifier shares: the text for this network, its hashtags and the visit link."""

    text: str
    visit_url: str
    hashtags: Sequence[str] = ()

    @property
    def text_with_hashtags(self) -> str:
        tags = " ".join(f"#{tag}" for tag in self.hashtags)
        return f"{self.text} {tags}" if tags else self.text


@lru_cache(maxsize=8192)
def _q(value: str) -> str:
    # Cached: a campaign snapshot quotes the same texts and URL prefixes once per amplifier.
    return quote(value, safe="")


def _link(post: SharePost) -> str:
    # Percent-encoding works character by character, so the cached prefix and the code (plain
    # alphanumerics: quote's fast path) are quoted apart.
    prefix, _, code = post.visit_url.rpartition("/")
    return _q(f"{prefix}/") + quote(code, safe="")


def _text(post: SharePost) -> str:
    return _q(post.text_with_hashtags)


def _text_then_link(post: SharePost) -> str:
    return _q(f"{post.text_with_hashtags} ") + _link(post)


def _first_line(text: str, limit: int) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    if len(line) <= limit:
        return line
    cut = line[: limit - 1].rsplit(" ", 1)[0] or line[: limit - 1]
    return cut + "…"


def linkedin(post: SharePost) -> str:
    return f"https://www.linkedin.com/sharing/share-offsite/?url={_link(post)}"


def x(post: SharePost) -> str:
    return f"https://x.com/intent/tweet?text={_text(post)}&url={_link(post)}"


def facebook(post: SharePost) -> str:
    return f"https://www.facebook.com/sharer/sharer.php?u={_link(post)}"


def email(post: SharePost) -> str:
    subject = _q(_first_line(post.text, EMAIL_SUBJECT_MAX))
    body = _q(f"{post.text_with_hashtags}\n\n") + _link(post)
    return f"mailto:?subject={subject}&body={body}"


def whatsapp(post: SharePost) -> str:
    return f"https://wa.me/?text={_text_then_link(post)}"


def telegram(post: SharePost) -> str:
    return f"https://t.me/share/url?url={_link(post)}&text={_text(post)}"


def reddit(post: SharePost) -> str:
    title = _q(_first_line(post.text, REDDIT_TITLE_MAX))
    return f"https://www.reddit.com/submit?url={_link(post)}&title={title}"


def xing(post: SharePost) -> str:
    return f"https://www.xing.com/spi/shares/new?url={_link(post)}"


def bluesky(post: SharePost) -> str:
    return f"https://bsky.app/intent/compose?text={_text_then_link(post)}"


def threads(post: SharePost) -> str:
    return f"https://www.threads.net/intent/post?text={_text_then_link(post)}"


SHARE_INTENTS: dict[str, Callable[[SharePost], str]] = {
    "linkedin": linkedin,
    "x": x,
    "facebook": facebook,
    "email": email,
    "whatsapp": whatsapp,
    "telegram": telegram,
    "reddit": reddit,
    "xing": xing,
    "bluesky": bluesky,
    "threads": threads,
}
assert set(SHARE_INTENTS) == set(NETWORKS)


def share_url(network: str, post: SharePost) -> str:
    return SHARE_INTENTS[network](post)
