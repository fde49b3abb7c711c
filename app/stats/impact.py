"""An amplifier's own scoreboard: what digests show in their impact block and what the
my-impact page shows, read from the same rollups as the leaderboard.

A send reads the whole organization's board once per campaign (one aggregate over the
per-amplifier day counters and one count), never one aggregation per mail.
"""

from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Amplifier, AmplifierDay, AmplifierStatus, AmplifierTotal

IMPACT_DAYS = 30


@dataclass(frozen=True, slots=True)
class Score:
    """An amplifier's numbers over a period and their rank among `total` amplifiers."""

    shares: int
    visits: int
    points: int
    rank: int
    total: int


@dataclass(frozen=True, slots=True)
class Earned:
    """What one amplifier earned over a period (the leaderboard's numbers, without a name)."""

    amplifier_id: int
    points: int
    share_clicks: int
    visits: int


@dataclass(frozen=True, slots=True)
class Board:
    """Scores of everyone who earned something in a period; the others are absent."""

    total: int
    scores: dict[int, Score] = field(default_factory=dict)
    entries: list[Earned] = field(default_factory=list)

    def of(self, amplifier_id: int) -> Score | None:
        return self.scores.get(amplifier_id)


def ranked(entries: list[Earned], total: int) -> dict[int, Score]:
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


async def earned(
    session: AsyncSession, *, organization_id: int, since: date | None
) -> list[Earned]:
    """Everyone's points, share clicks and visits since a UTC day (None: all time), from the
    same counters `GET /leaderboard` reads, in its order.

    Only the counters are read, grouped by amplifier: no join with the roster (the leaderboard
    joins it for names; a top 10 looks its names up with `names`)."""
    if since is None:
        T = AmplifierTotal
        rows = await session.execute(
            select(T.amplifier_id, T.points, T.share_clicks, T.visits).where(
                T.organization_id == organization_id,
                or_(T.points > 0, T.share_clicks > 0, T.visits > 0),
            )
        )
    else:
        D = AmplifierDay
        rows = await session.execute(
            select(D.amplifier_id, func.sum(D.points), func.sum(D.share_clicks), func.sum(D.visits))
            .where(D.organization_id == organization_id, D.day >= since)
            .group_by(D.amplifier_id)
            .having(
                or_(
                    func.sum(D.points) > 0,
                    func.sum(D.share_clicks) > 0,
                    func.sum(D.visits) > 0,
                    func.sum(D.first_shares) > 0,
                )
            )
        )
    found = [
        Earned(int(amplifier_id), int(points or 0), int(share or 0), int(visits or 0))
        for amplifier_id, points, share, visits in rows.all()
        # Rows of deleted amplifiers are kept under id 0 (app/models/stats.py).
        if amplifier_id != 0
    ]
    found.sort(key=lambda e: (-e.points, e.amplifier_id))  # the leaderboard's order
    return found


async def board(session: AsyncSession, *, organization_id: int, since: date | None) -> Board:
    """The organization's board from the UTC day `since` (None: all time)."""
    entries = await earned(session, organization_id=organization_id, since=since)
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


async def names(
    session: AsyncSession, *, organization_id: int, amplifier_ids: list[int]
) -> dict[int, tuple[str | None, str]]:
    """(name, email) of a few amplifiers, for a top 10."""
    rows = await session.execute(
        select(Amplifier.id, Amplifier.name, Amplifier.email).where(
            Amplifier.organization_id == organization_id, Amplifier.id.in_(amplifier_ids)
        )
    )
    return {row.id: (row.name, row.email) for row in rows.all()}


async def recent_board(session: AsyncSession, *, organization_id: int, today: date) -> Board:
    """The last `IMPACT_DAYS` UTC days, today included: the digests' impact block."""
    return await board(
        session, organization_id=organization_id, since=today - timedelta(days=IMPACT_DAYS - 1)
    )
