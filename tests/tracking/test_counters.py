"""The statistics counters (app/tracking/counters.py) against a full recomputation: random
click streams, flushed in random batches with roster audience changes between them, must
leave every counter equal to what the engagement rollup and the current roster say.

The streams are dense on purpose: few visitors, three links of one digest within seconds
(scanner bursts, which take shares back after they were counted), two UTC days."""

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select, update

from app.models import (
    Amplifier,
    AmplifierDay,
    AmplifierTotal,
    CampaignAmplifier,
    CampaignCount,
    Click,
    ClickRollup,
    Engagement,
    Link,
    LinkVisitor,
    MessageSharer,
    NetworkSharer,
    VariantCount,
)
from app.models.stats import CampaignHour
from app.tracking.counters import SHARE_POINTS, audience_numbers
from app.tracking.recorder import ClickEvent, store_clicks

EMAILS = ("ada@example.com", "bob@example.com", "cyd@example.com")
NETWORKS = ("linkedin", "x")
START = datetime(2026, 11, 20, 23, 59, 30, tzinfo=UTC)  # the stream crosses midnight
VARIANT_COUNTS = ("share_clicks", "visits", "unique_visitors", "bot_clicks", "sharers")
FLUSHED_TABLES = (
    Click,
    ClickRollup,
    LinkVisitor,
    Engagement,
    CampaignHour,
    AmplifierDay,
    CampaignCount,
    CampaignAmplifier,
    AmplifierTotal,
    MessageSharer,
    NetworkSharer,
)


@dataclass(frozen=True)
class Roster:
    campaign_id: int
    amplifier_ids: list[int]
    links: list[Any]  # id, kind, delivery_id, amplifier_id, message_id, network


@pytest.fixture
async def roster(sent_campaign, sessionmaker) -> Roster:
    # Copy variants dealt in roster order: "One" 0 1 0, "Two" 0 1 2.
    sent = await sent_campaign(
        EMAILS,
        messages=[
            {"text": "One", "url": "https://example.com/one", "variants": [{"text": "1b"}]},
            {
                "text": "Two",
                "url": "https://example.com/two",
                "variants": [{"text": "2b"}, {"text": "2c"}],
            },
        ],
    )
    async with sessionmaker() as session:
        links = (
            await session.execute(
                select(
                    Link.id,
                    Link.kind,
                    Link.delivery_id,
                    Link.amplifier_id,
                    Link.message_id,
                    Link.network,
                )
                .where(Link.campaign_id == sent.campaign_id)
                .order_by(Link.id)
            )
        ).all()
    return Roster(sent.campaign_id, sorted({link.amplifier_id for link in links}), list(links))


click_ops = st.tuples(
    st.just("click"),
    st.integers(0, 23),  # which link (3 amplifiers × 2 messages × 2 networks × share/visit)
    st.integers(0, 50),  # seconds after START
    st.booleans(),  # flagged a bot at the redirect
    st.sampled_from(["v1", "v2", "v3", None]),  # visitor
)
flush_ops = st.tuples(st.just("flush"))
audience_ops = st.tuples(
    st.just("audience"),
    st.integers(0, 2),  # which amplifier
    st.dictionaries(st.sampled_from(NETWORKS), st.integers(0, 5_000), max_size=2),
)
streams = st.lists(
    st.one_of(click_ops, click_ops, click_ops, click_ops, flush_ops, audience_ops), max_size=60
)


