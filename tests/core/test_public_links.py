from itsdangerous import Signer as ItsdangerousSigner

from app.core.config import Settings
from app.core.public_links import (
    DIGEST,
    UNSUBSCRIBE,
    PublicPage,
    page_token,
    read_page_token,
    redirect_url,
    stand_in_url,
    unsubscribe_mailto_base,
    unsubscribe_url,
    web_version_url,
)
from app.core.security import Signer

PUBLIC = "https://amplify.test"
SIGNER = Signer("public-links-secret-public-links-secret")


class TestPageTokens:
    def test_a_token_reads_back_as_its_id(self) -> None:
        for page in (DIGEST, UNSUBSCRIBE):
            assert read_page_token(SIGNER, page, page_token(SIGNER, page, 42)) == 42

    def test_a_token_opens_no_other_page(self) -> None:
        assert read_page_token(SIGNER, DIGEST, page_token(SIGNER, UNSUBSCRIBE, 42)) is None
        preferences = PublicPage("p", "preferences")
        assert read_page_token(SIGNER, preferences, page_token(SIGNER, DIGEST, 42)) is None

    def test_a_token_is_the_one_itsdangerous_signs_so_mailed_links_keep_working(self) -> None:
        for purpose in ("digest", "unsubscribe", "preferences"):
            reference = ItsdangerousSigner(
                "public-links-secret-public-links-secret", salt=f"amplify.{purpose}"
            )
            for value in (0, 7, 42, 10**12):
                token = SIGNER.sign_id(purpose, value)
                assert token == reference.sign(str(value).encode()).decode()
                assert SIGNER.unsign_id(purpose, token) == value

    def test_tampered_and_foreign_tokens_read_as_nothing(self) -> None:
        token = page_token(SIGNER, DIGEST, 42)
        other = Signer("another-secret-another-secret-another")
        assert read_page_token(SIGNER, DIGEST, token[:-1] + "x") is None
        assert read_page_token(other, DIGEST, token) is None
        assert read_page_token(SIGNER, DIGEST, "garbage") is None


class TestUrls:
    def test_each_public_path(self) -> None:
        assert redirect_url(PUBLIC, "abc12345") == f"{PUBLIC}/r/abc12345"
        web = web_version_url(PUBLIC, SIGNER, 7)
        assert web == f"{PUBLIC}/a/{page_token(SIGNER, DIGEST, 7)}"
        assert (
            unsubscribe_url(PUBLIC, SIGNER, 9) == f"{PUBLIC}/u/{page_token(SIGNER, UNSUBSCRIBE, 9)}"
        )

    def test_previews_use_stand_ins(self) -> None:
        assert stand_in_url(PUBLIC) == f"{PUBLIC}/r/preview"
        assert stand_in_url(PUBLIC, DIGEST) == f"{PUBLIC}/a/preview"
        assert stand_in_url(PUBLIC, UNSUBSCRIBE) == f"{PUBLIC}/u/preview"

    def test_mailto_goes_to_the_sender_unless_an_address_is_set(self) -> None:
        base = Settings(_env_file=None, mail_from="Acme <news@acme.example>")  # type: ignore[call-arg]
        assert unsubscribe_mailto_base(base) == "mailto:news@acme.example?subject="
        own = base.model_copy(update={"unsubscribe_mailto": "leave@acme.example"})
        assert unsubscribe_mailto_base(own) == "mailto:leave@acme.example?subject="
