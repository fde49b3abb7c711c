"""The preference page: how often an amplifier hears from us, pauses, networks, language.

Reached by a signed token like the other amplifier pages. The form carries a second token
(another purpose, same amplifier): a page of another site cannot post it without having read
this page, so a forged cross-site POST changes nothing.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from types import SimpleNamespace
from typing import Any

from babel import Locale
from sqlalchemy.ext.asyncio import AsyncSession

from app import i18n
from app.amplifiers import service as amplifiers
from app.core.public_links import PREFERENCES, unsubscribe_url
from app.core.schemas import NETWORKS
from app.core.security import Signer
from app.models import Amplifier, Frequency, Organization
from app.pages.service import amplifier_of_token
from app.sending.networks import NETWORK_INFO
from app.sending.slots import zone

FORM_PURPOSE = "preferences.form"
PAUSES = {"2w": timedelta(weeks=2), "1m": timedelta(days=30)}
LONGEST_PAUSE = timedelta(days=366)


class FormRefused(Exception):
    """The form did not come from this page (no or another amplifier's form token)."""


class BadChoice(ValueError):
    """A value the form never offers."""


@dataclass(frozen=True, slots=True)
class Choices:
    frequency: Frequency
    pause: datetime | None  # the new paused_until; None with `resume` ends a pause
    resume: bool
    networks: list[str]
    locale: str


async def page(
    session: AsyncSession, *, signer: Signer, public_url: str, token: str, now: datetime
) -> dict[str, Any]:
    """The page's context: the amplifier's current choices and what can be chosen."""
    amplifier, organization = await amplifier_of_token(session, signer, PREFERENCES, token)
    return _context(amplifier, organization, signer=signer, public_url=public_url, now=now)


async def save(
    session: AsyncSession,
    *,
    signer: Signer,
    public_url: str,
    token: str,
    form: Mapping[str, Sequence[str]],
    now: datetime,
) -> dict[str, Any]:
    """Apply the posted form; the page again with what was saved (or what was wrong)."""
    amplifier, organization = await amplifier_of_token(session, signer, PREFERENCES, token)
    if signer.unsign_id(FORM_PURPOSE, _one(form, "form_token")) != amplifier.id:
        raise FormRefused
    tz = zone(amplifier.timezone or organization.default_timezone)
    try:
        choices = _choices(form, amplifier=amplifier, tz=tz, now=now)
    except BadChoice as error:
        context = _context(amplifier, organization, signer=signer, public_url=public_url, now=now)
        return {**context, "error": str(error)}
    changes: dict[str, Any] = {"frequency": choices.frequency}
    if choices.resume or choices.pause is not None:
        changes["paused_until"] = choices.pause
    amplifier.networks = choices.networks
    amplifier.locale = choices.locale
    await amplifiers.set_preferences(session, amplifier, changes=changes, now=now)
    context = _context(amplifier, organization, signer=signer, public_url=public_url, now=now)
    return {**context, "saved": True}


def _one(form: Mapping[str, Sequence[str]], name: str) -> str:
    values = form.get(name) or [""]
    return values[0]


def _choices(
    form: Mapping[str, Sequence[str]], *, amplifier: Amplifier, tz: Any, now: datetime
) -> Choices:
    with i18n.translating(amplifier.locale):
        frequency = _one(form, "frequency") or amplifier.frequency
        if frequency not in {f.value for f in Frequency}:
            raise BadChoice(i18n.gettext("Choose from the options on this page."))
        networks = list(dict.fromkeys(form.get("networks") or []))
        if any(n not in NETWORKS for n in networks):
            raise BadChoice(i18n.gettext("Choose from the options on this page."))
        locale = _one(form, "locale") or amplifier.locale
        if locale not in _languages(amplifier.locale):
            raise BadChoice(i18n.gettext("Choose from the options on this page."))
        pause, resume = _pause(form, tz=tz, now=now)
    return Choices(Frequency(frequency), pause, resume, networks, locale)


def _pause(
    form: Mapping[str, Sequence[str]], *, tz: Any, now: datetime
) -> tuple[datetime | None, bool]:
    """(new paused_until, whether a pause ends) from the pause choice."""
    choice = _one(form, "pause") or "keep"
    if choice == "keep":
        return None, False
    if choice == "resume":
        return None, True
    if choice in PAUSES:
        return now + PAUSES[choice], False
    if choice == "date":
        try:
            day = date.fromisoformat(_one(form, "pause_until"))
        except ValueError:
            raise BadChoice(i18n.gettext("Give a date within the next year.")) from None
        until = datetime.combine(day, time(0, 0), tzinfo=tz).astimezone(UTC)
        if until < now - timedelta(days=1) or until > now + LONGEST_PAUSE:
            raise BadChoice(i18n.gettext("Give a date within the next year."))
        return until, False
    raise BadChoice(i18n.gettext("Choose from the options on this page."))


def _languages(current: str) -> list[str]:
    """The languages offered: the shipped ones, and the amplifier's own if it is more specific."""
    offered = list(i18n.SUPPORTED)
    if current not in offered:
        offered.insert(0, current)
    return offered


def _language_name(tag: str) -> str:
    try:
        name = Locale.parse(tag, sep="-").get_display_name(Locale.parse(tag, sep="-"))
    except (ValueError, TypeError):
        return tag
    return (name or tag)[:1].upper() + (name or tag)[1:]


def _context(
    amplifier: Amplifier,
    organization: Organization,
    *,
    signer: Signer,
    public_url: str,
    now: datetime,
) -> dict[str, Any]:
    tz = zone(amplifier.timezone or organization.default_timezone)
    until = amplifier.paused_until
    paused_until = None
    if until is not None and until > now:
        with i18n.translating(amplifier.locale):
            paused_until = i18n.format_day(until.astimezone(tz).date())
    return {
        "locale": amplifier.locale,
        "organization_name": organization.name,
        "form_token": signer.sign_id(FORM_PURPOSE, amplifier.id),
        "frequency": amplifier.frequency,
        "paused_until": paused_until,
        "networks": [
            SimpleNamespace(
                name=n, label=NETWORK_INFO[n].label, chosen=n in (amplifier.networks or [])
            )
            for n in NETWORKS
        ],
        "languages": [
            SimpleNamespace(tag=tag, name=_language_name(tag), chosen=tag == amplifier.locale)
            for tag in _languages(amplifier.locale)
        ],
        "today": now.astimezone(tz).date().isoformat(),
        "unsubscribe_url": unsubscribe_url(public_url, signer, amplifier.id),
        "saved": False,
        "error": None,
    }
