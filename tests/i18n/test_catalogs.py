"""Every shipped catalog translates every message the code and templates use, correctly."""

import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from app import i18n

ROOT = Path(__file__).resolve().parents[2]
PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def _source_ids() -> set[str]:
    ids: set[str] = set()
    method_map = [
        ("app/**.py", "python"),
        ("email_templates/**.j2", "jinja2"),
        ("app/pages/templates/**.html", "jinja2"),
    ]
    options = {
        "**.j2": {"extensions": "jinja2.ext.i18n"},
        "**.html": {"extensions": "jinja2.ext.i18n"},
    }
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(ROOT), method_map=method_map, options_map=options
    ):
        ids.add(message if isinstance(message, str) else message[0])
    return ids


SOURCE_IDS = _source_ids()
TRANSLATED = [code for code in i18n.SUPPORTED if code != i18n.DEFAULT_LOCALE]


def test_the_sources_have_messages() -> None:
    assert "Hi %(name)s," in SOURCE_IDS
    assert "Your impact in the last 30 days" in SOURCE_IDS


@pytest.mark.parametrize("locale", TRANSLATED)
def test_catalog_covers_every_message_with_its_placeholders(locale: str) -> None:
    path = i18n.LOCALES_DIR / locale / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as source:
        catalog = read_po(source, locale=locale)
    by_id = {(m.id if isinstance(m.id, str) else m.id[0]): m for m in catalog if m.id}
    assert SOURCE_IDS - by_id.keys() == set(), "untranslated"
    assert by_id.keys() - SOURCE_IDS == set(), "obsolete"
    for message_id, message in by_id.items():
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        assert len(strings) == catalog.num_plurals if isinstance(message.id, tuple) else 1
        for text in strings:
            assert text.strip(), message_id
            assert not message.fuzzy
            wanted = set(
                PLACEHOLDER.findall(message_id if isinstance(message.id, str) else message.id[1])
            )
            # A singular may leave the count out ("one post"); every other name must be kept.
            assert set(PLACEHOLDER.findall(text)) <= wanted
            if isinstance(message.id, str):
                assert set(PLACEHOLDER.findall(text)) == wanted, (locale, message_id)


def test_every_supported_language_resolves_and_falls_back() -> None:
    assert i18n.chrome_locale("pt-BR") == "pt"
    assert i18n.chrome_locale("pt_br") == "pt"
    assert i18n.chrome_locale("nb-NO") == "nb"
    assert i18n.chrome_locale("xx") == "en"
    assert i18n.chrome_locale(None) == "en"
    for code in i18n.SUPPORTED:
        with i18n.translating(code):
            hello = i18n.gettext("Hi there,")
        assert hello == "Hi there," if code == "en" else hello != "Hi there,"


def test_numbers_and_dates_are_formatted_for_the_language() -> None:
    from datetime import date

    assert i18n.format_number(1234567, "de") == "1.234.567"
    assert i18n.format_number(1234567, "en") == "1,234,567"
    assert i18n.format_day(date(2026, 11, 30), "fr") == "30 nov. 2026"
