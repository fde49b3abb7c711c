"""An amplifier's own scoreboard: what digests show in their impact block and what the
my-impact page shows, read from the same rollups as the leaderboard.

A send reads the whole organization's board once per campaign (one leaderboard query and one
count), never one aggregation per mail.
"""

from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Amplifier, AmplifierStatus
from app.stats import service as stats
from app.stats.schemas import LeaderboardEntry

IMPACT_DAYS = 30
# Enough for any roster; the leaderboard only lists amplifiers with something earned.
_EVERYONE = 1_000_000


@dataclass(frozen=True, slots=True)
class Score:
    """An amplifier's numbers over a period and their rank among `total` amplifiers."""

    shares: int
    visits: int
    points: int
    rank: int
    total: int


@dataclass(frozen=True, slots=True)
class Board:
    """Scores of everyone who earned something in a period; the others are absent."""

    total: int
    scores: dict[int, Score] = field(default_factory=dict)
    entries: list[LeaderboardEntry] = field(default_factory=list)

    def of(self, amplifier_id: int) -> Score | None:
        return self.scores.get(amplifier_id)


def ranked(entries: list[LeaderboardEntry], total: int) -> dict[int, Score]:
    """Competition ranking ("1, 2, 2, 4"): equal points share a rank. `entries` are ordered
    by points, highest first."""
    scores: dict[int, Score] = {}
    rank, previous = 0, None
    for position, entry in enumerate(entries, start=1):
        if entry.points != previous:
            rank, previous = position, entry.points
        scores[entry.amplifier_id] = Score(
            shares=entry.share_clicks,
            visits=entry.visits,
            points=entry.points,
            rank=rank,
            total=max(total, len(entries)),
        )
    return scores


async def board(
    session: AsyncSession, *, organization_id: int, since: date | None, until: date | None = None
) -> Board:
    """The organization's board over the UTC days `since`..`until` (None: unbounded)."""
    entries = await stats.leaderboard(
        session,
        organization_id=organization_id,
        since=since,
        until=until,
        offset=0,
        limit=_EVERYONE,
    )
    total = await session.scalar(
        select(func.count())
        .select_from(Amplifier)
        .where(
            Amplifier.organization_id == organization_id,
            Amplifier.status == AmplifierStatus.ACTIVE,
        )
    )
    count = int(total or 0)
    return Board(total=count, scores=ranked(entries, count), entries=entries)


async def recent_board(session: AsyncSession, *, organization_id: int, today: date) -> Board:
    """The last `IMPACT_DAYS` UTC days, today included: the digests' impact block."""
    return await board(
        session, organization_id=organization_id, since=today - timedelta(days=IMPACT_DAYS - 1)
    )
