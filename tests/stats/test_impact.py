"""The impact board's ranking, a pure function of the leaderboard's order."""

from app.stats.impact import Earned, Score, ranked


def test_equal_points_share_a_rank_and_the_next_rank_skips() -> None:
    entries = [
        Earned(amplifier_id=7, points=30, share_clicks=3, visits=9),
        Earned(amplifier_id=3, points=12, share_clicks=1, visits=2),
        Earned(amplifier_id=5, points=12, share_clicks=1, visits=4),
        Earned(amplifier_id=9, points=1, share_clicks=0, visits=1),
    ]
    scores = ranked(entries, total=120)
    assert [scores[i].rank for i in (7, 3, 5, 9)] == [1, 2, 2, 4]
    assert scores[5] == Score(shares=1, visits=4, points=12, rank=2, total=120)


def test_the_total_never_falls_below_the_ranked() -> None:
    entries = [Earned(amplifier_id=n, points=10, share_clicks=1, visits=0) for n in range(1, 4)]
    assert {score.total for score in ranked(entries, total=2).values()} == {3}
