"""The X weighting rule, without a database."""

import pytest

from app.campaigns import xtext


class TestCharWeight:
    @pytest.mark.parametrize(
        "char",
        [
            *["a", "Z", "0", " ", "é", "ß", "Ω", "Ж", "א", "ع", "क", "\u10ff"],
            *["\u2000", "\u200d", "\u2010", "\u201c", "\u201f", "\u2032", "\u2037"],
        ],
    )
    def test_light_ranges_weigh_one(self, char: str) -> None:
        assert xtext.char_weight(char) == 1

    @pytest.mark.parametrize(
        "char",
        ["\u1100", "\u200e", "\u2020", "\u2038", "€", "日", "한", "😀", "\U0001f3fd", "\ufe0f"],
    )
    def test_everything_else_weighs_two(self, char: str) -> None:
        assert xtext.char_weight(char) == 2

    def test_range_edges(self) -> None:
        assert [xtext.char_weight(chr(c)) for c in (4351, 4352)] == [1, 2]
        assert [xtext.char_weight(chr(c)) for c in (8191, 8192, 8205, 8206)] == [2, 1, 1, 2]
        assert [xtext.char_weight(chr(c)) for c in (8207, 8208, 8223, 8224)] == [2, 1, 1, 2]
        assert [xtext.char_weight(chr(c)) for c in (8241, 8242, 8247, 8248)] == [2, 1, 1, 2]


class TestWeight:
    def test_ascii_counts_characters(self) -> None:
        assert xtext.weight("hello world") == 11
        assert xtext.weight("") == 0

    def test_cjk_and_emoji_count_double(self) -> None:
        assert xtext.weight("日本語") == 6
        assert xtext.weight("hi 😀") == 5

    def test_emoji_sequences_count_per_code_point(self) -> None:
        # Stricter than X (which counts a sequence as 2): what fits here fits there.
        assert xtext.weight("👍🏽") == 4

    def test_text_is_nfc_normalized(self) -> None:
        assert xtext.weight("e\u0301") == xtext.weight("é") == 1

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("https://example.com", 23),
            ("http://a.co", 23),
            ("see https://example.com/" + "x" * 100 + " now", 4 + 23 + 4),
            ("HTTPS://EXAMPLE.COM/PATH", 23),
            ("two https://a.example https://b.example", 4 + 23 + 1 + 23),
            ("end https://example.com.", 4 + 23 + 1),
            ("(https://example.com)", 1 + 23 + 1),
        ],
    )
    def test_urls_in_the_text_weigh_23(self, text: str, expected: int) -> None:
        assert xtext.weight(text) == expected

    def test_a_bare_scheme_is_not_a_url(self) -> None:
        assert xtext.weight("https://") == 8


class TestPost:
    def test_compose_appends_hashtags(self) -> None:
        assert xtext.compose("Launch day", ["spring", "news"]) == "Launch day #spring #news"
        assert xtext.compose("Launch day", []) == "Launch day"

    def test_post_weight_adds_space_and_link(self) -> None:
        assert xtext.post_weight("abc") == 3 + 1 + 23
        assert xtext.post_weight("abc", ["x1"]) == 3 + 4 + 1 + 23

    def test_the_limit_is_inclusive(self) -> None:
        assert xtext.fits("a" * 256)
        assert not xtext.fits("a" * 257)
        assert xtext.fits("日" * 128)
        assert not xtext.fits("日" * 128 + "a")

    def test_hashtags_count_towards_the_limit(self) -> None:
        assert xtext.fits("a" * 250)
        assert not xtext.fits("a" * 250, ["abcdef"])
        assert not xtext.fits("a" * 249, ["abcdef"])
        assert xtext.fits("a" * 248, ["abcdef"])
