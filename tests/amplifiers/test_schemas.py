"""Field rules without a database."""

import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import example, given
from hypothesis import strategies as st
from pydantic import ValidationError

from app.amplifiers.schemas import AmplifierCreate, AmplifierUpdate, normalize_email

ATEXT = "abcXYZ0129_!#$%&'*+-/=?^`{|}~."
local_parts = st.one_of(
    st.text(alphabet=ATEXT, min_size=0, max_size=70),
    st.sampled_from(["Postmaster", "ABUSE", "info", "a..b", ".a", "a.", "ünï", '"q"', "a b"]),
)
domains = st.one_of(
    st.sampled_from(
        [
            "Example.COM",
            "example.com",
            "xn--bcher-kva.de",
            "bücher.de",
            "localhost",
            "a.test",
            "x.invalid",
            "-a.com",
            "a-.com",
            "a..com",
            "1.2.3.4",
            "[127.0.0.1]",
            "com",
            "a.b",
            "x" * 64 + ".com",
            ("abcdefghi." * 25) + "com",
        ]
    ),
    st.text(alphabet="abcXYZ09-.", min_size=0, max_size=40),
)


def reference(address: str) -> str | None:
    try:
        return validate_email(address.strip(" \t"), check_deliverability=False).normalized
    except EmailNotValidError:
        return None


def ours(address: str) -> str | None:
    try:
        return normalize_email(address)
    except ValueError:
        return None


class TestNormalizeEmail:
    @given(local=local_parts, domain=domains)
    @example(local="a" * 200, domain="example.com")
    @example(local="a" * 60, domain=("abcdefghi." * 19) + "com")
    def test_agrees_with_email_validator(self, local: str, domain: str) -> None:
        address = f"{local}@{domain}"
        assert ours(address) == reference(address)

    @given(address=st.text(max_size=60))
    def test_agrees_on_arbitrary_text(self, address: str) -> None:
        assert ours(address) == reference(address)

    def test_domain_is_lower_cased_and_local_part_kept(self) -> None:
        assert normalize_email(" Ada.L@Example.COM ") == "Ada.L@example.com"
        assert normalize_email("Postmaster@Example.com") == "postmaster@example.com"
        assert normalize_email("a@xn--bcher-kva.de") == "a@bücher.de"


class TestAmplifierCreate:
    def test_normalizes_lists_and_locale(self) -> None:
        data = AmplifierCreate.model_validate(
            {
                "email": "a@example.com",
                "name": "  ",
                "tags": [" x ", "x", "y"],
                "networks": ["X", "linkedin", "x"],
                "audience": {"LinkedIn": "12"},
                "locale": "zh_hant_tw",
            }
        )
        assert data.name is None
        assert data.tags == ["x", "y"]
        assert data.networks == ["x", "linkedin"]
        assert data.audience == {"linkedin": 12}
        assert data.locale == "zh-Hant-TW"

    @pytest.mark.parametrize("tag", ["", " ", "a\x00", "a\x1bb", "a\u0085", "x" * 65, "a\nb"])
    def test_bad_tags(self, tag: str) -> None:
        with pytest.raises(ValidationError):
            AmplifierCreate.model_validate({"email": "a@example.com", "tags": [tag]})

    @pytest.mark.parametrize("locale", ["en", "pt-BR", "es-419", "de_de", "FR"])
    def test_good_locales(self, locale: str) -> None:
        AmplifierCreate.model_validate({"email": "a@example.com", "locale": locale})

    @pytest.mark.parametrize("locale", ["", "e", "english", "en-", "en-USA1", "en US"])
    def test_bad_locales(self, locale: str) -> None:
        with pytest.raises(ValidationError):
            AmplifierCreate.model_validate({"email": "a@example.com", "locale": locale})


class TestAmplifierUpdate:
    def test_absent_fields_are_not_set(self) -> None:
        data = AmplifierUpdate.model_validate({"name": None})
        assert data.model_fields_set == {"name"}

    def test_explicit_null_is_refused_for_required_fields(self) -> None:
        with pytest.raises(ValidationError) as info:
            AmplifierUpdate.model_validate({"tags": None, "email": None})
        assert {e["loc"][0] for e in info.value.errors()} == {"tags", "email"}
