"""An amplifier's own scoreboard: what digests show in their impact block and what the
my-impact page shows, read from the same rollups as the leaderboard.

A send reads the whole organization's board once per campaign (one aggregate over the rollups
and one count), never one aggregation per mail.
"""

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import func, literal, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Amplifier, AmplifierDay, AmplifierStatus, Engagement
from app.stats import service as stats

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
    """Everyone's points, share clicks and visits since a UTC day, as `GET /leaderboard`
    counts them (10 per (message, network) first shared in the period, 1 per unique visitor).

    Only the rollups are read, grouped by amplifier: no join with the roster, whose row
    estimates right after a large import can lead PostgreSQL into a nested loop."""
    days = select(
        AmplifierDay.amplifier_id,
        AmplifierDay.share_clicks.label("share"),
        AmplifierDay.visits.label("visits"),
        AmplifierDay.unique_visitors.label("uniq"),
        literal(0).label("pairs"),
    ).where(AmplifierDay.organization_id == organization_id)
    firsts = select(
        Engagement.amplifier_id,
        literal(0).label("share"),
        literal(0).label("visits"),
        literal(0).label("uniq"),
        literal(1).label("pairs"),
    ).where(Engagement.organization_id == organization_id, Engagement.first_shared_at.is_not(None))
    if since is not None:
        days = days.where(AmplifierDay.day >= since)
        firsts = firsts.where(
            Engagement.first_shared_at >= datetime.combine(since, time(), tzinfo=UTC)
        )
    both = union_all(days, firsts).subquery()
    points = func.sum(both.c.pairs) * stats.SHARE_POINTS + func.sum(both.c.uniq)
    rows = await session.execute(
        select(both.c.amplifier_id, points, func.sum(both.c.share), func.sum(both.c.visits))
        # Rows of deleted amplifiers are kept under id 0 (app/models/stats.py).
        .where(both.c.amplifier_id != 0)
        .group_by(both.c.amplifier_id)
        .having(func.sum(both.c.pairs + both.c.share + both.c.visits + both.c.uniq) > 0)
    )
    found = [
        Earned(int(amplifier_id), int(p or 0), int(share or 0), int(visits or 0))
        for amplifier_id, p, share, visits in rows.all()
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