class TestCountersMatchARecomputation:
    @settings(
        max_examples=30,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(stream=streams)
    async def test_random_streams(self, app, roster, org_a, stream) -> None:
        engine = app.state.engine
        async with engine.begin() as connection:
            for model in FLUSHED_TABLES:
                await connection.execute(delete(model))
            # The recipients per variant come from the send; the rest from the clicks.
            await connection.execute(
                update(VariantCount).values(**dict.fromkeys(VARIANT_COUNTS, 0))
            )
        pending: list[ClickEvent] = []

        async def flush() -> None:
            pending.sort(key=lambda c: c.at)
            async with engine.begin() as connection:
                await store_clicks(connection, pending)
            pending.clear()

        for op in stream:
            if op[0] == "click":
                _, index, seconds, bot, visitor = op
                link = roster.links[index]
                pending.append(
                    ClickEvent(
                        link_id=link.id,
                        delivery_id=link.delivery_id,
                        kind=link.kind,
                        at=START + timedelta(seconds=seconds),
                        is_bot=bot,
                        bot_reason="agent" if bot else None,
                        visitor_key=visitor,
                        ua_class="desktop",
                        referrer_host=None,
                    )
                )
            elif op[0] == "flush" and pending:
                await flush()
            elif op[0] == "audience":
                _, who, audience = op
                answer = await org_a.editor.patch(
                    f"/api/v1/amplifiers/{roster.amplifier_ids[who]}", json={"audience": audience}
                )
                assert answer.status_code == 200, answer.text
        if pending:
            await flush()
        async with engine.connect() as connection:
            expected = await _recomputed(connection)
            actual = await _counters(connection)
        assert actual == expected


async def _recomputed(connection: Any) -> dict[str, Any]:
    """Every counter from the engagement rows and the amplifiers' current audiences."""
    rows = (await connection.execute(select(Engagement))).all()
    audiences = {
        row.id: audience_numbers(row.audience)
        for row in (await connection.execute(select(Amplifier.id, Amplifier.audience))).all()
    }
    counts: dict[tuple[int, int, str], list[int]] = defaultdict(lambda: [0] * 6)
    message_sharers: dict[tuple[int, int, int], int] = defaultdict(int)
    network_sharers: dict[tuple[int, str, int], int] = defaultdict(int)
    campaign_amplifiers: dict[tuple[int, int], list[int]] = defaultdict(lambda: [0] * 6)
    totals: dict[tuple[int, int], list[int]] = defaultdict(lambda: [0] * 4)
    first_shares: dict[tuple[int, date, int], int] = defaultdict(int)
    for e in rows:
        shared = int(e.share_clicks > 0)
        numbers = [e.share_clicks, e.visits, e.unique_visitors, e.bot_clicks]
        pair = counts[(e.campaign_id, e.message_id, e.network)]
        for i, value in enumerate([*numbers, shared]):
            pair[i] += value
        mine = campaign_amplifiers[(e.campaign_id, e.amplifier_id)]
        for i, value in enumerate([*numbers, shared]):
            mine[i] += value
        mine[5] += shared * SHARE_POINTS + e.unique_visitors
        total = totals[(e.organization_id, e.amplifier_id)]
        for i, value in enumerate(numbers[:3]):
            total[i] += value
        total[3] += shared * SHARE_POINTS + e.unique_visitors
        if shared:
            message_sharers[(e.campaign_id, e.message_id, e.amplifier_id)] += 1
            network_sharers[(e.campaign_id, e.network, e.amplifier_id)] += 1
            first_shares[(e.organization_id, e.first_shared_at.date(), e.amplifier_id)] += 1
    sharers: dict[tuple[int, int, str], set[int]] = defaultdict(set)
    for campaign, message, amplifier in message_sharers:
        sharers[(campaign, message, "")].add(amplifier)
        sharers[(campaign, 0, "")].add(amplifier)
    for campaign, network, amplifier in network_sharers:
        sharers[(campaign, 0, network)].add(amplifier)
        counts[(campaign, 0, network)][5] += audiences.get(amplifier, {}).get(network, 0)
    for key, members in sharers.items():
        counts[key][4] = len(members)
    variant_of = {
        (link.campaign_id, link.message_id, link.amplifier_id): link.variant
        for link in (
            await connection.execute(
                select(Link.campaign_id, Link.message_id, Link.amplifier_id, Link.variant)
            )
        ).all()
    }
    variants: dict[tuple[int, int, int], list[int]] = defaultdict(lambda: [0] * 5)
    variant_sharers: dict[tuple[int, int, int], set[int]] = defaultdict(set)
    for e in rows:
        key = (
            e.campaign_id,
            e.message_id,
            variant_of[(e.campaign_id, e.message_id, e.amplifier_id)],
        )
        for i, value in enumerate([e.share_clicks, e.visits, e.unique_visitors, e.bot_clicks]):
            variants[key][i] += value
        if e.share_clicks > 0:
            variant_sharers[key].add(e.amplifier_id)
    for key, members in variant_sharers.items():
        variants[key][4] = len(members)
    return {
        "variant_counts": _nonzero(variants),
        "campaign_counts": _nonzero(counts),
        "campaign_amplifiers": _nonzero(campaign_amplifiers),
        "amplifier_totals": _nonzero(totals),
        "message_sharers": _nonzero({k: [v] for k, v in message_sharers.items()}),
        "network_sharers": _nonzero({k: [v] for k, v in network_sharers.items()}),
        "first_shares": _nonzero({k: [v] for k, v in first_shares.items()}),
        "day_points": "10 × first shares + unique visitors",
    }


async def _counters(connection: Any) -> dict[str, Any]:
    async def table(model: Any, key: tuple[str, ...], values: tuple[str, ...]) -> Any:
        found = (await connection.execute(select(model))).all()
        return _nonzero(
            {tuple(getattr(r, k) for k in key): [getattr(r, v) for v in values] for r in found}
        )

    counts = ("share_clicks", "visits", "unique_visitors", "bot_clicks")
    days = (await connection.execute(select(AmplifierDay))).all()
    points_add_up = all(d.points == d.first_shares * SHARE_POINTS + d.unique_visitors for d in days)
    return {
        "variant_counts": await table(
            VariantCount, ("campaign_id", "message_id", "variant"), VARIANT_COUNTS
        ),
        "campaign_counts": await table(
            CampaignCount,
            ("campaign_id", "message_id", "network"),
            (*counts, "sharers", "potential_reach"),
        ),
        "campaign_amplifiers": await table(
            CampaignAmplifier,
            ("campaign_id", "amplifier_id"),
            (*counts, "shared_pairs", "points"),
        ),
        "amplifier_totals": await table(
            AmplifierTotal, ("organization_id", "amplifier_id"), (*counts[:3], "points")
        ),
        "message_sharers": await table(
            MessageSharer, ("campaign_id", "message_id", "amplifier_id"), ("shared",)
        ),
        # A row's audience counts only while it is shared, and stays current either way.
        "network_sharers": await table(
            NetworkSharer, ("campaign_id", "network", "amplifier_id"), ("shared",)
        ),
        "first_shares": await table(
            AmplifierDay, ("organization_id", "day", "amplifier_id"), ("first_shares",)
        ),
        "day_points": "10 × first shares + unique visitors" if points_add_up else days,
    }


def _nonzero(rows: dict[Any, list[int]]) -> dict[Any, list[int]]:
    return {key: list(values) for key, values in sorted(rows.items()) if any(values)}


class TestPotentialReachFollowsTheRoster:
    async def test_import_and_delete_move_the_reach(self, app, roster, org_a) -> None:
        ada = roster.amplifier_ids[0]
        share = next(
            link
            for link in roster.links
            if link.amplifier_id == ada and link.kind == "share" and link.network == "linkedin"
        )
        patched = await org_a.editor.patch(
            f"/api/v1/amplifiers/{ada}", json={"audience": {"linkedin": 400}}
        )
        assert patched.status_code == 200
        click = ClickEvent(
            share.id, share.delivery_id, "share", START, False, None, "v1", "desktop", None
        )
        async with app.state.engine.begin() as connection:
            await store_clicks(connection, [click])

        async def campaign() -> dict[str, Any]:
            answer = await org_a.viewer.get(f"/api/v1/campaigns/{roster.campaign_id}/stats")
            return {
                "sharers": answer.json()["sharers"],
                "reach": answer.json()["potential_reach"],
            }

        assert await campaign() == {"sharers": 1, "reach": 400}
        imported = await org_a.editor.post(
            "/api/v1/amplifiers/import",
            json=[{"email": EMAILS[0], "audience": {"linkedin": 650}}],
        )
        assert imported.status_code == 200, imported.text
        assert await campaign() == {"sharers": 1, "reach": 650}
        deleted = await org_a.editor.delete(f"/api/v1/amplifiers/{ada}")
        assert deleted.status_code == 204, deleted.text
        # A deleted amplifier's audience is gone; their share still happened.
        assert await campaign() == {"sharers": 1, "reach": 0}
