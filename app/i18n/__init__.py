"""Languages: the gettext catalogs shipped in this package, locale matching and formatting.

Catalogs are `.po` files under `locales/<language>/LC_MESSAGES/messages.po`, read with Babel and
compiled in memory once per process, so a wheel install needs no build step. Templates translate
through Jinja's i18n extension; `translating(locale)` chooses the catalog for one render.
"""

import io
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date, datetime
from functools import cache, lru_cache
from pathlib import Path
from typing import TypeVar

import jinja2
from babel import Locale, UnknownLocaleError
from babel.dates import format_date
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.support import NullTranslations, Translations

LOCALES_DIR = Path(__file__).parent / "locales"
DEFAULT_LOCALE = "en"
# The languages whose catalogs ship; English is the source language (its catalog is empty).
SUPPORTED = ("en", "da", "de", "es", "fr", "it", "nl", "nb", "sv", "fi", "pl", "pt", "ja")
MAX_TAG_LENGTH = 16

T = TypeVar("T")


def normalize_tag(tag: str) -> str:
    """`pt_br`, `PT-br` → `pt-BR`; ValueError for what is not a language tag Babel knows."""
    cleaned = tag.strip().replace("_", "-")
    if not cleaned or len(cleaned) > MAX_TAG_LENGTH:
        raise ValueError("must be a language tag such as 'de' or 'pt-BR'")
    try:
        locale = Locale.parse(cleaned, sep="-")
    except (ValueError, UnknownLocaleError):
        raise ValueError("must be a language tag such as 'de' or 'pt-BR'") from None
    return "-".join(p for p in (locale.language, locale.script, locale.territory) if p)


def candidates(tag: str | None) -> list[str]:
    """The tags to try for `tag`, most specific first: `pt-BR` → [`pt-BR`, `pt`]."""
    if not tag:
        return []
    parts = tag.strip().replace("_", "-").split("-")
    tags = ["-".join(parts[:n]) for n in range(len(parts), 0, -1)]
    return [t.lower() for t in tags if t]


def best_match(tag: str | None, available: Mapping[str, T]) -> T | None:
    """The value under the best-matching key for `tag` (exact, then by language), or None."""
    if not available:
        return None
    by_lower = {key.lower(): value for key, value in available.items()}
    for candidate in candidates(tag):
        if candidate in by_lower:
            return by_lower[candidate]
    return None


@lru_cache(maxsize=1024)
def chrome_locale(tag: str | None) -> str:
    """The shipped language for an amplifier's locale: `pt-BR` → `pt`; unknown → `en`."""
    match = best_match(tag, {code: code for code in SUPPORTED})
    return match or DEFAULT_LOCALE


@cache
def translations(locale: str) -> NullTranslations:
    if locale == DEFAULT_LOCALE:
        return NullTranslations()
    path = LOCALES_DIR / locale / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as source:
        catalog = read_po(source, locale=locale)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled)


_current: ContextVar[str] = ContextVar("amplify_locale", default=DEFAULT_LOCALE)


@contextmanager
def translating(locale: str) -> Iterator[str]:
    """Templates rendered inside use `locale`'s catalog and formats (renders are synchronous)."""
    token = _current.set(chrome_locale(locale))
    try:
        yield _current.get()
    finally:
        _current.reset(token)


def current_locale() -> str:
    return _current.get()


def gettext(message: str) -> str:
    return translations(_current.get()).ugettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return translations(_current.get()).ungettext(singular, plural, n)


def format_number(value: int | float, locale: str | None = None) -> str:
    return _format_number(value, locale or _current.get())


# Digests format a handful of small numbers each, the same ones again and again: Babel parses
# the locale's pattern on every call, a cache answers in a dictionary lookup.
@lru_cache(maxsize=8192)
def _format_number(value: int | float, locale: str) -> str:
    return format_decimal(value, locale=locale)


def format_day(value: date | datetime, locale: str | None = None) -> str:
    return format_date(value, format="medium", locale=locale or _current.get())


def install(environment: jinja2.Environment) -> None:
    """Give a Jinja environment (built with the i18n extension) the shared catalogs."""
    # Newstyle: `_("… %(n)s", n=…)` and `{% trans %}` format (and, under autoescape, escape)
    # their variables themselves.
    environment.install_gettext_callables(  # type: ignore[attr-defined]
        gettext, ngettext, newstyle=True
    )
    environment.filters["number"] = format_number
    environment.filters["day"] = format_day
    environment.globals["current_locale"] = current_locale
