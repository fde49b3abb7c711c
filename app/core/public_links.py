"""Every URL Amplify hands out to the public, and the signed tokens inside them.

Mails, previews and pages build their links here and the pages read their tokens here, so a
public path or a token's purpose is named once. A new page reached by a signed id is one more
`PublicPage` line (the second release's preferences `/p/` and my-impact `/m/` pages).
"""

from dataclasses import dataclass
from email.utils import parseaddr

from app.core.config import Settings
from app.core.security import Signer

REDIRECT_PREFIX = "r"
PREVIEW_STAND_IN = "preview"  # in a preview's links, where a code or token will be


@dataclass(frozen=True, slots=True)
class PublicPage:
    """A page at `{PUBLIC_URL}/{prefix}/{token}`, the token a signed id. The purpose salts the
    signature, so a token for one page opens no other; renaming it voids every link mailed."""

    prefix: str
    purpose: str


DIGEST = PublicPage("a", "digest")  # the web version of a digest, by delivery id
UNSUBSCRIBE = PublicPage("u", "unsubscribe")  # one-click unsubscribe, by amplifier id
IMPACT = PublicPage("m", "impact")  # the amplifier's own scoreboard, by amplifier id
PREFERENCES = PublicPage("p", "preferences")  # how often, pauses, language: by amplifier id


def redirect_url(public_url: str, code: str) -> str:
    """The tracked link `/r/{code}`."""
    return f"{public_url}/{REDIRECT_PREFIX}/{code}"


def page_token(signer: Signer, page: PublicPage, subject_id: int) -> str:
    return signer.sign_id(page.purpose, subject_id)


def read_page_token(signer: Signer, page: PublicPage, token: str) -> int | None:
    """The id in a token of this page, or None for a tampered, foreign or malformed one."""
    return signer.unsign_id(page.purpose, token)


def page_url(public_url: str, signer: Signer, page: PublicPage, subject_id: int) -> str:
    return url_of_token(public_url, page, page_token(signer, page, subject_id))


def url_of_token(public_url: str, page: PublicPage, token: str) -> str:
    """The page's URL for a token already made (a mail uses the unsubscribe token twice)."""
    return f"{public_url}/{page.prefix}/{token}"


def stand_in_url(public_url: str, page: PublicPage | None = None) -> str:
    """A link of a preview, where no delivery or amplifier (so no token or code) exists yet."""
    prefix = page.prefix if page is not None else REDIRECT_PREFIX
    return f"{public_url}/{prefix}/{PREVIEW_STAND_IN}"


def web_version_url(public_url: str, signer: Signer, delivery_id: int) -> str:
    return page_url(public_url, signer, DIGEST, delivery_id)


def unsubscribe_token(signer: Signer, amplifier_id: int) -> str:
    return page_token(signer, UNSUBSCRIBE, amplifier_id)


def unsubscribe_url(public_url: str, signer: Signer, amplifier_id: int) -> str:
    return page_url(public_url, signer, UNSUBSCRIBE, amplifier_id)


def unsubscribe_mailto_base(settings: Settings) -> str:
    """`mailto:` URL up to the subject; the subject is `unsubscribe <token>`, URL-encoded."""
    address = settings.unsubscribe_mailto or parseaddr(settings.mail_from)[1]
    return f"mailto:{address}?subject="


def impact_url(public_url: str, signer: Signer, amplifier_id: int) -> str:
    return page_url(public_url, signer, IMPACT, amplifier_id)


def preferences_url(public_url: str, signer: Signer, amplifier_id: int) -> str:
    return page_url(public_url, signer, PREFERENCES, amplifier_id)
