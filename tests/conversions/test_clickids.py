"""Click ids without I/O: minting, checking, and where they go in a landing URL."""

import pytest

from app.tracking.clickids import CLICK_ID_LENGTH, ClickIds, attribution_parts


class TestClickIds:
    def test_minted_ids_check_out_and_name_their_stored_key(self) -> None:
        ids = ClickIds("secret")
        click_id, key = ids.mint()
        assert len(click_id) == CLICK_ID_LENGTH and click_id.isascii()
        assert ids.stored_key(click_id) == key
        assert len({ids.mint()[0] for _ in range(1000)}) == 1000

    def test_every_changed_character_is_refused(self) -> None:
        ids = ClickIds("secret")
        click_id, _ = ids.mint()
        for i, char in enumerate(click_id):
            other = "A" if char != "A" else "B"
            assert ids.stored_key(click_id[:i] + other + click_id[i + 1 :]) is None, i

    @pytest.mark.parametrize("bad", ["", "x", "=" * 32, "é" * 32, "a" * 31, "a" * 33, "+/" * 16])
    def test_malformed_ids_are_refused(self, bad: str) -> None:
        assert ClickIds("secret").stored_key(bad) is None

    def test_another_secret_refuses_them(self) -> None:
        click_id, _ = ClickIds("secret").mint()
        assert ClickIds("another secret").stored_key(click_id) is None


class TestAttributionParts:
    @pytest.mark.parametrize(
        ("target", "expected"),
        [
            ("https://s.example/p", ("https://s.example/p?amp_cid=", "")),
            ("https://s.example/p?", ("https://s.example/p?amp_cid=", "")),
            ("https://s.example/p?a=1&b", ("https://s.example/p?a=1&b&amp_cid=", "")),
            ("https://s.example/p#top", ("https://s.example/p?amp_cid=", "#top")),
            ("https://s.example/p?a=1#x?y", ("https://s.example/p?a=1&amp_cid=", "#x?y")),
            # A click id already in the target (a copied link) is replaced, however written.
            ("https://s.example/p?amp_cid=old&a=1", ("https://s.example/p?a=1&amp_cid=", "")),
            ("https://s.example/p?amp%5Fcid=old", ("https://s.example/p?amp_cid=", "")),
            ("https://s.example/p?amp_cid", ("https://s.example/p?amp_cid=", "")),
            ("https://s.example/p?xamp_cid=1", ("https://s.example/p?xamp_cid=1&amp_cid=", "")),
        ],
    )
    def test_the_click_id_goes_last_in_the_query(
        self, target: str, expected: tuple[str, str]
    ) -> None:
        assert attribution_parts(target, "amp_cid") == expected

    def test_the_parameter_name_is_configurable(self) -> None:
        assert attribution_parts("https://s.example/?ref=1&cid=9", "cid") == (
            "https://s.example/?ref=1&cid=",
            "",
        )
